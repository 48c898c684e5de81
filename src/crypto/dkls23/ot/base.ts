/**
 * Base OT: a batch of κ random OTs following the Verified Simplest OT (VSOT) of
 * DKLs18 (Doerner, Kondi, Lee, shelat, "Secure Two-party Threshold ECDSA from ECDSA Assumptions",
 * ePrint 2018/499, Protocol 7), which is Chou-Orlandi's Simplest OT (ePrint 2015/267) with
 *   (a) a proof of knowledge of the sender's discrete log b (F_ZK^{R_DL}), and
 *   (b) the verification phase (challenge ξ, response ρ', opening) that commits the sender to both pads.
 *
 * Flows (one batch of `count` OTs, sender key reused across the batch as in DKLs18 §? "batching",
 * each OT domain-separated by its index):
 *   1. S → R : B = b·G, π_DL(b)
 *   2. R → S : A_i = a_i·G + ω_i·B                          (receiver's choice ω_i)
 *      S: ρ0_i = H(i, B, A_i, b·A_i), ρ1_i = H(i, B, A_i, b·(A_i − B));  R: ρω_i = H(i, B, A_i, a_i·B)
 *   3. S → R : ξ_i = H(H(ρ0_i)) ⊕ H(H(ρ1_i))
 *   4. R → S : ρ'_i = H(H(ρω_i)) ⊕ ω_i·ξ_i                 S aborts unless ρ'_i = H(H(ρ0_i))
 *   5. S → R : (H(ρ0_i), H(ρ1_i))                           R aborts unless H(ρω_i) matches the opened
 *                                                           value for ω_i and ξ_i = H(opened0) ⊕ H(opened1)
 * Output: sender (ρ0_i, ρ1_i), receiver (ω_i, ρω_i), 32 bytes each.
 *
 * The pads hash the transcript (B, A_i) as well as the shared point, as DKLs18 Protocol 7 and the
 * public implementations do: each pad is then bound to the one exchange it came from (besides the
 * sid and index), so no pad of another exchange — even one whose shared point an adversary could
 * arrange to be equal — can be substituted for it.
 *
 * Selective failure (DKLs18 §? and README): a malicious sender can make the step-5 check fail for one
 * value of ω_i only, learning ω_i at the cost of an abort with probability 1/2. The OT extension that
 * consumes these OTs uses ω as its secret Δ; an abort here must therefore end the pairwise setup.
 */
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { ProtocolError } from '../../types.ts';
import { dlProve, dlVerify, type DlProof } from '../proofs.ts';
import { H, Point, be32, bytesToHex, hexToBytes, concatBytes, ctEqual, getBit, getField, mulG, mulSecret, parseArray, parseBytes, parsePoint, pointToHex, randomScalar, wipe, type Rng } from '../util.ts';

const ZERO33 = new Uint8Array(33);
const enc = (P: Point) => (P.is0() ? ZERO33 : P.toBytes(true));
const h1 = (x: Uint8Array) => H('vsot-h1', x);
const h2 = (x: Uint8Array) => H('vsot-h2', h1(x));
function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = a[i] ^ b[i];
  return o;
}
const hexList = (l: Uint8Array[]) => bytesToHex(concatBytes(...l));
function splitHex(v: unknown, count: number, size: number, what: string, culprit: number): Uint8Array[] {
  const b = parseBytes(v, count * size, what, culprit);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(b.slice(i * size, (i + 1) * size));
  return out;
}

// ---------------------------------------------------------------- sender

export interface BaseOtSender {
  sid: Uint8Array;
  count: number;
  b: bigint;
  B: Point;
  bB?: Point;
  rho0?: Uint8Array[];
  rho1?: Uint8Array[];
}
export interface BaseOtMsg1 { B: string; proof: DlProof }

export function baseOtSenderStart(sid: Uint8Array, count: number, rng: Rng): { state: BaseOtSender; msg: BaseOtMsg1 } {
  const b = randomScalar(rng);
  const B = mulG(b);
  const proof = dlProve(b, B, H('vsot-pok', sid), rng);
  return { state: { sid, count, b, B }, msg: { B: pointToHex(B), proof } };
}

/** Flow 2 → 3: derive both pads from the receiver's A_i and send the challenge ξ. */
export function baseOtSenderChallenge(st: BaseOtSender, msg2: unknown, culprit: number): string {
  const list = parseArray(getField(msg2, 'A', culprit), st.count, 'VSOT A', culprit);
  const bB = mulSecret(st.B, st.b);
  st.rho0 = [];
  st.rho1 = [];
  const xi: Uint8Array[] = [];
  const As = list.map((v) => parsePoint(v, 'VSOT A_i', culprit));
  const Benc = st.B.toBytes(true);
  const bAs: Point[] = [];
  for (let i = 0; i < st.count; i++) {
    const bA = mulSecret(As[i], st.b);
    bAs.push(bA, bA.subtract(bB));
  }
  // One batched inversion (noble's normalizeZ) instead of one per encoded point.
  const aff = normalizeZ(Point, bAs);
  for (let i = 0; i < st.count; i++) {
    const Aenc = hexToBytes(list[i] as string); // the exact 33 bytes parsePoint accepted
    const r0 = H('vsot-pad', st.sid, be32(i), Benc, Aenc, enc(aff[2 * i]));
    const r1 = H('vsot-pad', st.sid, be32(i), Benc, Aenc, enc(aff[2 * i + 1]));
    st.rho0.push(r0);
    st.rho1.push(r1);
    xi.push(xor(h2(r0), h2(r1)));
  }
  st.b = 0n;
  return hexList(xi);
}

