/**
 * Sealing at rest under a file KEK (src/signer/seal.ts): the `x1.` format (XChaCha20-Poly1305 on
 * libsodium, under an HKDF subkey of the KEK) that this version writes, and the AES-256-GCM format
 * that earlier versions wrote, which still opens. Checked against independent implementations:
 * @noble/ciphers' XChaCha20-Poly1305 and AES-GCM, @noble/hashes' HKDF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcm } from '@noble/ciphers/aes.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { makeSealer } from '../../src/signer/seal.ts';
import { codeOf } from '../helpers/errors.ts';

const subkeyOf = (kek: Uint8Array) => hkdf(sha256, kek, undefined, utf8ToBytes('fleetkey seal xchacha20poly1305 v1'), 32);

test('x1 seals are XChaCha20-Poly1305 under the KEK subkey with the record identity as AAD (noble opens them and makes ones that open)', () => {
  for (let i = 0; i < 40; i++) {
    const kek = randomBytes(32);
    const plain = randomBytes(i * 97);
    const ctx = `share|wal_${i}|${i % 3}`;
    const sealed = makeSealer(kek).seal(plain, ctx);
    assert.match(sealed, /^x1\.[A-Za-z0-9+/]+=*$/);
    const raw = base64.decode(sealed.slice(3));
    assert.deepEqual(xchacha20poly1305(subkeyOf(kek), raw.subarray(0, 24), utf8ToBytes(ctx)).decrypt(raw.subarray(24)), plain);
    const nonce = randomBytes(24);
    const byNoble = 'x1.' + base64.encode(new Uint8Array([...nonce, ...xchacha20poly1305(subkeyOf(kek), nonce, utf8ToBytes(ctx)).encrypt(plain)]));
    assert.deepEqual(makeSealer(kek).open(byNoble, ctx), plain);
  }
});

test('a sealed record opens only under its KEK, its identity, and its exact bytes', () => {
  const kek = randomBytes(32);
  const s = makeSealer(kek);
  const plain = randomBytes(300);
  const sealed = s.seal(plain, 'nonce|n1|wal_a|0');
  assert.deepEqual(s.open(sealed, 'nonce|n1|wal_a|0'), plain);
  const refused = (blob: string, ctx = 'nonce|n1|wal_a|0', sealer = s) => codeOf(() => sealer.open(blob, ctx));
  assert.equal(refused(sealed, 'nonce|n1|wal_b|0'), 'decrypt_failed', 'moved to another record');
  assert.equal(refused(sealed, 'nonce|n1|wal_a|0', makeSealer(randomBytes(32))), 'decrypt_failed', 'another KEK');
  const raw = base64.decode(sealed.slice(3));
  for (const at of [0, 23, 24, raw.length - 17, raw.length - 1]) {
    const t = Uint8Array.from(raw);
    t[at] ^= 1;
    assert.equal(refused('x1.' + base64.encode(t)), 'decrypt_failed', `bit flipped at ${at}`);
  }
  assert.equal(refused('x1.' + base64.encode(raw.subarray(0, 39))), 'decrypt_failed', 'shorter than nonce and tag');
  assert.equal(refused('x1.' + base64.encode(raw.subarray(0, raw.length - 1))), 'decrypt_failed', 'truncated');
  assert.equal(refused('x1.' + sealed.slice(3, 10) + '*' + sealed.slice(10)), 'decrypt_failed', 'a character outside base64');
  assert.equal(refused('x1.' + sealed.slice(3).replace(/=+$/, '')), 'decrypt_failed', 'padding removed');
  assert.equal(refused('x1.'), 'decrypt_failed', 'empty');
  assert.notEqual(s.seal(plain, 'nonce|n1|wal_a|0'), sealed, 'a fresh nonce per seal');
});

test('records sealed by earlier versions (AES-256-GCM under the KEK itself) still open, and only as they were', () => {
  const kek = randomBytes(32);
  const plain = randomBytes(1000);
  const iv = randomBytes(12);
  const legacy = base64.encode(new Uint8Array([...iv, ...gcm(kek, iv, utf8ToBytes('share|w|1')).encrypt(plain)]));
  assert.deepEqual(makeSealer(kek).open(legacy, 'share|w|1'), plain);
  assert.equal(codeOf(() => makeSealer(kek).open(legacy, 'share|w|2')), 'decrypt_failed');
  const t = base64.decode(legacy);
  t[30] ^= 1;
  assert.equal(codeOf(() => makeSealer(kek).open(base64.encode(t), 'share|w|1')), 'decrypt_failed');
  // The new format is not read as the old one, nor the old one as the new.
  assert.equal(codeOf(() => makeSealer(kek).open('x1.' + legacy, 'share|w|1')), 'decrypt_failed');
});
