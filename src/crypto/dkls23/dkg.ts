/**
 * Distributed key generation (no dealer) and proactive refresh for DKLs23.
 *
 * DKLs23 (ePrint 2023/765) §3 assumes F_DKG for the key and sets up, between every ordered pair,
 * the two-party multiplication F_RVOLE (Functionality 3.5) and, among all parties, F_Zero
 * (Functionality 3.4). This module runs all three in one 5-round protocol:
 *
 *  F_DKG — Feldman-VSS DKG with commit-then-open (the structure of the DKG DKLs23 points to, ePrint
 *   2023/602 Protocol 9.1, strengthened with Feldman commitments so each share is individually
 *   checkable and a bad dealer is named):
 *    R1  broadcast H(sid, i, C_i, cc_i, salt_i)            C_i = (a_{i,0}·G, …, a_{i,t−1}·G)
 *    R2  broadcast (C_i, cc_i, salt_i, π_DL(a_{i,0}));  direct f_i(j) to each j
 *    R3  check commitment, π_DL and f_j(i)·G = Σ_k i^k·C_{j,k} for every j (abort naming j);
 *        x_i = Σ_j f_j(i); X = Σ_j C_{j,0}; X_k = Σ_j Σ_m k^m·C_{j,m}; chain code = H(sid, cc_1..cc_n)
 *    R5  broadcast H(transcript of R1, R2 broadcasts and the result) — echo check against equivocation
 *  F_RVOLE setup — for every ordered pair (Alice = i, Bob = j): κ base OTs (VSOT, ot/base.ts) with
 *   Bob as base-OT sender and Alice as receiver with random Δ; flows 1..5 ride on R1..R5.
 *  F_Zero setup — commit (R1) / open (R2) of each party's contribution to every pair seed.
 *
 * Refresh (DKLs23 discusses proactive refresh as re-sharing of zero plus fresh pairwise state): the
 * same protocol with a_{i,0} = 0 (C_{i,0} is the identity and is not sent), x_i' = x_i + Σ_j f_j(i),
 * X unchanged, X_k' = X_k + Σ_j f_j(k), chain code unchanged, and *fresh* base OTs and zero seeds,
 * so that nothing from the old pairwise state survives.
 */
import { ProtocolError, type KeyGenResult, type PartyProtocol, type RoundInput, type RoundOutput, type GroupPublic, type SecretShare } from '../types.ts';
import { KAPPA } from './ot/extension.ts';
import * as base from './ot/base.ts';
import { checkCommit, commit, dlProve, dlVerify } from './proofs.ts';
import { Session, encIndices, pairSid, sessionIdBytes, validateParties } from './session.ts';
import { SCHEME, decodePublic, decodeShare, encodePublic, encodeShare, type PairState, type PublicState, type ShareState } from './share.ts';
import { Fn, H, Point, be32, bytesToHex, commitEval, concatBytes, defaultRng, getField, mulG, parseArray, parseBytes, parsePoint, parseScalar, pointToHex, polyEval, randomScalar, wipe, type Rng } from './util.ts';
import { zeroPairSeed, zeroSeedCheck, zeroSeedCommit } from './zero-share.ts';

export interface DkgParams {
  self: number;
  parties: number[];
  threshold: number;
  sessionId: string | Uint8Array;
  /** Test hook only: deterministic randomness. Defaults to noble's CSPRNG. */
  rng?: Rng;
}
export interface RefreshParams {
  share: SecretShare;
  public: GroupPublic;
  sessionId: string | Uint8Array;
  rng?: Rng;
}

interface Refreshing { pub: PublicState; share: ShareState }

const ROUNDS = 5;

class DkgParty implements PartyProtocol<KeyGenResult> {
  readonly rounds = ROUNDS;
  private s: Session;
  private t: number;
  private rng: Rng;
  private coeffs: bigint[] = [];
  private C: Point[] = [];
  private cc: Uint8Array = new Uint8Array(32);
  private salt: Uint8Array = new Uint8Array(32);
  private coms = new Map<number, Uint8Array>();
  private zMine = new Map<number, { seed: Uint8Array; salt: Uint8Array }>();
  private zComs = new Map<number, Uint8Array>();
  private zSeeds = new Map<number, Uint8Array>();
  private otSend = new Map<number, base.BaseOtSender>(); // we are Bob (base-OT sender) towards Alice = j
  private otRecv = new Map<number, base.BaseOtReceiver>(); // we are Alice (base-OT receiver) towards Bob = j
  private deltas = new Map<number, Uint8Array>();
  private recvSetups = new Map<number, { seeds0: Uint8Array[]; seeds1: Uint8Array[] }>();
  private result?: { x: bigint; pub: PublicState };
  private echo: Uint8Array = new Uint8Array(0);

