/**
 * The whole cluster on PostgreSQL (each process in its own schema of the local database): the
 * same DKG / sign / restart path as on SQLite. Runs under `npm run test:pg` (FLEETKEY_TEST_PG=1).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import pg from 'pg';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, startCluster } from '../helpers/cluster.ts';

if (process.env.FLEETKEY_TEST_PG) {
  const url = process.env.FLEETKEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  describe('cluster on PostgreSQL', () => {
    let c: LocalCluster;
    // A prefix of this run's own: the Node 20 and Node 24 suites of .ci/run share the database.
    const run = `cpg_${bytesToHex(randomBytes(4))}_`;
    const schemas = ['signer_1', 'signer_2', 'signer_3', 'server'].map((s) => run + s);
    const reset = async () => {
      const cl = new pg.Client({ connectionString: url });
      await cl.connect();
      for (const s of schemas) await cl.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await cl.end();
    };
    before(async () => {
      await reset();
      c = await startCluster(3, url, run);
    });
    after(async () => {
      await c?.stop();
      await reset();
    });

    test('DKG, signing, SIGKILL and restart, refresh', async () => {
      const A = api(c);
      for (const scheme of ['ed25519', 'secp256k1-schnorr']) {
        const w = await A('POST', '/v1/wallets', { scheme });
        assert.equal(w.status, 201, JSON.stringify(w.body));
        const msg = randomBytes(32);
        const s = await A('POST', `/v1/wallets/${w.body.id}/sign`, { message: bytesToHex(msg) });
        assert.equal(s.status, 200, JSON.stringify(s.body));
        const ok = scheme === 'ed25519' ? ed25519.verify(hexToBytes(s.body.signature), msg, hexToBytes(w.body.publicKey)) : schnorr.verify(hexToBytes(s.body.signature), msg, hexToBytes(w.body.publicKey));
        assert.ok(ok);
      }
      const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
      await c.kill('signer-2');
      assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: '01' })).status, 200);
      await c.restart('signer-2');
      const r = await A('POST', `/v1/wallets/${w.id}/refresh`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.publicKey, w.publicKey);
      const msg = randomBytes(16);
      const s = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
      assert.ok(ed25519.verify(hexToBytes(s.body.signature), msg, hexToBytes(w.publicKey)));
    });
  });
}
