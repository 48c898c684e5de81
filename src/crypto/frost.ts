/**
 * FROST (RFC 9591) threshold Schnorr schemes on `@noble/curves`' RFC 9591 module:
 *
 * - `ed25519`: FROST(Ed25519, SHA-512), RFC 9591 §6.1. Signatures are plain RFC 8032 Ed25519.
 * - `secp256k1-schnorr`: FROST(secp256k1, SHA-256) with BIP340 challenge and even-y handling
 *   (noble's `schnorr_FROST`, "FROST-secp256k1-SHA256-TR-v1"). Its DKG output is tweaked with the
 *   BIP341 TapTweak over an empty merkle root, so the group key *is* the taproot output key Q and
 *   every signature is a valid key-path spend signature for the address bc1p…(Q).
 *
 * What this module adds on top of noble, and nothing else:
 * - the DKG as a `PartyProtocol` (RFC 9591 leaves DKG out of scope; noble follows the frost-rs
 *   split-round Pedersen DKG with proofs of knowledge), with the misbehaving party named when a
 *   proof of knowledge (round 1) or a VSS share (round 2) fails;
 * - proactive share refresh (Herzberg et al., "Proactive Secret Sharing", CRYPTO '95): every party
 *   deals a Feldman-committed sharing of zero and adds what it receives, so the group key stays,
 *   every share changes, and old shares no longer combine with new ones;
 * - JSON (hex) encodings of the public and secret packages.
 *
 * Key generation and refresh run on noble's module and points. Signing (commit, share, share check,
 * aggregate) runs RFC 9591 §4–5 in src/crypto/frost-sign.ts over libsodium / libsecp256k1
 * (WebAssembly) point arithmetic, byte-identical to noble's module (test/crypto/frost-group.test.ts);
 * `backend: 'noble'` runs the same steps on noble's points. Nothing here implements a primitive.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import { createFROST, type FROST, type FrostPublic, type FrostSecret } from '@noble/curves/abstract/frost.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { frostChainCode, frostDkgTranscript } from './derive.ts';
import { aggregate, commit, signShare, signingSuite, verifyShare, type Commitment, type SigningPublic } from './frost-sign.ts';
import { GROUPS, verifyPlain, type Backend } from './frost-group.ts';
import {
  ProtocolError,
  type GroupPublic,
  type Json,
  type KeyGenResult,
  type PartyIndex,
  type PartyProtocol,
  type RoundInput,
  type SecretShare,
} from './types.ts';

export type { SuiteName as FrostSuiteName };
import type { FrostSchemeName, BitcoinNetwork } from './address.ts';
export type { FrostSchemeName, BitcoinNetwork } from './address.ts';
export { BTC_NETWORKS, frostAddress, isFrostScheme } from './address.ts';
/** 'secp256k1' is RFC 9591's FROST(secp256k1, SHA-256): not a wallet scheme, kept for its vectors. */
type SuiteName = FrostSchemeName | 'secp256k1';

// Structural view of the two curves' point classes that this module needs.
interface Pt {
  add(o: Pt): Pt;
  multiply(n: bigint): Pt;
  multiplyUnsafe(n: bigint): Pt;
  equals(o: Pt): boolean;
  toBytes(compressed?: boolean): Uint8Array;
  is0(): boolean;
}
interface PtCons {
  BASE: Pt;
  ZERO: Pt;
  fromBytes(b: Uint8Array): Pt;
  Fn: { ORDER: bigint; add(a: bigint, b: bigint): bigint; mul(a: bigint, b: bigint): bigint; fromBytes(b: Uint8Array): bigint; toBytes(n: bigint): Uint8Array; isValid(n: bigint): boolean; is0(n: bigint): boolean; ZERO: bigint };
}

interface Suite {
  name: SuiteName;
  frost: FROST;
  Point: PtCons;
  /** Plain single-key verifier for the final signature (RFC 8032 / BIP340), independent of FROST. */
  verify(sig: Uint8Array, msg: Uint8Array, publicKey: Uint8Array): boolean;
  /** The external public key that signatures verify under. */
  externalKey(pub: FrostPublic): Uint8Array;
}

