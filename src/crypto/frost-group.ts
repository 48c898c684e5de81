/**
 * The prime-order groups FROST signs over, behind one small interface, in two builds:
 *
 * - `wasm` (used for signing): Ed25519 on libsodium (`libsodium-wrappers-sumo`, ISC, WebAssembly)
 *   and secp256k1 on libsecp256k1 (`tiny-secp256k1` v2, MIT, WebAssembly). Both are audited, widely
 *   deployed C libraries; this file only calls them.
 * - `noble`: the same operations on `@noble/curves`, the reference the property tests compare
 *   against (test/crypto/frost-group.test.ts) and the fallback behind the same interface.
 *
 * Scalars are bigints of noble's scalar field (`Fn`); scalar arithmetic stays on noble. Every
 * element a group hands out is in the prime-order subgroup and is never the identity: `decode`
 * refuses exactly what RFC 9591 §3.1 DeserializeElement refuses (non-canonical encodings, points
 * not on the curve, the identity, points outside the prime-order subgroup, which for Ed25519
 * includes every small-order point), and an operation whose result would be the identity throws
 * instead (for honest inputs that happens with probability ~2^-250; for adversarial ones it is a
 * refusal, as SerializeElement(identity) is in the RFC).
 */
import sodium from 'libsodium-wrappers-sumo';
import * as k1 from 'tiny-secp256k1';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { equalBytes } from '@noble/curves/utils.js';

await sodium.ready;

export type GroupName = 'ed25519' | 'secp256k1';
export type Backend = 'wasm' | 'noble';

/** A prime-order group with opaque elements `E`. */
export interface Group<E = unknown> {
  readonly name: GroupName;
  readonly backend: Backend;
  readonly Fn: IField<bigint>;
  /** RFC 9591 §3.1 DeserializeElement: throws on anything the RFC refuses. */
  decode(bytes: Uint8Array): E;
  /** RFC 9591 §3.1 SerializeElement (Ed25519: 32 bytes; secp256k1: 33-byte compressed SEC1). */
  encode(p: E): Uint8Array;
  /** s·G for a scalar 0 < s < n. */
  base(s: bigint): E;
  /** s·P for a scalar 0 < s < n. */
  mul(p: E, s: bigint): E;
  add(p: E, q: E): E;
  neg(p: E): E;
  equals(p: E, q: E): boolean;
  /** BIP340: does the point have an even y coordinate? (secp256k1 only) */
  hasEvenY(p: E): boolean;
}

function checkScalar(Fn: IField<bigint>, s: bigint): void {
  if (!Fn.isValid(s) || Fn.is0(s)) throw new Error('scalar out of range');
}


// ---------------------------------------------------------------------------------------------
// Ed25519 on libsodium. Elements are their canonical 32-byte encodings.

const edFn = ed25519.Point.Fn;
const edWasm: Group<Uint8Array> = {
  name: 'ed25519',
  backend: 'wasm',
  Fn: edFn,
  decode(b) {
    // crypto_core_ed25519_is_valid_point: canonical y (< p), on the curve, not of small order, and
    // in the prime-order subgroup (L·P = identity). The identity has small order, so it is refused.
    // It also accepts the "negative zero" encodings only for x = 0 points, which are the identity
    // and the point of order 2, both refused as small order.
    if (!(b instanceof Uint8Array) || b.length !== 32 || !sodium.crypto_core_ed25519_is_valid_point(b)) throw new Error('invalid point');
    return Uint8Array.from(b);
  },
  encode: (p) => Uint8Array.from(p),
  base(s) {
    checkScalar(edFn, s);
    return sodium.crypto_scalarmult_ed25519_base_noclamp(edFn.toBytes(s));
  },
  mul(p, s) {
    checkScalar(edFn, s);
    // noclamp: the scalar is used as given (FROST scalars are uniform mod L, not RFC 8032 keys).
    // libsodium refuses small-order inputs and an identity result; neither can occur here.
    return sodium.crypto_scalarmult_ed25519_noclamp(edFn.toBytes(s), p);
  },
  add(p, q) {
    const r = sodium.crypto_core_ed25519_add(p, q);
    if (equalBytes(r, ED_IDENTITY)) throw new Error('identity element');
    return r;
  },
  neg(p) {
    // -P = (L-1)·P.
    return sodium.crypto_scalarmult_ed25519_noclamp(edFn.toBytes(edFn.ORDER - 1n), p);
  },
  equals: equalBytes,
  hasEvenY: () => {
    throw new Error('hasEvenY is a secp256k1 operation');
  },
};
const ED_IDENTITY = Uint8Array.of(1, ...new Uint8Array(31));

// ---------------------------------------------------------------------------------------------
// secp256k1 on libsecp256k1. Elements are 65-byte uncompressed SEC1 encodings, so no operation
// pays for a square root; they are compressed only when serialized.

