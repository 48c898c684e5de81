/**
 * A tampering adversary corrupts one party's messages (party 2, acting maliciously) in every round of
 * DKG and of signing; the honest parties must abort with a ProtocolError that names party 2 and must
 * not output a key or signature. Where DKLs23 has no identifiable abort (the final combination), we
 * assert the abort and that no culprit is named rather than a wrong one.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { dkg, sign, runInProcess, type RunOptions } from '../../../src/crypto/dkls23/index.ts';
import { ProtocolError, type KeyGenResult, type RoundOutput } from '../../../src/crypto/types.ts';
import { runDkg } from './helpers.ts';

const EVIL = 2;
const flip = (h: string, at = 10) => h.slice(0, at) + (parseInt(h[at], 16) ^ 1).toString(16) + h.slice(at + 1);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

type Mut = (out: RoundOutput) => void;
/** Apply `mut` to EVIL's output of round `round` (a deep copy, as if rewritten on the wire). */
function tamper(round: number, mut: Mut): RunOptions {
  return {
    adversary: [EVIL],
    intercept: (r, from, out) => {
      if (r !== round || from !== EVIL) return out;
      const o = clone(out);
      mut(o);
      return o;
    },
  };
}
function expectAbort(run: () => unknown, culprit: number | undefined, label: string, message?: RegExp) {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `${label}: ProtocolError expected, got ${String(e)}`);
    assert.equal(e.culprit, culprit, `${label}: culprit (${e.message})`);
    if (message) assert.match(e.message, message, label);
    return true;
  }, label);
}

// ---------------------------------------------------------------- DKG

// DKG cases use two parties: the base OTs make every DKG run cost ~0.75 s per ordered pair here, and
// naming the right party (2, never the honest 1, never nobody) is what is under test.
const P = [1, 2];
const runDkgWith = (opts: RunOptions, sessionId = 'dkg-tamper') =>
  runInProcess(Object.fromEntries(P.map((i) => [i, dkg({ self: i, parties: P, threshold: 2, sessionId })])), opts);

// Messages of another DKG session (same parties) for the cross-session case.
let foreign: Map<number, RoundOutput>;
before(() => {
  foreign = new Map();
  try {
    runInProcess(Object.fromEntries(P.map((i) => [i, dkg({ self: i, parties: P, threshold: 2, sessionId: 'other-session' })])), {
      intercept: (r, from, out) => {
        if (from === EVIL && r <= 2) foreign.set(r, clone(out));
        if (r === 2 && from === EVIL) throw new Error('stop'); // rounds 1-2 are all we need
        return out;
      },
    });
  } catch (e) {
    if ((e as Error).message !== 'stop') throw e;
  }
});

test('DKG: tampering in every round aborts naming the tamperer', () => {
  const cases: [string, number, Mut][] = [
    ['R1 broadcast: flipped polynomial commitment', 1, (o) => { (o.broadcast as any).body.com = flip((o.broadcast as any).body.com); }],
    ['R1 direct: VSOT proof of knowledge of b corrupted', 1, (o) => { const p = (o.direct as any)[1].body.ot1.proof; p.z[3] = flip(p.z[3], 60); }],
    ['R1 direct: zero-seed commitment corrupted', 1, (o) => { const b = (o.direct as any)[1].body; b.zcom = flip(b.zcom); }],
    ['R2 broadcast: opening salt altered (only the commitment check can see it)', 2, (o) => { const b = (o.broadcast as any).body; b.salt = flip(b.salt, 5); }],
    ['R2 broadcast: a Feldman coefficient swapped', 2, (o) => { const C = (o.broadcast as any).body.C; [C[0], C[1]] = [C[1], C[0]]; }],
    ['R2 broadcast: PoK of the constant term corrupted', 2, (o) => { const p = (o.broadcast as any).body.pok; p.z[0] = flip(p.z[0], 50); }],
    ['R2 direct: Shamir share flipped', 2, (o) => { const b = (o.direct as any)[1].body; b.share = flip(b.share, 40); }],
    ['R2 direct: VSOT A_i replaced', 2, (o) => { const A = (o.direct as any)[1].body.ot2.A; A[3] = A[4]; }],
    ['R2 direct: zero seed opened to another value', 2, (o) => { const b = (o.direct as any)[1].body; b.zseed = flip(b.zseed, 0); }],
    ['R2 direct: replay of the round-1 message', 2, (o) => { (o.direct as any)[1] = { ...(o.direct as any)[1], round: 1 }; }],
    ['R3 direct: VSOT challenge ξ corrupted', 3, (o) => { const b = (o.direct as any)[1].body; b.ot3 = flip(b.ot3, 20); }],
    ['R4 direct: VSOT response ρ\' corrupted', 4, (o) => { const b = (o.direct as any)[1].body; b.ot4 = flip(b.ot4, 20); }],
    ['R5 direct: VSOT opening corrupted', 5, (o) => { const b = (o.direct as any)[1].body.ot5; b.h0 = flip(b.h0, 2); b.h1 = flip(b.h1, 2); }],
    ['R5 broadcast: transcript echo differs (equivocation)', 5, (o) => { (o.broadcast as any).body.echo = flip((o.broadcast as any).body.echo); }],
  ];
  for (const [label, round, mut] of cases) expectAbort(() => runDkgWith(tamper(round, mut)), EVIL, label);
});