/**
 * `ed25519.Point` as createFROST sees it, except that a point decoded from bytes answers the
 * prime-order check (`isTorsionFree`; noble: a full BigInt multiplication by the group order) with
 * libsodium's `crypto_core_ed25519_is_valid_point` on its canonical encoding (GROUPS.wasm.ed25519.decode).
 * A non-identity point passes both exactly when it lies in the prime-order subgroup (the builds are
 * compared on random and crafted encodings in test/crypto/frost-group.test.ts, and on this point class
 * in test/crypto/frost.test.ts); the identity, which libsodium refuses as small-order, keeps noble's
 * answer (createFROST refuses it before it asks). Nothing global changes. With the hook below removed,
 * this check was still 58 % of an in-process 2-of-3 DKG (profile, issue 13); with it, 62 → 19 ms.
 */
function decodingOnLibsodium(Point: typeof ed25519.Point): typeof ed25519.Point {
  const wasm = GROUPS.wasm.ed25519;
  type Ext = { X: bigint; Y: bigint; Z: bigint; T: bigint };
  const Base = Point as unknown as new (X: bigint, Y: bigint, Z: bigint, T: bigint) => EdwardsPoint;
  // Noble's points are frozen, so the decoded point is re-made as an instance of this subclass,
  // whose only own members are the prime-order check and (static) fromBytes and the instanceof
  // test: every operation on it is noble's, and returns noble's own points (noble's MSM checks
  // `p instanceof Point` against the constructor it was given, hence Symbol.hasInstance).
  class Decoded extends Base {
    override isTorsionFree(): boolean {
      if (this.is0()) return true;
      try {
        wasm.decode(this.toBytes());
        return true;
      } catch {
        return false;
      }
    }
    static fromBytes(bytes: Uint8Array, zip215?: boolean): Decoded {
      const p = Point.fromBytes(bytes, zip215) as unknown as Ext;
      return new Decoded(p.X, p.Y, p.Z, p.T);
    }
    static [Symbol.hasInstance](x: unknown): boolean {
      return x instanceof Point;
    }
  }
  return Decoded as unknown as typeof ed25519.Point; // every other static (BASE, ZERO, Fp, Fn, fromHex, …) is inherited from noble's
}

/**
 * FROST(Ed25519, SHA-512) for key generation and refresh: noble's `createFROST` with exactly the
 * options of its `ed25519_FROST` (suite name, point, hash, H2) but without its `validatePoint` hook.
 * That hook repeats what createFROST's own DeserializeElement already did to the same point
 * (`assertValidity` and the prime-order check `isTorsionFree`, a full BigInt scalar multiplication),
 * and the prime-order check was ~70 % of an in-process 2-of-3 DKG (profile, issue 13). Every
 * element is still refused exactly where RFC 9591 §3.1 refuses it: off-curve, identity, or outside
 * the prime-order subgroup (test/crypto/frost.test.ts, "ed25519: key generation's FROST instance refuses…").
 */
export const ed25519Frost: FROST = createFROST({ name: 'FROST-ED25519-SHA512-v1', Point: decodingOnLibsodium(ed25519.Point), hash: sha512, H2: '' });

const SUITES: Record<SuiteName, Suite> = {
  ed25519: {
    name: 'ed25519',
    frost: ed25519Frost,
    Point: ed25519.Point as unknown as PtCons,
    // zip215: false = strict RFC 8032 verification (canonical encodings, no small-order keys).
    verify: (sig, msg, pk) => ed25519.verify(sig, msg, pk, { zip215: false }),
    externalKey: (pub) => Uint8Array.from(pub.commitments[0]),
  },
  'secp256k1-schnorr': {
    name: 'secp256k1-schnorr',
    frost: schnorr_FROST,
    Point: schnorr.Point as unknown as PtCons,
    verify: (sig, msg, pk) => schnorr.verify(sig, msg, pk),
    // BIP340 keys are x-only: drop the parity byte of the compressed point.
    externalKey: (pub) => Uint8Array.from(pub.commitments[0]).subarray(1),
  },
  secp256k1: {
    name: 'secp256k1',
    frost: secp256k1_FROST,
    Point: schnorr.Point as unknown as PtCons,
    verify: (sig, msg, pk) => secp256k1_FROST.verify(sig, msg, pk),
    externalKey: (pub) => Uint8Array.from(pub.commitments[0]),
  },
};



/** The FROST identifier of party `i` (its Shamir x-coordinate), RFC 9591 §4.1 `Identifier`. */
function identifier(suite: Suite, i: PartyIndex): string {
  return suite.frost.Identifier.fromNumber(i);
}

