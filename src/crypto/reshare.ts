/**
 * Redistribution of a threshold key to a new committee (new n, new t, same secret, same public key).
 *
 * The protocol is the classic verifiable secret redistribution of Desmedt–Jajodia ("Redistributing
 * secret shares to new access structures and its applications", GMU tech. report ISSE-TR-97-01,
 * 1997) with the Feldman checks of Wong–Wang–Wing ("Verifiable secret redistribution for archive
 * systems", IEEE SISW 2002, §4), in one broadcast-plus-direct round:
 *
 *  D  a set of exactly t_old old holders (the dealers), old Shamir indexes i ∈ D, shares s_i,
 *     public verifying shares Y_i = s_i·G, group key X = Σ_{i∈D} λ_i·Y_i (λ_i Lagrange at 0 over D).
 *  R1 dealer i picks g_i(x) = λ_i·s_i + a_{i,1}·x + … + a_{i,t'-1}·x^{t'-1}, broadcasts the Feldman
 *     commitment C_{i,k} = a_{i,k}·G (C_{i,0} = λ_i·s_i·G) and sends g_i(j) to each new holder j.
 *  finish, at new holder j, for every dealer i (aborting and naming i on the first failure):
 *     (WWW check 1) C_{i,0} = λ_i·Y_i       — the dealer dealt its real old share, nothing else;
 *     (WWW check 2) g_i(j)·G = Σ_k j^k·C_{i,k} — the sub-share lies on the committed polynomial;
 *     then Σ_i C_{i,0} = X                  — the redistributed secret is the group secret;
 *     new share x'_j = Σ_i g_i(j); new VSS commitment C'_k = Σ_i C_{i,k}; new verifying share of
 *     every new holder m: Y'_m = Σ_k m^k·C'_k; and x'_j·G = Y'_j.
 *  Every party (dealers too) ends with the same public package; the signer nodes then sign it, and a
 *  share activates only when every party of the session signed the same package (src/signer/node.ts),
 *  which is also the echo that catches a dealer who broadcast different commitments to different
 *  holders (their sums, hence the packages, would differ).
 *
 * The new sharing is independent of the old one (fresh random a_{i,k}), so the old shares of any
 * set of old holders, together with fewer than t' new shares, say nothing about the secret.
 *
 * For FROST the result is a full RFC 9591 key package (checked with noble's `validateSecret`). For
 * ecdsa-secp256k1 the result is the redistributed Shamir share only: DKLs23 also needs pairwise OT
 * and zero-sharing state between every pair of holders, which `dkls23.pairSetup` then builds among
 * the new committee (fresh base OTs, a refresh of the new sharing; src/crypto/dkls23/dkg.ts).
 *
 * Field and group arithmetic is noble's; nothing here implements a primitive.
 */
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST, secp256k1 } from '@noble/curves/secp256k1.js';
import type { CurvePoint, CurvePointCons } from '@noble/curves/abstract/curve.js';
import type { FrostPublic, FrostSecret } from '@noble/curves/abstract/frost.js';
import { mapHashToField } from '@noble/curves/abstract/modular.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { frostPublicOf } from './frost.ts';
import { ProtocolError, type GroupPublic, type Json, type PartyIndex, type PartyProtocol, type RoundInput, type SecretShare } from './types.ts';

export type ReshareScheme = 'ed25519' | 'secp256k1-schnorr' | 'ecdsa-secp256k1';

/** Who deals and who receives: session party numbers (transport) mapped to Shamir indexes. */
export interface ResharePlan {
  /** Exactly t_old of the current holders: session party → its old Shamir index. */
  dealers: { party: PartyIndex; index: number }[];
  /** The whole new committee: session party → its new Shamir index. */
  receivers: { party: PartyIndex; index: number }[];
  /** The new threshold t' (2 ≤ t' ≤ receivers). */
  threshold: number;
}

