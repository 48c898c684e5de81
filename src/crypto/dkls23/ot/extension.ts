/**
 * OT extension: KOS (Keller, Orsini, Scholl, "Actively Secure OT Extension with Optimal Overhead",
 * ePrint 2015/546) in the corrected form of its Fig. 10 (the consistency check re-analysed with
 * SoftSpokenOT, Roy, ePrint 2022/192 — DKLs23 recommends SoftSpokenOT, of which KOS is the k = 1
 * case), with the check challenge derived by Fiat–Shamir as DKLs23 (ePrint 2023/765) suggests,
 * followed by KOS's "transpose and randomize" step: ELL random OTs over Z_q^width for the random
 * vector OLE of DKLs23 Protocol 5.2 (multiply.ts).
 *
 * Roles: the OTE *sender* (Alice in the multiplication) was the base-OT *receiver* with choice
 * bits Δ ∈ {0,1}^κ and holds k_i^{Δ_i}; the OTE *receiver* (Bob) was the base-OT sender and holds
 * (k_i^0, k_i^1). The base OTs are reused across sessions; every PRG stream and every hash is
 * domain-separated by the per-execution session id.
 *
 * Consistency check (KOS Fig. 10 "check correlation"): the receiver sends U(x) and U(t_i) for every
 * column i, where U is a GF(2)-linear 2^-OT_SEC-universal hash of the m' = ELL + OT_SEC extended
 * bits; the sender checks U(q_i) = U(t_i) ⊕ Δ_i·U(x). KOS/0xCarbon instantiate U(v) = χ1·v[0] +
 * χ2·v[1] + v[2] in GF(2^208); noble has no GF(2^208) arithmetic (its GHASH/POLYVAL give GF(2^128)
 * only; see README "Deviations"), so we use U(v) = M·v_data ⊕ v_pad with M a uniformly random
 * 208×416 binary matrix from the Fiat–Shamir PRG. Both families are linear and 2^-208-universal
 * (Pr[U(v) = 0] = 2^-208 for v_data ≠ 0; U(v) = v_pad ≠ 0 otherwise; the GF(2^208) family is the
 * sub-family M = [χ1· | χ2·] of ours), and in both the OT_SEC random padding OTs make U(x) uniform,
 * so U(x) reveals nothing about the choice bits. We compute the check row-wise after transposition:
 * for each r, ⊕_{j: M_rj = 1} q_j ⊕ q_{ELL+r}.
 */
import { ProtocolError } from '../../types.ts';
import { xchacha20 } from '@noble/ciphers/chacha.js';
import { H, ScalarOracle, bytesToHex, concatBytes, getBit, parseBytes, prg, type Rng } from '../util.ts';

/**
 * Number of base OTs per ordered pair = the computational security parameter of the extension (KOS15
 * κ): 256, as both public DKLs23 implementations (0xCarbon `RAW_SECURITY` = λ_c, Silence Labs
 * `LAMBDA_C`) and DKLs19's mpecdsa. Δ is long-lived and every KOS abort can leak a bit of it, so the
 * margin matters (README "Parameters"). Must be a multiple of 32; changing it changes the share format.
 */
export const KAPPA = 256;
/** Extended OTs consumed by one multiplication: ξ = |q| + 2λ_s = 256 + 2·80 (DKLs23 Protocol 5.2). */
export const ELL = 416;
/** Check width / extra random OTs: 128 + 80 (DKLs19 implementation, 0xCarbon OT_SECURITY). */
export const OT_SEC = 208;
/** Extended batch m' = ELL + OT_SEC (KOS Fig. 10, l' = l + κ + s). */
export const MPRIME = ELL + OT_SEC;

const KB = KAPPA / 8; // bytes per row
const KW = KAPPA / 32; // 32-bit words per row
const CB = MPRIME / 8; // bytes per column

/**
 * The KOS PRG G(k_i) for column i of this execution: XChaCha20 (24-byte nonce) keyed by the base-OT
 * output k_i, nonce = H(sid)[0..20] ‖ i. The 192-bit nonce is unique per (session, column), so the
 * reused base-OT seeds yield independent streams in every execution.
 */
class ColumnPrg {
  private nonce: Uint8Array;
  private zero = new Uint8Array(CB);
  constructor(sid: Uint8Array) {
    this.nonce = concatBytes(H('ote-prg-nonce', sid).subarray(0, 20), new Uint8Array(4));
  }
  column(seed: Uint8Array, i: number): Uint8Array {
    new DataView(this.nonce.buffer).setUint32(20, i, false);
    return xchacha20(seed, this.nonce, this.zero);
  }
}

