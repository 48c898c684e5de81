/**
 * Issue 11: the owner-only recovery export, real processes and the real CLI. Refused without
 * `"exportable": true`, refused without the owner's document (a server alone cannot order it: a
 * document signed by any other key is refused by every holder), refused with fewer than t holders;
 * with the holders, the CLI rebuilds each scheme's key offline, noble confirms its public key is the
 * wallet's (viem its Ethereum address), and every holder's audit chain records the export.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { signControlDoc } from '../../src/control/index.ts';
import { ownerSign, publish } from '../helpers/agent.ts';
import { fleetkey } from '../helpers/cli.ts';
import { api, call, fetchAny, startCluster } from '../helpers/cluster.ts';

describe('owner-only recovery export', () => {
  let c: LocalCluster;
  let env: NodeJS.ProcessEnv;
  let recoveryKey: string;
  let recoveryPub: string;
  before(async () => {
    c = await startCluster(3);
    env = { FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey };
    recoveryKey = join(c.dataDir, 'recovery.key');
    const k = await fleetkey(['recovery-key', 'create', '--out', recoveryKey]);
    assert.ok(k.ok, JSON.stringify(k));
    recoveryPub = k.out.publicKey;
  });
  after(async () => c?.stop());

  const exportCli = (id: string) => fleetkey(['wallet', 'export', id, '--recovery-key', recoveryKey], env);
  const auditOf = async (i: number) => {
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    return (await fetchAny(`${c.info.signers[i].url}/v1/audit`, { headers: { authorization: `Bearer ${token}` } })).text();
  };
  const exportable = (walletId: string, on: boolean, version: number) => publish(c, { kind: 'policy', walletId, version, policy: { version, rules: [], ...(on ? { exportable: true } : {}) }, issuedAt: Date.now() });

  test('refused without "exportable" and without the owner\'s document; with every holder the key of each scheme is rebuilt and logged', async () => {
    const A = api(c);
    for (const scheme of ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'] as const) {
      const w = (await A('POST', '/v1/wallets', { scheme })).body;
      assert.ok(w.id, JSON.stringify(w));
      if (scheme === 'ed25519') {
        // The owner's own order, with no policy and then a policy without the flag: every holder refuses.
        const now = Date.now();
        const order = ownerSign(c, { kind: 'export', walletId: w.id, recipient: recoveryPub, issuedAt: now, expiresAt: now + 60_000 });
        assert.equal((await A('POST', `/v1/wallets/${w.id}/export`, { order })).body.error?.code, 'policy_denied');
        assert.equal((await exportable(w.id, false, 1)).status, 200);
        assert.equal((await A('POST', `/v1/wallets/${w.id}/export`, { order })).body.error?.code, 'policy_denied');
        assert.equal((await exportable(w.id, true, 2)).status, 200);
        // The server (or anyone) with a document not signed by the owner key: refused by the holders.
        const forged = signControlDoc({ kind: 'export', walletId: w.id, recipient: recoveryPub, issuedAt: now, expiresAt: now + 60_000 }, ed25519.utils.randomSecretKey());
        const r = await A('POST', `/v1/wallets/${w.id}/export`, { order: forged });
        assert.equal(r.body.error?.code, 'bad_signature', JSON.stringify(r.body));
        const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
        assert.equal((await call(c.info.signers[0].url, token, 'POST', '/v1/export', forged)).body.error?.code, 'bad_signature');
        // A derived device wallet has no share of its own.
        assert.equal((await A('POST', `/v1/wallets/${w.id}.7/export`, { order: forged })).body.error?.code, 'unsupported');
      } else assert.equal((await exportable(w.id, true, 1)).status, 200);

      const e = await exportCli(w.id);
      assert.ok(e.ok, JSON.stringify(e));
      assert.equal(e.out.holders.length, 3);
      if (scheme === 'ed25519') {
        assert.equal(bytesToHex(ed25519.Point.BASE.multiply(ed25519.Point.Fn.fromBytes(hexToBytes(e.out.scalar))).toBytes()), w.publicKey);
        assert.equal(e.out.solanaAddress, w.address);
      } else if (scheme === 'secp256k1-schnorr') {
        assert.equal(bytesToHex(schnorr.getPublicKey(hexToBytes(e.out.privateKey))), w.publicKey.slice(-64));
        assert.match(e.out.descriptor, /^rawtr\(/);
      } else {
        assert.equal(bytesToHex(secp256k1.getPublicKey(hexToBytes(e.out.privateKey.slice(2)), true)), w.publicKey);
        assert.equal(e.out.ethereumAddress.toLowerCase(), w.address.toLowerCase());
      }
      for (let i = 0; i < 3; i++) assert.match(await auditOf(i), new RegExp(`"key_exported".*"walletId":"${w.id}"|"walletId":"${w.id}".*"key_exported"`), `holder ${i + 1} logged the export of ${w.id}`);
    }
  });

  test('fewer than t holders: refused', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    assert.equal((await exportable(w.id, true, 1)).status, 200);
    await c.kill('signer-2');
    await c.kill('signer-3');
    assert.deepEqual(await exportCli(w.id), { ok: false, code: 'not_enough_signers' });
  });
});
