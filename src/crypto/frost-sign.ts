/**
 * FROST signing, RFC 9591 §4 (helper functions) and §5 (round one, round two, aggregation, share
 * verification), step by step over a `Group` (src/crypto/frost-group.ts): the libsodium /
 * libsecp256k1 WebAssembly groups for speed, or noble's as the reference. Hashing and scalar
 * arithmetic are noble's.
 *
 * Three ciphersuites:
 * - `ed25519`: FROST(Ed25519, SHA-512), RFC 9591 §6.1.
 * - `secp256k1`: FROST(secp256k1, SHA-256), RFC 9591 §6.5.
 * - `secp256k1-schnorr`: "FROST-secp256k1-SHA256-TR-v1", the BIP340 variant of frost-rs and of
 *   noble's `schnorr_FROST`, byte for byte: the group key is made even (every share and verifying
 *   share negated with it), the challenge is BIP340's tagged hash over x-only R and PK, the
 *   signer negates its nonces when the group commitment R has odd y, and the signature is
 *   x(R) || z. Nonces and commitments are exactly RFC 9591's, so one commitment serves all suites.
 *
 * This module signs with keys the DKG made; key generation and refresh stay in src/crypto/frost.ts.
 */
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { schnorr, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { bytesToNumberLE, equalBytes } from '@noble/curves/utils.js';
import { GROUPS, type Backend, type Group } from './frost-group.ts';

export type SigningSuiteName = 'ed25519' | 'secp256k1' | 'secp256k1-schnorr';

interface Suite {
  name: SigningSuiteName;
  group: Group;
  /** H1, H3 (and H2 unless `challenge` is set) of RFC 9591 §6: hash to a scalar with a tag. */
  hashToScalar(tag: string, m: Uint8Array): bigint;
  /** H4, H5: hash to bytes with a tag. */
  hashBytes(tag: string, m: Uint8Array): Uint8Array;
  /** RFC 9591 §4.6 compute_challenge (BIP340's for the TR suite). */
  challenge(R: Uint8Array, PK: Uint8Array, msg: Uint8Array): bigint;
  taproot: boolean;
}

function edSuite(backend: Backend): Suite {
  const ctx = 'FROST-ED25519-SHA512-v1';
  const Fn = GROUPS[backend].ed25519.Fn;
  const H = (m: Uint8Array) => Fn.create(bytesToNumberLE(sha512(m)));
  return {
    name: 'ed25519',
    group: GROUPS[backend].ed25519,
    hashToScalar: (tag, m) => H(concatBytes(utf8ToBytes(ctx + tag), m)),
    hashBytes: (tag, m) => sha512(concatBytes(utf8ToBytes(ctx + tag), m)),
    // RFC 9591 §6.1 H2 is undecorated SHA-512, so signatures are RFC 8032 Ed25519 signatures.
    challenge: (R, PK, msg) => H(concatBytes(R, PK, msg)),
    taproot: false,
  };
}

function k1Suite(backend: Backend, taproot: boolean): Suite {
  const ctx = taproot ? 'FROST-secp256k1-SHA256-TR-v1' : 'FROST-secp256k1-SHA256-v1';
  // RFC 9591 §6.5: hash_to_field from RFC 9380 with expand_message_xmd(SHA-256), DST = ctx || tag.
  const h2s = (tag: string, m: Uint8Array) => secp256k1_hasher.hashToScalar(m, { DST: utf8ToBytes(ctx + tag) });
  const Fn = GROUPS[backend].secp256k1.Fn;
  return {
    name: taproot ? 'secp256k1-schnorr' : 'secp256k1',
    group: GROUPS[backend].secp256k1,
    hashToScalar: h2s,
    hashBytes: (tag, m) => sha256(concatBytes(utf8ToBytes(ctx + tag), m)),
    challenge: taproot
      ? // BIP340: int(hash_BIP0340/challenge(bytes(R) || bytes(P) || m)) mod n, x-only R and P.
        (R, PK, msg) => Fn.create(BigInt('0x' + toHex(schnorr.utils.taggedHash('BIP0340/challenge', R.subarray(1), PK.subarray(1), msg))))
      : (R, PK, msg) => h2s('chal', concatBytes(R, PK, msg)),
    taproot,
  };
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

const SUITES: Record<Backend, Record<SigningSuiteName, Suite>> = {
  wasm: { ed25519: edSuite('wasm'), secp256k1: k1Suite('wasm', false), 'secp256k1-schnorr': k1Suite('wasm', true) },
  noble: { ed25519: edSuite('noble'), secp256k1: k1Suite('noble', false), 'secp256k1-schnorr': k1Suite('noble', true) },
};

export function signingSuite(name: SigningSuiteName, backend: Backend = 'wasm'): Suite {
  return SUITES[backend][name];
}

/** One participant's entry in the commitment list: its identifier (party index) and encodings. */
export interface Commitment {
  id: number;
  hiding: Uint8Array;
  binding: Uint8Array;
}

/** The public data signing needs: the group key as stored (compressed), threshold and party count. */
export interface SigningPublic {
  groupKey: Uint8Array;
  min: number;
  max: number;
}

// ---------------------------------------------------------------------------------------------
// RFC 9591 §4 helpers

function scalarId(s: Suite, id: number): bigint {
  const x = BigInt(id);
  if (!Number.isSafeInteger(id) || id < 1 || !s.group.Fn.isValid(x)) throw new Error(`invalid identifier ${id}`);
  return x;
}

/** §4.1 nonce_generate(secret): H3(random_bytes(32) || SerializeScalar(secret)). */
function nonceGenerate(s: Suite, secret: bigint): bigint {
  return s.hashToScalar('nonce', concatBytes(randomBytes(32), s.group.Fn.toBytes(secret)));
}

/** §4.2 derive_interpolating_value(L, x_i). */
function lagrange(s: Suite, ids: bigint[], xi: bigint): bigint {
  const Fn = s.group.Fn;
  if (!ids.includes(xi)) throw new Error('invalid parameters: x_i not in L');
  if (new Set(ids).size !== ids.length) throw new Error('invalid parameters: duplicate identifiers');
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const xj of ids) {
    if (xj === xi) continue;
    num = Fn.mul(num, xj);
    den = Fn.mul(den, Fn.sub(xj, xi));
  }
  return Fn.div(num, den);
}

interface Parsed<E> {
  id: bigint;
  hiding: E;
  binding: E;
  encHiding: Uint8Array;
  encBinding: Uint8Array;
}

/**
 * Decodes (DeserializeElement) and sorts the commitment list by identifier (§5.2, §5.3). `own`: the
 * signer's entry, already known as the points d·G and e·G whose encodings equal the list's bytes
 * (checked by the caller), so it is not decoded again.
 */
function parseList<E>(s: Suite, list: Commitment[], own?: { id: number; hiding: E; binding: E }): Parsed<E>[] {
  const g = s.group as Group<E>;
  const out = list.map((c) => {
    if (own && c.id === own.id) return { id: scalarId(s, c.id), hiding: own.hiding, binding: own.binding, encHiding: c.hiding, encBinding: c.binding };
    const hiding = g.decode(c.hiding);
    const binding = g.decode(c.binding);
    return { id: scalarId(s, c.id), hiding, binding, encHiding: g.encode(hiding), encBinding: g.encode(binding) };
  });
  out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 1; i < out.length; i++) if (out[i].id === out[i - 1].id) throw new Error('duplicate identifier in commitment list');
  return out;
}

