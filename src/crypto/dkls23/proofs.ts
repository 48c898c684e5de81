/**
 * Schnorr proof of knowledge of a discrete logarithm (Fiat-Shamir in the ROM) and hash commitments.
 *
 * DKLs23 (ePrint 2023/765) uses F_Com and F_ZK^{R_DL} as ideal functionalities in its setup
 * (Section 3 and the DKG it references). We instantiate F_Com with a salted random-oracle
 * commitment and F_ZK^{R_DL} with a Fiat-Shamir Schnorr proof whose challenge binds the session id,
 * the prover index and a purpose label. NOTE: Fiat-Shamir gives a rewinding extractor, not the
 * straight-line (Fischlin / UC) extractor a UC proof of DKLs23 assumes; see README "Deviations".
 */
import { Fn, H, Point, bytesToHex, concatBytes, ctEqual, hashToScalar, mulG, mulPublic, parsePoint, parseScalar, pointToHex, randomScalar, type Rng } from './util.ts';
import type { Json } from '../types.ts';

export interface SchnorrProof {
  R: string;
  s: string;
}

export function schnorrProve(x: bigint, X: Point, ctx: Uint8Array, rng: Rng): SchnorrProof {
  const k = randomScalar(rng);
  const R = mulG(k);
  const c = hashToScalar('schnorr-dl', ctx, X.toBytes(true), R.toBytes(true));
  const s = Fn.add(k, Fn.mul(c, x));
  return { R: pointToHex(R), s: bytesToHex(Fn.toBytes(s)) };
}

/** Verifies s·G == R + c·X. Throws ProtocolError(culprit) on malformed input, returns false if the equation fails. */
export function schnorrVerify(proof: unknown, X: Point, ctx: Uint8Array, culprit: number): boolean {
  const p = proof as Record<string, Json>;
  const R = parsePoint(p?.R, 'schnorr R', culprit);
  const s = parseScalar(p?.s, 'schnorr s', culprit);
  const c = hashToScalar('schnorr-dl', ctx, X.toBytes(true), R.toBytes(true));
  return mulG(s).equals(R.add(mulPublic(X, c)));
}

/** Salted random-oracle commitment (F_Com). */
export function commit(tag: string, ctx: Uint8Array, salt: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  return H('commit/' + tag, ctx, salt, ...data);
}
export function checkCommit(expected: Uint8Array, tag: string, ctx: Uint8Array, salt: Uint8Array, ...data: Uint8Array[]): boolean {
  return ctEqual(expected, commit(tag, ctx, salt, ...data));
}
export const ctxOf = (...parts: Uint8Array[]) => concatBytes(...parts);