export interface ReshareParams {
  scheme: ReshareScheme;
  /** This party's session number. */
  self: PartyIndex;
  plan: ResharePlan;
  /** The current group package (every party must be given the same; the key is checked against the dealers' commitments). */
  old: GroupPublic;
  /** This party's current share: required if it is a dealer, ignored otherwise. */
  share?: SecretShare;
  sessionId: string;
}

/** The new public package for everyone; a share only for new holders. */
export interface ReshareResult {
  public: GroupPublic;
  share?: SecretShare;
}

/** noble's point classes, one per scheme; every scalar and point operation below is theirs. */
type Pt = CurvePoint<bigint, any>;
type Group = CurvePointCons<Pt>;

const GROUPS: Record<ReshareScheme, Group> = {
  ed25519: ed25519.Point,
  'secp256k1-schnorr': schnorr.Point,
  'ecdsa-secp256k1': secp256k1.Point,
};
const SCALAR_BYTES = 32;

const DKLS_SCHEME = 'ecdsa-secp256k1-dkls23';

/** Checks a plan on its own: distinct parties and indexes, t' in 2..n', at least one dealer. */
export function checkPlan(plan: ResharePlan): void {
  const { dealers, receivers, threshold } = plan;
  const ints = (xs: number[], what: string) => {
    for (const x of xs) if (!Number.isSafeInteger(x) || x < 1 || x > 255) throw new ProtocolError(`reshare: ${what} ${x} is not in 1..255`);
    if (new Set(xs).size !== xs.length) throw new ProtocolError(`reshare: duplicate ${what}`);
  };
  if (!Array.isArray(dealers) || !Array.isArray(receivers) || dealers.length < 1 || receivers.length < 1) throw new ProtocolError('reshare: need dealers and receivers');
  ints(dealers.map((d) => d.party), 'dealer party');
  ints(dealers.map((d) => d.index), 'dealer index');
  ints(receivers.map((r) => r.party), 'receiver party');
  ints(receivers.map((r) => r.index), 'receiver index');
  if (!Number.isSafeInteger(threshold) || threshold < 2 || threshold > receivers.length)
    throw new ProtocolError(`reshare: new threshold ${threshold} must be in 2..${receivers.length}`);
}

/** Public view of the old package the protocol needs: group key point and verifying share by Shamir index. */
function oldPublic(scheme: ReshareScheme, g: Group, old: GroupPublic): { X: Pt; Y: (i: number) => Pt } {
  if (scheme === 'ecdsa-secp256k1') {
    if (old.extra?.scheme !== DKLS_SCHEME) throw new ProtocolError('reshare: old package is not a DKLs23 package');
    const X = point(g, old.publicKey, 'old public key');
    return { X, Y: (i) => point(g, old.verifyingShares?.[i], `old verifying share ${i}`) };
  }
  const fp = frostPublicOf(old);
  const X = g.fromBytes(Uint8Array.from(fp.commitments[0]));
  const fr = scheme === 'ed25519' ? ed25519_FROST : schnorr_FROST;
  return {
    X,
    Y: (i) => {
      const v = fp.verifyingShares[fr.Identifier.fromNumber(i)];
      if (!v) throw new ProtocolError(`reshare: old package has no verifying share for index ${i}`);
      return g.fromBytes(Uint8Array.from(v));
    },
  };
}

function point(g: Group, v: unknown, what: string, culprit?: number): Pt {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})+$/.test(v)) throw new ProtocolError(`reshare: ${what} is not hex`, culprit);
  let P: Pt;
  try {
    P = g.fromBytes(hexToBytes(v));
  } catch {
    throw new ProtocolError(`reshare: ${what} is not a valid point`, culprit);
  }
  if (P.is0()) throw new ProtocolError(`reshare: ${what} is the identity`, culprit);
  return P;
}

function scalar(g: Group, v: unknown, what: string, culprit?: number): bigint {
  if (typeof v !== 'string' || v.length !== 2 * SCALAR_BYTES || !/^[0-9a-f]+$/.test(v)) throw new ProtocolError(`reshare: ${what} is not a ${SCALAR_BYTES}-byte hex scalar`, culprit);
  try {
    return g.Fn.fromBytes(hexToBytes(v)); // noble refuses values ≥ the group order
  } catch {
    throw new ProtocolError(`reshare: ${what} is out of range`, culprit);
  }
}

