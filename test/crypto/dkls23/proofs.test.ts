import { test } from 'node:test';
// The arithmetic the signer runs: libsecp256k1 under the point multiplications (src/crypto/dkls23/fast.ts).
import '../../../src/crypto/dkls23/fast.ts';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { randomBytes } from '@noble/hashes/utils.js';
import { dlProve, dlVerify, FISCHLIN_RHO, FISCHLIN_B, FISCHLIN_T, type DlProof } from '../../../src/crypto/dkls23/proofs.ts';
import { Fn, H, Point, bytesToHex, defaultRng as rng, mulG, randomScalar } from '../../../src/crypto/dkls23/util.ts';
import { ProtocolError } from '../../../src/crypto/types.ts';

const P = 7; // prover index named as culprit
const flipHex = (h: string, at: number) => h.slice(0, at) + ((parseInt(h[at], 16) ^ 1).toString(16)) + h.slice(at + 1);
/** Verification outcome: true, false (equation / hash condition) or 'throw' (ProtocolError naming P). */
function outcome(p: unknown, X: Point, ctx: Uint8Array): boolean | 'throw' {
  try {
    return dlVerify(p, X, ctx, P);
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.culprit === P, String(e));
    return 'throw';
  }
}
const clone = (p: DlProof): DlProof => JSON.parse(JSON.stringify(p));

const x = randomScalar(rng);
const X = mulG(x);
const ctx = H('test-ctx', randomBytes(32));
const proof = dlProve(x, X, ctx, rng);

test('Fischlin: parameters give ρ·b ≥ 128 and a valid proof verifies', () => {
  assert.ok(FISCHLIN_RHO * FISCHLIN_B >= 128 && FISCHLIN_T > FISCHLIN_B);
  assert.equal(proof.R.length, FISCHLIN_RHO);
  assert.equal(dlVerify(proof, X, ctx, P), true);
  assert.equal(dlVerify(JSON.parse(JSON.stringify(proof)), X, ctx, P), true);
});

test('Fischlin: every tampered field of every repetition fails', () => {
  for (let i = 0; i < FISCHLIN_RHO; i++) {
    for (const f of ['R', 'e', 'z'] as const) {
      const p = clone(proof);
      p[f][i] = flipHex(p[f][i], p[f][i].length - 1);
      assert.notEqual(outcome(p, X, ctx), true, `${f}[${i}]`);
    }
    // a different challenge with its matching response still fails the hash condition (or the index binding)
    const p = clone(proof);
    const e = parseInt(p.e[i], 16);
    const e2 = (e + 1) & 0xffff;
    p.e[i] = e2.toString(16).padStart(4, '0');
    p.z[i] = bytesToHex(Fn.toBytes(Fn.add(BigInt('0x' + proof.z[i]), Fn.mul(BigInt(e2 - e), x))));
    // the Schnorr equation holds; only the hash condition (prob. 2^-8) could accept
    const o = outcome(p, X, ctx);
    if (o === true) assert.ok(true); else assert.equal(o, false);
  }
  // swapping two repetitions breaks the index binding
  const sw = clone(proof);
  [sw.R[0], sw.R[1]] = [sw.R[1], sw.R[0]];
  [sw.e[0], sw.e[1]] = [sw.e[1], sw.e[0]];
  [sw.z[0], sw.z[1]] = [sw.z[1], sw.z[0]];
  assert.equal(outcome(sw, X, ctx), false);
});

test('Fischlin: malformed encodings throw naming the prover', () => {
  const bads: unknown[] = [
    null, 'x', [], {}, { ...proof, extra: 1 }, { R: proof.R, e: proof.e }, { ...proof, R: proof.R.slice(1) },
    { ...proof, e: [...proof.e, proof.e[0]] }, { ...proof, z: proof.z.map((z, i) => (i ? z : 'ff'.repeat(32))) },
    { ...proof, z: proof.z.map((z, i) => (i ? z : z.toUpperCase())) }, { ...proof, e: proof.e.map((e, i) => (i ? e : '00')) },
    { ...proof, e: proof.e.map((e, i) => (i ? e : 7)) }, { ...proof, R: proof.R.map((r, i) => (i ? r : '02' + 'f'.repeat(64))) },
    { ...proof, R: proof.R.map((r, i) => (i ? r : '00')) },
  ];
  for (const b of bads) assert.equal(outcome(b, X, ctx), 'throw', JSON.stringify(b)?.slice(0, 80));
});

test('Fischlin: a proof from another context or for another statement fails', () => {
  assert.equal(outcome(proof, X, H('test-ctx', randomBytes(32))), false);
  assert.equal(outcome(proof, X.double(), ctx), false);
  assert.equal(outcome(proof, X.negate(), ctx), false);
});

test('Fischlin: property — random witnesses and contexts verify, and only in their own context', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.nat({ max: FISCHLIN_RHO - 1 }), (seed, c, i) => {
      const w = Fn.create(BigInt('0x' + bytesToHex(seed)) + 1n) || 1n;
      const W = mulG(w);
      const pf = dlProve(w, W, c, rng);
      assert.equal(dlVerify(pf, W, c, P), true);
      assert.equal(outcome(pf, W, Uint8Array.from([...c, 0])), false);
      const t = clone(pf);
      t.z[i] = bytesToHex(Fn.toBytes(Fn.add(BigInt('0x' + t.z[i]), 1n)));
      assert.equal(outcome(t, W, c), false);
    }),
    { numRuns: 12 },
  );
});