const k1Fn = secp256k1.Point.Fn;
const k1Fp = secp256k1.Point.Fp;
const k1Wasm: Group<Uint8Array> = {
  name: 'secp256k1',
  backend: 'wasm',
  Fn: k1Fn,
  decode(b) {
    // RFC 9591 §6.5 DeserializeElement: 33-byte compressed SEC1 only (prefix 02/03, x < p, on the
    // curve). secp256k1 has cofactor 1 and the identity has no 33-byte encoding.
    if (!(b instanceof Uint8Array) || b.length !== 33 || (b[0] !== 2 && b[0] !== 3) || !k1.isPoint(b)) throw new Error('invalid point');
    const u = k1.pointCompress(b, false);
    return u;
  },
  encode(p) {
    const out = new Uint8Array(33);
    out[0] = p[64] & 1 ? 3 : 2;
    out.set(p.subarray(1, 33), 1);
    return out;
  },
  base(s) {
    checkScalar(k1Fn, s);
    const r = k1.pointFromScalar(k1Fn.toBytes(s), false);
    if (!r) throw new Error('identity element');
    return r;
  },
  mul(p, s) {
    checkScalar(k1Fn, s);
    const r = k1.pointMultiply(p, k1Fn.toBytes(s), false);
    if (!r) throw new Error('identity element');
    return r;
  },
  add(p, q) {
    const r = k1.pointAdd(p, q, false);
    if (!r) throw new Error('identity element');
    return r;
  },
  neg(p) {
    const out = Uint8Array.from(p);
    out.set(k1Fp.toBytes(k1Fp.neg(k1Fp.fromBytes(p.subarray(33, 65)))), 33);
    return out;
  },
  equals: equalBytes,
  hasEvenY: (p) => (p[64] & 1) === 0,
};

// ---------------------------------------------------------------------------------------------
// The noble reference: the same operations on noble's points, with noble's own checks.

type NoblePoint = InstanceType<typeof ed25519.Point> | InstanceType<typeof secp256k1.Point>;
interface AnyPoint {
  add(o: AnyPoint): AnyPoint;
  negate(): AnyPoint;
  multiply(n: bigint): AnyPoint;
  equals(o: AnyPoint): boolean;
  toBytes(compressed?: boolean): Uint8Array;
  is0(): boolean;
  isTorsionFree(): boolean;
  assertValidity(): void;
  y: bigint;
}
interface AnyPointCons {
  BASE: AnyPoint;
  fromBytes(b: Uint8Array): AnyPoint;
}

function nobleGroup(name: GroupName, P: AnyPointCons, Fn: IField<bigint>, len: number): Group<NoblePoint> {
  const nonzero = (p: AnyPoint): AnyPoint => {
    if (p.is0()) throw new Error('identity element');
    return p;
  };
  const g: Group<AnyPoint> = {
    name,
    backend: 'noble',
    Fn,
    decode(b) {
      // As noble's createFROST parsePoint: decode (strict, canonical), then refuse the identity
      // and points outside the prime-order subgroup.
      if (!(b instanceof Uint8Array) || b.length !== len) throw new Error('invalid point');
      const p = P.fromBytes(b);
      p.assertValidity();
      if (p.is0() || !p.isTorsionFree()) throw new Error('invalid point');
      return p;
    },
    encode: (p) => p.toBytes(true),
    base(s) {
      checkScalar(Fn, s);
      return nonzero(P.BASE.multiply(s));
    },
    mul(p, s) {
      checkScalar(Fn, s);
      return nonzero(p.multiply(s));
    },
    add: (p, q) => nonzero(p.add(q)),
    neg: (p) => p.negate(),
    equals: (p, q) => p.equals(q),
    hasEvenY(p) {
      if (name !== 'secp256k1') throw new Error('hasEvenY is a secp256k1 operation');
      return (p.y & 1n) === 0n;
    },
  };
  return g as unknown as Group<NoblePoint>;
}

export const GROUPS: Record<Backend, Record<GroupName, Group>> = {
  wasm: { ed25519: edWasm as Group, secp256k1: k1Wasm as Group },
  noble: {
    ed25519: nobleGroup('ed25519', ed25519.Point as unknown as AnyPointCons, edFn, 32) as Group,
    secp256k1: nobleGroup('secp256k1', secp256k1.Point as unknown as AnyPointCons, k1Fn, 33) as Group,
  },
};

/**
 * The plain single-key verifiers of the same libraries, for the server's last check of an aggregate
 * signature before it returns it (src/server/coordinator.ts): libsodium's RFC 8032 Ed25519 verifier
 * (`crypto_sign_verify_detached`: canonical encodings, s < L, no small-order R or key, the cofactorless
 * equation) and libsecp256k1's BIP340 verifier (`secp256k1_schnorrsig_verify`, the BIP's reference
 * code) for 32-byte messages; a BIP340 message of another length goes to noble's verifier. Neither is
 * FROST code, so a bug in the threshold arithmetic cannot vouch for itself. Both refuse, never throw.
 * test/crypto/frost-group.test.ts holds them to noble's verifiers on honest and tampered signatures.
 */
export function verifyPlain(scheme: 'ed25519' | 'secp256k1-schnorr', publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    if (scheme === 'ed25519') return sodium.crypto_sign_verify_detached(signature, message, publicKey);
    return message.length === 32 ? k1.verifySchnorr(message, publicKey, signature) : schnorr.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