/** λ_i = Π_{j≠i} j / (j − i) over the dealers' old indexes (interpolation at zero). */
function lagrangeAtZero(g: Group, i: number, set: number[]): bigint {
  const others = set.filter((j) => j !== i).map(BigInt);
  const num = others.reduce((acc, j) => g.Fn.mul(acc, j), g.Fn.ONE);
  const den = others.reduce((acc, j) => g.Fn.mul(acc, g.Fn.sub(j, BigInt(i))), g.Fn.ONE);
  return g.Fn.div(num, den);
}

function polyEval(g: Group, a: bigint[], x: number): bigint {
  const X = BigInt(x);
  let acc = g.Fn.ZERO;
  for (let k = a.length - 1; k >= 0; k--) acc = g.Fn.add(g.Fn.mul(acc, X), a[k]);
  return acc;
}

function commitEval(g: Group, C: Pt[], x: number): Pt {
  const X = BigInt(x);
  let acc = g.ZERO;
  let pow = 1n;
  for (const c of C) {
    acc = acc.add(c.multiplyUnsafe(pow));
    pow = g.Fn.mul(pow, X);
  }
  return acc;
}

const enc = (P: Pt) => bytesToHex((P as { toBytes(compressed?: boolean): Uint8Array }).toBytes(true));

/**
 * The session binding every message carries: the caller's session id, the scheme, the old group key
 * and the whole plan. A message made for another run, or for this run under another plan, is refused.
 */
function bindingOf(p: ReshareParams, X: Pt): string {
  const plan = {
    dealers: [...p.plan.dealers].sort((a, b) => a.party - b.party),
    receivers: [...p.plan.receivers].sort((a, b) => a.party - b.party),
    threshold: p.plan.threshold,
  };
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify(['fleetkey/reshare/v1', p.sessionId, p.scheme, enc(X), plan]))));
}

