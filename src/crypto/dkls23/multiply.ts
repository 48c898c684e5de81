/**
 * Two-party random vector OLE, F_RVOLE (DKLs23, ePrint 2023/765, Functionality 3.5), realised by the
 * paper's own OT-based protocol, DKLs23 Protocol 5.2 ("OT-Based Random Vector OLE", latest revision;
 * earlier revisions pointed to DKLs19 Protocol 1 instead), in two messages over the random OT
 * extension of ot/extension.ts (KOS with a Fiat–Shamir check, ξ = ELL OTs, ℓ + ρ payloads each):
 *
 *   Bob (OTE receiver) samples β ∈ {0,1}^ξ; his output (and his input to F_RVOLE) is b = ⟨g, β⟩,
 *   g the public gadget vector. Alice (OTE sender) inputs a ∈ Z_q^ℓ (ℓ = 2 in signing: r_i, sk_i).
 *
 *   msg 1 (Bob → Alice): the KOS extension message for choice bits β (KOS check by Alice).
 *   Alice: fresh salt σ (32 bytes); random OTs (α0, α1) ∈ Z_q^{ξ×(ℓ+ρ)} from the oracle keyed by σ;
 *          c_i = −Σ_j g_j·α0_{j,i};  â ← Z_q^ρ;
 *          ã_{j,i} = α0_{j,i} − α1_{j,i} + a_i,   ã_{j,ℓ+k} = α0_{j,ℓ+k} − α1_{j,ℓ+k} + â_k;
 *          θ = H(sid, σ, ã) ∈ Z_q^{ℓ×ρ};  η_k = â_k + Σ_i θ_{i,k}·a_i;
 *          μ = H(sid, σ, {α0_{j,ℓ+k} + Σ_i θ_{i,k}·α0_{j,i}}_{j,k}).
 *   msg 2 (Alice → Bob): σ, ã, η, μ.
 *   Bob:   γ = his OT outputs under σ (γ_{j,w} = α_{β_j; j,w}); θ as Alice;
 *          ḋ_{j,i} = γ_{j,i} + β_j·ã_{j,i},  d̂_{j,k} = γ_{j,ℓ+k} + β_j·ã_{j,ℓ+k};
 *          check μ = H(sid, {d̂_{j,k} + Σ_i θ_{i,k}·ḋ_{j,i} − β_j·η_k}_{j,k}), else abort naming Alice;
 *          output d_i = Σ_j g_j·ḋ_{j,i}.          Then c_i + d_i = a_i·b.
 *
 * ρ = ⌈λ_c / |q|⌉ = 1 check payload (λ_c ≤ 256 = |q|): a cheating Alice whose ã is inconsistent with
 * one input vector passes the check for a given θ with probability ≤ 1/q, except through the
 * selective failure on β_j that the paper accounts for (ξ = |q| + 2λ_s keeps b hidden; see README).
 * The challenge θ is a hash of everything Bob has received by then (ã, σ and the KOS transcript).
 *
 * Sender-side freshness (σ, not in the paper's text, which assumes unique session ids): everything
 * that keys Alice's PRG columns — the sid and Bob's OTE nonce — is chosen by the relay or by Bob, so
 * a malicious Bob can make them repeat; Alice's ã would then repeat with the same α pairs, and two
 * answers to the same columns with Bob's choice bits flipped give ã + ã′ = 2a (her r_i and sk_i).
 * σ is chosen by Alice after she has seen Bob's message, so her random-OT outputs, θ and μ are fresh
 * in every execution; it costs no extra round (Bob needs it only in his finish, with message 2). The
 * signer node also refuses any repeated session id (src/crypto/dkls23/README.md, "Session ids").
 */
import { ProtocolError } from '../types.ts';
import { ELL, SALT_BYTES, oteReceiverOutputs, oteReceiverStart, oteSenderCheck, oteSenderOutputs, type OteMsg, type OteReceiverSetup, type OteSenderSetup } from './ot/extension.ts';
import { Fn, H, be32, bytesToHex, ctEqual, getBit, hashToScalar, hashToScalars, parseBytes, randomScalar, scalarFromBytesFast, scalarToBytesFast, type Rng } from './util.ts';