  constructor(
    private self: number,
    private parties: number[],
    threshold: number,
    sessionId: Uint8Array,
    rng: Rng,
    private old?: Refreshing,
  ) {
    this.t = threshold;
    this.rng = rng;
    const binding = [be32(threshold), ...encIndices(parties)];
    if (old) binding.push(old.pub.X.toBytes(true), old.pub.chainCode, ...parties.map((k) => old.pub.verifying.get(k)!.toBytes(true)));
    this.s = new Session(old ? 'refresh' : 'dkg', sessionId, binding, self, parties, ROUNDS);
  }

  private ctx(j: number): Uint8Array {
    return H('dkg-ctx', this.s.sid, be32(j));
  }
  private polyBytes(C: Point[]): Uint8Array {
    return concatBytes(...C.map((P) => P.toBytes(true)));
  }
  /** Commitments sent on the wire: in refresh mode the constant term (identity) is implicit. */
  private sentC(C: Point[]): Point[] {
    return this.old ? C.slice(1) : C;
  }

  round(r: number, input: RoundInput): RoundOutput {
    this.s.enter(r);
    try {
      switch (r) {
        case 1: return this.r1();
        case 2: return this.r2(input);
        case 3: return this.r3(input);
        case 4: return this.r4(input);
        case 5: return this.r5(input);
      }
    } catch (e) {
      this.s.abort();
      this.wipeAll();
      throw e;
    }
    throw new ProtocolError(`no round ${r}`);
  }

  private r1(): RoundOutput {
    const { rng } = this;
    for (let k = 0; k < this.t; k++) this.coeffs.push(k === 0 && this.old ? 0n : randomScalar(rng));
    this.C = this.coeffs.map(mulG);
    if (!this.old) this.cc = rng(32);
    this.salt = rng(32);
    const com = commit('dkg-poly', this.ctx(this.self), this.salt, this.polyBytes(this.sentC(this.C)), this.cc);
    const direct: Record<number, any> = {};
    for (const j of this.s.peers) {
      const ot = base.baseOtSenderStart(pairSid(this.s.sid, 'base-ot', j, this.self), KAPPA, rng);
      this.otSend.set(j, ot.state);
      const zs = { seed: rng(32), salt: rng(32) };
      this.zMine.set(j, zs);
      direct[j] = this.s.direct(1, j, { ot1: ot.msg as any, zcom: bytesToHex(zeroSeedCommit(this.s.sid, this.self, j, zs.seed, zs.salt)) });
    }
    this.coms.set(this.self, com);
    return { broadcast: this.s.bcast(1, { com: bytesToHex(com) }), direct };
  }

  private r2(input: RoundInput): RoundOutput {
    const bc = this.s.broadcasts(1, input);
    const dm = this.s.directs(1, input);
    for (const [j, b] of bc) {
      this.coms.set(j, parseBytes(getField(b, 'com', j), 32, 'DKG commitment', j));
    }
    const direct: Record<number, any> = {};
    for (const [j, m] of dm) {
      this.zComs.set(j, parseBytes(getField(m, 'zcom', j), 32, 'zero-seed commitment', j));
      const delta = this.rng(KAPPA / 8);
      this.deltas.set(j, delta);
      const rc = base.baseOtReceiverChoose(pairSid(this.s.sid, 'base-ot', this.self, j), KAPPA, delta, getField(m, 'ot1', j), this.rng, j);
      this.otRecv.set(j, rc.state);
      const zs = this.zMine.get(j)!;
      direct[j] = this.s.direct(2, j, {
        share: bytesToHex(Fn.toBytes(polyEval(this.coeffs, j))),
        ot2: { A: rc.A },
        zseed: bytesToHex(zs.seed),
        zsalt: bytesToHex(zs.salt),
      });
    }
    const body: any = { C: this.sentC(this.C).map(pointToHex), salt: bytesToHex(this.salt) };
    if (!this.old) {
      body.cc = bytesToHex(this.cc);
      body.pok = dlProve(this.coeffs[0], this.C[0], this.ctx(this.self), this.rng) as any;
    }
    return { broadcast: this.s.bcast(2, body), direct };
  }