function scalarOf(suite: Suite, i: PartyIndex): bigint {
  return suite.Point.Fn.fromBytes(hexToBytes(identifier(suite, i)));
}

// ---------------------------------------------------------------------------------------------
// JSON encodings

/** The FROST public package as stored in `GroupPublic.extra.frost`. */
interface FrostPublicJson {
  commitments: string[];
  verifyingShares: Record<string, string>;
  [k: string]: Json;
}

function publicToJson(pub: FrostPublic): FrostPublicJson {
  return {
    commitments: pub.commitments.map((c) => bytesToHex(c)),
    // Sorted, so every party serializes the same package byte for byte.
    verifyingShares: Object.fromEntries(
      Object.entries(pub.verifyingShares)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, bytesToHex(v)]),
    ),
  };
}

/**
 * The FROST public package of a group. Signing needs only the group key and the verifying shares
 * of the parties that sign, so `only` trims the package to those: fewer points for noble to decode
 * and validate (and, for BIP340, to negate) on every signature, with the same result.
 */
export function frostPublicOf(gp: GroupPublic, only?: { ids: string[] }): FrostPublic {
  const j = gp.extra?.frost as FrostPublicJson | undefined;
  if (!j || !Array.isArray(j.commitments)) throw new ProtocolError('group public package has no FROST data');
  const vs = only ? only.ids.filter((id) => id in j.verifyingShares).map((id) => [id, j.verifyingShares[id]]) : Object.entries(j.verifyingShares);
  return {
    signers: { min: gp.threshold, max: gp.parties.length },
    commitments: (only ? j.commitments.slice(0, 1) : j.commitments).map((c) => hexToBytes(c)),
    verifyingShares: Object.fromEntries(vs.map(([k, v]) => [k, hexToBytes(v)])),
  } as FrostPublic;
}

function groupPublicOf(suite: Suite, pub: FrostPublic, parties: PartyIndex[], extra: Record<string, Json> = {}): GroupPublic {
  const verifyingShares: Record<number, string> = {};
  for (const p of parties) {
    const v = pub.verifyingShares[identifier(suite, p)];
    if (!v) throw new ProtocolError(`no verifying share for party ${p}`);
    verifyingShares[p] = bytesToHex(v);
  }
  return {
    publicKey: bytesToHex(suite.externalKey(pub)),
    threshold: pub.signers.min,
    parties: [...parties],
    verifyingShares,
    extra: { ...extra, frost: publicToJson(pub) },
  };
}

function secretOf(suite: Suite, share: SecretShare): FrostSecret {
  const s = share.secret as { signingShare?: unknown };
  if (typeof s?.signingShare !== 'string') throw new ProtocolError('malformed secret share');
  return { identifier: identifier(suite, share.index), signingShare: hexToBytes(s.signingShare) } as FrostSecret;
}

function shareJson(index: PartyIndex, signingShare: Uint8Array): SecretShare {
  return { index, secret: { signingShare: bytesToHex(signingShare) } };
}

// ---------------------------------------------------------------------------------------------
// Input checks shared by the protocols

function checkParties(parties: PartyIndex[], threshold: number, self: PartyIndex): void {
  const set = new Set(parties);
  if (set.size !== parties.length) throw new ProtocolError('duplicate party index');
  for (const p of parties) if (!Number.isSafeInteger(p) || p < 1) throw new ProtocolError(`invalid party index ${p}`);
  if (!set.has(self)) throw new ProtocolError('self is not a party');
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > parties.length)
    throw new ProtocolError(`invalid threshold ${threshold} of ${parties.length}`);
}

/** Every other party must have sent exactly one message of the expected kind. */
function expectFrom(input: RoundInput, kind: 'broadcast' | 'direct', others: PartyIndex[]): void {
  const got = input[kind];
  for (const p of others) if (!(p in got)) throw new ProtocolError(`missing ${kind} message from party ${p}`, p);
  for (const k of Object.keys(got)) if (!others.includes(Number(k))) throw new ProtocolError(`unexpected ${kind} message from party ${k}`, Number(k));
}

