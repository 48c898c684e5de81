/**
 * Payloads with no chain meaning: opaque message bytes, and a bare 32-byte digest (admin only: what it
 * authorises cannot be known, so it is kind 'unknown' and policies deny it unless an admin rule allows).
 */
import type { Decoded } from './types.ts';
import { decodeFailed, describeMessage, hexToBytesStrict, toHex } from './util.ts';

export function decodeRawMessage(payload: string, opts: { from?: string } = {}): Decoded {
  const bytes = hexToBytesStrict(payload, 'raw_message');
  return {
    action: { chain: 'message', kind: 'message', ...(opts.from ? { from: opts.from } : {}), effects: [], message: describeMessage(bytes) },
    signingPayloads: [bytes],
    signing: [{ scheme: 'any' }],
  };
}

export function decodeRawHash(payload: string, opts: { from?: string } = {}): Decoded {
  const bytes = hexToBytesStrict(payload, 'raw_hash');
  if (bytes.length !== 32) decodeFailed(`raw_hash must be exactly 32 bytes, got ${bytes.length}`, { length: bytes.length });
  return {
    action: {
      chain: 'message',
      kind: 'unknown',
      ...(opts.from ? { from: opts.from } : {}),
      effects: [],
      notes: [`raw 32-byte digest ${toHex(bytes)}: what it authorises cannot be decoded (admin-only signing path)`],
    },
    signingPayloads: [bytes],
    signing: [{ scheme: 'any' }],
  };
}
