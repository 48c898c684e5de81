import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { HDKey } from '@scure/bip32';
import fc from 'fast-check';
import { deriveChild, deriveChildPublic, derivePath, derivePathPublic, refresh, runInProcess, sign } from '../../../src/crypto/dkls23/index.ts';
import { ProtocolError, type KeyGenResult } from '../../../src/crypto/types.ts';
import { assertValidSignature, runDkg, runSign, subsets } from './helpers.ts';

// Signature counts are modest because every signature runs the full multi-party protocol
// (OT extension + RVOLE per ordered pair) in one process; see README "Performance".
const PER_SUBSET_2OF3 = 25;
const PER_SUBSET_3OF5 = 4;

let k23: Record<number, KeyGenResult>;
let k35: Record<number, KeyGenResult>;
before(() => {
  k23 = runDkg([1, 2, 3], 2);
  k35 = runDkg([1, 2, 3, 4, 5], 3);
});

function assertAgreement(keys: Record<number, KeyGenResult>, n: number, t: number) {
  const ids = Object.keys(keys).map(Number);
  assert.equal(ids.length, n);
  for (const i of ids) {
    assert.deepEqual(keys[i].public, keys[ids[0]].public, 'every party outputs the same GroupPublic');
    assert.equal(keys[i].share.index, i);
  }
  const pub = keys[ids[0]].public;
  assert.equal(pub.threshold, t);
  assert.deepEqual(pub.parties, ids);
  assert.match(pub.publicKey, /^0[23][0-9a-f]{64}$/);
  assert.match(String(pub.extra?.chainCode), /^[0-9a-f]{64}$/);
  secp256k1.Point.fromHex(pub.publicKey).assertValidity();
}

test('DKG 2-of-3 and 3-of-5: all parties agree on key, chain code and verifying shares', () => {
  assertAgreement(k23, 3, 2);
  assertAgreement(k35, 5, 3);
  assert.notEqual(k23[1].public.publicKey, k35[1].public.publicKey);
});

test(`2-of-3: every signer subset signs ${PER_SUBSET_2OF3} random hashes; noble + viem + ethers accept, low-s`, async () => {
  const pk = k23[1].public.publicKey;
  for (const signers of [[1, 2], [1, 3], [2, 3], [1, 2, 3]]) {
    for (let k = 0; k < PER_SUBSET_2OF3; k++) {
      const h = randomBytes(32);
      const res = runSign(k23, signers, h);
      for (const i of signers) assert.deepEqual(res[i], res[signers[0]], 'all signers output the same signature');
      await assertValidSignature(res[signers[0]], h, pk);
    }
  }
});

test(`3-of-5: several signer subsets (incl. 4 and 5 signers) sign ${PER_SUBSET_3OF5} hashes each`, async () => {
  const pk = k35[1].public.publicKey;
  for (const signers of [[1, 2, 3], [3, 4, 5], [1, 3, 5], [2, 4, 5], [1, 2, 4, 5]]) {
    for (let k = 0; k < PER_SUBSET_3OF5; k++) {
      const h = randomBytes(32);
      await assertValidSignature(runSign(k35, signers, h)[signers[0]], h, pk);
    }
  }
});

test('fewer than t signers, or a signer outside the key, are rejected at the boundary', () => {
  const h = randomBytes(32);
  assert.throws(() => sign({ share: k35[1].share, public: k35[1].public, signers: [1, 2], messageHash: h, sessionId: 's' }), ProtocolError);
  assert.throws(() => sign({ share: k23[1].share, public: k23[1].public, signers: [1, 4], messageHash: h, sessionId: 's' }), ProtocolError);
  assert.throws(() => sign({ share: k23[1].share, public: k23[1].public, signers: [2, 3], messageHash: h, sessionId: 's' }), ProtocolError);
  assert.throws(() => sign({ share: k23[1].share, public: k23[1].public, signers: [1, 2], messageHash: h.slice(1), sessionId: 's' }), ProtocolError);
  assert.throws(() => sign({ share: k23[1].share, public: k35[1].public, signers: [1, 2, 3], messageHash: h, sessionId: 's' }), ProtocolError, 'share of another key');
  const badPub = { ...k23[1].public, publicKey: k35[1].public.publicKey };
  assert.throws(() => sign({ share: k23[1].share, public: badPub, signers: [1, 2], messageHash: h, sessionId: 's' }), /interpolate/);
});

test('issue 16: every verifying share is checked, not only the first t (a wrong X_3 or X_5 is refused even by signers that do not include it)', () => {
  const h = randomBytes(32);
  const other = secp256k1.Point.BASE.multiply(12345n).toHex(true);
  const bad23 = { ...k23[1].public, verifyingShares: { ...k23[1].public.verifyingShares, 3: other } };
  assert.throws(() => sign({ share: k23[1].share, public: bad23, signers: [1, 2], messageHash: h, sessionId: 's16a' }), /verifying share 3 does not interpolate/);
  const bad35 = { ...k35[1].public, verifyingShares: { ...k35[1].public.verifyingShares, 5: other } };
  assert.throws(() => sign({ share: k35[1].share, public: bad35, signers: [1, 2, 3], messageHash: h, sessionId: 's16b' }), /verifying share 5 does not interpolate/);
});

