/**
 * Shared plumbing for the DKLs23 core: encodings, domain-separated hashing, PRG, bit vectors and
 * boundary validation. Every arithmetic operation is delegated to @noble/curves (secp256k1 Point and
 * its scalar field Point.Fn, `mapHashToField`), every hash to @noble/hashes and the PRG to
 * @noble/ciphers ChaCha20. Nothing here implements a field, curve, hash or cipher.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { mapHashToField } from '@noble/curves/abstract/modular.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { hexToBytes, concatBytes, randomBytes as nobleRandomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { fromHexStrict, toHex as bytesToHex } from '../hex.ts';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { ProtocolError } from '../types.ts';

export { bytesToHex, hexToBytes, concatBytes, utf8ToBytes };

export const Point = secp256k1.Point;
export type Point = InstanceType<typeof secp256k1.Point>;
/** The scalar field Z_q of secp256k1 (q = group order), from noble. */
export const Fn = Point.Fn;
export const Q = Fn.ORDER;

/** Source of randomness; defaults to noble's CSPRNG (crypto.getRandomValues). Tests may inject one. */
export type Rng = (len: number) => Uint8Array;
export const defaultRng: Rng = (len) => nobleRandomBytes(len);

const DST = utf8ToBytes('fleetkey/dkls23/v1');

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, false);
  return b;
}
export const be32 = u32;

/** Unambiguous framing: every part length-prefixed, tag included, global DST prefix. */
function frame(tag: string, parts: Uint8Array[]): Uint8Array {
  const t = utf8ToBytes(tag);
  const chunks: Uint8Array[] = [u32(DST.length), DST, u32(t.length), t];
  for (const p of parts) chunks.push(u32(p.length), p);
  return concatBytes(...chunks);
}

/** Domain-separated SHA-256 (random oracle for commitments, Fiat-Shamir, key derivation). */
export function H(tag: string, ...parts: Uint8Array[]): Uint8Array {
  return sha256(frame(tag, parts));
}

/**
 * SHA-256 state after absorbing the framed (tag, parts), to be `clone()`d and extended with a
 * fixed-length suffix per query (many random-oracle queries under one prefix, e.g. Fischlin's
 * proof-of-work search). Callers must append suffixes of one fixed length per tag.
 */
export function framedHasher(tag: string, ...parts: Uint8Array[]): ReturnType<typeof sha256.create> {
  return sha256.create().update(frame(tag, parts));
}

/** Random oracle onto Z_q: SHA-512 then noble's `mapHashToField` (FIPS 186-5 A.4.1-style, bias < 2^-128). */
export function hashToScalar(tag: string, ...parts: Uint8Array[]): bigint {
  return Fn.fromBytes(mapHashToField(sha512(frame(tag, parts)), Q));
}

/**
 * `count` independent random-oracle scalars from one SHAKE256 call: each is 48 bytes (384 bits)
 * reduced mod q by noble's `Fn.create` (statistical distance < 2^-128 from uniform, the
 * RFC 9380 §5 hash_to_field recipe with L = 48). Used on the hot path of the OT extension.
 */
export function hashToScalars(tag: string, count: number, ...parts: Uint8Array[]): bigint[] {
  const out = shake256(frame(tag, parts), { dkLen: 48 * count });
  const res: bigint[] = new Array(count);
  for (let i = 0; i < count; i++) res[i] = Fn.create(bytesToNumberBE(out.subarray(48 * i, 48 * i + 48)));
  out.fill(0);
  return res;
}

/** PRG: ChaCha20 keystream (RFC 8439) under a key derived from `seed` and a domain/nonce. */
export function prg(seed: Uint8Array, len: number, tag: string, ...parts: Uint8Array[]): Uint8Array {
  const key = H('prg-key/' + tag, seed, ...parts);
  const out = chacha20(key, new Uint8Array(12), new Uint8Array(len));
  key.fill(0);
  return out;
}

/**
 * Hot-path random oracle onto Z_q^count for many short fixed-length inputs under one prefix (the
 * random-OT "randomize" hash of the OT extension, KOS Fig. 10 / DKLs18 Protocol 9). Hash-then-expand:
 * the framed (tag, count, prefix) is zero-padded to a whole number of SHA-256 blocks and absorbed once;
 * each query clones that state and appends its parts (fixed length per instance, ≤ 55 bytes so a query
 * costs one compression); the 32-byte digest keys a ChaCha20 keystream (RFC 8439) of 32 bytes per
 * scalar, each reduced mod q by noble's `Fn.create`. A uniform 256-bit value reduced mod q is within
 * (2^256 − q)/2^256 < 2^-127 of uniform on Z_q (secp256k1: 2^256 − q < 2^129), the same order as the
 * 2^-128 of RFC 9380's L = 48; the DKLs23 implementations we read reduce 32-byte hashes the same way.
 */