/** SPREAD_LO[x] / SPREAD_HI[x]: bit m of x moved to bit 8m (m < 4) / 8(m − 4) (m ≥ 4). */
const SPREAD_LO = new Uint32Array(256);
const SPREAD_HI = new Uint32Array(256);
for (let x = 0; x < 256; x++) {
  for (let m = 0; m < 4; m++) {
    SPREAD_LO[x] |= ((x >> m) & 1) << (8 * m);
    SPREAD_HI[x] |= ((x >> (m + 4)) & 1) << (8 * m);
  }
}
/**
 * Columns (κ × m' bits) → rows (m' × κ bits as Uint32 words, little-endian bit order as getBit).
 * Works on 8×8 bit blocks: the bytes x_k = col[8g + k][b] (k < 8) become the bytes y_m, m < 8, of
 * rows 8b + m at byte g, with bit k of y_m = bit m of x_k, gathered through the SPREAD tables.
 */
export function transpose(cols: Uint8Array[]): Uint32Array {
  const rb = new Uint8Array(MPRIME * KB);
  for (let g = 0; g < KB; g++) {
    const c0 = cols[8 * g], c1 = cols[8 * g + 1], c2 = cols[8 * g + 2], c3 = cols[8 * g + 3];
    const c4 = cols[8 * g + 4], c5 = cols[8 * g + 5], c6 = cols[8 * g + 6], c7 = cols[8 * g + 7];
    for (let b = 0; b < CB; b++) {
      const lo = SPREAD_LO[c0[b]] | (SPREAD_LO[c1[b]] << 1) | (SPREAD_LO[c2[b]] << 2) | (SPREAD_LO[c3[b]] << 3) | (SPREAD_LO[c4[b]] << 4) | (SPREAD_LO[c5[b]] << 5) | (SPREAD_LO[c6[b]] << 6) | (SPREAD_LO[c7[b]] << 7);
      const hi = SPREAD_HI[c0[b]] | (SPREAD_HI[c1[b]] << 1) | (SPREAD_HI[c2[b]] << 2) | (SPREAD_HI[c3[b]] << 3) | (SPREAD_HI[c4[b]] << 4) | (SPREAD_HI[c5[b]] << 5) | (SPREAD_HI[c6[b]] << 6) | (SPREAD_HI[c7[b]] << 7);
      const o = 8 * b * KB + g;
      rb[o] = lo;
      rb[o + KB] = lo >>> 8;
      rb[o + 2 * KB] = lo >>> 16;
      rb[o + 3 * KB] = lo >>> 24;
      rb[o + 4 * KB] = hi;
      rb[o + 5 * KB] = hi >>> 8;
      rb[o + 6 * KB] = hi >>> 16;
      rb[o + 7 * KB] = hi >>> 24;
    }
  }
  const rows = new Uint32Array(MPRIME * KW);
  const dv = new DataView(rb.buffer);
  for (let x = 0; x < rows.length; x++) rows[x] = dv.getUint32(4 * x, true);
  rb.fill(0);
  return rows;
}
/** Row j (κ bits) into `out`, optionally XORed with `mask` (Δ). */
function rowInto(out: Uint8Array, rows: Uint32Array, j: number, mask?: Uint32Array): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let w = 0; w < KW; w++) dv.setUint32(4 * w, rows[j * KW + w] ^ (mask ? mask[w] : 0), true);
}
function be32Into(out: Uint8Array, n: number): void {
  new DataView(out.buffer, out.byteOffset, 4).setUint32(0, n, false);
}
/** The Fiat-Shamir matrix M (OT_SEC × ELL bits) from the receiver's u-matrix. */
function checkMatrix(sid: Uint8Array, u: Uint8Array): Uint8Array {
  return prg(H('ote-chi', sid, u), (OT_SEC * ELL) / 8, 'ote-chi-matrix');
}
/** Row-wise U: out_r = rows[ELL + r] ⊕ ⊕_{j: M_rj} rows[j], for every r. */
/**
 * U(rows) = M·rows_data ⊕ rows_pad over GF(2), row-wise on κ-bit rows. Same linear map as the
 * bit-by-bit definition; evaluated 8 data rows at a time with a 256-entry table of their XOR
 * combinations (the "method of four Russians"), so each check row costs one table lookup per byte
 * of M instead of one conditional XOR per bit.
 */