test('DKG: a message from another session, and a dropped message, are rejected naming the sender', () => {
  expectAbort(() => runDkgWith(tamper(2, (o) => { (o.direct as any)[1] = (foreign.get(2)!.direct as any)[1]; })), EVIL, 'R2 direct from another session');
  expectAbort(() => runDkgWith(tamper(1, (o) => { o.broadcast = foreign.get(1)!.broadcast; })), EVIL, 'R1 broadcast from another session');
  expectAbort(() => runDkgWith(tamper(3, (o) => { delete (o.direct as any)[1]; })), EVIL, 'R3 direct dropped');
  // The body's share from another session inside this session's envelope: only the Feldman check sees it.
  expectAbort(() => runDkgWith(tamper(2, (o) => { (o.direct as any)[1].body.share = (foreign.get(2)!.direct as any)[1].body.share; })), EVIL, 'R2 Shamir share from another session (envelope intact)');
});

test('DKG with three parties: the tamperer is named, not the honest bystander', () => {
  const P3 = [1, 2, 3];
  const run = (opts: RunOptions) => runInProcess(Object.fromEntries(P3.map((i) => [i, dkg({ self: i, parties: P3, threshold: 2, sessionId: 'dkg3' })])), opts);
  expectAbort(() => run(tamper(2, (o) => { const b = (o.direct as any)[3].body; b.share = flip(b.share, 40); })), EVIL, 'share to party 3 flipped');
  expectAbort(() => run(tamper(1, (o) => { const p = (o.direct as any)[3].body.ot1.proof; p.z[15] = flip(p.z[15], 60); })), EVIL, 'VSOT PoK to party 3 corrupted');
});

// ---------------------------------------------------------------- signing

let keys: Record<number, KeyGenResult>;
before(() => {
  keys = runDkg([1, 2, 3], 2, 'sign-tamper-fixture');
});
const S = [1, 2, 3];
const runSignWith = (opts: RunOptions, sessionId = 'sign-tamper', hash = new Uint8Array(32).fill(7)) =>
  runInProcess(Object.fromEntries(S.map((i) => [i, sign({ share: keys[i].share, public: keys[i].public, signers: S, messageHash: hash, sessionId })])), opts);