test('issue 16: signing takes no caller-supplied randomness (an injected constant rng is not used)', () => {
  // Before: SignParams.rng fed r_i, φ_i, the RVOLE choice bits and the check's ε, so a constant rng
  // made two signatures of one hash share R (the nonce reuse that yields the key). Now it is not a
  // parameter; even if a caller passes one, signing uses the CSPRNG.
  const h = randomBytes(32);
  const constant = (n: number) => new Uint8Array(n).fill(7);
  const run = (sessionId: string) =>
    runInProcess(Object.fromEntries([1, 2].map((i) => [i, sign({ share: k23[i].share, public: k23[i].public, signers: [1, 2], messageHash: h, sessionId, rng: constant } as Parameters<typeof sign>[0])])))[1];
  assert.notEqual(run('s16-rng-1').r, run('s16-rng-2').r);
});

test('BIP32 non-hardened derivation matches @scure/bip32 HDKey public derivation; children sign', async () => {
  const pub = k23[1].public;
  const hd = new HDKey({ publicKey: hexToBytes(pub.publicKey), chainCode: hexToBytes(String(pub.extra!.chainCode)) });
  for (const index of [0, 1, 7, 0x7fffffff]) {
    const child = deriveChildPublic(pub, index);
    const ref = hd.deriveChild(index);
    assert.equal(child.publicKey, bytesToHex(ref.publicKey!));
    assert.equal(child.extra!.chainCode, bytesToHex(ref.chainCode!));
  }
  assert.equal(derivePathPublic(pub, 'm/44/60/0/5').publicKey, bytesToHex(hd.derive('m/44/60/0/5').publicKey!));
  assert.throws(() => deriveChildPublic(pub, 0x80000000), ProtocolError, 'hardened rejected');
  // Each party tweaks its own share locally; the child key signs.
  const kids: Record<number, KeyGenResult> = {};
  for (const i of [1, 2, 3]) kids[i] = derivePath(k23[i].public, k23[i].share, 'm/44/60/0/5');
  for (const i of [2, 3]) assert.deepEqual(kids[i].public, kids[1].public);
  const h = randomBytes(32);
  await assertValidSignature(runSign(kids, [1, 3], h)[1], h, kids[1].public.publicKey);
  const one = deriveChild(k23[2].public, k23[2].share, 3);
  assert.equal(one.public.publicKey, bytesToHex(hd.deriveChild(3).publicKey!));
});

test('refresh: same key and chain code, new shares and pairwise state; old and new shares do not combine', async () => {
  const fresh = runInProcess(Object.fromEntries([1, 2, 3].map((i) => [i, refresh({ share: k23[i].share, public: k23[i].public, sessionId: 'refresh-1' })])));
  const pub = fresh[1].public;
  for (const i of [2, 3]) assert.deepEqual(fresh[i].public, pub);
  assert.equal(pub.publicKey, k23[1].public.publicKey);
  assert.equal(pub.extra!.chainCode, k23[1].public.extra!.chainCode);
  for (const i of [1, 2, 3]) {
    assert.notDeepEqual(fresh[i].share.secret, k23[i].share.secret);
    assert.notEqual(pub.verifyingShares[i], k23[1].public.verifyingShares[i]);
  }
  for (const signers of [[1, 2], [2, 3]]) {
    const h = randomBytes(32);
    await assertValidSignature(runSign(fresh, signers, h)[signers[0]], h, pub.publicKey);
  }
  // An old share is rejected against the new public state at the boundary...
  assert.throws(() => sign({ share: k23[1].share, public: pub, signers: [1, 2], messageHash: randomBytes(32), sessionId: 'x' }), /verifying share/);
  // ...and even presented with the old public state, it does not combine with a new share.
  const mixed = { 1: k23[1], 2: fresh[2] };
  assert.throws(() => runSign(mixed, [1, 2], randomBytes(32)), ProtocolError);
});

test('property: random signer subsets and messages on the 3-of-5 key always verify', async () => {
  const pk = k35[1].public.publicKey;
  await fc.assert(
    fc.asyncProperty(fc.subarray([1, 2, 3, 4, 5], { minLength: 3, maxLength: 5 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), async (signers, h) => {
      const res = runSign(k35, signers, h);
      await assertValidSignature(res[signers[0]], h, pk);
    }),
    { numRuns: 6 },
  );
});

test('property: random small (n, t) DKG + random subset + random message', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 2, max: 3 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 2, max: n }))),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.nat(),
      async ([n, t], h, pick) => {
        const parties = Array.from({ length: n }, (_, i) => i + 1);
        const keys = runDkg(parties, t);
        const all = subsets(parties, t);
        const signers = all[pick % all.length];
        await assertValidSignature(runSign(keys, signers, h)[signers[0]], h, keys[1].public.publicKey);
      },
    ),
    { numRuns: 3 },
  );
});
