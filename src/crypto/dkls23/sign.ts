/**
 * Threshold ECDSA signing, DKLs23 (ePrint 2023/765) Protocol 3.6 ("three-round" signing), for any
 * signer set S with |S| ≥ t. Notation follows the paper: instance key r_i, inversion mask φ_i,
 * R = Σ r_i·G, sk_i the additive key share, and for every ordered pair one F_RVOLE call in which
 * Alice inputs (r_i, sk_i) and Bob's input χ is random.
 *
 *  R1  i → j: Com(R_i) (per counterparty, salted RO commitment); RVOLE msg 1 with i as Bob (χ_{i,j}).
 *  R2  i → j: RVOLE msg 2 with i as Alice, input (r_i, sk_i) → shares (c_u, c_v);
 *             decommit R_i; pk_i = sk_i·G; Γ^u = c_u·G, Γ^v = c_v·G; ψ_{i,j} = φ_i − χ_{i,j}.
 *  R3  (Protocol 3.6 step 8) i checks, for every j: the commitment to R_j; the RVOLE check (Protocol
 *             5.2, inside mulReceiverFinish); χ_{i,j}·R_j = Γ^u_{j,i} + d_u·G and χ_{i,j}·pk_j =
 *             Γ^v_{j,i} + d_v·G (batched into one equation, see r3; abort naming j) — the paper prints
 *             the second check with "λ·P(j)"; 0xCarbon and Bron both read it as pk_j, as do we;
 *      and Σ_j pk_j = PK (abort; cannot name a party). Step 9, with r_x = x(R) mod q and m = H(msg) mod q
 *        u_i = r_i·(φ_i + Σ_j ψ_{j,i}) + Σ_j (c_u + d_u),   v_i = sk_i·(φ_i + Σ_j ψ_{j,i}) + Σ_j (c_v + d_v),
 *        w_i = m·φ_i + r_x·v_i,   broadcast (u_i, w_i) and our view of R.
 *  Out (step 10) s = Σ w_i / Σ u_i (= (m + r_x·sk)/r), verify (r_x, s) under PK (abort if not), low-s normalise,
 *      recovery id from the parity of R.y (flipped when s is negated).
 *
 * sk_i = λ_{i,S}·x_i + ζ_i with ζ_i from F_Zero (zero-share.ts), so Σ_{i∈S} sk_i = sk.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { ProtocolError, type GroupPublic, type PartyProtocol, type RoundInput, type RoundOutput, type SecretShare } from '../types.ts';
import { mulReceiverFinish, mulReceiverStart, mulSenderRespond, type MulReceiverKeep } from './multiply.ts';
import { checkCommit, commit } from './proofs.ts';
import { Session, encIndices, pairSid, sessionIdBytes, validateParties } from './session.ts';
import { decodePublic, decodeShare, type PublicState, type ShareState } from './share.ts';
import { Fn, H, Point, Q, be32, bytesToHex, concatBytes, defaultRng, getField, lagrangeAtZero, mulG, mulPublic, mulSecret, parseBytes, parsePoint, parseScalar, pointToHex, randomScalar, wipe, type Rng } from './util.ts';
import { zeroShare } from './zero-share.ts';

export interface SignParams {
  share: SecretShare;
  public: GroupPublic;
  /** The participating parties (|signers| ≥ threshold), including this one. */
  signers: number[];
  /** The 32-byte message digest (e.g. keccak256 of an Ethereum payload), bytes or hex. */
  messageHash: Uint8Array | string;
  sessionId: string | Uint8Array;
  // No `rng`: every secret of a signing (r_i, φ_i, the RVOLE choice bits and salts, ε) comes from
  // the CSPRNG. An injectable rng on the public API is one mistake away from nonce reuse.
}
export interface SignResult {
  /** 32-byte big-endian hex. */
  r: string;
  /** 32-byte big-endian hex, always low-s (s ≤ q/2). */
  s: string;
  /** Recovery id (parity of R.y after low-s normalisation; +2 in the negligible case x(R) ≥ q). */
  v: number;
  /** Compact 64-byte r‖s hex, as `secp256k1.verify(sig, hash, pk, { prehash: false })` takes it. */
  signature: string;
  publicKey: string;
  messageHash: string;
}

