/**
 * `verifyBytes` on libsodium (src/control/fast-verify.ts, installed in the signer and the server)
 * against noble's strict verifier, the SDK's and the reference: both accept every honest RFC 8032
 * signature and refuse every tampering of one; libsodium also refuses the crafted signatures that
 * noble's cofactored equation lets through (a torsion component in R), and both refuse a small-order key.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { verifyBytes } from '../../src/control/keys.ts';

const { Point } = ed25519;
const Fn = Point.Fn;
const le = (b: Uint8Array) => Fn.create(BigInt('0x' + bytesToHex(Uint8Array.from(b).reverse())));
const noble = (sig: Uint8Array, msg: Uint8Array, pub: Uint8Array) => ed25519.verify(sig, msg, pub, { zip215: false });

/** An Ed25519 signature whose R carries a point T of order 8: [s]B = R + [k]A - T, so only a cofactored check passes. */
function torsionSigned(secret: Uint8Array, msg: Uint8Array): { sig: Uint8Array; pub: Uint8Array } {
  const { scalar, pointBytes } = ed25519.utils.getExtendedPublicKey(secret);
  const r = Fn.create(le(sha512(concatBytes(secret, msg))));
  const R = Point.BASE.multiply(r).add(Point.fromHex(ED25519_TORSION_SUBGROUP[1])).toBytes();
  const k = le(sha512(concatBytes(R, pointBytes, msg)));
  return { sig: concatBytes(R, Fn.toBytes(Fn.add(r, Fn.mul(k, scalar)))), pub: pointBytes };
}
// A small-order key with R = identity and s = 0 satisfies the cofactored equation for every message; both refuse it.
const SMALL_ORDER_KEY = Point.fromHex(ED25519_TORSION_SUBGROUP[1]).toBytes();
const IDENTITY_SIG = concatBytes(Point.ZERO.toBytes(), new Uint8Array(32));
const MSG = new TextEncoder().encode('fleetkey');

test('before fast-verify is loaded, verifyBytes is noble (which takes a torsion component in R)', () => {
  const t = torsionSigned(ed25519.utils.randomSecretKey(), MSG);
  assert.ok(verifyBytes(bytesToHex(t.sig), MSG, bytesToHex(t.pub), 'ed25519'), 'noble: torsion in R passes the cofactored check');
  assert.ok(!verifyBytes(bytesToHex(IDENTITY_SIG), MSG, bytesToHex(SMALL_ORDER_KEY), 'ed25519'), 'noble refuses a small-order key with R = identity, s = 0');
});

test('with fast-verify loaded: the crafted signatures are refused, honest ones and tamperings agree with noble', async () => {
  const { sodiumVerifyEd25519 } = await import('../../src/control/fast-verify.ts');
  const t = torsionSigned(ed25519.utils.randomSecretKey(), MSG);
  assert.ok(!verifyBytes(bytesToHex(t.sig), MSG, bytesToHex(t.pub), 'ed25519'), 'libsodium: torsion in R refused');
  assert.ok(!verifyBytes(bytesToHex(IDENTITY_SIG), MSG, bytesToHex(SMALL_ORDER_KEY), 'ed25519'), 'libsodium: small-order key refused');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), fc.nat(511), fc.nat(), (secret, msg, bit, at) => {
      const pub = ed25519.getPublicKey(secret);
      const sig = ed25519.sign(msg, secret);
      assert.ok(noble(sig, msg, pub) && verifyBytes(bytesToHex(sig), msg, bytesToHex(pub), 'ed25519'), 'honest signature');
      const bad = Uint8Array.from(sig);
      bad[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(sodiumVerifyEd25519(bad, msg, pub), false, `bit ${bit}`);
      assert.equal(noble(bad, msg, pub), false);
      const m2 = msg.length ? Uint8Array.from(msg) : Uint8Array.of(0);
      if (msg.length) m2[at % msg.length] ^= 1;
      assert.equal(sodiumVerifyEd25519(sig, m2, pub), false, 'other message');
      // s + L: the same equation, a non-canonical s; both refuse.
      const sL = concatBytes(sig.subarray(0, 32), Fn.toBytes(0n).map((_, i) => Number(((le(sig.subarray(32)) + Fn.ORDER) >> BigInt(8 * i)) & 0xffn)));
      assert.equal(sodiumVerifyEd25519(sL, msg, pub), false, 's + L');
      assert.equal(noble(sL, msg, pub), false);
    }),
    { numRuns: 40 },
  );
  // Malformed input is invalid, never a throw.
  assert.equal(verifyBytes('00'.repeat(64), MSG, 'zz', 'ed25519'), false);
  assert.equal(sodiumVerifyEd25519(new Uint8Array(63), MSG, new Uint8Array(32)), false);
});

test('with fast-verify loaded, signBytes and publicKeyOf are libsodium and give noble\'s bytes (RFC 8032 signing is deterministic)', async () => {
  await import('../../src/control/fast-verify.ts');
  const { publicKeyOf, signBytes } = await import('../../src/control/keys.ts');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (secret, msg) => {
      assert.equal(publicKeyOf(secret, 'ed25519'), bytesToHex(ed25519.getPublicKey(secret)));
      assert.equal(signBytes(msg, secret, 'ed25519'), bytesToHex(ed25519.sign(msg, secret)));
    }),
    { numRuns: 60 },
  );
  // A secret of the wrong length is the same fixed error as before, with no key material in it.
  assert.throws(() => signBytes(MSG, new Uint8Array(31), 'ed25519'), /secret key must be 32 bytes/);
});
