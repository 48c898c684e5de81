/**
 * The DKLs23 point operations on libsecp256k1 (WebAssembly) against the noble multiplications they
 * replaced: the same points on random scalars and points, the identity where noble gives it, the same
 * refusals of out-of-range scalars, and `parsePoint` accepting exactly the 33-byte encodings noble
 * accepts (identity, wrong prefix, x ≥ p, x off the curve and wrong lengths refused by both).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import '../../../src/crypto/dkls23/fast.ts';
import { Fn, Point, arithmetic, mulG, mulPublic, mulSecret, nobleMul, parsePoint } from '../../../src/crypto/dkls23/util.ts';
import { ProtocolError } from '../../../src/crypto/types.ts';

const N = Fn.ORDER;
const P_FIELD = Point.Fp.ORDER;
const RUNS = 100;
const hex = (P: Point) => (P.is0() ? 'identity' : bytesToHex(P.toBytes(true)));
/** Scalars with the edges drawn often: 0, 1, 2, n − 1, n − 2, and uniform ones. */
const scalar = fc.oneof(fc.constantFrom(0n, 1n, 2n, N - 1n, N - 2n), fc.bigInt({ min: 0n, max: N - 1n }));
const point = fc.oneof(fc.constant(Point.ZERO), fc.constant(Point.BASE), fc.bigInt({ min: 1n, max: N - 1n }).map((k) => nobleMul.mulG(k)));

test('mulG / mulSecret / mulPublic equal noble on random scalars and points (identity included)', () => {
  assert.equal(arithmetic(), 'libsecp256k1', 'the libsecp256k1 path is the one under test');
  fc.assert(
    fc.property(scalar, point, (k, P) => {
      assert.equal(hex(mulG(k)), hex(nobleMul.mulG(k)));
      assert.equal(hex(mulSecret(P, k)), hex(P.is0() ? Point.ZERO : nobleMul.mulSecret(P, k)));
      assert.equal(hex(mulPublic(P, k)), hex(nobleMul.mulPublic(P, k)));
      // A result is usable by noble's own arithmetic (affine, checked on decode).
      assert.ok(mulSecret(P, k).add(P).equals(nobleMul.mulPublic(P, Fn.add(k, 1n))));
    }),
    { numRuns: RUNS },
  );
});

test('scalars outside [0, n) are refused, as noble refuses them', () => {
  for (const k of [N, N + 1n, (1n << 256n) - 1n, -1n]) {
    assert.throws(() => mulG(k));
    assert.throws(() => mulSecret(Point.BASE, k));
    assert.throws(() => mulPublic(Point.BASE, k));
    assert.throws(() => nobleMul.mulSecret(Point.BASE, k));
  }
});

/** noble's decoding as the reference: strict SEC1, on the curve, not the identity. */
function nobleAccepts(b: Uint8Array): string | false {
  try {
    const P = Point.fromBytes(b);
    P.assertValidity();
    return P.is0() ? false : bytesToHex(P.toBytes(true));
  } catch {
    return false;
  }
}
function oursAccepts(b: Uint8Array): string | false {
  try {
    return bytesToHex(parsePoint(bytesToHex(b), 'P', 7).toBytes(true));
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.culprit === 7, `refusal names the sender: ${e}`);
    return false;
  }
}
const be32 = (x: bigint) => hexToBytes(x.toString(16).padStart(64, '0'));
const enc = (prefix: number, x: bigint) => Uint8Array.of(prefix, ...be32(x));
/** An x with no point on the curve (x³ + 7 not a square mod p), found deterministically. */
function offCurveX(): bigint {
  for (let x = 1n; ; x++) if (nobleAccepts(enc(2, x)) === false) return x;
}

test('parsePoint accepts exactly the compressed encodings noble accepts', () => {
  const fixed: Uint8Array[] = [
    new Uint8Array(33), // the all-zero "identity" encoding
    Point.BASE.toBytes(true),
    enc(2, P_FIELD), // x = p: non-canonical
    enc(3, P_FIELD + 1n),
    enc(2, (1n << 256n) - 1n),
    enc(2, offCurveX()),
    enc(3, offCurveX()),
    enc(4, Point.BASE.x), // wrong prefixes for a valid x
    enc(0, Point.BASE.x),
    enc(5, Point.BASE.x),
    Point.BASE.toBytes(false), // uncompressed: refused by length
    Point.BASE.toBytes(true).subarray(0, 32),
  ];
  for (const b of fixed) assert.equal(oursAccepts(b), b.length === 33 ? nobleAccepts(b) : false, bytesToHex(b));
  assert.equal(oursAccepts(Point.BASE.toBytes(true)), bytesToHex(Point.BASE.toBytes(true)));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (prefix, x) => {
      const b = Uint8Array.of(prefix, ...x);
      assert.equal(oursAccepts(b), nobleAccepts(b));
    }),
    { numRuns: RUNS * 3 },
  );
});
