/** Encoding and boundary validation of GroupPublic / SecretShare for ecdsa-secp256k1 (DKLs23). */
import { ProtocolError, type GroupPublic, type Json, type SecretShare } from '../types.ts';
import { KAPPA } from './ot/extension.ts';
import type { OteReceiverSetup, OteSenderSetup } from './ot/extension.ts';
import { validateParties } from './session.ts';
import { Point, bytesToHex, concatBytes, isObj, lagrangeAtZero, mulG, mulPublic, parseBytes, parsePoint, parseScalar, pointToHex } from './util.ts';

export const SCHEME = 'ecdsa-secp256k1-dkls23';

export interface PairState {
  /** This party as multiplication Alice / OTE sender towards j: Δ and k_i^{Δ_i}. */
  sender: OteSenderSetup;
  /** This party as multiplication Bob / OTE receiver towards j: (k_i^0, k_i^1). */
  receiver: OteReceiverSetup;
  /** F_Zero seed shared with j. */
  zero: Uint8Array;
}
export interface ShareState {
  index: number;
  x: bigint;
  pairs: Map<number, PairState>;
}
export interface PublicState {
  X: Point;
  threshold: number;
  parties: number[];
  verifying: Map<number, Point>;
  chainCode: Uint8Array;
}

const cat = (l: Uint8Array[]) => bytesToHex(concatBytes(...l));
function split(b: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.slice(i, i + size));
  return out;
}

export function encodePublic(p: PublicState): GroupPublic {
  const verifyingShares: Record<number, string> = {};
  for (const k of p.parties) verifyingShares[k] = pointToHex(p.verifying.get(k)!);
  return {
    publicKey: pointToHex(p.X),
    threshold: p.threshold,
    parties: [...p.parties],
    verifyingShares,
    extra: { scheme: SCHEME, chainCode: bytesToHex(p.chainCode) },
  };
}

/**
 * Decoded GroupPublic values by canonical encoding (public data only, at most 64 kept): signing
 * decodes the same key on every request, and the boundary check below costs one variable-base
 * multiplication per threshold party. Callers treat a PublicState as read-only.
 */
const publicCache = new Map<string, PublicState>();

/** Validates a GroupPublic: encodings, threshold, and that the verifying shares interpolate to the key. */
export function decodePublic(g: GroupPublic): PublicState {
  if (!isObj(g)) throw new ProtocolError('public: not an object');
  let key: string | undefined;
  try {
    key = JSON.stringify([g.publicKey, g.threshold, g.parties, Array.isArray(g.parties) ? g.parties.map((k) => g.verifyingShares?.[k]) : null, g.extra?.scheme, g.extra?.chainCode]);
  } catch {
    key = undefined;
  }
  const hit = key === undefined ? undefined : publicCache.get(key);
  if (hit) return hit;
  const out = decodePublicUncached(g);
  if (key !== undefined) {
    if (publicCache.size >= 64) publicCache.delete(publicCache.keys().next().value!);
    publicCache.set(key, out);
  }
  return out;
}

function decodePublicUncached(g: GroupPublic): PublicState {
  if (g.extra?.scheme !== SCHEME) throw new ProtocolError(`public: scheme is not ${SCHEME}`);
  const parties = validateParties(g.parties, 'public.parties');
  const t = g.threshold;
  if (!Number.isInteger(t) || t < 2 || t > parties.length) throw new ProtocolError('public: threshold out of range');
  const X = parsePoint(g.publicKey, 'public key');
  const chainCode = parseBytes(g.extra?.chainCode, 32, 'chain code');
  const verifying = new Map<number, Point>();
  for (const k of parties) verifying.set(k, parsePoint(g.verifyingShares?.[k], `verifying share ${k}`));
  // All n verifying shares must lie on one polynomial of degree t − 1 whose value at 0 is X, so that
  // every t-subset interpolates to X (a share outside the first t is checked too: otherwise a signing
  // subset including it would be checked against a wrong X_k). Equivalently: the first t − 1 shares
  // with any one other share k interpolate to X. (n − t + 1 interpolations of t public points; the
  // result is cached by decodePublic.)
  const base = parties.slice(0, t - 1);
  for (const k of parties.slice(t - 1)) {
    const set = [...base, k];
    let acc = Point.ZERO;
    for (const m of set) acc = acc.add(mulPublic(verifying.get(m)!, lagrangeAtZero(m, set)));
    if (!acc.equals(X)) throw new ProtocolError(`public: verifying share ${k} does not interpolate to the public key with the others`);
  }
  return { X, threshold: t, parties, verifying, chainCode };
}

export function encodeShare(s: ShareState): SecretShare {
  const pairs: Record<string, Json> = {};
  for (const [j, p] of s.pairs) {
    pairs[j] = {
      delta: bytesToHex(p.sender.delta),
      seeds: cat(p.sender.seeds),
      seeds0: cat(p.receiver.seeds0),
      seeds1: cat(p.receiver.seeds1),
      zero: bytesToHex(p.zero),
    };
  }
  return { index: s.index, secret: { scheme: SCHEME, x: bytesToHex(Point.Fn.toBytes(s.x)), pairs } };
}

/** Validates a SecretShare against its GroupPublic (x·G must equal the party's verifying share). */
export function decodeShare(share: SecretShare, pub: PublicState): ShareState {
  if (!isObj(share) || !isObj(share.secret)) throw new ProtocolError('share: malformed');
  const index = share.index;
  if (!pub.parties.includes(index)) throw new ProtocolError('share: index not in public.parties');
  const sec = share.secret as Record<string, Json>;
  if (sec.scheme !== SCHEME) throw new ProtocolError(`share: scheme is not ${SCHEME}`);
  const x = parseScalar(sec.x, 'share x', undefined, false);
  if (!mulG(x).equals(pub.verifying.get(index)!)) throw new ProtocolError('share: does not match its verifying share (stale or foreign share?)');
  const pairs = new Map<number, PairState>();
  const P = sec.pairs as Record<string, Json>;
  if (!isObj(P)) throw new ProtocolError('share: pairs missing');
  for (const j of pub.parties) {
    if (j === index) continue;
    const p = P[j] as Record<string, Json>;
    if (!isObj(p)) throw new ProtocolError(`share: no pairwise state for party ${j}`);
    pairs.set(j, {
      sender: { delta: parseBytes(p.delta, KAPPA / 8, 'share delta'), seeds: split(parseBytes(p.seeds, KAPPA * 32, 'share seeds'), 32) },
      receiver: { seeds0: split(parseBytes(p.seeds0, KAPPA * 32, 'share seeds0'), 32), seeds1: split(parseBytes(p.seeds1, KAPPA * 32, 'share seeds1'), 32) },
      zero: parseBytes(p.zero, 32, 'share zero seed'),
    });
  }
  return { index, x, pairs };
}
