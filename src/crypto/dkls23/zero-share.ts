/**
 * F_Zero: non-interactive additive sharings of zero among any signer subset (DKLs23 Functionality
 * 3.4 and its realisation from pairwise PRF seeds). At setup every pair {i, j} agrees on a seed by
 * commit-then-open of two contributions (so neither party chooses it alone); at signing time
 *   ζ_i = Σ_{j ∈ S, j ≠ i} sgn(j − i) · PRF(seed_{i,j}, sid)      with Σ_{i ∈ S} ζ_i = 0.
 * PRF = random oracle onto Z_q keyed by the seed.
 */
import { commit, checkCommit } from './proofs.ts';
import { Fn, H, be32, hashToScalar } from './util.ts';

export function zeroSeedCommit(sid: Uint8Array, from: number, to: number, seed: Uint8Array, salt: Uint8Array): Uint8Array {
  return commit('zero-seed', H('zero-ctx', sid, be32(from), be32(to)), salt, seed);
}
export function zeroSeedCheck(com: Uint8Array, sid: Uint8Array, from: number, to: number, seed: Uint8Array, salt: Uint8Array): boolean {
  return checkCommit(com, 'zero-seed', H('zero-ctx', sid, be32(from), be32(to)), salt, seed);
}
/** The pair seed from both contributions, symmetric in (i, j). */
export function zeroPairSeed(sid: Uint8Array, i: number, seedI: Uint8Array, j: number, seedJ: Uint8Array): Uint8Array {
  return i < j ? H('zero-pair', sid, be32(i), seedI, be32(j), seedJ) : H('zero-pair', sid, be32(j), seedJ, be32(i), seedI);
}
export function zeroShare(self: number, signers: number[], seeds: Map<number, Uint8Array>, sid: Uint8Array): bigint {
  let z = Fn.ZERO;
  for (const j of signers) {
    if (j === self) continue;
    const seed = seeds.get(j);
    if (!seed) throw new Error(`no zero-share seed for party ${j}`);
    const v = hashToScalar('zero-prf', seed, sid);
    z = self < j ? Fn.add(z, v) : Fn.sub(z, v);
  }
  return z;
}