/** One party's side of the redistribution (a dealer, a new holder, or both). One round. */
export function reshare(p: ReshareParams): PartyProtocol<ReshareResult> {
  checkPlan(p.plan);
  const g = GROUPS[p.scheme];
  if (!g) throw new ProtocolError(`reshare: unknown scheme ${String(p.scheme)}`);
  const Fn = g.Fn;
  const { dealers, receivers, threshold: t2 } = p.plan;
  if (dealers.length !== p.old.threshold) throw new ProtocolError(`reshare: need exactly ${p.old.threshold} dealers (the old threshold), got ${dealers.length}`);
  for (const d of dealers) if (!p.old.parties.includes(d.index)) throw new ProtocolError(`reshare: dealer index ${d.index} is not an old holder`);
  const me = { dealer: dealers.find((d) => d.party === p.self), receiver: receivers.find((r) => r.party === p.self) };
  if (!me.dealer && !me.receiver) throw new ProtocolError('reshare: self is neither a dealer nor a receiver');
  const { X, Y } = oldPublic(p.scheme, g, p.old);
  const sid = bindingOf(p, X);
  const dealerSet = dealers.map((d) => d.index);
  let coeffs: bigint[] = [];
  let step = 0;

  return {
    rounds: 1,
    round(r) {
      if (r !== 1 || step !== 0) throw new ProtocolError(`reshare: round ${r} out of order`);
      step = 1;
      if (!me.dealer) return {};
      // The dealer's own share, checked against its public verifying share before it deals anything.
      const s = ownShare(p, g, me.dealer.index);
      if (!g.BASE.multiply(s).equals(Y(me.dealer.index))) throw new ProtocolError('reshare: this share does not match its verifying share (stale share?)');
      coeffs = [Fn.mul(lagrangeAtZero(g, me.dealer.index, dealerSet), s)];
      for (let k = 1; k < t2; k++) coeffs.push(randomScalar(g));
      const C = coeffs.map((a) => g.BASE.multiply(a));
      const direct: Record<number, Json> = {};
      for (const rc of receivers) if (rc.party !== p.self) direct[rc.party] = { sid, sub: bytesToHex(Fn.toBytes(polyEval(g, coeffs, rc.index))) };
      return { broadcast: { sid, C: C.map(enc) }, direct };
    },
    finish(input: RoundInput) {
      if (step !== 1) throw new ProtocolError('reshare: finish before round 1');
      step = 2;
      try {
        return finishInner(input);
      } finally {
        coeffs.fill(0n);
        coeffs = [];
      }
    },
  };

  function finishInner(input: RoundInput): ReshareResult {
    // Exactly the dealers' broadcasts; exactly one direct message from each other dealer if self receives.
    for (const k of Object.keys(input.broadcast)) if (!dealers.some((d) => d.party === Number(k))) throw new ProtocolError(`reshare: broadcast from ${k}, who is not a dealer`, Number(k));
    for (const k of Object.keys(input.direct)) if (!me.receiver || !dealers.some((d) => d.party === Number(k))) throw new ProtocolError(`reshare: direct message from ${k}, who is not a dealer`, Number(k));
    const polys = new Map<number, Pt[]>();
    for (const d of dealers) {
      let C: Pt[];
      if (d.party === p.self) C = coeffs.map((a) => g.BASE.multiply(a));
      else {
        const b = input.broadcast[d.party] as { sid?: unknown; C?: unknown } | undefined;
        if (!b) throw new ProtocolError(`reshare: missing commitment from dealer ${d.party}`, d.party);
        if (b.sid !== sid) throw new ProtocolError(`reshare: dealer ${d.party} sent a commitment for another session or plan`, d.party);
        if (!Array.isArray(b.C) || b.C.length !== t2) throw new ProtocolError(`reshare: dealer ${d.party} must commit to ${t2} coefficients`, d.party);
        C = b.C.map((v, k) => point(g, v, `dealer ${d.party} commitment ${k}`, d.party));
      }
      // Wong–Wang–Wing check 1: the constant term is λ_i·Y_i, the dealer's real old share.
      if (!C[0].equals(Y(d.index).multiplyUnsafe(lagrangeAtZero(g, d.index, dealerSet))))
        throw new ProtocolError(`reshare: dealer ${d.party} committed to something other than its share`, d.party);
      polys.set(d.party, C);
    }
    let sum = g.ZERO;
    for (const C of polys.values()) sum = sum.add(C[0]);
    if (!sum.equals(X)) throw new ProtocolError('reshare: the dealt secret is not the group secret');
    const newC: Pt[] = [];
    for (let k = 0; k < t2; k++) {
      let acc = g.ZERO;
      for (const C of polys.values()) acc = acc.add(C[k]);
      newC.push(acc);
    }
    const verifying = new Map<number, Pt>();
    for (const rc of receivers) {
      const V = commitEval(g, newC, rc.index);
      if (V.is0()) throw new ProtocolError(`reshare: verifying share of new index ${rc.index} is the identity`);
      verifying.set(rc.index, V);
    }
    let share: bigint | undefined;
    if (me.receiver) {
      let x = Fn.ZERO;
      for (const d of dealers) {
        let sub: bigint;
        if (d.party === p.self) sub = polyEval(g, coeffs, me.receiver.index);
        else {
          const m = input.direct[d.party] as { sid?: unknown; sub?: unknown } | undefined;
          if (!m) throw new ProtocolError(`reshare: missing sub-share from dealer ${d.party}`, d.party);
          if (m.sid !== sid) throw new ProtocolError(`reshare: dealer ${d.party} sent a sub-share for another session or plan`, d.party);
          sub = scalar(g, m.sub, `dealer ${d.party} sub-share`, d.party);
          // Wong–Wang–Wing check 2: the sub-share lies on the committed polynomial.
          if (!g.BASE.multiplyUnsafe(sub).equals(commitEval(g, polys.get(d.party)!, me.receiver.index)))
            throw new ProtocolError(`reshare: dealer ${d.party} sent a sub-share that does not match its commitment`, d.party);
        }
        x = Fn.add(x, sub);
      }
      if (!g.BASE.multiply(x).equals(verifying.get(me.receiver.index)!)) throw new ProtocolError('reshare: new share does not match its verifying share');
      share = x;
    }
    const indexes = receivers.map((r) => r.index).sort((a, b) => a - b);
    const out = p.scheme === 'ecdsa-secp256k1' ? dklsResult(g, p.old, X, t2, indexes, verifying, share, me.receiver?.index) : frostResult(p.scheme, g, p.old, newC, t2, indexes, verifying, share, me.receiver?.index);
    share = undefined;
    return out;
  }
}

