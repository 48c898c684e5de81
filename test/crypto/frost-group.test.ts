/**
 * The WebAssembly groups (libsodium, libsecp256k1) against the noble reference: the same results on
 * random scalars and points, and the same refusals on the encodings RFC 9591 §3.1 and BIP340
 * refuse (identity, small order, mixed order, non-canonical, off-curve, wrong length or prefix).
 * Then whole signatures: the WebAssembly signing path gives byte-identical shares to noble's own
 * FROST module (including the BIP340/taproot suite, which the RFC vectors do not cover).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST, secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519_FROST } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { GROUPS, verifyPlain, type Group, type GroupName } from '../../src/crypto/frost-group.ts';
import { frostAggregate, frostCommit, frostDkg, frostSignShare, frostVerify, frostVerifyShare, type CommitmentJson, type FrostSchemeName } from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import type { KeyGenResult, PartyProtocol } from '../../src/crypto/types.ts';

const RUNS = 200;

function accepts(g: Group, b: Uint8Array): string | false {
  try {
    return bytesToHex(g.encode(g.decode(b)));
  } catch {
    return false;
  }
}

/** Both builds accept the same encodings, and decode accepted ones to the same canonical bytes. */
function assertSameDecode(name: GroupName, b: Uint8Array): string | false {
  const w = accepts(GROUPS.wasm[name], b);
  const n = accepts(GROUPS.noble[name], b);
  assert.equal(w, n, `${name} decode ${bytesToHex(b)}: wasm ${w} noble ${n}`);
  return w;
}

const scalar = (name: GroupName) => fc.bigInt({ min: 1n, max: GROUPS.noble[name].Fn.ORDER - 1n });