/**
 * The group key as signing sees it: decoded, and for the TR suite made even (with `negate` telling
 * the caller to negate the signing share and verifying shares alike, as noble's adjustPublic does).
 */
function groupKey<E>(s: Suite, pub: SigningPublic): { PK: E; encPK: Uint8Array; negate: boolean } {
  // A wallet's group key is decoded once per suite and backend (a pure function of its bytes).
  const key = `${s.name}|${s.group.backend}|${toHex(pub.groupKey)}`;
  const hit = GROUP_KEYS.get(key);
  if (hit) return hit as { PK: E; encPK: Uint8Array; negate: boolean };
  const g = s.group as Group<E>;
  let PK = g.decode(pub.groupKey);
  let negate = false;
  if (s.taproot && !g.hasEvenY(PK)) {
    PK = g.neg(PK);
    negate = true;
  }
  const out = { PK, encPK: g.encode(PK), negate };
  if (GROUP_KEYS.size >= 1024) GROUP_KEYS.clear();
  GROUP_KEYS.set(key, out);
  return out;
}
const GROUP_KEYS = new Map<string, { PK: unknown; encPK: Uint8Array; negate: boolean }>();

/**
 * §4.4 compute_binding_factors, §4.5 compute_group_commitment, §4.6 compute_challenge. The rho
 * input is SerializeElement(PK) || H4(msg) || H5(encode_group_commitment_list(list)).
 */
