/**
 * Fleet child keys for the FROST schemes: one root key from one DKG, and a public, non-hardened
 * tweak per device index, so a device wallet needs no DKG and every signer derives its child
 * share locally when it signs. The scheme, its choices and their consequences are in
 * derive.README.md; in short:
 *
 * - chain code: `sha256("fleetkey/frost-chain-code/v1" ‖ transcript)` where the transcript is the
 *   canonical encoding of every party's DKG round-1 VSS commitment (`frostDkgTranscript`);
 * - `secp256k1-schnorr`: BIP32 CKDpub on the BIP32 key K (root: K = 02‖x(P), P the BIP341
 *   internal key), K_i = K + IL·G, c_i = IR with IL‖IR = HMAC-SHA512(c, ser_P(K) ‖ ser_32(i)),
 *   then the output key Q_i = BIP341 TapTweak(K_i) (empty merkle root), as the DKG does for the root;
 * - `ed25519`: fleetkey's additive tweak (not BIP32-Ed25519, not SLIP-10):
 *   t_i = int_LE(HMAC-SHA512(c, A ‖ ser_32(i))) mod L, A_i = A + t_i·B, c_i = IR.
 *
 * Each party's share and the FROST public package move by the same public affine map, so the
 * derived shares are a Shamir sharing of the child key (Lagrange weights sum to 1) and noble's
 * `signShare` / `aggregate` produce ordinary RFC 8032 / BIP340 signatures under the child key.
 * All curve and field arithmetic is noble's (`Point`, `Fn`, `normalizeZ`); hashing is
 * @noble/hashes. Nothing here implements a primitive.
 */
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST } from '@noble/curves/secp256k1.js';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { bytesToNumberBE, bytesToNumberLE, concatBytes } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { ProtocolError, type GroupPublic, type Json, type PartyIndex, type SecretShare } from './types.ts';

export type DerivableScheme = 'ed25519' | 'secp256k1-schnorr';

/** Non-hardened indexes only: 0 ≤ i < 2^31 (BIP32; hardened derivation needs the whole secret). */
export const HARDENED_OFFSET = 0x80000000;

const CHAIN_CODE_DOMAIN = utf8ToBytes('fleetkey/frost-chain-code/v1');

const SecpPoint = schnorr.Point;
type SecpPt = InstanceType<typeof SecpPoint>;
const EdPoint = ed25519.Point;
type EdPt = InstanceType<typeof EdPoint>;

// ---------------------------------------------------------------------------------------------
// Chain code

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

/**
 * Canonical DKG round-1 transcript: scheme name, then for every party in ascending index order
 * its index and its VSS commitment (t points, each length-prefixed). Every party, and the
 * coordinator that relayed round 1, computes the same bytes. Proofs of knowledge are left out:
 * they add no entropy the commitments lack and are randomized per party.
 */
export function frostDkgTranscript(scheme: DerivableScheme, commitments: ReadonlyMap<PartyIndex, readonly Uint8Array[]>): Uint8Array {
  checkScheme(scheme);
  const parties = [...commitments.keys()].sort((a, b) => a - b);
  if (parties.length < 1) throw new ProtocolError('derive: empty DKG transcript');
  const name = utf8ToBytes(scheme);
  const parts: Uint8Array[] = [Uint8Array.of(name.length), name, u32(parties.length)];
  let t: number | undefined;
  for (const p of parties) {
    if (!Number.isSafeInteger(p) || p < 1 || p >= HARDENED_OFFSET * 2) throw new ProtocolError(`derive: invalid party index ${p}`);
    const list = commitments.get(p)!;
    if (!Array.isArray(list) || list.length < 1) throw new ProtocolError(`derive: party ${p} has no commitment`, p);
    if (t === undefined) t = list.length;
    else if (list.length !== t) throw new ProtocolError(`derive: party ${p} committed to ${list.length} coefficients, others ${t}`, p);
    parts.push(u32(p), u32(list.length));
    for (const c of list) {
      if (!(c instanceof Uint8Array) || c.length < 1 || c.length > 255) throw new ProtocolError(`derive: party ${p} has a malformed commitment`, p);
      parts.push(Uint8Array.of(c.length), c);
    }
  }
  return concatBytes(...parts);
}