test('sign: tampering in rounds 1 and 2 aborts naming the tamperer', () => {
  let r1Foreign: any;
  let r2Foreign: any;
  runSignWith({ intercept: (r, from, out) => { if (from === EVIL) { if (r === 1) r1Foreign = clone(out); if (r === 2) r2Foreign = clone(out); } return out; } }, 'sign-other');
  const cases: [string, number, Mut][] = [
    ['R1: KOS matrix u corrupted (inconsistent choice bits)', 1, (o) => { const m = (o.direct as any)[1].body.mul1; m.u = flip(m.u, 1000); }],
    ['R1: KOS consistency value t̂ wrong', 1, (o) => { const m = (o.direct as any)[1].body.mul1; m.th = flip(m.th, 5); }],
    ['R1: KOS consistency value x̂ wrong', 1, (o) => { const m = (o.direct as any)[1].body.mul1; m.xh = flip(m.xh, 0); }],
    ['R1: message from another signing session', 1, (o) => { (o.direct as any)[1] = r1Foreign.direct[1]; }],
    ['R2: replay of round-1 message', 2, (o) => { (o.direct as any)[1] = { ...(o.direct as any)[1], round: 1 }; }],
    ['R2: decommitted R_j differs from commitment', 2, (o) => { const b = (o.direct as any)[1].body; b.R = b.pk; }],
    ['R1: commitment to R_i altered (only the decommitment check can see it)', 1, (o) => { const b = (o.direct as any)[1].body; b.com = flip(b.com, 7); }],
    ['R2: decommitment salt altered (only the decommitment check can see it)', 2, (o) => { const b = (o.direct as any)[1].body; b.salt = flip(b.salt, 7); }],
    ['R2: pk_j swapped for another point (Γ^v check)', 2, (o) => { const b = (o.direct as any)[1].body; b.pk = b.R; }],
    ['R2: Γ^u and Γ^v swapped', 2, (o) => { const b = (o.direct as any)[1].body; [b.gu, b.gv] = [b.gv, b.gu]; }],
    ['R2: Γ^u replaced by another point (first consistency check alone)', 2, (o) => { const b = (o.direct as any)[1].body; b.gu = b.R; }],
    ['R2: Γ^v replaced by another point (second consistency check alone)', 2, (o) => { const b = (o.direct as any)[1].body; b.gv = b.R; }],
    ['R2: message from another signing session', 2, (o) => { (o.direct as any)[1] = r2Foreign.direct[1]; }],
    ['R2: RVOLE message body from another signing session (envelope intact)', 2, (o) => { (o.direct as any)[1].body.mul2 = r2Foreign.direct[1].body.mul2; }],
    ['R1: KOS message body from another signing session (envelope intact)', 1, (o) => { (o.direct as any)[1].body.mul1 = r1Foreign.direct[1].body.mul1; }],
    ['R2: message meant for party 3 delivered to party 1', 2, (o) => { (o.direct as any)[1] = (o.direct as any)[3]; }],
    ['R2: envelope addressed to party 3 (body intact)', 2, (o) => { (o.direct as any)[1].to = 3; }],
    ['R2: RVOLE μ corrupted', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.mu = flip(m.mu, 3); }],
    ['R2: RVOLE η corrupted', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.eta = flip(m.eta, 40); }],
    ['R2: one RVOLE ã_{j,w} corrupted', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.at = flip(m.at, 64 * 100 + 50); }],
    ['R2: the ã rows of the RVOLE rotated by one OT', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.at = m.at.slice(64 * 3) + m.at.slice(0, 64 * 3); }],
  ];
  for (const [label, round, mut] of cases) {
    expectAbort(() => runSignWith(tamper(round, mut)), EVIL, label);
  }
});

test('sign: corruption only visible in the final combination aborts without naming anyone (DKLs23 has no identifiable abort there)', () => {
  const cases: [string, number, Mut][] = [
    ['R2: ψ altered', 2, (o) => { const b = (o.direct as any)[1].body; b.psi = flip(b.psi, 30); }],
    ['R3: u_i altered', 3, (o) => { const b = (o.broadcast as any).body; b.u = flip(b.u, 30); }],
    ['R3: w_i altered', 3, (o) => { const b = (o.broadcast as any).body; b.w = flip(b.w, 30); }],
    ['R3: inconsistent view of R', 3, (o) => { const b = (o.broadcast as any).body; b.R = keys[1].public.publicKey; }],
  ];
  for (const [label, round, mut] of cases) expectAbort(() => runSignWith(tamper(round, mut)), undefined, label);
});

test('sign: a replayed round-3 broadcast, and one from another session, abort naming the sender', () => {
  let r3Foreign: any;
  runSignWith({ intercept: (r, from, out) => { if (r === 3 && from === EVIL) r3Foreign = clone(out); return out; } }, 'sign-other-3');
  expectAbort(() => runSignWith(tamper(3, (o) => { o.broadcast = r3Foreign.broadcast; })), EVIL, 'R3 broadcast from another session');
  expectAbort(() => runSignWith(tamper(3, (o) => { o.broadcast = { ...(o.broadcast as any), round: 2 }; })), EVIL, 'R3 broadcast with a replayed round number');
});