/** Inputs per multiplication in signing (DKLs23 Protocol 3.6 multiplies by r_i and sk_i). */
export const L = 2;
/** Check payloads ρ = ⌈λ_c/|q|⌉ (DKLs23 Protocol 5.2); λ_c = 256 = |q| gives 1. */
export const RHO = 1;
/** OT payloads per extended OT ("OT width"): ℓ + ρ. */
export const WIDTH = L + RHO;

let gadgetCache: bigint[] | undefined;
/**
 * Public gadget vector g ∈ Z_q^ξ. Protocol 5.2 allows any public g for which ⟨g, β⟩ is close to
 * uniform for random β; we take a fixed nothing-up-my-sleeve one from the random oracle (0xCarbon and
 * Silence Labs derive theirs from a nonce or the session id, which is equivalent in the ROM).
 */
export function gadget(): bigint[] {
  if (!gadgetCache) {
    gadgetCache = [];
    for (let j = 0; j < ELL; j++) gadgetCache.push(hashToScalar('rvole-gadget', be32(j)));
  }
  return gadgetCache;
}

/** θ ∈ Z_q^{ℓ×ρ}, indexed [k][i], from the session, Alice's salt σ, Bob's KOS message digest and ã. */
function theta(sid: Uint8Array, salt: Uint8Array, bobDigest: Uint8Array, atBytes: Uint8Array): bigint[][] {
  const t = hashToScalars('rvole-theta', L * RHO, sid, salt, bobDigest, H('rvole-atilde', atBytes));
  return Array.from({ length: RHO }, (_, k) => t.slice(k * L, (k + 1) * L));
}
/** μ = H(sid, σ, μ_{j,k}) over the ξ·ρ check values, each 32 bytes, j-major. */
function muDigest(sid: Uint8Array, salt: Uint8Array, mu: bigint[]): Uint8Array {
  const out = new Uint8Array(32 * mu.length);
  for (let x = 0; x < mu.length; x++) scalarToBytesFast(mu[x], out, 32 * x);
  const d = H('rvole-mu', sid, salt, out);
  out.fill(0);
  return d;
}

/** What Bob keeps between his two messages (not b itself: the caller holds it, and it is wiped with the session). */
export interface MulReceiverKeep { keep: ReturnType<typeof oteReceiverStart>['keep'] }
export interface MulMsg2 { salt: string; at: string; eta: string; mu: string }

/** Bob, message 1. Returns his (random) input b and the message. */
export function mulReceiverStart(setup: OteReceiverSetup, sid: Uint8Array, rng: Rng): { b: bigint; keep: MulReceiverKeep; msg: OteMsg } {
  const g = gadget();
  const beta = rng(ELL / 8);
  let b = 0n;
  for (let j = 0; j < ELL; j++) b += BigInt(getBit(beta, j)) * g[j];
  b = Fn.create(b);
  const { keep, msg } = oteReceiverStart(setup, H('rvole-ote', sid), beta, rng);
  beta.fill(0);
  return { b, keep: { keep }, msg };
}