export class ScalarOracle {
  private base: ReturnType<typeof sha256.create>;
  private zero: Uint8Array;
  private nonce = new Uint8Array(12);
  // Scratch buffers reused across queries (no per-query allocation); wiped after each query.
  private key = new Uint8Array(32);
  private buf: Uint8Array;
  constructor(tag: string, readonly count: number, ...prefix: Uint8Array[]) {
    const head = frame('oracle/' + tag, [u32(count), ...prefix]);
    const padded = new Uint8Array(Math.ceil(head.length / 64) * 64);
    padded.set(head);
    this.base = sha256.create().update(padded);
    this.zero = new Uint8Array(32 * count);
    this.buf = new Uint8Array(32 * count);
  }
  /** Writes the `count` scalars of query `parts` into out[0..count). */
  scalarsInto(out: bigint[], ...parts: Uint8Array[]): void {
    const h = this.base.clone();
    for (const p of parts) h.update(p);
    const key = this.key;
    h.digestInto(key);
    const buf = chacha20(key, this.nonce, this.zero, this.buf);
    key.fill(0);
    for (let i = 0; i < this.count; i++) out[i] = Fn.create(beToBigint(buf.subarray(32 * i, 32 * i + 32)));
    buf.fill(0);
  }
}

// ---------------------------------------------------------------- scalars and points

/**
 * Big-endian bytes ↔ non-negative integer, 8 bytes at a time (noble's bytesToNumberBE /
 * numberToBytesBE go through hex strings; these are the same encodings, used on the OT hot path).
 * Integer encoding only: every reduction and range check stays with noble (Fn.create / Fn.isValid).
 */
export function beToBigint(b: Uint8Array): bigint {
  if (b.length % 8 !== 0) return bytesToNumberBE(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let x = 0n;
  for (let i = 0; i < b.length; i += 8) x = (x << 64n) | dv.getBigUint64(i, false);
  return x;
}
const M64 = (1n << 64n) - 1n;
/** 32-byte big-endian encoding of a scalar (x must already be in [0, q)). */
export function scalarToBytesFast(x: bigint, out = new Uint8Array(32), off = 0): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset + off, 32);
  for (let i = 24; i >= 0; i -= 8) {
    dv.setBigUint64(i, x & M64, false);
    x >>= 64n;
  }
  return out;
}
/** Parse a canonical 32-byte scalar; undefined if ≥ q (range check by noble's Fn.isValid). */
export function scalarFromBytesFast(b: Uint8Array): bigint | undefined {
  const x = beToBigint(b);
  return Fn.isValid(x) ? x : undefined;
}

export function scalarToBytes(s: bigint): Uint8Array {
  return Fn.toBytes(s);
}
// Point multiplications run on libsecp256k1 (`tiny-secp256k1` v2, MIT, WebAssembly) through the
// secp256k1 group of ../frost-group.ts once `./fast.ts` is loaded (the protocol's entry, ./index.ts,
// loads it; the signer and server use that): `secp256k1_ec_pubkey_create` (k·G) and
// `secp256k1_ec_pubkey_tweak_mul` (k·P) are constant-time in the scalar, and each is ≈ 10× faster here
// than noble's BigInt multiplication. The results come back as 65-byte uncompressed SEC1 and are
// decoded by noble's `Point.fromBytes`, which re-checks the curve equation, so every point the
// protocol handles is still a noble `Point` and every other operation (addition, equality,
// encoding) is noble's. Without ./fast.ts (the SDK's public-key derivation, which a browser or an edge
// runtime loads: no WebAssembly, no top-level await there) the same functions run on noble, which
// `nobleMul` below keeps as the reference that test/crypto/dkls23/group.test.ts compares against.
/** The three calls used of ../frost-group.ts's `Group<Uint8Array>` (SEC1 bytes in and out), named here so this file imports nothing of it. */
export interface PointMul {
  decode(bytes: Uint8Array): Uint8Array;
  base(s: bigint): Uint8Array;
  mul(p: Uint8Array, s: bigint): Uint8Array;
}
let k1: PointMul | undefined;
/** Installs libsecp256k1's group for the multiplications below (./fast.ts calls it once). */
export function useWasmGroup(g: PointMul): void {
  k1 = g;
}
/** Which arithmetic the multiplications run on, for tests and benchmarks. */
export function arithmetic(): 'libsecp256k1' | 'noble' {
  return k1 ? 'libsecp256k1' : 'noble';
}
const fromWasm = (u: Uint8Array): Point => Point.fromBytes(u);