const ROUNDS = 3;

interface Peer {
  bobKeep?: MulReceiverKeep;
  chi?: bigint;
  salt?: Uint8Array;
  cu?: bigint;
  cv?: bigint;
}

class SignParty implements PartyProtocol<SignResult> {
  readonly rounds = ROUNDS;
  private s: Session;
  private peers = new Map<number, Peer>();
  private r = 0n;
  private phi = 0n;
  private sk = 0n;
  private R = Point.ZERO;
  private m: bigint;
  private Rsum = Point.ZERO;
  private rx = 0n;
  private pk = Point.ZERO;
  private u = 0n;
  private w = 0n;

  constructor(
    private pub: PublicState,
    private share: ShareState,
    private signers: number[],
    private hash: Uint8Array,
    sessionId: Uint8Array,
  ) {
    const self = share.index;
    this.s = new Session('sign', sessionId, [pub.X.toBytes(true), pub.chainCode, be32(pub.threshold), hash, ...encIndices(signers)], self, signers, ROUNDS);
    this.m = Fn.create(bytesToNumberBE(hash));
    for (const j of this.s.peers) this.peers.set(j, {});
  }
  /** noble's CSPRNG (crypto.getRandomValues); deliberately not configurable. */
  private readonly rng: Rng = defaultRng;
  private get self() {
    return this.share.index;
  }
  private mulSid(alice: number, bob: number) {
    return pairSid(this.s.sid, 'rvole', alice, bob);
  }
  private comCtx(from: number, to: number) {
    return H('sign-R-ctx', this.s.sid, be32(from), be32(to));
  }

  round(r: number, input: RoundInput): RoundOutput {
    this.s.enter(r);
    try {
      if (r === 1) return this.r1();
      if (r === 2) return this.r2(input);
      if (r === 3) return this.r3(input);
    } catch (e) {
      this.s.abort();
      this.wipeAll();
      throw e;
    }
    throw new ProtocolError(`no round ${r}`);
  }

  private r1(): RoundOutput {
    this.r = randomScalar(this.rng);
    this.phi = randomScalar(this.rng);
    this.R = mulG(this.r);
    const zeta = zeroShare(this.self, this.signers, new Map([...this.share.pairs].map(([j, p]) => [j, p.zero])), this.s.sid);
    this.sk = Fn.add(Fn.mul(lagrangeAtZero(this.self, this.signers), this.share.x), zeta);
    const direct: Record<number, any> = {};
    for (const [j, st] of this.peers) {
      const bob = mulReceiverStart(this.share.pairs.get(j)!.receiver, this.mulSid(j, this.self), this.rng);
      st.bobKeep = bob.keep;
      st.chi = bob.b;
      st.salt = this.rng(32);
      const com = commit('sign-R', this.comCtx(this.self, j), st.salt, this.R.toBytes(true));
      direct[j] = this.s.direct(1, j, { com: bytesToHex(com), mul1: bob.msg as any });
    }
    return { direct };
  }

  private coms = new Map<number, Uint8Array>();

  private r2(input: RoundInput): RoundOutput {
    const dm = this.s.directs(1, input);
    const pk = mulG(this.sk);
    this.pk = pk;
    const direct: Record<number, any> = {};
    for (const [j, msg] of dm) {
      this.coms.set(j, parseBytes(getField(msg, 'com', j), 32, 'R commitment', j));
      const st = this.peers.get(j)!;
      const alice = mulSenderRespond(this.share.pairs.get(j)!.sender, this.mulSid(this.self, j), getField(msg, 'mul1', j), [this.r, this.sk], this.rng, j);
      [st.cu, st.cv] = alice.c;
      direct[j] = this.s.direct(2, j, {
        R: pointToHex(this.R),
        salt: bytesToHex(st.salt!),
        pk: pointToHex(pk),
        gu: pointToHex(mulG(st.cu!)),
        gv: pointToHex(mulG(st.cv!)),
        psi: bytesToHex(Fn.toBytes(Fn.sub(this.phi, st.chi!))),
        mul2: alice.msg as any,
      });
    }
    this.wipeShare();
    return { direct };
  }