/** Alice, on message 1 with input a (length L). Returns her output shares c and message 2. */
export function mulSenderRespond(setup: OteSenderSetup, sid: Uint8Array, msg1: unknown, a: bigint[], rng: Rng, culprit: number): { c: bigint[]; msg: MulMsg2 } {
  if (a.length !== L) throw new ProtocolError('RVOLE: input length');
  const { rows, digest, sid: execSid } = oteSenderCheck(setup, H('rvole-ote', sid), msg1, culprit);
  const salt = rng(SALT_BYTES); // fresh per execution, chosen only after Bob's message is fixed
  const { a0, a1 } = oteSenderOutputs(setup, execSid, rows, WIDTH, salt);
  const g = gadget();
  const ahat: bigint[] = Array.from({ length: RHO }, () => randomScalar(rng));
  const pay = [...a, ...ahat]; // the payload of column w: a_i (w < ℓ) or â_k (w = ℓ + k)
  // ã, j-major on the wire: ã_{j,w} at offset 32·(j·WIDTH + w).
  const atBytes = new Uint8Array(32 * ELL * WIDTH);
  for (let j = 0; j < ELL; j++) for (let w = 0; w < WIDTH; w++) scalarToBytesFast(Fn.create(a0[w][j] - a1[w][j] + pay[w]), atBytes, 32 * (j * WIDTH + w));
  const c: bigint[] = [];
  for (let i = 0; i < L; i++) {
    let acc = 0n; // lazy reduction: ξ products of values < q, reduced once by noble's Fn.create
    for (let j = 0; j < ELL; j++) acc += g[j] * a0[i][j];
    c.push(Fn.neg(Fn.create(acc)));
  }
  const th = theta(sid, salt, digest, atBytes);
  const eta: bigint[] = [];
  const mu: bigint[] = new Array(ELL * RHO);
  for (let k = 0; k < RHO; k++) {
    let e = ahat[k];
    for (let i = 0; i < L; i++) e += th[k][i] * a[i];
    eta.push(Fn.create(e));
    for (let j = 0; j < ELL; j++) {
      let m = a0[L + k][j];
      for (let i = 0; i < L; i++) m += th[k][i] * a0[i][j];
      mu[j * RHO + k] = Fn.create(m);
    }
  }
  const etaBytes = new Uint8Array(32 * RHO);
  eta.forEach((e, k) => scalarToBytesFast(e, etaBytes, 32 * k));
  const msg = { salt: bytesToHex(salt), at: bytesToHex(atBytes), eta: bytesToHex(etaBytes), mu: bytesToHex(muDigest(sid, salt, mu)) };
  for (const v of [...a0, ...a1]) v.fill(0n);
  return { c, msg };
}

function parseScalars(hex: unknown, count: number, what: string, culprit: number): { bytes: Uint8Array; values: bigint[] } {
  const bytes = parseBytes(hex, 32 * count, what, culprit);
  const values: bigint[] = new Array(count);
  for (let x = 0; x < count; x++) {
    const v = scalarFromBytesFast(bytes.subarray(32 * x, 32 * x + 32));
    if (v === undefined) throw new ProtocolError(`invalid ${what} (out of range)`, culprit);
    values[x] = v;
  }
  return { bytes, values };
}

/** Bob, on message 2: the Protocol 5.2 check, then his output shares d (c_i + d_i = a_i·b). */
export function mulReceiverFinish(keep: MulReceiverKeep, sid: Uint8Array, msg2: unknown, culprit: number): bigint[] {
  const m = msg2 as Record<string, unknown>;
  const salt = parseBytes(m?.salt, SALT_BYTES, 'RVOLE salt', culprit);
  const at = parseScalars(m?.at, ELL * WIDTH, 'RVOLE ã', culprit);
  const eta = parseScalars(m?.eta, RHO, 'RVOLE η', culprit).values;
  const muHash = parseBytes(m?.mu, 32, 'RVOLE μ', culprit);
  const choice = keep.keep.choice;
  const gamma = oteReceiverOutputs(keep.keep, WIDTH, salt);
  const th = theta(sid, salt, keep.keep.digest, at.bytes);
  const g = gadget();
  const dAcc: bigint[] = new Array(L).fill(0n);
  const dd: bigint[] = new Array(L);
  const mu: bigint[] = new Array(ELL * RHO);
  for (let j = 0; j < ELL; j++) {
    const bj = BigInt(getBit(choice, j)); // β_j ∈ {0, 1}, multiplied rather than branched on
    const atj = j * WIDTH;
    for (let i = 0; i < L; i++) {
      dd[i] = gamma[i][j] + bj * at.values[atj + i]; // ḋ_{j,i}, unreduced (< 2q)
      dAcc[i] += g[j] * dd[i];
    }
    for (let k = 0; k < RHO; k++) {
      let v = gamma[L + k][j] + bj * at.values[atj + L + k] - bj * eta[k];
      for (let i = 0; i < L; i++) v += th[k][i] * dd[i];
      mu[j * RHO + k] = Fn.create(v); // noble's mod maps negatives into [0, q)
    }
  }
  choice.fill(0);
  for (const v of gamma) v.fill(0n);
  if (!ctEqual(muDigest(sid, salt, mu), muHash)) throw new ProtocolError('RVOLE consistency check failed (DKLs23 Protocol 5.2, μ)', culprit);
  return dAcc.map((x) => Fn.create(x));
}