describe('WebAssembly and noble groups agree on random scalars', () => {
  for (const name of ['ed25519', 'secp256k1'] as const) {
    test(`${name}: base, mul, add, neg, equals`, () => {
      const W = GROUPS.wasm[name];
      const N = GROUPS.noble[name];
      fc.assert(
        fc.property(scalar(name), scalar(name), (a, b) => {
          const wa = W.base(a);
          const na = N.base(a);
          assert.equal(bytesToHex(W.encode(wa)), bytesToHex(N.encode(na)));
          assert.equal(bytesToHex(W.encode(W.mul(wa, b))), bytesToHex(N.encode(N.mul(na, b))));
          const Fn = N.Fn;
          if (Fn.add(a, b) !== 0n) assert.equal(bytesToHex(W.encode(W.add(wa, W.base(b)))), bytesToHex(N.encode(N.add(na, N.base(b)))));
          else assert.throws(() => W.add(wa, W.base(b)), /identity/);
          assert.equal(bytesToHex(W.encode(W.neg(wa))), bytesToHex(N.encode(N.base(Fn.neg(a)))));
          assert.equal(W.equals(W.decode(W.encode(wa)), wa), true);
          assert.equal(W.equals(wa, W.base(a === 1n ? 2n : 1n)), false);
          if (name === 'secp256k1') assert.equal(W.hasEvenY(wa), N.hasEvenY(na));
          // Decoding the encoding of a random point: accepted by both, same bytes back.
          assert.notEqual(assertSameDecode(name, W.encode(wa)), false);
        }),
        { numRuns: RUNS },
      );
    });
    test(`${name}: a zero or out-of-range scalar is refused by both`, () => {
      for (const g of [GROUPS.wasm[name], GROUPS.noble[name]]) {
        for (const s of [0n, g.Fn.ORDER, g.Fn.ORDER + 1n, -1n]) {
          assert.throws(() => g.base(s), /scalar out of range/);
          assert.throws(() => g.mul(g.base(1n), s), /scalar out of range/);
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Ed25519 encodings RFC 9591 §6.1 refuses

const P25519 = 2n ** 255n - 19n;
const leBytes = (n: bigint) => {
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return b;
};
const edPoint = ed25519.Point;
// A point of order 8 (its multiples are the whole torsion subgroup, identity included).
const T8 = edPoint.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
const torsion = Array.from({ length: 8 }, (_, k) => (k === 0 ? edPoint.ZERO : T8.multiplyUnsafe(BigInt(k))));

describe('Ed25519 decoding: refused exactly where RFC 9591 refuses', () => {
  test('the torsion points (identity and small order) are refused by both', () => {
    assert.ok(T8.multiplyUnsafe(8n).is0() && !T8.multiplyUnsafe(4n).is0(), 'T8 has order 8');
    for (const T of torsion) {
      const b = T.toBytes();
      assert.equal(assertSameDecode('ed25519', b), false);
      // The same x = 0 / small-order points with the sign bit flipped.
      const flipped = Uint8Array.from(b);
      flipped[31] ^= 0x80;
      assert.equal(assertSameDecode('ed25519', flipped), false);
    }
  });
  test('mixed-order points (prime-order point + torsion) are refused by both', () => {
    fc.assert(
      fc.property(scalar('ed25519'), fc.integer({ min: 1, max: 7 }), (a, k) => {
        const P = edPoint.BASE.multiply(a).add(torsion[k]);
        assert.equal(assertSameDecode('ed25519', P.toBytes()), false);
      }),
      { numRuns: RUNS },
    );
  });
  test('non-canonical y (y >= p), with either sign bit, is refused by both', () => {
    for (let k = 0n; k < 19n; k++) {
      for (const sign of [0, 0x80]) {
        const b = leBytes(P25519 + k);
        b[31] |= sign;
        assert.equal(assertSameDecode('ed25519', b), false, `y = p + ${k}`);
      }
    }
  });
  test('random 32-byte strings: both accept the same ones', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => {
        if (assertSameDecode('ed25519', b) !== false) accepted++;
      }),
      { numRuns: RUNS * 5 },
    );
    // About 1/16 of random strings are prime-order points (1/2 on the curve, 1/8 of those torsion-free).
    assert.ok(accepted > 0, 'some random strings are valid points');
  });
  test('wrong lengths are refused by both', () => {
    const good = edPoint.BASE.toBytes();
    for (const b of [good.subarray(0, 31), Uint8Array.of(...good, 0), new Uint8Array(0)]) assert.equal(assertSameDecode('ed25519', b), false);
  });
});

// ---------------------------------------------------------------------------------------------
// secp256k1 encodings RFC 9591 §6.5 refuses

const Pk1 = secp256k1.Point.Fp.ORDER;
const beBytes = (n: bigint, len = 32) => hexToBytes(n.toString(16).padStart(len * 2, '0'));

describe('secp256k1 decoding: refused exactly where RFC 9591 refuses', () => {
  test('x >= p (non-canonical), with either prefix, is refused by both', () => {
    for (let k = 0n; k < 40n; k++) for (const pre of [2, 3]) assert.equal(assertSameDecode('secp256k1', Uint8Array.of(pre, ...beBytes(Pk1 + k))), false, `x = p + ${k}`);
  });
  test('x = 0 and other x with no point on the curve are refused by both', () => {
    for (const pre of [2, 3]) assert.equal(assertSameDecode('secp256k1', Uint8Array.of(pre, ...new Uint8Array(32))), false);
  });
  test('the identity, uncompressed, hybrid and unknown prefixes, and wrong lengths are refused by both', () => {
    const P = secp256k1.Point.BASE.multiply(12345n);
    const c = P.toBytes(true);
    const u = P.toBytes(false);
    const cases = [Uint8Array.of(0), new Uint8Array(33), u, Uint8Array.of(6 + (c[0] & 1), ...u.subarray(1)), Uint8Array.of(4, ...c.subarray(1)), Uint8Array.of(5, ...c.subarray(1)), c.subarray(1), Uint8Array.of(...c, 0)];
    for (const b of cases) assert.equal(assertSameDecode('secp256k1', b), false, bytesToHex(b));
    assert.notEqual(assertSameDecode('secp256k1', c), false);
  });
  test('random x with either prefix: both accept the same ones', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.constantFrom(2, 3), fc.uint8Array({ minLength: 32, maxLength: 32 }), (pre, x) => {
        if (assertSameDecode('secp256k1', Uint8Array.of(pre, ...x)) !== false) accepted++;
      }),
      { numRuns: RUNS * 5 },
    );
    assert.ok(accepted > 0, 'about half of random x are on the curve');
  });
});

// ---------------------------------------------------------------------------------------------
// Whole signatures: WebAssembly path = noble's FROST module, byte for byte

function dkg(name: FrostSchemeName, t: number, n: number) {
  const parties = Array.from({ length: n }, (_, i) => i + 1);
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(name, { self: p, parties, threshold: t })]));
  return runInProcess(protos);
}