  private r3(input: RoundInput): RoundOutput {
    const dm = this.s.directs(2, input);
    let Rsum = this.R;
    let pkSum = this.pk;
    let psiSum = Fn.ZERO;
    let su = Fn.ZERO;
    let sv = Fn.ZERO;
    for (const [j, msg] of dm) {
      const st = this.peers.get(j)!;
      const Rj = parsePoint(getField(msg, 'R', j), 'instance point R_j', j);
      const salt = parseBytes(getField(msg, 'salt', j), 32, 'R salt', j);
      if (!checkCommit(this.coms.get(j)!, 'sign-R', this.comCtx(j, this.self), salt, Rj.toBytes(true))) {
        throw new ProtocolError('sign: decommitted R_j does not match its round-1 commitment', j);
      }
      const pkj = parsePoint(getField(msg, 'pk', j), 'public key share pk_j', j);
      const gu = parsePoint(getField(msg, 'gu', j), 'Γ^u', j);
      const gv = parsePoint(getField(msg, 'gv', j), 'Γ^v', j);
      const psi = parseScalar(getField(msg, 'psi', j), 'ψ', j);
      const [du, dv] = mulReceiverFinish(st.bobKeep!, this.mulSid(j, this.self), getField(msg, 'mul2', j), j);
      // DKLs23 Protocol 3.6 step 8 consistency checks: Alice j used r_j (behind R_j) and sk_j (behind
      // pk_j) in the RVOLE:  χ·R_j = Γ^u_j + d_u·G  and  χ·pk_j = Γ^v_j + d_v·G.  Both are verified at
      // once as a random linear combination with a fresh 128-bit ε that j cannot know when it sends its
      // message: χ·(R_j + ε·pk_j) = (Γ^u_j + ε·Γ^v_j) + (d_u + ε·d_v)·G. If either check fails, at most
      // one ε passes, so a cheater passes with probability ≤ 2^-128 (batch verification; one
      // constant-time multiplication by the secret χ instead of two). ε only has to be unpredictable to
      // j in advance, so its multiplications may be variable-time; χ and d stay on noble's CT path.
      const eps = 1n + bytesToNumberBE(this.rng(16));
      const lhs = mulSecret(Rj.add(mulPublic(pkj, eps)), st.chi!);
      const rhs = gu.add(mulPublic(gv, eps)).add(mulG(Fn.add(du, Fn.mul(eps, dv))));
      if (!lhs.equals(rhs)) throw new ProtocolError('sign: RVOLE output inconsistent with R_j / pk_j (DKLs23 Protocol 3.6 Γ^u / Γ^v check)', j);
      Rsum = Rsum.add(Rj);
      pkSum = pkSum.add(pkj);
      psiSum = Fn.add(psiSum, psi);
      su = Fn.add(su, Fn.add(st.cu!, du));
      sv = Fn.add(sv, Fn.add(st.cv!, dv));
    }
    if (!pkSum.equals(this.pub.X)) throw new ProtocolError('sign: the signers\' key shares do not add up to the public key (stale/foreign share or cheating)');
    if (Rsum.is0()) throw new ProtocolError('sign: R is the identity');
    this.Rsum = Rsum;
    this.rx = Fn.create(Rsum.toAffine().x);
    if (this.rx === 0n) throw new ProtocolError('sign: x(R) ≡ 0 mod q');
    const mask = Fn.add(this.phi, psiSum);
    this.u = Fn.add(Fn.mul(this.r, mask), su);
    const v = Fn.add(Fn.mul(this.sk, mask), sv);
    this.w = Fn.add(Fn.mul(this.m, this.phi), Fn.mul(this.rx, v));
    this.r = this.phi = this.sk = 0n;
    return { broadcast: this.s.bcast(3, { u: bytesToHex(Fn.toBytes(this.u)), w: bytesToHex(Fn.toBytes(this.w)), R: pointToHex(Rsum) }) };
  }