function hexField(v: unknown, party: PartyIndex, what: string, len?: number): Uint8Array {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/i.test(v)) throw new ProtocolError(`party ${party}: ${what} is not hex`, party);
  const b = hexToBytes(v);
  if (len !== undefined && b.length !== len) throw new ProtocolError(`party ${party}: ${what} has ${b.length} bytes, want ${len}`, party);
  return b;
}

function hexList(v: unknown, party: PartyIndex, what: string, count: number): Uint8Array[] {
  if (!Array.isArray(v) || v.length !== count) throw new ProtocolError(`party ${party}: ${what} must be a list of ${count}`, party);
  return v.map((x, i) => hexField(x, party, `${what}[${i}]`));
}

// ---------------------------------------------------------------------------------------------
// Distributed key generation

/**
 * Pedersen DKG with proofs of knowledge (FROST paper §5.1, as in frost-rs), run by party `self`.
 * Round 1 broadcasts the VSS commitment and a proof of knowledge of the constant term; round 2
 * sends each peer its share (the transport encrypts direct messages); `finish` verifies every
 * share against its sender's commitment and combines.
 */
export function frostDkg(name: FrostSchemeName, p: { self: PartyIndex; parties: PartyIndex[]; threshold: number }): PartyProtocol<KeyGenResult> {
  const suite = SUITES[name];
  const { self, threshold } = p;
  const parties = [...p.parties].sort((a, b) => a - b);
  checkParties(parties, threshold, self);
  if (threshold === 1) return singleKeyGen(name, self, parties);
  const others = parties.filter((q) => q !== self);
  const signers = { min: threshold, max: parties.length };
  const { frost } = suite;
  let state: ReturnType<FROST['DKG']['round1']>['secret'] | undefined;
  let round1: Record<number, { identifier: string; commitment: Uint8Array[]; proofOfKnowledge: Uint8Array }> = {};
  let ownC0: Uint8Array | undefined;
  let ownCommitment: Uint8Array[] | undefined;
  let step = 0;

  return {
    rounds: 2,
    round(r, input) {
      if (r !== step + 1) throw new ProtocolError(`round ${r} out of order`);
      step = r;
      if (r === 1) {
        const out = frost.DKG.round1(identifier(suite, self), signers);
        state = out.secret;
        ownC0 = Uint8Array.from(out.public.commitment[0]);
        ownCommitment = out.public.commitment.map((c) => Uint8Array.from(c));
        return { broadcast: { commitment: out.public.commitment.map((c) => bytesToHex(c)), proofOfKnowledge: bytesToHex(out.public.proofOfKnowledge) } };
      }
      if (r === 2) {
        expectFrom(input, 'broadcast', others);
        round1 = {};
        for (const q of others) {
          const m = input.broadcast[q] as { commitment?: unknown; proofOfKnowledge?: unknown };
          round1[q] = {
            identifier: identifier(suite, q),
            commitment: hexList(m?.commitment, q, 'commitment', threshold),
            proofOfKnowledge: hexField(m?.proofOfKnowledge, q, 'proofOfKnowledge'),
          };
        }
        let out: Record<string, { signingShare: Uint8Array }>;
        try {
          out = frost.DKG.round2(state!, others.map((q) => round1[q]) as never);
        } catch (e) {
          // noble checks every proof of knowledge here but names no culprit: find it.
          for (const q of others) blameProofOfKnowledge(suite, q, round1[q], threshold);
          throw new ProtocolError(`DKG round 2 failed: ${(e as Error).message}`);
        }
        const direct: Record<number, Json> = {};
        for (const q of others) direct[q] = { signingShare: bytesToHex(out[identifier(suite, q)].signingShare) };
        return { direct };
      }
      throw new ProtocolError(`no round ${r}`);
    },
    finish(input) {
      if (step !== 2) throw new ProtocolError('finish before round 2');
      step = 3;
      expectFrom(input, 'direct', others);
      const round2 = others.map((q) => {
        const m = input.direct[q] as { signingShare?: unknown };
        const signingShare = hexField(m?.signingShare, q, 'signingShare', 32);
        // RFC 9591 Appendix C.2 vss_verify, per sender, so a bad share names its sender.
        try {
          frost.validateSecret({ identifier: identifier(suite, self), signingShare } as never, { signers, commitments: round1[q].commitment, verifyingShares: {} } as never);
        } catch {
          throw new ProtocolError(`party ${q} sent a share that does not match its commitment`, q);
        }
        return { identifier: identifier(suite, q), signingShare };
      });
      const key = frost.DKG.round3(state!, others.map((q) => round1[q]) as never, round2 as never);
      frost.DKG.clean(state!);
      // A chain code for non-hardened child derivation (fleets, src/crypto/derive.ts): a hash of
      // every party's round-1 commitments, which all parties hold identically. It is part of the
      // public package each party signs at the end, so an equivocating sender makes the parties
      // disagree and the key is never activated. Known to the parties and the relay only.
      const transcript = new Map<number, Uint8Array[]>(parties.map((q) => [q, q === self ? ownCommitment! : round1[q].commitment]));
      const extra: Record<string, Json> = { chainCode: bytesToHex(frostChainCode(frostDkgTranscript(name, transcript))) };
      if (name === 'secp256k1-schnorr') {
        // The untweaked group key P (the BIP341 internal key) is the sum of every party's
        // constant-term commitment; the DKG output is Q = P' + TapTweak(P')·G, P' = P made even.
        let P = suite.Point.fromBytes(ownC0!);
        for (const q of others) P = P.add(suite.Point.fromBytes(round1[q].commitment[0]));
        extra.internalKey = bytesToHex(P.toBytes(true).subarray(1));
      }
      return { public: groupPublicOf(suite, key.public, parties, extra), share: shareJson(self, key.secret.signingShare) };
    },
  };
}