function ownShare(p: ReshareParams, g: Group, index: number): bigint {
  const sec = p.share?.secret as { signingShare?: unknown; x?: unknown } | undefined;
  if (!p.share || p.share.index !== index || !sec) throw new ProtocolError('reshare: a dealer needs its own current share');
  const v = p.scheme === 'ecdsa-secp256k1' ? sec.x : sec.signingShare;
  return scalar(g, v, 'own share');
}

/** A uniform non-zero scalar: 48 CSPRNG bytes through noble's `mapHashToField` (FIPS 186-5 A.4.1, bias < 2^-128). */
function randomScalar(g: Group): bigint {
  const b = randomBytes(48);
  const s = bytesToNumberBE(mapHashToField(b, g.Fn.ORDER));
  b.fill(0);
  return s;
}

function frostResult(scheme: 'ed25519' | 'secp256k1-schnorr', g: Group, old: GroupPublic, newC: Pt[], t2: number, indexes: number[], verifying: Map<number, Pt>, share: bigint | undefined, myIndex: number | undefined): ReshareResult {
  const fr = scheme === 'ed25519' ? ed25519_FROST : schnorr_FROST;
  const frostJson = {
    commitments: newC.map(enc),
    verifyingShares: Object.fromEntries(indexes.map((i) => [fr.Identifier.fromNumber(i), enc(verifying.get(i)!)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  const { frost: _old, ...extra } = old.extra ?? {};
  const gp: GroupPublic = {
    publicKey: old.publicKey,
    threshold: t2,
    parties: indexes,
    verifyingShares: Object.fromEntries(indexes.map((i) => [i, enc(verifying.get(i)!)])),
    extra: { ...(extra as Record<string, Json>), frost: frostJson },
  };
  const fp: FrostPublic = frostPublicOf(gp);
  if (share === undefined) return { public: gp };
  const secret = { identifier: fr.Identifier.fromNumber(myIndex!), signingShare: g.Fn.toBytes(share) } as FrostSecret;
  // RFC 9591 Appendix C.2 vss_verify against the new package, by noble.
  fr.validateSecret(secret, fp);
  return { public: gp, share: { index: myIndex!, secret: { signingShare: bytesToHex(secret.signingShare) } } };
}

function dklsResult(g: Group, old: GroupPublic, X: Pt, t2: number, indexes: number[], verifying: Map<number, Pt>, share: bigint | undefined, myIndex: number | undefined): ReshareResult {
  const gp: GroupPublic = {
    publicKey: enc(X),
    threshold: t2,
    parties: indexes,
    verifyingShares: Object.fromEntries(indexes.map((i) => [i, enc(verifying.get(i)!)])),
    extra: { scheme: DKLS_SCHEME, chainCode: old.extra?.chainCode as string },
  };
  if (share === undefined) return { public: gp };
  // Staged: no pairwise state yet; dkls23.pairSetup builds it among the new committee before any signing.
  return { public: gp, share: { index: myIndex!, secret: { scheme: DKLS_SCHEME, x: bytesToHex(g.Fn.toBytes(share)), staged: true } } };
}
