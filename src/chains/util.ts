/**
 * Small helpers shared by the chain decoders: the one way a decoder fails, and strict byte parsing.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { FleetkeyError } from '../errors.ts';

/** Throw the decoder's only error: `decode_failed`, with public details and the underlying cause. */
export function decodeFailed(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  const reason = cause instanceof Error ? firstLine(cause.message) : undefined;
  throw new FleetkeyError('decode_failed', message, {
    details: reason === undefined ? details : { ...details, reason },
    cause,
  });
}

/** Run a library parser; anything it throws becomes `decode_failed` with `message`. */
export function attempt<T>(message: string, details: Record<string, unknown>, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    return decodeFailed(message, details, e);
  }
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

const HEX = /^(0x)?((?:[0-9a-fA-F]{2})*)$/;

/** Parse hex (0x optional, even length) into bytes, or fail naming `what`. */
export function hexToBytesStrict(input: string, what: string): Uint8Array {
  const m = HEX.exec(input);
  if (!m) decodeFailed(`${what} is not valid hex (even number of 0-9a-f digits, 0x optional)`, { what });
  return hexToBytes(m[2]);
}

export function isHex(input: string): boolean {
  return HEX.test(input);
}

export function toHex(bytes: Uint8Array): `0x${string}` {
  return `0x${bytesToHex(bytes)}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parse canonical, padded base64 into bytes, or fail naming `what`. */
export function base64ToBytesStrict(input: string, what: string): Uint8Array {
  const s = input.trim();
  if (!BASE64.test(s)) decodeFailed(`${what} is not valid base64`, { what });
  // atob, not Buffer: this decoder also runs in browsers and edge runtimes (the SDK verifies wallet packages).
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** The UTF-8 text of bytes when they are valid UTF-8 and printable enough to show, else undefined. */
export function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // eslint-disable-next-line no-control-regex
    return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/** `{ hex, text? }` for Action.message. */
export function describeMessage(bytes: Uint8Array): { hex: string; text?: string } {
  const text = utf8OrUndefined(bytes);
  return text === undefined ? { hex: toHex(bytes) } : { hex: toHex(bytes), text };
}

/** Fail when a caller's expectation (opts) contradicts what the payload says. */
export function expectSame(what: string, fromPayload: string | undefined, expected: string | undefined): void {
  if (fromPayload !== undefined && expected !== undefined && fromPayload.toLowerCase() !== expected.toLowerCase()) {
    decodeFailed(`${what} in the payload (${fromPayload}) differs from the expected ${what} (${expected})`, {
      field: what,
      payload: fromPayload,
      expected,
    });
  }
}