/**
 * Threshold 1 is not a threshold: noble's FROST (like frost-rs) refuses min < 2, and a 1-of-n key
 * shared by n > 1 nodes would put the whole key on every node. So t = 1 is allowed only as 1-of-1:
 * an ordinary key generated on one signer node, signed with the plain algorithm (`frostSignSingle`).
 * For BIP340 keys the BIP341 TapTweak is applied as in the DKG, so the address rule is the same.
 */
function singleKeyGen(name: FrostSchemeName, self: PartyIndex, parties: PartyIndex[]): PartyProtocol<KeyGenResult> {
  if (parties.length !== 1) throw new ProtocolError('threshold 1 is only supported as 1-of-1 (a 1-of-n key would be whole on every node)');
  const suite = SUITES[name];
  const Fn = suite.Point.Fn;
  return {
    rounds: 0,
    round() {
      throw new ProtocolError('1-of-1 key generation has no rounds');
    },
    finish() {
      let d = Fn.fromBytes(suite.frost.utils.randomScalar(randomBytes));
      const extra: Record<string, Json> = {};
      if (name === 'secp256k1-schnorr') {
        // BIP341 taproot_tweak_seckey: d' = (P even ? d : n - d) + int(hashTapTweak(x(P))) mod n.
        const P = suite.Point.BASE.multiply(d).toBytes(true);
        if (P[0] === 0x03) d = Fn.ORDER - d;
        const px = P.subarray(1);
        const t = BigInt('0x' + bytesToHex(schnorr.utils.taggedHash('TapTweak', px)));
        if (!Fn.isValid(t)) throw new ProtocolError('TapTweak out of range (probability ~2^-128); retry');
        d = Fn.add(d, t);
        extra.internalKey = bytesToHex(px);
      }
      const Y = suite.Point.BASE.multiply(d).toBytes(true);
      extra.chainCode = bytesToHex(randomBytes(32));
      const id = identifier(suite, self);
      const pub = { signers: { min: 1, max: 1 }, commitments: [Y], verifyingShares: { [id]: Y } } as unknown as FrostPublic;
      const share = shareJson(self, Fn.toBytes(d));
      d = 0n;
      return { public: groupPublicOf(suite, pub, parties, extra), share };
    },
  };
}

/** 1-of-1 signing: the plain single-key algorithm over the one share (RFC 8032 / BIP340). */
export function frostSignSingle(name: FrostSchemeName, share: SecretShare, message: Uint8Array): Uint8Array {
  const suite = SUITES[name];
  const sk = hexToBytes((share.secret as { signingShare: string }).signingShare);
  try {
    return name === 'ed25519' ? Uint8Array.from(suite.frost.sign(message, sk)) : schnorr.sign(message, sk);
  } finally {
    sk.fill(0);
  }
}

