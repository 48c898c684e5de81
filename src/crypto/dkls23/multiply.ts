/**
 * Two-party random vector OLE, F_RVOLE (DKLs23 Functionality 3.5), realised as DKLs23 suggests by
 * DKLs19 (Doerner, Kondi, Lee, shelat, "Threshold ECDSA from ECDSA Assumptions: The Multiparty
 * Case", ePrint 2019/523) Protocol 1, in two messages (DKLs23 §5.1 / p. 8):
 *
 *   Bob (OTE receiver) samples γ ∈ {0,1}^ξ and *his input is* b = ⟨g, γ⟩ (random, DKLs23: Bob's
 *   input to F_RVOLE is chosen by the functionality), with g the public gadget vector.
 *   Alice (OTE sender) inputs a = (a_1..a_ℓ), ℓ = 2 for signing (r_i and sk_i).
 *
 *   msg 1 (Bob → Alice): the KOS extension message for choice bits γ.
 *   Alice: check KOS; sample pads ã, check values â ∈ Z_q^ℓ; correlated OT with α = (ã ‖ â) per j;
 *          χ̃, χ̂ = H(session, Bob's message, τ) — the challenge is derived *after* Alice's OT
 *          correlation is fixed (τ is in the hash); deriving it from Bob's message alone would let
 *          Alice choose ã_j, â_j per j that pass the check.
 *          r_{i,j} = χ̃_i·z̃_A,i,j + χ̂_i·ẑ_A,i,j;  u_i = χ̃_i·ã_i + χ̂_i·â_i;  γ_A = a − ã;
 *          output c_i = Σ_j g_j·z̃_A,i,j.
 *   msg 2 (Alice → Bob): τ, H(r) (DKLs23 §5.1: a hash of r instead of r), u, γ_A.
 *   Bob:   z_B from τ; check H(γ_j·u_i − χ̃_i·z̃_B,i,j − χ̂_i·ẑ_B,i,j) = H(r), else abort (Alice);
 *          output d_i = Σ_j g_j·z̃_B,i,j + b·γ_A,i.        Then c_i + d_i = a_i·b.
 */
import { ProtocolError } from '../types.ts';
import { ELL, oteReceiverStart, oteReceiverTransfer, oteSenderCheck, oteSenderTransfer, type OteMsg, type OteReceiverSetup, type OteSenderSetup } from './ot/extension.ts';
import { Fn, H, be32, bytesToHex, ctEqual, getBit, hashToScalar, hashToScalars, parseArray, parseBytes, parseScalar, randomScalar, scalarFromBytesFast, scalarToBytes, scalarToBytesFast, type Rng } from './util.ts';

/** Inputs per multiplication in signing (DKLs23 Protocol 3.6 multiplies by r_i and sk_i). */
export const L = 2;

let gadgetCache: bigint[] | undefined;
/**
 * Public gadget vector g ∈ Z_q^ξ. DKLs19 uses a public random vector; we take a fixed
 * nothing-up-my-sleeve one from the random oracle (0xCarbon/mpecdsa derive it per pair from a nonce,
 * which is equivalent in the ROM).
 */
export function gadget(): bigint[] {
  if (!gadgetCache) {
    gadgetCache = [];
    for (let j = 0; j < ELL; j++) gadgetCache.push(hashToScalar('rvole-gadget', be32(j)));
  }
  return gadgetCache;
}

function challenges(sid: Uint8Array, bobDigest: Uint8Array, tauBytes: Uint8Array): { ct: bigint[]; ch: bigint[] } {
  const c = hashToScalars('rvole-chi', 2 * L, sid, bobDigest, H('rvole-tau', tauBytes));
  return { ct: c.slice(0, L), ch: c.slice(L) };
}
/**
 * Σ_j x_j·y_j mod q with one reduction: the integer sum of ξ products of values < q is < ξ·q²
 * (≈ 521 bits), reduced once by noble's `Fn.create` (lazy reduction; same result as reducing each
 * step, fewer bigint divisions on the hot path).
 */
function innerProduct(x: bigint[], y: bigint[]): bigint {
  let acc = 0n;
  for (let j = 0; j < x.length; j++) acc += x[j] * y[j];
  return Fn.create(acc);
}
function packScalars(rows: bigint[][]): Uint8Array {
  const out = new Uint8Array(32 * rows.reduce((n, r) => n + r.length, 0));
  let off = 0;
  for (const row of rows) for (const x of row) { scalarToBytesFast(x, out, off); off += 32; }
  return out;
}
function rDigest(sid: Uint8Array, r: bigint[][]): Uint8Array {
  return H('rvole-r', sid, packScalars(r));
}

export interface MulReceiverKeep { b: bigint; keep: ReturnType<typeof oteReceiverStart>['keep'] }
export interface MulMsg2 { tau: string; rHash: string; u: string[]; gammaA: string[] }