function hashRows(M: Uint8Array, rows: Uint32Array): Uint32Array {
  const out = new Uint32Array(OT_SEC * KW);
  const rb = ELL / 8;
  for (let r = 0; r < OT_SEC; r++) for (let w = 0; w < KW; w++) out[r * KW + w] = rows[(ELL + r) * KW + w];
  const table = new Uint32Array(256 * KW);
  for (let g = 0; g < rb; g++) {
    // table[m] = XOR of rows 8g + k for every bit k set in m (LSB-first, as getBit)
    for (let m = 1; m < 256; m++) {
      const low = m & -m;
      const k = 31 - Math.clz32(low);
      const prev = (m ^ low) * KW;
      const src = (8 * g + k) * KW;
      for (let w = 0; w < KW; w++) table[m * KW + w] = table[prev + w] ^ rows[src + w];
    }
    for (let r = 0; r < OT_SEC; r++) {
      const t = M[r * rb + g] * KW;
      const o = r * KW;
      for (let w = 0; w < KW; w++) out[o + w] ^= table[t + w];
    }
  }
  table.fill(0);
  return out;
}
function hashBits(M: Uint8Array, x: Uint8Array): Uint8Array {
  const out = new Uint8Array(OT_SEC / 8);
  const rb = ELL / 8;
  for (let r = 0; r < OT_SEC; r++) {
    let acc = getBit(x, ELL + r);
    for (let k = 0; k < rb; k++) {
      let v = M[r * rb + k] & x[k];
      v ^= v >> 4;
      v ^= v >> 2;
      v ^= v >> 1;
      acc ^= v & 1;
    }
    out[r >> 3] |= acc << (r & 7);
  }
  return out;
}
function wordsToBytes(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) dv.setUint32(4 * i, w[i], true);
  return out;
}
function deltaWords(delta: Uint8Array): Uint32Array {
  const w = new Uint32Array(KW);
  const dv = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  for (let i = 0; i < KW; i++) w[i] = dv.getUint32(4 * i, true);
  return w;
}

export interface OteSenderSetup { delta: Uint8Array; seeds: Uint8Array[] } // Δ (κ bits), k_i^{Δ_i}
export interface OteReceiverSetup { seeds0: Uint8Array[]; seeds1: Uint8Array[] }
export interface OteMsg { nonce: string; u: string; xh: string; th: string }

/**
 * Per-execution id: the caller's sid plus a fresh receiver nonce. DKLs23 assumes unique session ids;
 * the nonce protects only the honest *receiver* should a sessionId ever repeat (a repeated PRG
 * stream with new choice bits would reveal x ⊕ x′ through u ⊕ u′). A malicious receiver chooses the
 * nonce, so it cannot protect the sender: that is the sender's salt in {@link oteSenderOutputs}.
 */
function execSid(sid: Uint8Array, nonce: Uint8Array): Uint8Array {
  return H('ote-exec', sid, nonce);
}
export interface OteReceiverKeep { rows: Uint32Array; choice: Uint8Array; digest: Uint8Array; sid: Uint8Array }

/** Receiver, KOS Fig. 10 "extend" steps 1-3 and "check" step 2. `choice`: ELL bits. */
export function oteReceiverStart(setup: OteReceiverSetup, sid: Uint8Array, choice: Uint8Array, rng: Rng): { keep: OteReceiverKeep; msg: OteMsg } {
  if (choice.length !== ELL / 8) throw new ProtocolError('OTE: choice vector length');
  const nonce = rng(32);
  sid = execSid(sid, nonce);
  const x = concatBytes(choice, rng(OT_SEC / 8));
  const t: Uint8Array[] = [];
  const u = new Uint8Array(KAPPA * CB);
  const G = new ColumnPrg(sid);
  for (let i = 0; i < KAPPA; i++) {
    const t0 = G.column(setup.seeds0[i], i);
    const t1 = G.column(setup.seeds1[i], i);
    for (let k = 0; k < CB; k++) u[i * CB + k] = t0[k] ^ t1[k] ^ x[k];
    t1.fill(0);
    t.push(t0);
  }
  const rows = transpose(t);
  for (const c of t) c.fill(0);
  const M = checkMatrix(sid, u);
  const xh = hashBits(M, x);
  const th = wordsToBytes(hashRows(M, rows));
  x.fill(0);
  const digest = H('ote-msg', sid, u, xh, th);
  return { keep: { rows, choice: choice.slice(), digest, sid }, msg: { nonce: bytesToHex(nonce), u: bytesToHex(u), xh: bytesToHex(xh), th: bytesToHex(th) } };
}

