/**
 * Issue 11: `fleetkey signer backup` / `restore` with real processes. A backup is taken while the
 * signer runs (and signs); 50 signatures later the signer is SIGKILLed, its data folder is gone, and
 * it is restored from the backup into a fresh folder holding only its KEK. The restored node must
 * refuse every nonce it had at backup time — including one it used after the backup — and every
 * nonce it made after it, and the cluster must sign again (with the restored node).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { fleetkey as cli } from '../helpers/cli.ts';
import { ownerSign } from '../helpers/agent.ts';
import { api, call, fetchAny, startCluster, verifySig } from '../helpers/cluster.ts';

describe('signer backup and restore', () => {
  let c: LocalCluster;
  let token: string;
  const S = (i: number, path: string, body: unknown) => call(c.info.signers[i].url, token, 'POST', path, body);
  before(async () => {
    c = await startCluster(3);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
  });
  after(async () => c?.stop());

  /** Signer i's signature share request for `nonceId`, under the owner's authorization (these tests are about nonces, not policy). */
  const signDirect = async (i: number, walletId: string, nonceId: string, commitments: Record<number, unknown>) => {
    const message = bytesToHex(randomBytes(32));
    const requestId = `backup-${bytesToHex(randomBytes(6))}`;
    const now = Date.now();
    const auth = { owner: ownerSign(c, { kind: 'sign', walletId, requestId, payload: { kind: 'raw_message', data: message }, issuedAt: now, expiresAt: now + 600_000 }) };
    return S(i, '/v1/sign', { requestId, walletId, epoch: 0, message, nonceId, commitments, auth });
  };

  test('a restored signer refuses every nonce it had at backup time and every later one; the cluster signs again', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const signOnce = async () => {
      const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as { signature: string; signers: string[] };
    };
    await signOnce(); // the server now pools signer-1's nonces too
    const self = c.info.signers[0].nodeId;
    // Nonces signer-1 holds at backup time, whose commitments this test keeps (as a compromised server would).
    const held = (await S(0, '/v1/nonces', { walletId: w.id, epoch: 0, count: 4 })).body;
    const dir = join(c.dataDir, 'signer-1');
    const file = join(c.dataDir, 'signer-1.backup');
    // The backup runs while the cluster signs.
    const signed: { signature: string; signers: string[]; message?: string }[] = [];
    const [backup] = await Promise.all([
      cli(['signer', 'backup', '--data', dir, '--out', file]),
      (async () => {
        for (let k = 0; k < 10; k++) signed.push(await signOnce());
      })(),
    ]);
    assert.ok(backup.ok, JSON.stringify(backup));
    assert.equal(backup.out.nodeId, self);
    assert.ok(backup.out.pooledNonces >= held.commitments.length);
    for (let k = 0; k < 40; k++) signed.push(await signOnce());
    assert.equal(signed.length, 50);
    assert.ok(signed.every((s) => s.signers.includes(self)), 'signer-1 took part in every signature after the backup');
    // One nonce of the backup used after it (the dangerous case), and one made after it.
    const other = async () => (await S(1, '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const commitmentsWith = async (mine: { hiding: string; binding: string }) => {
      const o = await other();
      return { [held.index]: { hiding: mine.hiding, binding: mine.binding }, [o.index]: { hiding: o.commitments[0].hiding, binding: o.commitments[0].binding } };
    };
    assert.equal((await signDirect(0, w.id, held.commitments[0].id, await commitmentsWith(held.commitments[0]))).status, 200);
    const late = (await S(0, '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body.commitments[0];

    // Disaster: SIGKILL, and the data folder is gone. The new host has only the KEK (as the operator keeps it) and the backup.
    await c.kill('signer-1');
    renameSync(dir, `${dir}.lost`);
    mkdirSync(dir, { mode: 0o700 });
    copyFileSync(join(`${dir}.lost`, 'kek.key'), join(dir, 'kek.key'));
    // A backup that was altered does not restore, and leaves no store behind.
    const tampered = JSON.parse(readFileSync(file, 'utf8'));
    tampered.takenAt += 1;
    writeFileSync(`${file}.tampered`, JSON.stringify(tampered));
    const bad = await cli(['signer', 'restore', '--in', `${file}.tampered`, '--data', dir]);
    assert.deepEqual(bad, { ok: false, code: 'decrypt_failed' });
    assert.ok(!existsSync(join(dir, 'signer.db')));
    const restored = await cli(['signer', 'restore', '--in', file, '--data', dir]);
    assert.ok(restored.ok, JSON.stringify(restored));
    assert.equal(restored.out.nodeId, self);
    assert.equal(restored.out.erasedNonces, backup.out.pooledNonces);
    // Restoring over a store is refused.
    assert.deepEqual(await cli(['signer', 'restore', '--in', file, '--data', dir]), { ok: false, code: 'conflict' });
    await c.restart('signer-1');

    // Every nonce it held at backup time is refused (the one used after the backup too), and the later one is unknown.
    for (const n of held.commitments) {
      const r = await signDirect(0, w.id, n.id, await commitmentsWith(n));
      assert.equal(r.body.error?.code, 'nonce_consumed', `${n.id}: ${JSON.stringify(r.body)}`);
    }
    const r = await signDirect(0, w.id, late.id, await commitmentsWith(late));
    assert.equal(r.body.error?.code, 'nonce_unknown');

    // The cluster signs again, with the restored node and fresh nonces; an independent verifier checks.
    for (let k = 0; k < 3; k++) {
      const message = bytesToHex(randomBytes(32));
      const s = await A('POST', `/v1/wallets/${w.id}/sign`, { message });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.ok(s.body.signers.includes(self));
      assert.ok(verifySig('ed25519', w.publicKey, Buffer.from(message, 'hex'), s.body.signature));
    }
    // Its audit chain records the restore, after the backup's head.
    const lines = await (await fetchAny(`${c.info.signers[0].url}/v1/audit`, { headers: { authorization: `Bearer ${token}` } })).text();
    assert.match(lines, /signer_restored/);
    assert.match(lines, new RegExp(restored.out.backupId));
  });
});
