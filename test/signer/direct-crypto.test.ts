/**
 * The direct-message crypto of envelopes on libsodium (installed by src/control/fast-verify.ts in
 * the signer and the server) against noble's (the SDK's, and the reference): the same X25519 shared
 * secrets, the same XChaCha20-Poly1305 ciphertexts and tags, each opens what the other sealed, both
 * refuse a small-order key and every flipped bit of a box; a node on one build talks to a node on the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { x25519 } from '@noble/curves/ed25519.js';
import { sodiumDirectCrypto } from '../../src/control/fast-verify.ts';
import { nobleDirectCrypto, newNodeKeys, openDirect, publicOf, sealDirect, signEnvelope, useDirectCrypto, type Envelope } from '../../src/signer/envelope.ts';

test('libsodium and noble: same X25519, same AEAD bytes, each opens the other\'s boxes, both refuse tampering and small-order keys', () => {
  const [noble, sodium] = [nobleDirectCrypto, sodiumDirectCrypto];
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 24, maxLength: 24 }),
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.nat(),
      (a, b, nonce, ad, pt, bit) => {
        const pubB = x25519.getPublicKey(b);
        const key = noble.x25519(a, pubB);
        assert.deepEqual(sodium.x25519(a, pubB), key, 'same shared secret');
        assert.deepEqual(sodium.x25519(b, x25519.getPublicKey(a)), key, 'and from the other side');
        const box = noble.seal(key, nonce, ad, pt);
        assert.deepEqual(sodium.seal(key, nonce, ad, pt), box, 'same ciphertext and tag');
        assert.deepEqual(sodium.open(key, nonce, ad, box), pt);
        assert.deepEqual(noble.open(key, nonce, ad, box), pt);
        const bad = Uint8Array.from(box);
        bad[(bit >> 3) % bad.length] ^= 1 << (bit & 7);
        assert.throws(() => sodium.open(key, nonce, ad, bad));
        assert.throws(() => noble.open(key, nonce, ad, bad));
        const otherAd = Uint8Array.of(...ad, 0);
        assert.throws(() => sodium.open(key, nonce, otherAd, box));
      },
    ),
    { numRuns: 60 },
  );
  // Small-order public keys (u = 0 and u = 1) give an all-zero secret: both refuse.
  for (const small of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
    assert.throws(() => sodium.x25519(new Uint8Array(32).fill(9), small));
    assert.throws(() => noble.x25519(new Uint8Array(32).fill(9), small));
  }
});

test('a box sealed by a node on libsodium opens at a node on noble, and back', () => {
  const alice = newNodeKeys('node_alice');
  const bob = newNodeKeys('node_bob');
  const peer = (k: typeof alice) => ({ ...publicOf(k), url: 'https://127.0.0.1:1' }) as never;
  const h = { session: 'sess_1', kind: 'sign' as const, round: 2, to: bob.nodeId };
  const body = { x: 'ab'.repeat(200), n: 7 };
  const envelope = (b: unknown): Envelope => signEnvelope({ v: 1, session: h.session, kind: h.kind, round: h.round, from: alice.nodeId, to: bob.nodeId, body: b } as never, alice);
  try {
    useDirectCrypto(sodiumDirectCrypto);
    const fromSodium = sealDirect(body, h, alice, peer(bob));
    useDirectCrypto(nobleDirectCrypto);
    assert.deepEqual(openDirect(envelope(fromSodium), bob, peer(alice)), body);
    const fromNoble = sealDirect(body, h, alice, peer(bob));
    useDirectCrypto(sodiumDirectCrypto);
    assert.deepEqual(openDirect(envelope(fromNoble), bob, peer(alice)), body);
    // The wrong recipient cannot open it on either build.
    const eve = newNodeKeys('node_eve');
    assert.throws(() => openDirect(envelope(fromNoble), eve, peer(alice)), /does not open/);
  } finally {
    useDirectCrypto(sodiumDirectCrypto);
  }
});