  finish(input: RoundInput): SignResult {
    this.s.enter('finish');
    try {
      return this.combine(input);
    } catch (e) {
      this.s.abort();
      throw e;
    }
  }

  private combine(input: RoundInput): SignResult {
    const bc = this.s.broadcasts(3, input);
    let U = this.u;
    let W = this.w;
    for (const [j, b] of bc) {
      const Rj = parsePoint(getField(b, 'R', j), 'R view', j);
      if (!Rj.equals(this.Rsum)) throw new ProtocolError('sign: parties disagree on R (a party sent inconsistent R_j; cannot tell which)');
      U = Fn.add(U, parseScalar(getField(b, 'u', j), 'u_j', j));
      W = Fn.add(W, parseScalar(getField(b, 'w', j), 'w_j', j));
    }
    if (U === 0n) throw new ProtocolError('sign: Σu = 0');
    let s = Fn.div(W, U);
    const aff = this.Rsum.toAffine();
    let v = (aff.y & 1n ? 1 : 0) + (aff.x >= Q ? 2 : 0);
    if (s > Q >> 1n) {
      s = Fn.neg(s);
      v ^= 1;
    }
    const sig = concatBytes(Fn.toBytes(this.rx), Fn.toBytes(s));
    if (s === 0n || !secp256k1.verify(sig, this.hash, this.pub.X.toBytes(true), { prehash: false })) {
      throw new ProtocolError('sign: the combined signature does not verify (some party\'s u_j / w_j is wrong; DKLs23 does not identify it)');
    }
    return {
      r: bytesToHex(Fn.toBytes(this.rx)),
      s: bytesToHex(Fn.toBytes(s)),
      v,
      signature: bytesToHex(sig),
      publicKey: pointToHex(this.pub.X),
      messageHash: bytesToHex(this.hash),
    };
  }

  /** The decoded copies of the long-lived pairwise secrets are not needed after round 2. */
  private wipeShare(): void {
    for (const p of this.share.pairs.values()) wipe(p.sender.delta, ...p.sender.seeds, ...p.receiver.seeds0, ...p.receiver.seeds1, p.zero);
  }

  private wipeAll(): void {
    this.wipeShare();
    this.r = this.phi = this.sk = 0n;
    for (const st of this.peers.values()) {
      st.chi = st.cu = st.cv = undefined;
      wipe(st.salt);
      st.bobKeep?.keep.rows.fill(0);
      st.bobKeep?.keep.choice.fill(0);
    }
  }
}

export function sign(params: SignParams): PartyProtocol<SignResult> {
  const pub = decodePublic(params.public);
  const share = decodeShare(params.share, pub);
  const signers = validateParties(params.signers, 'signers');
  for (const k of signers) if (!pub.parties.includes(k)) throw new ProtocolError(`sign: signer ${k} is not a key holder`);
  if (!signers.includes(share.index)) throw new ProtocolError('sign: this share is not among the signers');
  if (signers.length < pub.threshold) throw new ProtocolError(`sign: need at least ${pub.threshold} signers`);
  const hash = typeof params.messageHash === 'string' ? parseBytes(params.messageHash.toLowerCase().replace(/^0x/, ''), 32, 'messageHash') : params.messageHash;
  if (!(hash instanceof Uint8Array) || hash.length !== 32) throw new ProtocolError('sign: messageHash must be 32 bytes');
  return new SignParty(pub, share, signers, hash.slice(), sessionIdBytes(params.sessionId));
}