describe('signing on the WebAssembly groups gives what noble gives', () => {
  for (const name of ['ed25519', 'secp256k1-schnorr'] as const) {
    for (const [t, n] of [[2, 3], [3, 5]] as const) {
      test(`${name} ${t}-of-${n}: shares equal noble's FROST module's, signature verifies with the plain verifier`, () => {
        const keys = dkg(name, t, n);
        const frost = name === 'ed25519' ? ed25519_FROST : schnorr_FROST;
        for (let round = 0; round < 4; round++) {
          const signers = [...keys.keys()].sort(() => Math.random() - 0.5).slice(0, t).sort((a, b) => a - b);
          const pub = keys.get(signers[0])!.public;
          const msg = randomBytes(1 + round * 20);
          const nonces = new Map(signers.map((s) => [s, frostCommit(name, keys.get(s)!.share)]));
          const commitments: Record<number, CommitmentJson> = {};
          for (const [s, c] of nonces) commitments[s] = c.commitment;
          const shares: Record<number, string> = {};
          for (const s of signers) {
            const share = keys.get(s)!.share;
            const nj = nonces.get(s)!.nonces;
            const id = frost.Identifier.fromNumber(s);
            const fp = pub.extra!.frost as { commitments: string[]; verifyingShares: Record<string, string> };
            const noblePub = {
              signers: { min: t, max: n },
              commitments: fp.commitments.map(hexToBytes),
              verifyingShares: Object.fromEntries(Object.entries(fp.verifyingShares).map(([k, v]) => [k, hexToBytes(v)])),
            };
            const list = signers.map((q) => ({ identifier: frost.Identifier.fromNumber(q), hiding: hexToBytes(commitments[q].hiding), binding: hexToBytes(commitments[q].binding) }));
            const ref = frost.signShare(
              { identifier: id, signingShare: hexToBytes((share.secret as { signingShare: string }).signingShare) } as never,
              noblePub as never,
              { hiding: hexToBytes(nj.hiding), binding: hexToBytes(nj.binding) } as never,
              list as never,
              msg,
            );
            const refNoble = frostSignShare(name, share, pub, { ...nj }, commitments, msg, 'noble');
            shares[s] = frostSignShare(name, share, pub, nj, commitments, msg);
            assert.equal(shares[s], bytesToHex(ref), `share of ${s} equals noble createFROST's`);
            assert.equal(shares[s], refNoble, `share of ${s} equals the noble-group build's`);
            assert.ok(frostVerifyShare(name, pub, commitments, msg, s, shares[s]));
            assert.ok(frostVerifyShare(name, pub, commitments, msg, s, shares[s], 'noble'));
          }
          const sig = frostAggregate(name, pub, commitments, msg, shares);
          assert.equal(bytesToHex(sig), bytesToHex(frostAggregate(name, pub, commitments, msg, shares, 'noble')));
          assert.ok(frostVerify(name, hexToBytes(pub.publicKey), msg, sig));
          if (name === 'ed25519') assert.ok(ed25519.verify(sig, msg, hexToBytes(pub.publicKey), { zip215: false }));
          else assert.ok(schnorr.verify(sig, msg, hexToBytes(pub.publicKey)));
        }
      });
    }
  }

  test('a used (zeroed) nonce is refused', () => {
    const keys = dkg('ed25519', 2, 3);
    const pub = keys.get(1)!.public;
    const n1 = frostCommit('ed25519', keys.get(1)!.share);
    const n2 = frostCommit('ed25519', keys.get(2)!.share);
    const commitments = { 1: n1.commitment, 2: n2.commitment };
    const zero = { hiding: '00'.repeat(32), binding: n1.nonces.binding };
    assert.throws(() => frostSignShare('ed25519', keys.get(1)!.share, pub, zero, commitments, randomBytes(8)), /already used/);
  });

  test('a commitment that is a small-order or mixed-order point is refused before any share is made', () => {
    const keys = dkg('ed25519', 2, 3);
    const pub = keys.get(1)!.public;
    const n1 = frostCommit('ed25519', keys.get(1)!.share);
    const n2 = frostCommit('ed25519', keys.get(2)!.share);
    const bad = bytesToHex(edPoint.fromHex(n2.commitment.binding).add(torsion[4]).toBytes());
    for (const c of [bad, bytesToHex(torsion[3].toBytes()), bytesToHex(torsion[0].toBytes())]) {
      assert.throws(() => frostSignShare('ed25519', keys.get(1)!.share, pub, { ...n1.nonces }, { 1: n1.commitment, 2: { hiding: n2.commitment.hiding, binding: c } }, randomBytes(8)), /invalid point/);
    }
  });
});