function prepare<E>(s: Suite, encPK: Uint8Array, PK: E, list: Parsed<E>[], msg: Uint8Array) {
  const g = s.group as Group<E>;
  const Fn = g.Fn;
  const encoded = concatBytes(...list.flatMap((c) => [Fn.toBytes(c.id), c.encHiding, c.encBinding]));
  const rhoPrefix = concatBytes(encPK, s.hashBytes('msg', msg), s.hashBytes('com', encoded));
  const rho = new Map<bigint, bigint>();
  for (const c of list) rho.set(c.id, s.hashToScalar('rho', concatBytes(rhoPrefix, Fn.toBytes(c.id))));
  let R: E | undefined;
  for (const c of list) {
    const term = g.add(c.hiding, g.mul(c.binding, rho.get(c.id)!));
    R = R === undefined ? term : g.add(R, term);
  }
  const encR = g.encode(R!);
  const c = s.challenge(encR, encPK, msg);
  void PK;
  return { rho, R: R!, encR, c, ids: list.map((x) => x.id) };
}

function checkCount(pub: SigningPublic, n: number): void {
  if (n < pub.min || n > pub.max) throw new Error(`commitment list has ${n} entries, want ${pub.min}..${pub.max}`);
}

// ---------------------------------------------------------------------------------------------
// §5.1 round one

/** §5.1 commit(sk_i): two fresh nonces and their commitments (SerializeElement of nonce·G). */
export function commit(s: Suite, signingShare: Uint8Array): { hiding: Uint8Array; binding: Uint8Array; commitment: { hiding: Uint8Array; binding: Uint8Array } } {
  const g = s.group;
  const sk = g.Fn.fromBytes(signingShare);
  const d = nonceGenerate(s, sk);
  const e = nonceGenerate(s, sk);
  return {
    hiding: g.Fn.toBytes(d),
    binding: g.Fn.toBytes(e),
    commitment: { hiding: g.encode(g.base(d)), binding: g.encode(g.base(e)) },
  };
}

// ---------------------------------------------------------------------------------------------
// §5.2 round two

/**
 * §5.2 sign(identifier, sk_i, group_public_key, nonce_i, msg, commitment_list). Refuses used
 * (zeroed) nonces and a commitment list whose entry for this signer is not its own commitment, and
 * zeroes the nonce bytes after use, as noble does.
 */
export function signShare(s: Suite, self: number, signingShare: Uint8Array, pub: SigningPublic, nonces: { hiding: Uint8Array; binding: Uint8Array }, list: Commitment[], msg: Uint8Array): Uint8Array {
  const g = s.group;
  const Fn = g.Fn;
  checkCount(pub, list.length);
  let d = Fn.fromBytes(nonces.hiding);
  let e = Fn.fromBytes(nonces.binding);
  if (Fn.is0(d) || Fn.is0(e)) throw new Error('signing nonces already used');
  const mine = list.find((c) => c.id === self);
  if (!mine) throw new Error('missing signer commitment');
  // The list's entry must be SerializeElement(d·G), SerializeElement(e·G): encodings are canonical,
  // so comparing bytes is comparing points (and refuses any other encoding of them).
  const D = g.base(d);
  const E = g.base(e);
  if (!equalBytes(g.encode(D), mine.hiding) || !equalBytes(g.encode(E), mine.binding)) throw new Error('incorrect signer commitment');
  const parsed = parseList(s, list, { id: self, hiding: D, binding: E });
  const { PK, encPK, negate } = groupKey(s, pub);
  let sk = Fn.fromBytes(signingShare);
  if (negate) sk = Fn.neg(sk);
  const { rho, R, c, ids } = prepare(s, encPK, PK, parsed, msg);
  if (s.taproot && !g.hasEvenY(R)) {
    // BIP340 signs with the even-y R: every signer negates its nonces.
    d = Fn.neg(d);
    e = Fn.neg(e);
  }
  const x = scalarId(s, self);
  const lambda = lagrange(s, ids, x);
  // z_i = d_i + e_i·rho_i + lambda_i·sk_i·c
  const z = Fn.add(Fn.add(d, Fn.mul(e, rho.get(x)!)), Fn.mul(Fn.mul(lambda, sk), c));
  nonces.hiding.fill(0);
  nonces.binding.fill(0);
  return Fn.toBytes(z);
}