/** Bob, message 1. Returns his (random) input b and the message. */
export function mulReceiverStart(setup: OteReceiverSetup, sid: Uint8Array, rng: Rng): { b: bigint; keep: MulReceiverKeep; msg: OteMsg } {
  const g = gadget();
  const gamma = rng(ELL / 8);
  let b = Fn.ZERO;
  for (let j = 0; j < ELL; j++) if (getBit(gamma, j)) b = Fn.add(b, g[j]);
  const { keep, msg } = oteReceiverStart(setup, H('rvole-ote', sid), gamma, rng);
  gamma.fill(0);
  return { b, keep: { b, keep }, msg };
}

/** Alice, on message 1 with input a (length L). Returns her output shares c and message 2. */
export function mulSenderRespond(setup: OteSenderSetup, sid: Uint8Array, msg1: unknown, a: bigint[], rng: Rng, culprit: number): { c: bigint[]; msg: MulMsg2 } {
  if (a.length !== L) throw new ProtocolError('RVOLE: input length');
  const oteSid = H('rvole-ote', sid);
  const { rows, digest, sid: execSid } = oteSenderCheck(setup, oteSid, msg1, culprit);
  const at: bigint[] = [];
  const ah: bigint[] = [];
  for (let i = 0; i < L; i++) {
    at.push(randomScalar(rng));
    ah.push(randomScalar(rng));
  }
  const { out, tau } = oteSenderTransfer(setup, execSid, rows, [...at, ...ah]);
  const tauBytes = packScalars(tau);
  const { ct, ch } = challenges(sid, digest, tauBytes);
  const r: bigint[][] = [];
  const u: bigint[] = [];
  for (let i = 0; i < L; i++) {
    const row: bigint[] = new Array(ELL);
    const cti = ct[i], chi = ch[i], ot = out[i], oh = out[L + i];
    for (let j = 0; j < ELL; j++) row[j] = Fn.create(cti * ot[j] + chi * oh[j]);
    r.push(row);
    u.push(Fn.create(ct[i] * at[i] + ch[i] * ah[i]));
  }
  const g = gadget();
  const c: bigint[] = [];
  for (let i = 0; i < L; i++) c.push(innerProduct(g, out[i]));
  const gammaA = a.map((ai, i) => Fn.sub(ai, at[i]));
  return {
    c,
    msg: {
      tau: bytesToHex(tauBytes),
      rHash: bytesToHex(rDigest(sid, r)),
      u: u.map((x) => bytesToHex(scalarToBytes(x))),
      gammaA: gammaA.map((x) => bytesToHex(scalarToBytes(x))),
    },
  };
}

/** Bob, on message 2: the DKLs19 check, then his output shares d (c_i + d_i = a_i·b). */
export function mulReceiverFinish(keep: MulReceiverKeep, sid: Uint8Array, msg2: unknown, culprit: number): bigint[] {
  const m = msg2 as Record<string, unknown>;
  const tauBytes = parseBytes(m?.tau, 2 * L * ELL * 32, 'RVOLE tau', culprit);
  const tau: bigint[][] = [];
  for (let w = 0; w < 2 * L; w++) {
    const row: bigint[] = new Array(ELL);
    for (let j = 0; j < ELL; j++) {
      const off = (w * ELL + j) * 32;
      const v = scalarFromBytesFast(tauBytes.subarray(off, off + 32));
      if (v === undefined) throw new ProtocolError('invalid RVOLE tau (out of range)', culprit);
      row[j] = v;
    }
    tau.push(row);
  }
  const rHash = parseBytes(m?.rHash, 32, 'RVOLE r hash', culprit);
  const u = parseArray(m?.u, L, 'RVOLE u', culprit).map((x) => parseScalar(x, 'RVOLE u', culprit));
  const gammaA = parseArray(m?.gammaA, L, 'RVOLE gamma', culprit).map((x) => parseScalar(x, 'RVOLE gamma', culprit));
  const choice = keep.keep.choice;
  const z = oteReceiverTransfer(keep.keep, tau);
  const { ct, ch } = challenges(sid, keep.keep.digest, tauBytes);
  const r: bigint[][] = [];
  for (let i = 0; i < L; i++) {
    const row: bigint[] = new Array(ELL);
    const cti = ct[i], chi = ch[i], zt = z[i], zh = z[L + i], ui = u[i];
    for (let j = 0; j < ELL; j++) {
      const gu = getBit(choice, j) ? ui : 0n;
      row[j] = Fn.create(gu - cti * zt[j] - chi * zh[j]); // noble's mod maps negatives into [0, q)
    }
    r.push(row);
  }
  choice.fill(0);
  if (!ctEqual(rDigest(sid, r), rHash)) throw new ProtocolError('RVOLE (DKLs19) consistency check failed', culprit);
  const g = gadget();
  const d: bigint[] = [];
  for (let i = 0; i < L; i++) {
    d.push(Fn.add(Fn.mul(keep.b, gammaA[i]), innerProduct(g, z[i])));
  }
  return d;
}
