/**
 * The plaintext of a sealed direct message (envelope.ts): a protocol body in a compact binary form.
 *
 * Protocol bodies are JSON whose bulk is lowercase hex (a DKLs23 signing sends ≈ 53 KB of OT
 * extension and RVOLE data per ordered pair; as hex JSON, then hex again as ciphertext, that was
 * ≈ 214 KB on the wire). Here every lowercase, even-length hex string of at least `MIN_BLOB_BYTES`
 * bytes travels as raw bytes; everything else stays JSON:
 *
 *   packed = 0x01 (format) ‖ u32 n ‖ u32 len_0 … u32 len_{n−1} ‖ u32 s ‖ skeleton (s bytes, UTF-8 JSON) ‖ blob_0 ‖ … ‖ blob_{n−1}
 *
 * The skeleton is the body with every string tagged by its first character: `'` + the string
 * itself, or `#` + the decimal index of the blob that holds it. Decoding rebuilds exactly the body
 * that was packed (a blob comes back as the lowercase hex it was made from), and refuses anything
 * else: another format byte, lengths that do not add up to the input, an untagged string, a blob
 * index that is not canonical decimal, out of range, or used twice, or a blob left unused. This is a
 * transport encoding only: the protocol code still parses and checks every field of the body it
 * gets back, and the AEAD (XChaCha20-Poly1305, with the session, kind, round and both node ids as
 * associated data) covers the packed bytes exactly as it covered the JSON before.
 */
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { fromHexStrict, toHex } from '../crypto/hex.ts';
import type { Json } from '../crypto/types.ts';

const FORMAT = 1;
/** Hex strings of at least this many bytes become blobs (shorter ones cost less as text). */
export const MIN_BLOB_BYTES = 16;
const INDEX = /^(?:0|[1-9][0-9]{0,5})$/;

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

export function packBody(body: Json): Uint8Array {
  const blobs: Uint8Array[] = [];
  const skeleton = JSON.stringify(body, (_k, v: unknown) => {
    if (typeof v !== 'string') return v;
    const b = v.length >= 2 * MIN_BLOB_BYTES ? fromHexStrict(v) : undefined;
    if (b !== undefined) {
      blobs.push(b);
      return `#${blobs.length - 1}`;
    }
    return `'${v}`;
  });
  if (skeleton === undefined) throw new Error('packBody: body is not JSON');
  const s = utf8ToBytes(skeleton);
  return concatBytes(Uint8Array.of(FORMAT), u32(blobs.length), ...blobs.map((b) => u32(b.length)), u32(s.length), s, ...blobs);
}

/** The inverse of `packBody`; throws on any input `packBody` cannot have produced. */
export function unpackBody(packed: Uint8Array): Json {
  const dv = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let at = 0;
  const take = (len: number): Uint8Array => {
    if (!Number.isSafeInteger(len) || len < 0 || at + len > packed.length) throw new Error('packed body: truncated');
    const out = packed.subarray(at, at + len);
    at += len;
    return out;
  };
  const readU32 = () => dv.getUint32(take(4).byteOffset - packed.byteOffset, false);
  if (take(1)[0] !== FORMAT) throw new Error('packed body: unknown format');
  const n = readU32();
  if (n * 4 > packed.length) throw new Error('packed body: truncated');
  const lens: number[] = [];
  for (let i = 0; i < n; i++) lens.push(readU32());
  const skeleton = new TextDecoder('utf-8', { fatal: true }).decode(take(readU32()));
  const blobs = lens.map((len) => {
    if (len < MIN_BLOB_BYTES) throw new Error('packed body: short blob');
    return take(len);
  });
  if (at !== packed.length) throw new Error('packed body: trailing bytes');
  const used = new Uint8Array(n);
  const body = JSON.parse(skeleton, (_k, v: unknown) => {
    if (typeof v !== 'string') return v;
    if (v[0] === "'") return v.slice(1);
    const idx = v.slice(1);
    if (v[0] !== '#' || !INDEX.test(idx) || Number(idx) >= n || used[Number(idx)]) throw new Error('packed body: bad string tag');
    used[Number(idx)] = 1;
    return toHex(blobs[Number(idx)]);
  }) as Json;
  if (used.some((u) => u === 0)) throw new Error('packed body: unused blob');
  return body;
}