// ---------------------------------------------------------------------------------------------
// §5.3 aggregate, §5.4 verify_signature_share

/** The signature encoding: R || z (RFC 9591 Appendix A), or x(R) || z for BIP340. */
function encodeSignature(s: Suite, encR: Uint8Array, z: bigint): Uint8Array {
  return concatBytes(s.taproot ? encR.subarray(1) : encR, s.group.Fn.toBytes(z));
}

/**
 * §5.4 verify_signature_share: z_i·G == (D_i + rho_i·E_i) + (c·lambda_i)·PK_i, with the TR
 * suite's negations (PK_i with the group key; the commitment share with R).
 */
export function verifyShare(s: Suite, pub: SigningPublic, verifyingShare: Uint8Array, list: Commitment[], msg: Uint8Array, id: number, share: Uint8Array): boolean {
  try {
    const g = s.group;
    const Fn = g.Fn;
    checkCount(pub, list.length);
    const parsed = parseList(s, list);
    const x = scalarId(s, id);
    const me = parsed.find((c) => c.id === x);
    if (!me) return false;
    const { PK, encPK, negate } = groupKey(s, pub);
    let Y = g.decode(verifyingShare);
    if (negate) Y = g.neg(Y);
    const { rho, R, c, ids } = prepare(s, encPK, PK, parsed, msg);
    let comm = g.add(me.hiding, g.mul(me.binding, rho.get(x)!));
    if (s.taproot && !g.hasEvenY(R)) comm = g.neg(comm);
    const z = Fn.fromBytes(share);
    const l = g.base(z);
    const r = g.add(comm, g.mul(Y, Fn.mul(c, lagrange(s, ids, x))));
    return g.equals(l, r);
  } catch {
    return false;
  }
}

export class AggregateError extends Error {
  constructor(
    message: string,
    readonly cheaters: number[],
  ) {
    super(message);
  }
}

/**
 * §5.3 aggregate: z = Σ z_i, signature (R, z). Before returning, the signature is checked: with
 * `verify` (a plain RFC 8032 / BIP340 verifier: not FROST code) when given, else with the Schnorr
 * equation z·G == R' + c·PK (R' = R made even for BIP340); when the check fails, each share is
 * checked alone (§5.4) and the cheaters are named.
 */
export function aggregate(
  s: Suite,
  pub: SigningPublic,
  verifyingShares: Map<number, Uint8Array>,
  list: Commitment[],
  msg: Uint8Array,
  shares: Map<number, Uint8Array>,
  verify?: (signature: Uint8Array) => boolean,
): Uint8Array {
  const g = s.group;
  const Fn = g.Fn;
  checkCount(pub, list.length);
  if (shares.size !== list.length) throw new AggregateError('aggregation failed: one share per commitment', []);
  for (const c of list) if (!shares.has(c.id) || !verifyingShares.has(c.id)) throw new AggregateError('aggregation failed: missing share', []);
  const parsed = parseList(s, list);
  const { PK, encPK } = groupKey(s, pub);
  const { R, encR, c } = prepare(s, encPK, PK, parsed, msg);
  let z = Fn.ZERO;
  for (const c2 of list) z = Fn.add(z, Fn.fromBytes(shares.get(c2.id)!));
  let ok = false;
  let signature: Uint8Array | undefined;
  try {
    signature = encodeSignature(s, encR, z);
    if (verify) ok = verify(signature);
    else {
      const Reven = s.taproot && !g.hasEvenY(R) ? g.neg(R) : R;
      ok = g.equals(g.base(z), g.add(Reven, g.mul(PK, c)));
    }
  } catch {
    ok = false;
  }
  if (!ok || !signature) {
    const cheaters = list.map((x) => x.id).filter((id) => !verifyShare(s, pub, verifyingShares.get(id)!, list, msg, id, shares.get(id)!));
    throw new AggregateError('aggregation failed', cheaters.sort((a, b) => a - b));
  }
  return signature;
}
