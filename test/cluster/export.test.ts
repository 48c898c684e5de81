/**
 * Issue 11: the owner-only recovery export, real processes and the real CLI. Refused without
 * `"exportable": true`, refused without the owner's document (a server alone cannot order it: a
 * document signed by any other key is refused by every holder), refused with fewer than t holders;
 * with the holders, the CLI rebuilds each scheme's key offline, noble confirms its public key is the
 * wallet's (viem its Ethereum address), and every holder's audit chain records the export. Each box
 * carries its holder's signature: a server that swaps, forges, copies or replays a box is caught by
 * the CLI against the manifest's pinned node keys, before any box is opened.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { controlDocDigest, signControlDoc } from '../../src/control/index.ts';
import { sealShare } from '../../src/crypto/export.ts';
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

  const exportCli = (id: string, url = c.info.url) => fleetkey(['wallet', 'export', id, '--recovery-key', recoveryKey, '--manifest', join(c.dataDir, 'cluster-manifest.json')], { ...env, FLEETKEY_URL: url });
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

  test('a server that swaps a box is caught by the CLI; the honest answer through the same relay rebuilds the key', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'secp256k1-schnorr' })).body;
    assert.equal((await exportable(w.id, true, 1)).status, 200);
    // A relay in front of the real server: it forwards every request and may rewrite the export's answer.
    let tamper: ((answer: any, orderDigest: string) => void) | undefined;
    let last: any;
    const relay: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const r = await call(c.info.url, req.headers.authorization?.replace(/^Bearer /, ''), req.method!, req.url!, undefined, raw || undefined);
        if (req.url!.endsWith('/export') && r.status === 200) {
          const answer = structuredClone(r.body);
          tamper?.(r.body, controlDocDigest(JSON.parse(raw).order.doc));
          last = answer;
        }
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
      });
    });
    await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    try {
      const honest = await exportCli(w.id, url);
      assert.ok(honest.ok, JSON.stringify(honest));
      assert.equal(bytesToHex(schnorr.getPublicKey(hexToBytes(honest.out.privateKey))), w.publicKey.slice(-64));
      const earlier = last;
      const cases: [string, (a: any, order: string) => void, string][] = [
        // Sealed by the relay itself (anyone can seal to the recovery public key), under the holder's name and signature.
        ['a box the server sealed', (a, order) => (a.shares[0].box = sealShare({ v: 1, scheme: w.scheme, walletId: w.id, epoch: a.shares[0].epoch, index: a.shares[0].index, scalar: bytesToHex(secp256k1.utils.randomSecretKey()), order }, recoveryPub)), 'bad_signature'],
        ['a box (and its signature) from the earlier export', (a) => (a.shares[0] = earlier.shares[0]), 'bad_signature'],
        ['a box under a node the manifest does not pin', (a) => (a.shares[0].nodeId = 'node_000000000000'), 'bad_signature'],
        ['one holder\'s box twice', (a) => (a.shares[1] = a.shares[0]), 'validation_failed'],
        ['a box relabelled with another party index', (a) => (a.shares[0].index = 7), 'bad_signature'],
      ];
      for (const [what, f, code] of cases) {
        tamper = f;
        assert.deepEqual(await exportCli(w.id, url), { ok: false, code }, what);
      }
    } finally {
      relay.close();
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