/** The group's chain code: sha256(domain ‖ transcript), 32 bytes. Public, like an xpub's. */
export function frostChainCode(transcript: Uint8Array): Uint8Array {
  if (!(transcript instanceof Uint8Array) || transcript.length < 1) throw new ProtocolError('derive: transcript must be non-empty bytes');
  return sha256(concatBytes(CHAIN_CODE_DOMAIN, transcript));
}

// ---------------------------------------------------------------------------------------------
// Input checks

function checkScheme(scheme: string): asserts scheme is DerivableScheme {
  if (scheme !== 'ed25519' && scheme !== 'secp256k1-schnorr') throw new ProtocolError(`derive: scheme ${scheme} has no FROST child derivation`);
}

export function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= HARDENED_OFFSET)
    throw new ProtocolError(`derive: index must be an integer in [0, 2^31) (non-hardened), got ${index}`);
}

function checkChainCode(c: Uint8Array): void {
  if (!(c instanceof Uint8Array) || c.length !== 32) throw new ProtocolError('derive: chain code must be 32 bytes');
}

function hexOf(v: unknown, what: string, len?: number): Uint8Array {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) throw new ProtocolError(`derive: ${what} is not lower-case hex`);
  const b = hexToBytes(v);
  if (len !== undefined && b.length !== len) throw new ProtocolError(`derive: ${what} has ${b.length} bytes, want ${len}`);
  return b;
}