/** Flow 4 → 5: check every response ρ'_i = H(H(ρ0_i)), then open (H(ρ0_i), H(ρ1_i)). */
export function baseOtSenderVerify(st: BaseOtSender, rhoPrime: unknown, culprit: number): { h0: string; h1: string } {
  const rp = splitHex(rhoPrime, st.count, 32, 'VSOT response', culprit);
  let ok = true;
  for (let i = 0; i < st.count; i++) ok = ctEqual(rp[i], h2(st.rho0![i])) && ok;
  if (!ok) throw new ProtocolError('base OT (VSOT) response check failed', culprit);
  return baseOtSenderOpen(st);
}

/** Flow 5 payload (H(ρ0_i), H(ρ1_i)). Only called after the flow-4 check (exported for adversarial tests). */
export function baseOtSenderOpen(st: BaseOtSender): { h0: string; h1: string } {
  return { h0: hexList(st.rho0!.map(h1)), h1: hexList(st.rho1!.map(h1)) };
}

export function baseOtSenderOutput(st: BaseOtSender): { rho0: Uint8Array[]; rho1: Uint8Array[] } {
  return { rho0: st.rho0!, rho1: st.rho1! };
}

// ---------------------------------------------------------------- receiver

export interface BaseOtReceiver {
  sid: Uint8Array;
  count: number;
  choice: Uint8Array; // bit vector, count bits
  rho?: Uint8Array[];
  xi?: Uint8Array[];
}

/** Flow 1 → 2: verify π_DL(b), choose. `choice` is a bit vector (LSB first) of `count` bits. */
export function baseOtReceiverChoose(sid: Uint8Array, count: number, choice: Uint8Array, msg1: unknown, rng: Rng, culprit: number): { state: BaseOtReceiver; A: string[] } {
  const B = parsePoint(getField(msg1, 'B', culprit), 'VSOT B', culprit);
  if (!dlVerify(getField(msg1, 'proof', culprit), B, H('vsot-pok', sid), culprit)) {
    throw new ProtocolError('base OT (VSOT) proof of knowledge of b failed', culprit);
  }
  const pts: Point[] = [];
  for (let i = 0; i < count; i++) {
    const a = randomScalar(rng);
    const aG = mulG(a);
    pts.push(getBit(choice, i) ? aG.add(B) : aG, mulSecret(B, a)); // A_i, a_i·B
  }
  const aff = normalizeZ(Point, pts); // one batched inversion for all encodings
  const A: string[] = [];
  const rho: Uint8Array[] = [];
  const Benc = B.toBytes(true);
  for (let i = 0; i < count; i++) {
    const Aenc = aff[2 * i].toBytes(true);
    A.push(bytesToHex(Aenc));
    rho.push(H('vsot-pad', sid, be32(i), Benc, Aenc, enc(aff[2 * i + 1])));
  }
  return { state: { sid, count, choice: choice.slice(), rho }, A };
}

/** Flow 3 → 4: answer the challenge. */
export function baseOtReceiverRespond(st: BaseOtReceiver, xiHex: unknown, culprit: number): string {
  st.xi = splitHex(xiHex, st.count, 32, 'VSOT challenge', culprit);
  const out: Uint8Array[] = [];
  for (let i = 0; i < st.count; i++) {
    const r = h2(st.rho![i]);
    out.push(getBit(st.choice, i) ? xor(r, st.xi[i]) : r);
  }
  return hexList(out);
}

/** Flow 5: verify the opening; returns ρω_i. */
export function baseOtReceiverFinish(st: BaseOtReceiver, open: unknown, culprit: number): Uint8Array[] {
  const o0 = splitHex(getField(open, 'h0', culprit), st.count, 32, 'VSOT opening', culprit);
  const o1 = splitHex(getField(open, 'h1', culprit), st.count, 32, 'VSOT opening', culprit);
  let ok = true;
  for (let i = 0; i < st.count; i++) {
    const mine = h1(st.rho![i]);
    ok = ctEqual(mine, getBit(st.choice, i) ? o1[i] : o0[i]) && ok;
    ok = ctEqual(st.xi![i], xor(H('vsot-h2', o0[i]), H('vsot-h2', o1[i]))) && ok;
  }
  if (!ok) throw new ProtocolError('base OT (VSOT) opening check failed', culprit);
  wipe(st.choice);
  return st.rho!;
}
