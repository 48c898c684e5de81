/**
 * BIP32 non-hardened child derivation (CKDpub, BIP-0032 "Public parent key → public child key")
 * applied to a threshold key: I = HMAC-SHA512(c_par, ser_P(K_par) ‖ ser_32(i)), IL = parse_256(I_L),
 * K_i = K_par + IL·G, c_i = I_R. Every party adds the same public tweak IL to its Shamir share
 * (x_k + IL is a sharing of sk + IL because Lagrange coefficients sum to 1), and every verifying
 * share moves by IL·G. The pairwise OT / zero-share state is reused unchanged: signing binds the
 * public key and chain code into its session id, so parent and child sessions are separated.
 * Hardened derivation (i ≥ 2^31) needs the private key and is rejected.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { ProtocolError, type GroupPublic, type SecretShare } from '../types.ts';
import { decodePublic, decodeShare, encodePublic, encodeShare, type PublicState } from './share.ts';
import { Fn, Point, Q, be32, concatBytes, mulG } from './util.ts';

function tweak(pub: PublicState, index: number): { il: bigint; child: PublicState } {
  if (!Number.isInteger(index) || index < 0 || index >= 0x80000000) throw new ProtocolError('derive: index must be a non-hardened integer in [0, 2^31)');
  const I = hmac(sha512, pub.chainCode, concatBytes(pub.X.toBytes(true), be32(index)));
  const il = bytesToNumberBE(I.subarray(0, 32));
  // BIP32: "In case parse_256(I_L) ≥ n or K_i is the point at infinity, the resulting key is invalid".
  if (il >= Q) throw new ProtocolError('derive: I_L ≥ n, child key invalid (BIP32: use the next index)');
  const T = mulG(il);
  const X = pub.X.add(T);
  if (X.is0()) throw new ProtocolError('derive: child key is the point at infinity (BIP32: use the next index)');
  const verifying = new Map<number, Point>();
  for (const [k, P] of pub.verifying) verifying.set(k, P.add(T));
  return { il, child: { ...pub, X, verifying, chainCode: I.slice(32) } };
}

/** Child GroupPublic only (for watch-only use / address derivation). */
export function deriveChildPublic(pub: GroupPublic, index: number): GroupPublic {
  return encodePublic(tweak(decodePublic(pub), index).child);
}

/** Child GroupPublic and this party's child share (local, no interaction). */
export function deriveChild(pub: GroupPublic, share: SecretShare, index: number): { public: GroupPublic; share: SecretShare } {
  const p = decodePublic(pub);
  const s = decodeShare(share, p);
  const { il, child } = tweak(p, index);
  return { public: encodePublic(child), share: encodeShare({ ...s, x: Fn.add(s.x, il) }) };
}

/** Convenience: derive along a path like "m/0/1/7" (non-hardened steps only). */
export function derivePath(pub: GroupPublic, share: SecretShare, path: string): { public: GroupPublic; share: SecretShare } {
  let cur = { public: pub, share };
  for (const i of parsePath(path)) cur = deriveChild(cur.public, cur.share, i);
  return cur;
}
export function derivePathPublic(pub: GroupPublic, path: string): GroupPublic {
  let cur = pub;
  for (const i of parsePath(path)) cur = deriveChildPublic(cur, i);
  return cur;
}
function parsePath(path: string): number[] {
  if (!/^m(\/\d+)*$/.test(path)) throw new ProtocolError('derive: path must look like m/0/1 (no hardened steps)');
  return path.split('/').slice(1).map(Number);
}
