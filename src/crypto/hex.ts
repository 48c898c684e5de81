/**
 * Hex on the protocol hot paths (DKLs23 messages carry ≈ 130 KB of hex per ordered pair): Node's
 * native codec, ≈ 100× faster here than a JavaScript loop for encoding. Same encoding as noble's
 * `bytesToHex` / `hexToBytes`, but the decoder is stricter: lowercase only, as the protocol
 * parsers require.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

/**
 * Node's (and Bun's, Deno's) Buffer when the runtime has one; a browser bundle has none and gets noble's
 * codec. Taken from the global, not `node:buffer`, so the SDK's browser build (which reaches this file through
 * the public-key derivation) imports nothing from Node.
 */
const NodeBuffer = (globalThis as { Buffer?: typeof import('node:buffer').Buffer }).Buffer;

/** Lowercase hex of `b`. */
export function toHex(b: Uint8Array): string {
  return NodeBuffer ? NodeBuffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : bytesToHex(b);
}

/**
 * The bytes of a lowercase, even-length hex string; undefined for anything else. Node's decoder
 * stops at the first invalid pair and accepts uppercase, so the result is re-encoded and compared:
 * equal only if every character was a lowercase hex digit.
 */
export function fromHexStrict(v: string): Uint8Array | undefined {
  if (v.length % 2 !== 0) return undefined;
  if (!NodeBuffer) {
    if (!/^[0-9a-f]*$/.test(v)) return undefined;
    return hexToBytes(v);
  }
  const b = NodeBuffer.from(v, 'hex');
  if (b.length * 2 !== v.length || b.toString('hex') !== v) return undefined;
  // A fresh Uint8Array (not a view into Node's shared pool), so wiping it touches nothing else.
  return new Uint8Array(b);
}