function decodePoint<P>(fromBytes: (b: Uint8Array) => P & { is0(): boolean }, b: Uint8Array, what: string): P {
  let p: P & { is0(): boolean };
  try {
    p = fromBytes(b);
  } catch {
    throw new ProtocolError(`derive: ${what} is not a valid point`);
  }
  if (p.is0()) throw new ProtocolError(`derive: ${what} is the identity`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// The group record (GroupPublic) in the form the derivation needs

/** `GroupPublic.extra.frost` as frost.ts stores it. */
interface FrostPkg {
  commitments: string[];
  verifyingShares: Record<string, string>;
  [k: string]: Json;
}

interface Decoded<P> {
  chainCode: Uint8Array;
  commitments: P[];
  /** Keyed by FROST identifier (hex), as in `extra.frost`. */
  verifying: Map<string, P>;
}

function decodeGroup<P>(gp: GroupPublic, frost: FROST, fromBytes: (b: Uint8Array) => P & { is0(): boolean }, pointLen: number): Decoded<P> {
  if (!gp || typeof gp !== 'object') throw new ProtocolError('derive: no group public record');
  const extra = gp.extra ?? {};
  const pkg = extra.frost as FrostPkg | undefined;
  if (!pkg || !Array.isArray(pkg.commitments) || pkg.commitments.length < 1 || typeof pkg.verifyingShares !== 'object' || pkg.verifyingShares === null)
    throw new ProtocolError('derive: group public record has no FROST package');
  if (!Number.isSafeInteger(gp.threshold) || pkg.commitments.length !== gp.threshold) throw new ProtocolError('derive: FROST package does not match the threshold');
  const chainCode = hexOf(extra.chainCode, 'extra.chainCode', 32);
  const commitments = pkg.commitments.map((c, k) => decodePoint(fromBytes, hexOf(c, `commitments[${k}]`, pointLen), `commitments[${k}]`));
  const verifying = new Map<string, P>();
  for (const [id, v] of Object.entries(pkg.verifyingShares)) verifying.set(id, decodePoint(fromBytes, hexOf(v, `verifying share ${id}`, pointLen), `verifying share ${id}`));
  if (!Array.isArray(gp.parties)) throw new ProtocolError('derive: group has no party list');
  for (const p of gp.parties) {
    const id = frost.Identifier.fromNumber(p);
    const v = pkg.verifyingShares[id];
    if (!v || gp.verifyingShares?.[p] !== v) throw new ProtocolError(`derive: verifying share of party ${p} missing or inconsistent`, p);
  }
  return { chainCode, commitments, verifying };
}

/** The child record: same parties and threshold, moved package, new key, child chain code. */
function encodeChild(
  gp: GroupPublic,
  frost: FROST,
  publicKey: Uint8Array,
  commitments: Uint8Array[],
  verifying: Map<string, Uint8Array>,
  chainCode: Uint8Array,
  index: number,
  more: Record<string, Json>,
): GroupPublic {
  const ids = [...verifying.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const vsJson: Record<string, string> = {};
  for (const id of ids) vsJson[id] = bytesToHex(verifying.get(id)!);
  const verifyingShares: Record<number, string> = {};
  for (const p of gp.parties) verifyingShares[p] = vsJson[frost.Identifier.fromNumber(p)];
  return {
    publicKey: bytesToHex(publicKey),
    threshold: gp.threshold,
    parties: [...gp.parties],
    verifyingShares,
    extra: {
      ...(gp.extra ?? {}),
      ...more,
      chainCode: bytesToHex(chainCode),
      derivation: { parent: gp.publicKey, index },
      frost: { commitments: commitments.map((c) => bytesToHex(c)), verifyingShares: vsJson },
    },
  };
}

function signingShareOf(share: SecretShare, gp: GroupPublic): Uint8Array {
  if (!share || typeof share !== 'object' || !gp.parties.includes(share.index)) throw new ProtocolError('derive: the share is not one of the group’s parties');
  const s = share.secret as { signingShare?: unknown } | null;
  return hexOf(s?.signingShare, 'signingShare', 32);
}

/**
 * Does `signingShare` match the record's VSS commitment? RFC 9591 Appendix C.2 vss_verify by noble
 * (`validateSecret`) for t ≥ 2; noble's FROST refuses t = 1, where the check is share·G = key.
 */
function shareMatches(scheme: DerivableScheme, gp: GroupPublic, party: number, signingShare: Uint8Array): boolean {
  const frost = scheme === 'ed25519' ? ed25519_FROST : schnorr_FROST;
  const commitments = frostPkgBytes(gp);
  try {
    if (gp.threshold >= 2) {
      const secret = { identifier: frost.Identifier.fromNumber(party), signingShare };
      frost.validateSecret(secret as never, { signers: { min: gp.threshold, max: gp.parties.length }, commitments, verifyingShares: {} } as never);
      return true;
    }
    if (commitments.length !== 1) return false;
    const Y = scheme === 'ed25519' ? EdPoint.BASE.multiply(EdFn.fromBytes(signingShare)).toBytes() : SecpPoint.BASE.multiply(SecpFn.fromBytes(signingShare)).toBytes(true);
    return bytesToHex(Y) === bytesToHex(commitments[0]);
  } catch {
    return false;
  }
}

function frostPkgBytes(gp: GroupPublic): Uint8Array[] {
  const pkg = gp.extra?.frost as FrostPkg | undefined;
  if (!pkg || !Array.isArray(pkg.commitments)) throw new ProtocolError('derive: group public record has no FROST package');
  return pkg.commitments.map((c, k) => hexOf(c, `commitments[${k}]`));
}

// ---------------------------------------------------------------------------------------------
// secp256k1-schnorr: BIP32 on the internal key, then BIP341 TapTweak

const SecpFn = SecpPoint.Fn;

/** BIP32 CKDpub tweak: IL (checked < n) and the child chain code IR. `mac` is HMAC keyed by c. */
function bip32IL(mac: ReturnType<typeof hmac.create>, data: Uint8Array): { il: bigint; ir: Uint8Array } | undefined {
  const I = mac.clone().update(data).digest();
  const il = bytesToNumberBE(I.subarray(0, 32));
  // BIP32: "In case parse_256(I_L) ≥ n or K_i is the point at infinity, the resulting key is
  // invalid, and one should proceed with the next value for i."
  if (!SecpFn.isValid(il)) return undefined;
  return { il, ir: I.slice(32) };
}

/** ser_P(K) ‖ ser_32(i) in `buf` (37 bytes), ser_P(K) already in place. */
function setIndex(buf: Uint8Array, index: number): Uint8Array {
  new DataView(buf.buffer, buf.byteOffset, buf.byteLength).setUint32(33, index, false);
  return buf;
}

/**
 * BIP341 taproot_tweak_pubkey(x(K), empty merkle root): Q = lift_x(x(K)) + t·G with
 * t = int(hashTapTweak(x(K))), rejected if ≥ n. `K33` is K compressed; `odd` says whether
 * lift_x(x(K)) = −K.
 */
function tapTweak(K33: Uint8Array): { odd: boolean; t: bigint } {
  const t = bytesToNumberBE(schnorr.utils.taggedHash('TapTweak', K33.subarray(1, 33)));
  if (!SecpFn.isValid(t)) throw new ProtocolError('derive: TapTweak ≥ n (probability ~2^-128); use the next index');
  return { odd: K33[0] === 0x03, t };
}

/** The BIP32 key K of a secp256k1-schnorr group: `extra.bip32Key` (children) or 02‖internalKey (root). */
function secpBip32Key(gp: GroupPublic): Uint8Array {
  const extra = gp.extra ?? {};
  if (extra.bip32Key !== undefined) return hexOf(extra.bip32Key, 'extra.bip32Key', 33);
  return concatBytes(Uint8Array.of(0x02), hexOf(extra.internalKey, 'extra.internalKey', 32));
}

interface SecpStep {
  /** σ_par·(· − tt_par·G) maps the parent package to a sharing of the parent BIP32 key K. */
  parentOdd: boolean;
  parentTT: bigint;
  il: bigint;
  childOdd: boolean;
  childTT: bigint;
  /** tt_par·G, IL·G, tt_child·G (public, computed once per derivation). */
  T: { parentTT: SecpPt; il: SecpPt; childTT: SecpPt };
  K: Uint8Array; // child BIP32 key, 33 bytes
  Q: SecpPt; // child output key (full point, as DKG packages store it)
  chainCode: Uint8Array;
}

function secpStep(gp: GroupPublic, d: Decoded<SecpPt>, index: number): SecpStep {
  checkIndex(index);
  const Kb = secpBip32Key(gp);
  const K = decodePoint((b) => SecpPoint.fromBytes(b), Kb, 'BIP32 key');
  const parent = tapTweak(Kb);
  // The record must be self-consistent: Q = (K even ? K : −K) + tt·G is commitments[0] and the
  // published x-only key (the DKG's own tweak, recomputed).
  const TTp = SecpPoint.BASE.multiplyUnsafe(parent.t);
  const Qpar = (parent.odd ? K.negate() : K).add(TTp);
  if (!Qpar.equals(d.commitments[0]) || gp.publicKey !== bytesToHex(Qpar.toBytes(true).subarray(1)))
    throw new ProtocolError('derive: group key is not the TapTweak of its internal key');
  const mac = hmac.create(sha512, d.chainCode);
  const tw = bip32IL(mac, setIndex(concatBytes(Kb, new Uint8Array(4)), index));
  if (!tw) throw new ProtocolError('derive: I_L ≥ n, child key invalid (BIP32: use the next index)');
  const IL = SecpPoint.BASE.multiplyUnsafe(tw.il);
  const Kc = K.add(IL);
  if (Kc.is0()) throw new ProtocolError('derive: child key is the point at infinity (BIP32: use the next index)');
  const KcB = Kc.toBytes(true);
  const child = tapTweak(KcB);
  const TTc = SecpPoint.BASE.multiplyUnsafe(child.t);
  const Q = (child.odd ? Kc.negate() : Kc).add(TTc);
  if (Q.is0()) throw new ProtocolError('derive: child output key is the point at infinity; use the next index');
  return { parentOdd: parent.odd, parentTT: parent.t, il: tw.il, childOdd: child.odd, childTT: child.t, T: { parentTT: TTp, il: IL, childTT: TTc }, K: KcB, Q, chainCode: tw.ir };
}

/**
 * The public map from a parent sharing to the child sharing, on points: Y ↦ σ_c·(σ_p·(Y − tt_p·G) + IL·G) + tt_c·G
 * for the constant term and verifying shares, C_k ↦ σ_c·σ_p·C_k for k ≥ 1.
 */
function secpMovePoint(s: SecpStep, Y: SecpPt): SecpPt {
  let X = Y.subtract(s.T.parentTT);
  if (s.parentOdd) X = X.negate();
  X = X.add(s.T.il);
  if (s.childOdd) X = X.negate();
  return X.add(s.T.childTT);
}

/** The same map on scalars (a party's signing share). */
function secpMoveScalar(s: SecpStep, x: bigint): bigint {
  let y = SecpFn.sub(x, s.parentTT);
  if (s.parentOdd) y = SecpFn.neg(y);
  y = SecpFn.add(y, s.il);
  if (s.childOdd) y = SecpFn.neg(y);
  return SecpFn.add(y, s.childTT);
}

function secpChild(gp: GroupPublic, index: number): { step: SecpStep; pub: GroupPublic } {
  const d = decodeGroup(gp, schnorr_FROST, (b) => SecpPoint.fromBytes(b), 33);
  const step = secpStep(gp, d, index);
  const flip = step.parentOdd !== step.childOdd;
  const commitments = d.commitments.map((C, k) => (k === 0 ? step.Q : flip ? C.negate() : C).toBytes(true));
  const verifying = new Map([...d.verifying].map(([id, Y]) => [id, secpMovePoint(step, Y).toBytes(true)] as const));
  const pub = encodeChild(gp, schnorr_FROST, step.Q.toBytes(true).subarray(1), commitments, verifying, step.chainCode, index, {
    internalKey: bytesToHex(step.K.subarray(1)),
    bip32Key: bytesToHex(step.K),
  });
  return { step, pub };
}

// ---------------------------------------------------------------------------------------------
// ed25519: fleetkey's additive tweak

const EdFn = EdPoint.Fn;

/** t = int_LE(HMAC-SHA512(c, A ‖ ser_32(i))) mod L — the reduction RFC 8032 applies to SHA-512 outputs. */
function edTweak(chainCode: Uint8Array, A: Uint8Array, index: number): { t: bigint; ir: Uint8Array } {
  checkChainCode(chainCode);
  const I = hmac(sha512, chainCode, concatBytes(A, u32(index)));
  return { t: EdFn.create(bytesToNumberLE(I)), ir: I.slice(32) };
}

function edChild(gp: GroupPublic, index: number): { t: bigint; pub: GroupPublic } {
  checkIndex(index);
  const d = decodeGroup(gp, ed25519_FROST, (b) => EdPoint.fromBytes(b, false), 32);
  const A = d.commitments[0];
  if (!A.isTorsionFree()) throw new ProtocolError('derive: group key is not in the prime-order subgroup');
  const Ab = A.toBytes();
  if (gp.publicKey !== bytesToHex(Ab)) throw new ProtocolError('derive: group key does not match the FROST package');
  const { t, ir } = edTweak(d.chainCode, Ab, index);
  const T = EdPoint.BASE.multiplyUnsafe(t);
  const Ai = A.add(T);
  if (Ai.is0()) throw new ProtocolError('derive: child key is the identity; use the next index');
  const commitments = d.commitments.map((C, k) => (k === 0 ? Ai : C).toBytes());
  const verifying = new Map([...d.verifying].map(([id, Y]) => [id, Y.add(T).toBytes()] as const));
  return { t, pub: encodeChild(gp, ed25519_FROST, Ai.toBytes(), commitments, verifying, ir, index, {}) };
}

// ---------------------------------------------------------------------------------------------
// Public API

/** The child group record (public only: for the server, watch-only use and addresses). */
export function deriveChildPublic(scheme: DerivableScheme, gp: GroupPublic, index: number): GroupPublic {
  checkScheme(scheme);
  return scheme === 'ed25519' ? edChild(gp, index).pub : secpChild(gp, index).pub;
}

/**
 * The child group record and this party's child share, derived locally with no interaction.
 * The parent share is first checked against the parent commitment, the child share against the
 * child commitment (noble `validateSecret`).
 */
export function deriveChildShare(scheme: DerivableScheme, gp: GroupPublic, share: SecretShare, index: number): { public: GroupPublic; share: SecretShare } {
  checkScheme(scheme);
  const Fn = scheme === 'ed25519' ? EdFn : SecpFn;
  const sBytes = signingShareOf(share, gp);
  if (!shareMatches(scheme, gp, share.index, sBytes)) throw new ProtocolError('derive: the share does not match the group’s commitment');
  const s = Fn.fromBytes(sBytes);
  sBytes.fill(0);
  let pub: GroupPublic;
  let sc: bigint;
  if (scheme === 'ed25519') {
    const c = edChild(gp, index);
    pub = c.pub;
    sc = EdFn.add(s, c.t);
  } else {
    const c = secpChild(gp, index);
    pub = c.pub;
    sc = secpMoveScalar(c.step, s);
  }
  const out = Fn.toBytes(sc);
  try {
    // The child share and the child package were moved by the same map, or this fails.
    if (!shareMatches(scheme, pub, share.index, out)) throw new ProtocolError('derive: derived share does not match the derived commitment');
    return { public: pub, share: { index: share.index, secret: { ...(share.secret as Record<string, Json>), signingShare: bytesToHex(out) } } };
  } finally {
    out.fill(0);
  }
}

/** Non-hardened path "m/0/7/…": each step is `deriveChildPublic`. */
export function deriveChildPublicPath(scheme: DerivableScheme, gp: GroupPublic, path: readonly number[]): GroupPublic {
  let cur = gp;
  for (const i of path) cur = deriveChildPublic(scheme, cur, i);
  return cur;
}

// ---------------------------------------------------------------------------------------------
// Batch enrolment (server side, public inputs only)

export interface EnrolBatch {
  /** count × 33 bytes: child BIP32 key K_i (compressed), zero-filled where `invalid`. */
  keys: Uint8Array;
  /** count × 32 bytes: child taproot output key Q_i (x-only), when requested. */
  outputKeys?: Uint8Array;
  /** Indexes BIP32 declares invalid (I_L ≥ n or K_i = ∞; probability ~2^-127 each). */
  invalid: number[];
}

/** A base point with its own precomputed table, so a batch can use a wider window than noble's default without touching `Point.BASE` (shared by every signer in the process). */
export function secpFixedBase(window: number): SecpPt {
  const G = SecpPoint.fromAffine(SecpPoint.BASE.toAffine());
  G.precompute(window, false);
  return G;
}

/**
 * Child public keys K_from … K_{from+count−1} of a secp256k1-schnorr group (and their taproot
 * output keys), for enrolling many devices at once. Everything here is public, so it uses noble's
 * variable-time `multiplyUnsafe` on a precomputed fixed base (`precompute(W)`), one shared HMAC key
 * schedule (`hmac.create(…).clone()`), and one batched inversion per step (`normalizeZ`). Each
 * key equals `deriveChildPublic(…).extra.bip32Key` / `.publicKey` (tested).
 */
export function deriveSecpChildKeys(
  bip32Key: Uint8Array,
  chainCode: Uint8Array,
  from: number,
  count: number,
  opts: { taproot?: boolean; base?: SecpPt } = {},
): EnrolBatch {
  checkChainCode(chainCode);
  if (!Number.isSafeInteger(count) || count < 0) throw new ProtocolError('derive: count must be a non-negative integer');
  checkIndex(from);
  if (count > 0) checkIndex(from + count - 1);
  const K = decodePoint((b) => SecpPoint.fromBytes(b), bip32Key, 'BIP32 key');
  const G = opts.base ?? SecpPoint.BASE;
  if (!G.equals(SecpPoint.BASE)) throw new ProtocolError('derive: base must be the generator');
  const mac = hmac.create(sha512, chainCode);
  const data = concatBytes(bip32Key, new Uint8Array(4));
  const invalid: number[] = [];
  const pts: SecpPt[] = new Array(count);
  for (let j = 0; j < count; j++) {
    const tw = bip32IL(mac, setIndex(data, from + j));
    const P = tw ? K.add(G.multiplyUnsafe(tw.il)) : SecpPoint.ZERO;
    if (P.is0()) invalid.push(from + j);
    pts[j] = P;
  }
  const aff = normalizeZ(SecpPoint, pts);
  const keys = new Uint8Array(count * 33);
  for (let j = 0; j < count; j++) if (!aff[j].is0()) keys.set(aff[j].toBytes(true), j * 33);
  if (!opts.taproot) return { keys, invalid };
  const qs: SecpPt[] = new Array(count);
  for (let j = 0; j < count; j++) {
    const P = aff[j];
    if (P.is0()) {
      qs[j] = SecpPoint.ZERO;
      continue;
    }
    const tw = tapTweak(keys.subarray(j * 33, j * 33 + 33));
    qs[j] = (tw.odd ? P.negate() : P).add(G.multiplyUnsafe(tw.t));
  }
  const qa = normalizeZ(SecpPoint, qs);
  const outputKeys = new Uint8Array(count * 32);
  for (let j = 0; j < count; j++) if (!qa[j].is0()) outputKeys.set(qa[j].toBytes(true).subarray(1), j * 32);
  return { keys, outputKeys, invalid };
}

/** The BIP32 key and chain code of a secp256k1-schnorr group record, for `deriveSecpChildKeys`. */
export function secpNodeOf(gp: GroupPublic): { bip32Key: Uint8Array; chainCode: Uint8Array } {
  return { bip32Key: secpBip32Key(gp), chainCode: hexOf(gp.extra?.chainCode, 'extra.chainCode', 32) };
}

