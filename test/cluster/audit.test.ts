/**
 * Audit chains and a cheating signer, end to end: the server and every signer keep hash-chained
 * logs sealed by signed checkpoints; `fleetkey audit verify` checks an export offline and names the
 * first broken line. A signer whose share is corrupted on disk is named in the error and the audit.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { verifyLog } from '../../src/audit/index.ts';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { keyFile, makeSealer } from '../../src/signer/seal.ts';
import { openDb } from '../../src/store/db.ts';
import { SignerStore } from '../../src/store/signer-store.ts';
import { api, call, fetchAny, startCluster } from '../helpers/cluster.ts';

function cliVerify(file: string, key?: string) {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'verify', file, '--json', ...(key ? ['--key', key] : [])], { encoding: 'utf8' });
  return { code: r.status, out: JSON.parse(r.stdout) };
}

describe('audit chains', () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  before(async () => {
    c = await startCluster(3);
    A = api(c);
  });
  after(async () => c?.stop());

  test('the server log records wallets and signatures and verifies offline; tampering is named', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const msgs = [randomBytes(20), randomBytes(20), randomBytes(20)];
    for (const m of msgs) assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(m) })).status, 200);
    const res = await fetch(c.info.url + '/v1/audit', { headers: { authorization: `Bearer ${c.info.token}` } });
    const text = await res.text();
    const key = (await A('GET', '/v1/audit/key')).body.publicKey;
    const v = verifyLog(text, { trustedKeys: [key] });
    assert.ok(v.ok, JSON.stringify(v.firstBroken));
    assert.equal(v.sealedThrough, v.entries.length - 1, 'export ends with a signed checkpoint over everything before it');
    assert.ok(v.entries.some((e) => e.outcome === 'wallet_created' && (e.data as any).walletId === w.id));
    for (const m of msgs) assert.ok(v.entries.some((e) => e.outcome === 'signed' && e.requestDigest === bytesToHex(sha256(m))), 'each signature is in the log');
    assert.ok(!/signingShare|nonces"|secret/i.test(text));

    const dir = mkdtempSync(join(tmpdir(), 'fk-audit-'));
    const lines = text.trim().split('\n');
    const write = (name: string, ls: string[]) => {
      const f = join(dir, name);
      writeFileSync(f, ls.join('\n') + '\n');
      return f;
    };
    assert.deepEqual(cliVerify(write('ok.jsonl', lines), key).code, 0);
    const changed = [...lines];
    changed[1] = changed[1].replace('"signed"', '"denied"').replace('"wallet_created"', '"wallet_deleted"');
    assert.notEqual(changed[1], lines[1]);
    let r = cliVerify(write('changed.jsonl', changed), key);
    assert.equal(r.code, 1);
    assert.equal(r.out.firstBroken.line, 2);
    r = cliVerify(write('deleted.jsonl', [lines[0], ...lines.slice(2)]), key);
    assert.equal(r.code, 1);
    assert.equal(r.out.firstBroken.line, 2);
    r = cliVerify(write('swapped.jsonl', [lines[0], lines[2], lines[1], ...lines.slice(3)]), key);
    assert.equal(r.code, 1);
    assert.equal(r.out.firstBroken.line, 2);
    r = cliVerify(write('ok2.jsonl', lines), bytesToHex(ed25519.getPublicKey(ed25519.utils.randomSecretKey())));
    assert.equal(r.code, 1, 'a checkpoint by another key is refused when the key is pinned');
  });

  test('each signer keeps its own chain, sealed with its identity key', async () => {
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    const peers = c.info.signers;
    const res = await fetchAny(peers[0].url + '/v1/audit', { headers: { authorization: `Bearer ${token}` } });
    const v = verifyLog(await res.text(), { trustedKeys: [peers[0].signPub] });
    assert.ok(v.ok, JSON.stringify(v.firstBroken));
    assert.ok(v.entries.some((e) => e.outcome === 'key_activated'));
    assert.ok(v.entries.some((e) => e.outcome === 'share_issued'));
    assert.equal((await call(peers[0].url, undefined, 'GET', '/v1/audit')).status, 401);
  });

  test('a signer with a corrupted share is named in the error and in the audit', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: '00' })).status, 200);
    // Corrupt signer-2's share at rest (as a broken or malicious node would hold it).
    await c.kill('signer-2');
    const dir = join(c.dataDir, 'signer-2');
    const db = await openDb({ kind: 'sqlite', path: join(dir, 'signer.db') });
    const store = new SignerStore(db);
    const sealer = makeSealer(keyFile(join(dir, 'kek.key')));
    const rec = (await store.getActiveShare(w.id))!;
    const ctx = `share|${w.id}|${rec.epoch}`;
    const share = JSON.parse(new TextDecoder().decode(sealer.open(rec.sealed, ctx)));
    const s = hexToBytes(share.secret.signingShare);
    s[0] ^= 1;
    share.secret.signingShare = bytesToHex(s);
    await db.run(`UPDATE shares SET sealed = $1 WHERE wallet_id = $2`, [sealer.seal(utf8ToBytes(JSON.stringify(share)), ctx), w.id]);
    await db.close();
    await c.restart('signer-2');
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: '01' });
    assert.equal(r.status, 502, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'cheating_signer');
    assert.equal(r.body.error.details.nodeId, c.nodeIdOf('signer-2'));
    const text = await (await fetch(c.info.url + '/v1/audit', { headers: { authorization: `Bearer ${c.info.token}` } })).text();
    const v = verifyLog(text);
    assert.ok(v.ok);
    assert.ok(v.entries.some((e) => e.outcome === 'cheating_signer' && (e.data as any).nodeId === c.nodeIdOf('signer-2')));
    // The cheater is quarantined: the next signature is made without it, and node list says so.
    const msg = randomBytes(32);
    const again = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.ok(!again.body.signers.includes(c.nodeIdOf('signer-2')));
    assert.ok(ed25519.verify(hexToBytes(again.body.signature), msg, hexToBytes(w.publicKey)));
    assert.equal((await A('GET', '/v1/nodes')).body.find((n: any) => n.id === c.nodeIdOf('signer-2')).status, 'quarantined');
  });
});