/**
 * Throws a ProtocolError naming party `q` if its round-1 proof of knowledge is invalid. noble
 * checks every proof inside DKG round 2 but names no culprit, so after a failure each sender's
 * package is checked alone: a throwaway t-of-t DKG round 2 whose other packages are fresh honest
 * ones, so only `q`'s package can make noble's own check fail. Nothing is re-implemented.
 */
function blameProofOfKnowledge(suite: Suite, q: PartyIndex, pkg: { identifier: string; commitment: Uint8Array[]; proofOfKnowledge: Uint8Array }, t: number): void {
  const size = Math.max(2, t);
  const ids: number[] = [];
  for (let i = 1; ids.length < size - 1; i++) if (i !== q) ids.push(i); // probe + honest fillers
  const [probeId, ...fillerIds] = ids;
  const signers = { min: t, max: size };
  const probe = suite.frost.DKG.round1(identifier(suite, probeId), signers);
  const fillers = fillerIds.map((i) => suite.frost.DKG.round1(identifier(suite, i), signers));
  try {
    suite.frost.DKG.round2(probe.secret, [pkg, ...fillers.map((f) => f.public)] as never);
  } catch {
    throw new ProtocolError(`party ${q} sent an invalid proof of knowledge`, q);
  } finally {
    suite.frost.DKG.clean(probe.secret);
    for (const f of fillers) suite.frost.DKG.clean(f.secret);
  }
}

// ---------------------------------------------------------------------------------------------
// Proactive refresh

/**
 * Share refresh by all n parties (Herzberg–Jarecki–Krawczyk–Yung PSS): party i deals
 * δ_i(x) = a_1·x + … + a_{t-1}·x^{t-1} (constant term zero, so the group secret is unchanged) with
 * Feldman commitments A_k = a_k·G. Each party checks δ_j(self)·G = Σ_k A_{j,k}·self^k for every
 * sender j, then its new share is s + Σ_j δ_j(self); every verifying share and the VSS commitment
 * are updated publicly in the same way, so all honest parties derive the same new public package.
 */