/** Sender, KOS Fig. 10 "extend" step 4 and the consistency check (step 3). Aborts naming `culprit`. */
export function oteSenderCheck(setup: OteSenderSetup, sid: Uint8Array, msg: unknown, culprit: number): { rows: Uint32Array; digest: Uint8Array; sid: Uint8Array } {
  const m = msg as Record<string, unknown>;
  sid = execSid(sid, parseBytes(m?.nonce, 32, 'OTE nonce', culprit));
  const u = parseBytes(m?.u, KAPPA * CB, 'OTE u', culprit);
  const xh = parseBytes(m?.xh, OT_SEC / 8, 'OTE check x', culprit);
  const th = parseBytes(m?.th, OT_SEC * KB, 'OTE check t', culprit);
  const q: Uint8Array[] = [];
  const G = new ColumnPrg(sid);
  for (let i = 0; i < KAPPA; i++) {
    const qi = G.column(setup.seeds[i], i);
    if (getBit(setup.delta, i)) for (let k = 0; k < CB; k++) qi[k] ^= u[i * CB + k];
    q.push(qi);
  }
  const rows = transpose(q);
  for (const c of q) c.fill(0);
  const M = checkMatrix(sid, u);
  const qh = hashRows(M, rows);
  const dW = deltaWords(setup.delta);
  const thW = new Uint32Array(OT_SEC * KW);
  const dv = new DataView(th.buffer, th.byteOffset, th.byteLength);
  for (let i = 0; i < thW.length; i++) thW[i] = dv.getUint32(4 * i, true);
  let diff = 0;
  for (let r = 0; r < OT_SEC; r++) {
    const mask = -getBit(xh, r) >>> 0; // all-ones iff U(x)_r = 1
    for (let w = 0; w < KW; w++) diff |= qh[r * KW + w] ^ thW[r * KW + w] ^ (dW[w] & mask);
  }
  if (diff !== 0) throw new ProtocolError('OT extension consistency check failed (KOS check)', culprit);
  return { rows, digest: H('ote-msg', sid, u, xh, th), sid };
}

/** Length of the sender's fresh salt (bytes). */
export const SALT_BYTES = 32;

/**
 * KOS Fig. 10 "transpose and randomize", as the random OT extension (ROTe) that DKLs23 Protocol 5.2
 * consumes: for each extended OT j < ELL and each of `width` payloads w, the sender gets the pair
 *   α0_{j,w} = H(j, q_j)_w,   α1_{j,w} = H(j, q_j ⊕ Δ)_w
 * and the receiver γ_{j,w} = H(j, t_j)_w = α_{x_j; j,w} (q_j = t_j ⊕ x_j·Δ). H is the random oracle
 * onto Z_q^width keyed by the execution id ("forced reuse", DKLs23 p. 8 of the revision 0xCarbon cites: one batch of Bob's OTs, the
 * payload length proportional to Alice's input vector). Outputs are indexed [w][j].
 *
 * H is also keyed by `salt`, SALT_BYTES fresh random bytes chosen by the *sender* after it has seen
 * the receiver's message (and sent to the receiver with the sender's next message). The execution id
 * depends only on values the receiver controls (the caller's sid and the receiver's nonce), so a
 * malicious receiver that repeats both makes the sender's PRG columns q_j repeat; without the salt,
 * α0/α1 would repeat too, and answering the same q_j with the choice bits flipped would hand the
 * receiver both α0_j and α1_j, hence Alice's inputs from ã (multiply.ts). With the salt, the oracle
 * outputs of every execution are fresh whatever the receiver does.
 */
export function oteSenderOutputs(setup: OteSenderSetup, sid: Uint8Array, rows: Uint32Array, width: number, salt: Uint8Array): { a0: bigint[][]; a1: bigint[][] } {
  if (salt.length !== SALT_BYTES) throw new ProtocolError('OTE: salt length');
  const dW = deltaWords(setup.delta);
  const a0: bigint[][] = Array.from({ length: width }, () => new Array(ELL));
  const a1: bigint[][] = Array.from({ length: width }, () => new Array(ELL));
  const ro = new ScalarOracle('ote-randomize', width, sid, salt);
  const v: bigint[] = new Array(width);
  const jb = new Uint8Array(4);
  const row = new Uint8Array(KB);
  for (let j = 0; j < ELL; j++) {
    be32Into(jb, j);
    rowInto(row, rows, j);
    ro.scalarsInto(v, jb, row);
    for (let w = 0; w < width; w++) a0[w][j] = v[w];
    rowInto(row, rows, j, dW);
    ro.scalarsInto(v, jb, row);
    for (let w = 0; w < width; w++) a1[w][j] = v[w];
  }
  row.fill(0);
  dW.fill(0);
  rows.fill(0);
  return { a0, a1 };
}

/** Receiver side of {@link oteSenderOutputs}: γ_{j,w} = H(j, t_j)_w, under the sender's `salt`. */
export function oteReceiverOutputs(keep: OteReceiverKeep, width: number, salt: Uint8Array): bigint[][] {
  if (salt.length !== SALT_BYTES) throw new ProtocolError('OTE: salt length');
  const out: bigint[][] = Array.from({ length: width }, () => new Array(ELL));
  const ro = new ScalarOracle('ote-randomize', width, keep.sid, salt);
  const v: bigint[] = new Array(width);
  const jb = new Uint8Array(4);
  const row = new Uint8Array(KB);
  for (let j = 0; j < ELL; j++) {
    be32Into(jb, j);
    rowInto(row, keep.rows, j);
    ro.scalarsInto(v, jb, row);
    for (let w = 0; w < width; w++) out[w][j] = v[w];
  }
  row.fill(0);
  keep.rows.fill(0);
  return out;
}