/** k·G for secret k (constant-time on either path); k = 0 gives the identity. */
export function mulG(k: bigint): Point {
  if (k === 0n) return Point.ZERO;
  return k1 ? fromWasm(k1.base(k)) : Point.BASE.multiply(k);
}
/** k·P for secret k (constant-time on either path); k = 0 or P = O gives the identity. */
export function mulSecret(P: Point, k: bigint): Point {
  if (k === 0n || P.is0()) return Point.ZERO;
  return k1 ? fromWasm(k1.mul(P.toBytes(false), k)) : P.multiply(k);
}
/**
 * k·P for public k. The same constant-time libsecp256k1 call as `mulSecret` (faster here than
 * noble's variable-time `multiplyUnsafe`); kept as its own name so call sites say which scalars are public.
 */
export function mulPublic(P: Point, k: bigint): Point {
  return k1 ? mulSecret(P, k) : P.multiplyUnsafe(k);
}
/** The noble multiplications the functions above replaced: the reference of the property tests. */
export const nobleMul = {
  mulG: (k: bigint): Point => (k === 0n ? Point.ZERO : Point.BASE.multiply(k)),
  mulSecret: (P: Point, k: bigint): Point => (k === 0n ? Point.ZERO : P.multiply(k)),
  mulPublic: (P: Point, k: bigint): Point => P.multiplyUnsafe(k),
};
export function pointToHex(P: Point): string {
  return bytesToHex(P.toBytes(true));
}
export function randomScalar(rng: Rng): bigint {
  // 48 bytes + mapHashToField: negligible bias, never 0.
  const b = rng(48);
  const s = Fn.fromBytes(mapHashToField(b, Q));
  b.fill(0);
  return s;
}
export function lagrangeAtZero(i: number, set: number[]): bigint {
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const j of set) {
    if (j === i) continue;
    num = Fn.mul(num, BigInt(j));
    den = Fn.mul(den, Fn.sub(BigInt(j), BigInt(i)));
  }
  return Fn.div(num, den);
}
/** Evaluate a polynomial (coefficients low to high) at x. */
export function polyEval(coeffs: bigint[], x: number): bigint {
  const X = BigInt(x);
  let acc = Fn.ZERO;
  for (let k = coeffs.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, X), coeffs[k]);
  return acc;
}
/** Evaluate a Feldman commitment (points of coefficients) at x. */
export function commitEval(C: Point[], x: number): Point {
  const X = BigInt(x);
  let acc = Point.ZERO;
  let pow = 1n;
  for (const c of C) {
    acc = acc.add(mulPublic(c, pow));
    pow = Fn.mul(pow, X);
  }
  return acc;
}

// ---------------------------------------------------------------- boundary parsing (culprit-aware)

function bad(what: string, culprit?: number): never {
  throw new ProtocolError(`invalid ${what}`, culprit);
}
export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function getField(o: unknown, key: string, culprit?: number): unknown {
  if (!isObj(o) || !(key in o)) bad(`message: missing ${key}`, culprit);
  return (o as Record<string, unknown>)[key];
}
export function parseBytes(v: unknown, len: number | undefined, what: string, culprit?: number): Uint8Array {
  if (typeof v !== 'string') bad(what, culprit);
  const b = fromHexStrict(v);
  if (b === undefined) bad(what, culprit);
  if (len !== undefined && b.length !== len) bad(`${what} length`, culprit);
  return b;
}
/** Scalar in [0, q) (allowZero) or [1, q). Canonical 32-byte big-endian hex only. */
export function parseScalar(v: unknown, what: string, culprit?: number, allowZero = true): bigint {
  const b = parseBytes(v, 32, what, culprit);
  let s: bigint;
  try {
    s = Fn.fromBytes(b); // noble rejects values >= q
  } catch {
    bad(`${what} (out of range)`, culprit);
  }
  if (!allowZero && s === 0n) bad(`${what} (zero)`, culprit);
  return s;
}
/** Compressed SEC1 point, on the curve (noble checks), never the identity. */
export function parsePoint(v: unknown, what: string, culprit?: number): Point {
  const b = parseBytes(v, 33, what, culprit);
  let P: Point;
  try {
    // libsecp256k1 decompresses (02/03 prefix, x < p, on the curve: the square root noble would
    // compute in BigInt), then noble's fromBytes re-checks the uncompressed point.
    P = k1 ? fromWasm(k1.decode(b)) : Point.fromBytes(b);
    P.assertValidity();
  } catch {
    bad(`${what} (not a curve point)`, culprit);
  }
  if (P.is0()) bad(`${what} (identity)`, culprit);
  return P;
}
export function parseArray(v: unknown, len: number, what: string, culprit?: number): unknown[] {
  if (!Array.isArray(v) || v.length !== len) bad(`${what} (array length)`, culprit);
  return v;
}

// ---------------------------------------------------------------- bits (LSB-first within bytes)

export function getBit(v: Uint8Array, j: number): number {
  return (v[j >> 3] >> (j & 7)) & 1;
}
export function xorInto(dst: Uint8Array, src: Uint8Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] ^= src[i];
}
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
/** Wipe byte buffers holding secrets (bigints cannot be wiped in JS; see README). */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