export function frostRefresh(name: FrostSchemeName, p: { share: SecretShare; public: GroupPublic }): PartyProtocol<KeyGenResult> {
  const suite = SUITES[name];
  const { Point } = suite;
  const Fn = Point.Fn;
  const self = p.share.index;
  const parties = [...p.public.parties].sort((a, b) => a - b);
  const t = p.public.threshold;
  checkParties(parties, t, self);
  const others = parties.filter((q) => q !== self);
  const pub = frostPublicOf(p.public);
  const secret = secretOf(suite, p.share);
  let coeffs: bigint[] = [];
  let commitments: Record<number, Pt[]> = {};
  let step = 0;

  // δ(x) = Σ_{k=1}^{t-1} a_k x^k, by Horner's rule over noble's field.
  const evalZeroPoly = (a: bigint[], x: bigint): bigint => {
    let acc = Fn.ZERO;
    for (let k = a.length - 1; k >= 0; k--) acc = Fn.mul(Fn.add(acc, a[k]), x);
    return acc;
  };
  // Σ_k A_k · x^k (public values, variable time is fine).
  const evalCommit = (A: Pt[], x: bigint): Pt => {
    let acc = Point.ZERO;
    let xk = x;
    for (const Ak of A) {
      acc = acc.add(Ak.multiplyUnsafe(xk));
      xk = Fn.mul(xk, x);
    }
    return acc;
  };

  return {
    rounds: 2,
    round(r, input) {
      if (r !== step + 1) throw new ProtocolError(`round ${r} out of order`);
      step = r;
      if (r === 1) {
        coeffs = [];
        for (let k = 1; k < t; k++) coeffs.push(Fn.fromBytes(suite.frost.utils.randomScalar(randomBytes)));
        commitments[self] = coeffs.map((a) => Point.BASE.multiply(a));
        return { broadcast: { commitments: commitments[self].map((A) => bytesToHex(A.toBytes(true))) } };
      }
      if (r === 2) {
        expectFrom(input, 'broadcast', others);
        for (const q of others) {
          const m = input.broadcast[q] as { commitments?: unknown };
          const list = hexList(m?.commitments, q, 'commitments', t - 1);
          commitments[q] = list.map((b, i) => {
            try {
              const P = Point.fromBytes(b);
              if (P.is0()) throw new Error('identity');
              return P;
            } catch {
              throw new ProtocolError(`party ${q}: commitments[${i}] is not a valid point`, q);
            }
          });
        }
        const direct: Record<number, Json> = {};
        for (const q of others) direct[q] = { delta: bytesToHex(Fn.toBytes(evalZeroPoly(coeffs, scalarOf(suite, q)))) };
        return { direct };
      }
      throw new ProtocolError(`no round ${r}`);
    },
    finish(input) {
      if (step !== 2) throw new ProtocolError('finish before round 2');
      step = 3;
      expectFrom(input, 'direct', others);
      const me = scalarOf(suite, self);
      let sum = evalZeroPoly(coeffs, me);
      for (const q of others) {
        const m = input.direct[q] as { delta?: unknown };
        const d = Fn.fromBytes(hexField(m?.delta, q, 'delta', 32));
        if (!Point.BASE.multiplyUnsafe(d).equals(evalCommit(commitments[q], me)))
          throw new ProtocolError(`party ${q} sent a refresh share that does not match its commitment`, q);
        sum = Fn.add(sum, d);
      }
      coeffs.fill(0n);
      const newShare = Fn.add(Fn.fromBytes(secret.signingShare), sum);
      // Public update: VSS commitment k += Σ_j A_{j,k}; verifying share of i += Σ_j δ_j(i)·G.
      const newCommitments = pub.commitments.map((c, k) => {
        let P = Point.fromBytes(Uint8Array.from(c));
        if (k > 0) for (const q of parties) P = P.add(commitments[q][k - 1]);
        return P.toBytes(true);
      });
      const newVerifying: Record<string, Uint8Array> = {};
      for (const q of parties) {
        const id = identifier(suite, q);
        let Y = Point.fromBytes(Uint8Array.from(pub.verifyingShares[id]));
        for (const j of parties) Y = Y.add(evalCommit(commitments[j], scalarOf(suite, q)));
        newVerifying[id] = Y.toBytes(true);
      }
      const newPub = { signers: pub.signers, commitments: newCommitments, verifyingShares: newVerifying } as FrostPublic;
      const newSecret = { identifier: secret.identifier, signingShare: Fn.toBytes(newShare) } as FrostSecret;
      // The new share must match the new public package (RFC 9591 Appendix C.2 vss_verify).
      suite.frost.validateSecret(newSecret, newPub);
      const { frost: _old, ...extra } = p.public.extra ?? {};
      return { public: groupPublicOf(suite, newPub, parties, extra as Record<string, Json>), share: shareJson(self, newSecret.signingShare) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Signing (RFC 9591 §5): commitments are made ahead of time (§5.1 allows it; the signer node
// stores the nonces sealed and consumes each durably before use), so a signature takes one round.

export interface NonceJson {
  hiding: string;
  binding: string;
}
export type CommitmentJson = NonceJson;

/**
 * RFC 9591 §5.1 commit(): fresh hedged nonces bound to this share, and their public commitments.
 * Signing runs on the WebAssembly groups (src/crypto/frost-sign.ts); `backend: 'noble'` runs the
 * same steps on noble's points, the reference the tests compare against.
 */
export function frostCommit(name: SuiteName, share: SecretShare, backend: Backend = 'wasm'): { nonces: NonceJson; commitment: CommitmentJson } {
  const s = signingSuite(name, backend);
  const g = commit(s, signingShareOf(share));
  return {
    nonces: { hiding: bytesToHex(g.hiding), binding: bytesToHex(g.binding) },
    commitment: { hiding: bytesToHex(g.commitment.hiding), binding: bytesToHex(g.commitment.binding) },
  };
}

function signingShareOf(share: SecretShare): Uint8Array {
  const s = share.secret as { signingShare?: unknown };
  if (typeof s?.signingShare !== 'string' || !/^[0-9a-f]{64}$/i.test(s.signingShare)) throw new ProtocolError('malformed secret share');
  return hexToBytes(s.signingShare);
}

function commitmentList(commitments: Record<number, CommitmentJson>): Commitment[] {
  return Object.keys(commitments)
    .map(Number)
    .sort((a, b) => a - b)
    .map((i) => ({
      id: i,
      hiding: hexField(commitments[i]?.hiding, i, 'hiding commitment'),
      binding: hexField(commitments[i]?.binding, i, 'binding commitment'),
    }));
}

function signingPublic(pub: GroupPublic): SigningPublic {
  const j = pub.extra?.frost as FrostPublicJson | undefined;
  if (!j || !Array.isArray(j.commitments) || typeof j.commitments[0] !== 'string') throw new ProtocolError('group public package has no FROST data');
  return { groupKey: hexToBytes(j.commitments[0]), min: pub.threshold, max: pub.parties.length };
}

function verifyingShareOf(suite: Suite, pub: GroupPublic, i: PartyIndex): Uint8Array {
  const j = pub.extra?.frost as FrostPublicJson | undefined;
  const v = j?.verifyingShares?.[identifier(suite, i)];
  if (typeof v !== 'string') throw new ProtocolError(`no verifying share for party ${i}`, i);
  return hexToBytes(v);
}

/**
 * RFC 9591 §5.2 sign(): this party's signature share. Refuses a commitment list whose entry for
 * this party does not match its nonces, and zeroes the nonce bytes afterwards.
 */
export function frostSignShare(
  name: SuiteName,
  share: SecretShare,
  pub: GroupPublic,
  nonces: NonceJson,
  commitments: Record<number, CommitmentJson>,
  message: Uint8Array,
  backend: Backend = 'wasm',
): string {
  const n = { hiding: hexToBytes(nonces.hiding), binding: hexToBytes(nonces.binding) };
  const sk = signingShareOf(share);
  try {
    return bytesToHex(signShare(signingSuite(name, backend), share.index, sk, signingPublic(pub), n, commitmentList(commitments), message));
  } finally {
    n.hiding.fill(0);
    n.binding.fill(0);
    sk.fill(0);
  }
}

/**
 * RFC 9591 §5.3 aggregate() and §5.4 share verification. On a bad share, the error names the
 * cheating parties (the aggregate is checked, and only on failure each share). An Ed25519 or BIP340
 * aggregate is returned only if the plain RFC 8032 / BIP340 verifier accepts it (`verifyPlain`:
 * libsodium, libsecp256k1), which is the check that names cheaters when it fails.
 */
export function frostAggregate(
  name: SuiteName,
  pub: GroupPublic,
  commitments: Record<number, CommitmentJson>,
  message: Uint8Array,
  shares: Record<number, string>,
  backend: Backend = 'wasm',
): Uint8Array {
  const suite = SUITES[name];
  const sigShares = new Map<number, Uint8Array>();
  const verifying = new Map<number, Uint8Array>();
  for (const [i, s] of Object.entries(shares)) {
    sigShares.set(Number(i), hexField(s, Number(i), 'signature share', 32));
    verifying.set(Number(i), verifyingShareOf(suite, pub, Number(i)));
  }
  try {
    const plain = name === 'ed25519' || name === 'secp256k1-schnorr' ? (sig: Uint8Array) => verifyPlain(name, hexToBytes(pub.publicKey), message, sig) : undefined;
    return aggregate(signingSuite(name, backend), signingPublic(pub), verifying, commitmentList(commitments), message, sigShares, plain);
  } catch (e) {
    const cheaters = (e as { cheaters?: number[] }).cheaters ?? [];
    if (cheaters.length) throw new ProtocolError(`invalid signature share from part${cheaters.length > 1 ? 'ies' : 'y'} ${cheaters.join(', ')}`, cheaters[0]);
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`aggregation failed: ${(e as Error).message}`);
  }
}

/** RFC 9591 §5.4: is this one party's share valid? Used to blame before aggregating. */
export function frostVerifyShare(
  name: SuiteName,
  pub: GroupPublic,
  commitments: Record<number, CommitmentJson>,
  message: Uint8Array,
  party: PartyIndex,
  share: string,
  backend: Backend = 'wasm',
): boolean {
  try {
    return verifyShare(signingSuite(name, backend), signingPublic(pub), verifyingShareOf(SUITES[name], pub, party), commitmentList(commitments), message, party, hexToBytes(share));
  } catch {
    return false;
  }
}

/** Independent verification of a final signature: RFC 8032 Ed25519 or BIP340, not FROST code. */
export function frostVerify(name: SuiteName, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return SUITES[name].verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Single-key signing with the same curve library: the benchmark baseline and test oracle. */
export function singleKeySign(name: FrostSchemeName, secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return name === 'ed25519' ? ed25519.sign(message, secretKey) : schnorr.sign(message, secretKey);
}