test('sign: a party signing with a consistent but wrong key share fails Σ pk_j = PK (nobody named, no signature)', () => {
  // Party 3 holds x_3 + 1 and a GroupPublic whose X_3 matches it and whose X_1, X_2 lie on the same
  // line through the (untouched) key X, so the boundary check (all n verifying shares interpolate to X)
  // passes; its RVOLE inputs, pk_3 and Γ values are all consistent with each other: only the sum of
  // the pk_j over the signers can reveal the wrong share.
  const bad = clone(keys[3]);
  const sec = bad.share.secret as any;
  const Fn = secp256k1.Point.Fn;
  const x = Fn.add(Fn.fromBytes(hexToBytes(sec.x)), 1n);
  sec.x = bytesToHex(Fn.toBytes(x));
  const X3 = secp256k1.Point.BASE.multiply(x);
  bad.public.verifyingShares[3] = bytesToHex(X3.toBytes(true));
  // f(k) = X + (k/3)·(X_3 − X): the line through (0, X) and (3, X_3).
  const X = secp256k1.Point.fromHex(bad.public.publicKey);
  for (const k of [1, 2]) bad.public.verifyingShares[k] = bytesToHex(X.add(X3.subtract(X).multiply(Fn.div(BigInt(k), 3n))).toBytes(true));
  const hash = new Uint8Array(32).fill(9);
  const ks: Record<number, KeyGenResult> = { 1: keys[1], 2: keys[2], 3: bad };
  // It is the Σ pk_j = PK check (DKLs23 Protocol 3.6 step 8) that fires, before any signature is formed.
  expectAbort(
    () => runInProcess(Object.fromEntries(S.map((i) => [i, sign({ share: ks[i].share, public: ks[i].public, signers: S, messageHash: hash, sessionId: 'wrong-share' })])), { adversary: [3] }),
    undefined,
    'wrong key share',
    /do not add up to the public key/,
  );
});

test('sign: a party that feeds the RVOLE an instance key other than the r_i behind R_i is named (Γ^u check)', () => {
  // Party 2 runs the honest code, but between rounds 1 and 2 its instance key is swapped: R_2 and the
  // commitment are for r, the RVOLE input (and so Γ^u) for r + 1 — the inconsistency the paper's first
  // step-8 check exists to catch.
  const hash = new Uint8Array(32).fill(5);
  const ps = Object.fromEntries(S.map((i) => [i, sign({ share: keys[i].share, public: keys[i].public, signers: S, messageHash: hash, sessionId: 'swap-r' })]));
  const evil = ps[EVIL] as any;
  const round = evil.round.bind(evil);
  evil.round = (r: number, inp: any) => {
    if (r === 2) evil.r = secp256k1.Point.Fn.add(evil.r, 1n);
    return round(r, inp);
  };
  expectAbort(() => runInProcess(ps, { adversary: [EVIL] }), EVIL, 'RVOLE input r differs from the r behind R_j');
});

test('sign: malformed values are rejected at the boundary naming the sender', () => {
  const cases: [string, number, Mut][] = [
    ['R2: R not on the curve', 2, (o) => { const b = (o.direct as any)[1].body; b.R = '02' + 'f'.repeat(64); }],
    ['R2: ψ ≥ q', 2, (o) => { const b = (o.direct as any)[1].body; b.psi = 'f'.repeat(64); }],
    ['R2: truncated ã', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.at = m.at.slice(2); }],
    ['R2: an ã_{j,w} ≥ q', 2, (o) => { const m = (o.direct as any)[1].body.mul2; m.at = 'f'.repeat(64) + m.at.slice(64); }],
    ['R3: u not hex', 3, (o) => { const b = (o.broadcast as any).body; b.u = 'zz' + b.u.slice(2); }],
  ];
  for (const [label, round, mut] of cases) expectAbort(() => runSignWith(tamper(round, mut)), EVIL, label);
});

test('protocol objects refuse out-of-order and repeated rounds', () => {
  const p = sign({ share: keys[1].share, public: keys[1].public, signers: [1, 2], messageHash: randomBytes(32), sessionId: 'x' });
  assert.throws(() => p.round(2, { broadcast: {}, direct: {} }), ProtocolError);
  p.round(1, { broadcast: {}, direct: {} });
  assert.throws(() => p.round(1, { broadcast: {}, direct: {} }), /out of order/);
  // A failed round kills the object (its secrets are wiped): nothing further is accepted.
  assert.throws(() => p.round(2, { broadcast: {}, direct: {} }), (e: any) => e instanceof ProtocolError && e.culprit === 2);
  assert.throws(() => p.round(3, { broadcast: {}, direct: {} }), /aborted/);
  assert.throws(() => p.finish({ broadcast: {}, direct: {} }), /aborted/);
});