  private r3(input: RoundInput): RoundOutput {
    const bc = this.s.broadcasts(2, input);
    const dm = this.s.directs(2, input);
    const polys = new Map<number, Point[]>([[this.self, this.C]]);
    const ccs = new Map<number, Uint8Array>([[this.self, this.cc]]);
    for (const [j, b] of bc) {
      const nC = this.old ? this.t - 1 : this.t;
      const sent = parseArray(getField(b, 'C', j), nC, 'Feldman commitment', j).map((v) => parsePoint(v, 'Feldman commitment', j));
      const salt = parseBytes(getField(b, 'salt', j), 32, 'DKG salt', j);
      const cc = this.old ? this.cc : parseBytes(getField(b, 'cc', j), 32, 'chain-code contribution', j);
      if (!checkCommit(this.coms.get(j)!, 'dkg-poly', this.ctx(j), salt, this.polyBytes(sent), cc)) {
        throw new ProtocolError('DKG: opened polynomial commitment does not match round-1 commitment', j);
      }
      const C = this.old ? [Point.ZERO, ...sent] : sent;
      if (!this.old && !dlVerify(getField(b, 'pok', j), C[0], this.ctx(j), j)) {
        throw new ProtocolError('DKG: proof of knowledge of the constant term failed', j);
      }
      polys.set(j, C);
      ccs.set(j, cc);
    }
    let x = this.old ? this.old.share.x : Fn.ZERO;
    x = Fn.add(x, polyEval(this.coeffs, this.self));
    const direct: Record<number, any> = {};
    for (const [j, m] of dm) {
      const share = parseScalar(getField(m, 'share', j), 'DKG share', j);
      if (!mulG(share).equals(commitEval(polys.get(j)!, this.self))) {
        throw new ProtocolError('DKG: share does not match the sender\'s Feldman commitment', j);
      }
      x = Fn.add(x, share);
      const zseed = parseBytes(getField(m, 'zseed', j), 32, 'zero seed', j);
      const zsalt = parseBytes(getField(m, 'zsalt', j), 32, 'zero seed salt', j);
      if (!zeroSeedCheck(this.zComs.get(j)!, this.s.sid, j, this.self, zseed, zsalt)) {
        throw new ProtocolError('DKG: zero-share seed opening does not match its commitment', j);
      }
      this.zSeeds.set(j, zeroPairSeed(this.s.sid, this.self, this.zMine.get(j)!.seed, j, zseed));
      const xi = base.baseOtSenderChallenge(this.otSend.get(j)!, getField(m, 'ot2', j), j);
      direct[j] = this.s.direct(3, j, { ot3: xi });
    }
    // Public outputs.
    const X = this.old ? this.old.pub.X : [...polys.values()].reduce((acc, C) => acc.add(C[0]), Point.ZERO);
    if (X.is0()) throw new ProtocolError('DKG: public key is the identity');
    const verifying = new Map<number, Point>();
    for (const k of this.parties) {
      let acc = this.old ? this.old.pub.verifying.get(k)! : Point.ZERO;
      for (const C of polys.values()) acc = acc.add(commitEval(C, k));
      if (acc.is0()) throw new ProtocolError(`DKG: verifying share of party ${k} is the identity`);
      verifying.set(k, acc);
    }
    if (!mulG(x).equals(verifying.get(this.self)!)) throw new ProtocolError('DKG: internal share/verifying-share mismatch');
    const chainCode = this.old ? this.old.pub.chainCode : H('dkg-chain-code', this.s.sid, ...this.parties.map((k) => ccs.get(k)!));
    this.result = { x, pub: { X, threshold: this.t, parties: this.parties, verifying, chainCode } };
    // Echo (checked in finish): a canonical digest of every party's round-1 commitment, opened
    // polynomial commitment and chain-code contribution, and of the derived public result. Equal
    // echoes mean every honest party saw the same broadcasts (detects equivocation, R5).
    this.echo = H(
      'dkg-echo',
      this.s.sid,
      ...this.parties.map((k) => this.coms.get(k)!),
      ...this.parties.map((k) => this.polyBytes(polys.get(k)!.filter((P) => !P.is0()))),
      ...this.parties.map((k) => ccs.get(k)!),
      X.toBytes(true),
      chainCode,
      ...this.parties.map((k) => verifying.get(k)!.toBytes(true)),
    );
    wipe(this.cc, this.salt);
    this.coeffs = [];
    return { direct };
  }

  private r4(input: RoundInput): RoundOutput {
    const dm = this.s.directs(3, input);
    const direct: Record<number, any> = {};
    for (const [j, m] of dm) direct[j] = this.s.direct(4, j, { ot4: base.baseOtReceiverRespond(this.otRecv.get(j)!, getField(m, 'ot3', j), j) });
    return { direct };
  }

