/**
 * The threshold cluster end to end: real signer and server processes, real HTTP, real SQLite.
 * Every signature is checked by an independent verifier (noble's plain Ed25519 and BIP340, and a
 * taproot key-path spend built and hashed by @scure/btc-signer).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import * as btc from '@scure/btc-signer';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, startCluster, verifySig } from '../helpers/cluster.ts';

const verify = verifySig;

describe('threshold cluster, 3 signer processes', () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  before(async () => {
    c = await startCluster(3);
    A = api(c);
  });
  after(async () => c?.stop());

  for (const scheme of ['ed25519', 'secp256k1-schnorr']) {
    test(`${scheme}: DKG, sign, and every signature verifies independently`, async () => {
      const w = await A('POST', '/v1/wallets', { scheme, threshold: 2, signers: 3, label: 'test' });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      assert.equal(w.body.publicKey.length, 64);
      if (scheme === 'ed25519') assert.match(w.body.address, /^[1-9A-HJ-NP-Za-km-z]{32,44}$/);
      else assert.match(w.body.address, /^bc1p/);
      const shown = await A('GET', `/v1/wallets/${w.body.id}`);
      assert.equal(shown.body.publicKey, w.body.publicKey);
      for (let i = 0; i < 5; i++) {
        const msg = randomBytes(i * 13);
        const r = await A('POST', `/v1/wallets/${w.body.id}/sign`, { message: bytesToHex(msg) });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(verify(scheme, w.body.publicKey, msg, r.body.signature), 'independent verifier accepts');
        assert.ok(!verify(scheme, w.body.publicKey, Uint8Array.of(...msg, 0), r.body.signature));
      }
    });
  }

  test('a taproot key-path spend signed by the cluster is valid (btc-signer builds and hashes it)', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'secp256k1-schnorr', network: 'regtest' })).body;
    const REGTEST = { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };
    // The wallet's address is exactly what btc-signer derives from the BIP341 internal key.
    const p2tr = btc.p2tr(hexToBytes(w.internalKey), undefined, REGTEST);
    assert.equal(p2tr.address, w.address);
    const tx = new btc.Transaction();
    const amount = 50_000n;
    tx.addInput({ txid: randomBytes(32), index: 0, witnessUtxo: { script: p2tr.script, amount }, tapInternalKey: hexToBytes(w.internalKey) });
    tx.addOutputAddress('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 49_000n, REGTEST);
    const sighash = tx.preimageWitnessV1(0, [p2tr.script], btc.SigHash.DEFAULT, [amount]);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(sighash) });
    assert.equal(r.status, 200);
    assert.ok(schnorr.verify(hexToBytes(r.body.signature), sighash, p2tr.tweakedPubkey));
    tx.updateInput(0, { tapKeySig: hexToBytes(r.body.signature) });
    tx.finalize();
    const raw = tx.extract();
    const back = btc.Transaction.fromRaw(raw, { allowUnknownOutputs: true });
    assert.equal(bytesToHex(back.getInput(0).finalScriptWitness![0]), r.body.signature);
  });

  test('bad input gets a clear 4xx with a stable code, and nothing is written', async () => {
    const before = (await A('GET', '/v1/wallets')).body.wallets.length;
    const cases: [string, string, unknown, string | undefined, number, string][] = [
      ['POST', '/v1/wallets', undefined, '{not json', 400, 'invalid_json'],
      ['POST', '/v1/wallets', { scheme: 'rsa' }, undefined, 400, 'validation_failed'],
      ['POST', '/v1/wallets', { scheme: 'ed25519', threshold: 4, signers: 3 }, undefined, 400, 'validation_failed'],
      ['POST', '/v1/wallets', { scheme: 'ed25519', threshold: 1, signers: 3 }, undefined, 400, 'validation_failed'],
      ['POST', '/v1/wallets', { scheme: 'ed25519', signers: 7 }, undefined, 503, 'not_enough_signers'],
      ['POST', '/v1/wallets', { scheme: 'ed25519', extra: 1 }, undefined, 400, 'validation_failed'],
      ['GET', '/v1/wallets/wal_000000000000000000000000', undefined, undefined, 404, 'not_found'],
      ['GET', '/v1/wallets/../../etc', undefined, undefined, 404, 'not_found'],
      ['POST', '/v1/wallets/wal_000000000000000000000000/sign', { message: '00' }, undefined, 404, 'not_found'],
      ['POST', '/v1/wallets/wal_000000000000000000000000/sign', { message: 'abc' }, undefined, 400, 'validation_failed'],
    ];
    for (const [m, p, b, raw, status, code] of cases) {
      const r = await A(m, p, b, raw);
      assert.equal(r.status, status, `${m} ${p} ${raw ?? JSON.stringify(b)} -> ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code);
      assert.match(r.body.error.requestId, /^req_/);
    }
    const noAuth = await fetch(c.info.url + '/v1/wallets');
    assert.equal(noAuth.status, 401);
    const wrong = await fetch(c.info.url + '/v1/wallets', { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as any).error.code, 'unauthorized');
    assert.equal((await A('GET', '/v1/wallets')).body.wallets.length, before, 'no half-written wallet');
  });

  test('a big body is refused, not buffered', async () => {
    const r = await A('POST', '/v1/wallets/wal_000000000000000000000000/sign', { message: 'ab'.repeat(1 << 20) });
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'payload_too_large');
  });

  test('no key material in responses or logs', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    await A('POST', `/v1/wallets/${w.id}/sign`, { message: '01' });
    const text = JSON.stringify(w) + JSON.stringify((await A('GET', '/v1/wallets')).body);
    assert.ok(!/signingShare|hiding_nonce|nonces|secret/i.test(text));
    // Shares at rest are sealed: the signer database never holds a share or nonce in the clear.
    const db = readFileSync(join(c.dataDir, 'signer-1', 'signer.db'));
    assert.ok(!db.includes('signingShare'), 'share JSON is not in the database file');
  });

  test('the server serves its OpenAPI description', async () => {
    const r = await fetch(c.info.url + '/openapi.json');
    const doc = (await r.json()) as any;
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/v1/wallets', '/v1/wallets/{id}', '/v1/wallets/{id}/sign', '/v1/nodes']) assert.ok(doc.paths[p], p);
  });

  test('with a signer SIGKILLed signing goes on; after restart it rejoins', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    await c.kill('signer-1');
    const down = c.nodeIdOf('signer-1');
    for (let i = 0; i < 3; i++) {
      const msg = randomBytes(32);
      const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(verify('ed25519', w.publicKey, msg, r.body.signature));
      assert.ok(!r.body.signers.includes(down));
    }
    const nodes = (await A('GET', '/v1/nodes')).body;
    assert.equal(nodes.find((n: any) => n.id === down).status, 'down');
    await c.restart('signer-1');
    assert.equal((await A('GET', '/v1/nodes')).body.find((n: any) => n.id === down).status, 'up');
    // Now take another signer away: the restarted one must carry the signature.
    await c.kill('signer-2');
    const msg = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.signers.includes(down));
    assert.ok(verify('ed25519', w.publicKey, msg, r.body.signature));
    await c.kill('signer-3');
    const none = await A('POST', `/v1/wallets/${w.id}/sign`, { message: '00' });
    assert.equal(none.status, 503);
    assert.equal(none.body.error.code, 'not_enough_signers');
    await c.restart('signer-2');
    await c.restart('signer-3');
  });

  test('refresh: same public key, signing keeps working, refresh needs every holder', async () => {
    for (const scheme of ['ed25519', 'secp256k1-schnorr']) {
      const w = (await A('POST', '/v1/wallets', { scheme })).body;
      const r1 = await A('POST', `/v1/wallets/${w.id}/refresh`);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r1.body.publicKey, w.publicKey);
      assert.equal(r1.body.address, w.address);
      assert.equal(r1.body.epoch, 1);
      const msg = randomBytes(40);
      const s = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.ok(verify(scheme, w.publicKey, msg, s.body.signature));
    }
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    await c.kill('signer-3');
    const r = await A('POST', `/v1/wallets/${w.id}/refresh`);
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'not_enough_signers');
    await c.restart('signer-3');
  });
});

describe('thresholds from 1-of-1 to 5-of-9 (9 signer processes)', () => {
  let c: LocalCluster;
  before(async () => {
    c = await startCluster(9);
  });
  after(async () => c?.stop());
  // Both schemes at the small sizes; one scheme each at the large ones (the in-process suite runs
  // both schemes at every size), to keep the 9-process run short.
  const cases: [number, number, string[]][] = [
    [1, 1, ['ed25519', 'secp256k1-schnorr']],
    [2, 3, ['ed25519', 'secp256k1-schnorr']],
    [3, 5, ['ed25519']],
    [5, 9, ['secp256k1-schnorr']],
  ];
  for (const [t, n, schemes] of cases) {
    test(`${t}-of-${n}`, async () => {
      const A = api(c);
      for (const scheme of schemes) {
        const w = await A('POST', '/v1/wallets', { scheme, threshold: t, signers: n });
        assert.equal(w.status, 201, JSON.stringify(w.body));
        const msg = randomBytes(32);
        const s = await A('POST', `/v1/wallets/${w.body.id}/sign`, { message: bytesToHex(msg) });
        assert.equal(s.status, 200, JSON.stringify(s.body));
        assert.equal(s.body.signers.length, t);
        assert.ok(verify(scheme, w.body.publicKey, msg, s.body.signature));
      }
    });
  }
});