describe('verifyPlain (the server\'s last check: libsodium and libsecp256k1) against noble\'s verifiers', () => {
  const tamper = (b: Uint8Array, bit: number) => {
    const c = Uint8Array.from(b);
    c[(bit >> 3) % c.length] ^= 1 << (bit & 7);
    return c;
  };
  for (const scheme of ['ed25519', 'secp256k1-schnorr'] as const) {
    test(`${scheme}: honest signatures pass both; a flipped bit in the signature, message or key fails both`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 100 })), fc.nat(1023), (seed, msg, bit) => {
          const secret = scheme === 'ed25519' ? seed : secp256k1.Point.Fn.toBytes(secp256k1.Point.Fn.create(BigInt('0x' + bytesToHex(seed))) || 1n);
          const pub = scheme === 'ed25519' ? ed25519.getPublicKey(secret) : schnorr.getPublicKey(secret);
          const sig = scheme === 'ed25519' ? ed25519.sign(msg, secret) : schnorr.sign(msg, secret);
          assert.ok(verifyPlain(scheme, pub, msg, sig), 'honest');
          assert.ok(frostVerify(scheme, pub, msg, sig));
          for (const [s, m, k] of [[tamper(sig, bit), msg, pub], [sig, msg.length ? tamper(msg, bit) : Uint8Array.of(1), pub], [sig, msg, tamper(pub, bit)]]) {
            assert.equal(verifyPlain(scheme, k, m, s), frostVerify(scheme, k, m, s), 'both agree on a tampering');
            assert.equal(verifyPlain(scheme, k, m, s), false);
          }
        }),
        { numRuns: 100 },
      );
      // Malformed lengths are refusals, never throws.
      assert.equal(verifyPlain(scheme, new Uint8Array(33), new Uint8Array(32), new Uint8Array(64)), false);
      assert.equal(verifyPlain(scheme, new Uint8Array(32), new Uint8Array(32), new Uint8Array(63)), false);
    });
  }
  test('FROST aggregates (both suites) pass verifyPlain', () => {
    for (const scheme of ['ed25519', 'secp256k1-schnorr'] as const) {
      const keys = runInProcess(new Map<number, PartyProtocol<KeyGenResult>>([1, 2, 3].map((p) => [p, frostDkg(scheme, { self: p, parties: [1, 2, 3], threshold: 2 })])));
      const msg = randomBytes(32);
      const n = [1, 3].map((s) => frostCommit(scheme, keys.get(s)!.share));
      const commitments: Record<number, CommitmentJson> = { 1: n[0].commitment, 3: n[1].commitment };
      const shares: Record<number, string> = {};
      [1, 3].forEach((s, i) => (shares[s] = frostSignShare(scheme, keys.get(s)!.share, keys.get(s)!.public, n[i].nonces, commitments, msg)));
      const sig = frostAggregate(scheme, keys.get(1)!.public, commitments, msg, shares);
      assert.ok(verifyPlain(scheme, hexToBytes(keys.get(1)!.public.publicKey), msg, sig), scheme);
    }
  });
});