  private r5(input: RoundInput): RoundOutput {
    const dm = this.s.directs(4, input);
    const direct: Record<number, any> = {};
    for (const [j, m] of dm) {
      const st = this.otSend.get(j)!;
      direct[j] = this.s.direct(5, j, { ot5: base.baseOtSenderVerify(st, getField(m, 'ot4', j), j) });
      const { rho0, rho1 } = base.baseOtSenderOutput(st);
      this.recvSetups.set(j, { seeds0: rho0, seeds1: rho1 });
    }
    return { broadcast: this.s.bcast(5, { echo: bytesToHex(this.echo) }), direct };
  }

  finish(input: RoundInput): KeyGenResult {
    this.s.enter('finish');
    try {
      const bc = this.s.broadcasts(5, input);
      const dm = this.s.directs(5, input);
      for (const [j, b] of bc) {
        const echo = parseBytes(getField(b, 'echo', j), 32, 'DKG echo', j);
        if (bytesToHex(echo) !== bytesToHex(this.echo)) {
          // Someone equivocated or j lies about its view. With two parties that is j; with more,
          // an honest j that received a different broadcast is indistinguishable from a liar here
          // (the node's signed envelopes are the evidence), so nobody is named.
          throw new ProtocolError('DKG: transcript echo differs (inconsistent broadcast / equivocation)', this.parties.length === 2 ? j : undefined);
        }
      }
      const pairs = new Map<number, PairState>();
      for (const [j, m] of dm) {
        const seeds = base.baseOtReceiverFinish(this.otRecv.get(j)!, getField(m, 'ot5', j), j);
        pairs.set(j, { sender: { delta: this.deltas.get(j)!, seeds }, receiver: this.recvSetups.get(j)!, zero: this.zSeeds.get(j)! });
      }
      const { x, pub } = this.result!;
      const out = { public: encodePublic(pub), share: encodeShare({ index: this.self, x, pairs }) };
      this.result = undefined;
      this.wipeAll();
      return out;
    } catch (e) {
      this.s.abort();
      this.wipeAll();
      throw e;
    }
  }

  private wipeAll(): void {
    this.coeffs = [];
    wipe(this.cc, this.salt, ...this.deltas.values(), ...this.zSeeds.values());
    for (const z of this.zMine.values()) wipe(z.seed, z.salt);
    for (const st of this.otSend.values()) st.b = 0n;
  }
}

/** t-of-n DKG with no dealer, including all pairwise OT / multiplication and zero-share setup. */
export function dkg(params: DkgParams): PartyProtocol<KeyGenResult> {
  const parties = validateParties(params.parties);
  const { self, threshold } = params;
  if (!parties.includes(self)) throw new ProtocolError('dkg: self is not in parties');
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > parties.length) throw new ProtocolError('dkg: threshold must be an integer in 2..n');
  return new DkgParty(self, parties, threshold, sessionIdBytes(params.sessionId), params.rng ?? defaultRng);
}

/** Proactive refresh by all n parties: same public key and chain code, new shares, new pairwise state. */
export function refresh(params: RefreshParams): PartyProtocol<KeyGenResult> {
  const pub = decodePublic(params.public);
  const share = decodeShare(params.share, pub);
  return new DkgParty(share.index, pub.parties, pub.threshold, sessionIdBytes(params.sessionId), params.rng ?? defaultRng, { pub, share });
}

/**
 * The pairwise set-up of a new committee after a redistribution (src/crypto/reshare.ts): the shares
 * there are plain Shamir shares with no OT or zero-sharing state, so the new holders run this module's
 * refresh once among themselves (fresh base OTs for every new pair, fresh zero seeds, a re-randomised
 * sharing). The staged share is checked against its verifying share like any other.
 */
export function pairSetup(params: RefreshParams): PartyProtocol<KeyGenResult> {
  const pub = decodePublic(params.public);
  const sec = params.share?.secret as Record<string, unknown> | undefined;
  if (!sec || sec.scheme !== SCHEME || sec.staged !== true) throw new ProtocolError('pairSetup: not a staged DKLs23 share');
  const index = params.share.index;
  if (!pub.parties.includes(index)) throw new ProtocolError('pairSetup: index not in public.parties');
  const x = parseScalar(sec.x, 'share x', undefined, false);
  if (!mulG(x).equals(pub.verifying.get(index)!)) throw new ProtocolError('pairSetup: share does not match its verifying share');
  return new DkgParty(index, pub.parties, pub.threshold, sessionIdBytes(params.sessionId), params.rng ?? defaultRng, { pub, share: { index, x, pairs: new Map() } });
}
