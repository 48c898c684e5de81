/**
 * Issue 11: crash mid-reshare, real processes. A dealer, a receiver and the server are each SIGKILLed
 * at a step of `POST /v1/wallets/:id/reshare` chosen by a seeded RNG (the seed and the points are
 * printed; FLEETKEY_TEST_SEED replays a run). The step is reached through the FLEETKEY_PAUSE_FILE
 * hook (src/pause.ts): the process stops there, says so on stderr, and is killed while stopped.
 * After each crash: the old epoch signs (while the reshare is stuck, and after), no epoch or share of
 * the new committee is active, the address never changes; the victim restarts, and the same reshare
 * retried succeeds (after the server's crash, once the wallet lock's lease has run out). A server
 * killed after it recorded the new epoch (`reshare:deliver`) resumes instead: the restarted server
 * delivers what it owes, the new committee signs and the leaver's share is erased.
 * ecdsa-secp256k1 has a second phase after the deal, the new committee's DKLs23 pairwise set-up
 * (`pairs`): a new holder killed there (at a seeded round) leaves the wallet as it was, and the retry
 * after its restart completes; each signature is checked with noble and its address recovered by viem.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { recoverAddress, type Hex } from 'viem';
import { LocalCluster } from '../../src/cli/cluster.ts';
import { api, call, verifySig } from '../helpers/cluster.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'fk-reshare-crash-'));
const pauseFile = join(dataDir, 'pause');
// Inherited by every process the cluster starts: the pause hook, and a lease short enough to wait out.
process.env.FLEETKEY_PAUSE_FILE = pauseFile;
process.env.FLEETKEY_RESHARE_LEASE_MS = '5000';

const seed = Number(process.env.FLEETKEY_TEST_SEED ?? parseInt(bytesToHex(randomBytes(4)), 16));
/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
function rng(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('crash mid-reshare', () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let token: string;
  let nodes: string[];
  const paused: string[] = [];
  before(async () => {
    c = await LocalCluster.start({
      dataDir,
      signers: 4,
      quiet: true,
      onLog: (name, line) => {
        if (line.includes('"msg":"pause point"')) paused.push(`${name} ${line}`);
      },
    });
    A = api(c);
    token = readFileSync(join(dataDir, 'cluster-token'), 'utf8').trim();
    nodes = c.info.signers.map((s) => s.nodeId);
  });
  after(async () => c?.stop());

  /** Starts a reshare (the one place that builds its request: the owner-signed order may join it). */
  const reshare = (walletId: string, to: string[]) => A('POST', `/v1/wallets/${walletId}/reshare`, { to });

  const signVerified = async (w: { id: string; publicKey: string }) => {
    const msg = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(verifySig('ed25519', w.publicKey, msg, r.body.signature), 'an independent verifier accepts');
    return r.body.signers as string[];
  };

  /** A DKLs23 signature of a fresh hash: noble verifies it under the wallet key, viem recovers the wallet's address. */
  const signEcdsa = async (w: { id: string; publicKey: string; address: string }) => {
    const hash = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(hash) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(secp256k1.verify(hexToBytes(r.body.signature).subarray(0, 64), hash, hexToBytes(w.publicKey), { prehash: false }), 'noble verifies');
    assert.equal(await recoverAddress({ hash: `0x${bytesToHex(hash)}`, signature: `0x${r.body.signature}` as Hex }), w.address, 'viem recovers the unchanged address');
    return r.body.signers as string[];
  };

  /** Polls (bounded, no fixed sleep as an assertion) until `f` is true. */
  const until = async (what: string, f: () => boolean | Promise<boolean>, tries = 240) => {
    for (let i = 0; i < tries; i++) {
      if (await f()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  test('a dealer, a receiver and the server killed at seeded steps: old epoch signs, nothing half-active, the retry succeeds, same address', { timeout: 600_000 }, async () => {
    const pick = rng(seed);
    // The wallet is on signers 1-3; the reshare moves it to 2, 3, 4: signers 2 and 3 deal, 4 only receives.
    const victims = [
      { role: 'dealer', proc: 'signer-2', who: () => nodes[1], points: ['reshare:start', 'reshare:1'] },
      { role: 'receiver', proc: 'signer-4', who: () => nodes[3], points: ['reshare:start', 'reshare:1'] },
      { role: 'server', proc: 'server', who: () => 'server', points: ['reshare:1', 'reshare:commit', 'reshare:deliver'] },
    ].map((v) => ({ ...v, point: v.points[Math.floor(pick() * v.points.length)] }));
    process.stdout.write(`# crash-mid-reshare seed ${seed}: ${victims.map((v) => `${v.role}@${v.point}`).join(', ')}\n`);

    for (const v of victims) {
      const label = `${v.role} killed at ${v.point} (seed ${seed})`;
      const created = await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const w = created.body;
      assert.deepEqual(w.participants.map((p: { nodeId: string }) => p.nodeId), nodes.slice(0, 3));
      const to = nodes.slice(1, 4);

      writeFileSync(pauseFile, `${v.who()} ${v.point}\n`);
      const seen = paused.length;
      const pending = reshare(w.id, to).catch((e: Error) => ({ status: 0, body: { error: { code: 'connection', message: e.message } } }));
      await until(`${label}: the pause point`, () => paused.length > seen);
      assert.match(paused[paused.length - 1], new RegExp(`^${v.proc} .*"point":"${v.point}"`), label);
      // Stuck mid-reshare, the wallet keeps signing (with the old epoch, or at `reshare:deliver` the recorded new one).
      await signVerified(w);
      writeFileSync(pauseFile, '');
      await c.kill(v.proc);
      const failed = await pending;
      assert.notEqual(failed.status, 200, `${label}: ${JSON.stringify(failed.body)}`);
      await c.restart(v.proc);

      if (v.point === 'reshare:deliver') {
        // The server had recorded the new epoch (and what it owes each node) before it died: the job
        // resumes, never rolls back. The restarted server delivers the commits and retirements.
        const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
        assert.deepEqual([now.epoch, now.address, now.publicKey], [w.epoch + 1, w.address, w.publicKey], label);
        assert.deepEqual(now.participants.map((p: { nodeId: string }) => p.nodeId), to, label);
        for (const s of await signVerified(now)) assert.ok(to.includes(s), `${label}: ${s} is of the new committee`);
        await until(`${label}: signer 1 retired`, async () => (await call(c.info.signers[0].url, token, 'POST', '/v1/nonces', { walletId: w.id, epoch: w.epoch, count: 1 })).status === 404);
        continue;
      }
      // Nothing of the new epoch is active: the wallet, its address and committee are as before, the
      // receiver holds no share of it, and the old committee signs.
      const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
      assert.deepEqual([now.epoch, now.address, now.publicKey, now.participants], [w.epoch, w.address, w.publicKey, w.participants], label);
      const receiver = await call(c.info.signers[3].url, token, 'POST', '/v1/nonces', { walletId: w.id, epoch: w.epoch + 1, count: 1 });
      assert.notEqual(receiver.status, 200, `${label}: the receiver has no active share: ${JSON.stringify(receiver.body)}`);
      for (const s of await signVerified(w)) assert.ok(nodes.slice(0, 3).includes(s), label);

      // The same reshare again: refused only while a dead server's lock lease runs (409), then done.
      let r = await reshare(w.id, to);
      let conflicts = 0;
      for (let i = 0; r.status === 409 && i < 60; i++) {
        conflicts++;
        await new Promise((ok) => setTimeout(ok, 500));
        r = await reshare(w.id, to);
      }
      assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body)}`);
      if (v.role !== 'server') assert.equal(conflicts, 0, `${label}: a reshare that failed released its lock`);
      assert.deepEqual([r.body.epoch, r.body.address, r.body.publicKey], [w.epoch + 1, w.address, w.publicKey], label);
      assert.deepEqual(r.body.participants.map((p: { nodeId: string }) => p.nodeId), to);
      for (const s of await signVerified(r.body)) assert.ok(to.includes(s), `${label}: ${s} is of the new committee`);
      // Signer 1 left the committee: its share is gone.
      const left = await call(c.info.signers[0].url, token, 'POST', '/v1/nonces', { walletId: w.id, epoch: w.epoch, count: 1 });
      assert.equal(left.status, 404, `${label}: ${JSON.stringify(left.body)}`);
    }
  });

  test('ecdsa-secp256k1: a new holder killed during the pairwise set-up; the old epoch signs, nothing half-active, the retry completes, same address', { timeout: 600_000 }, async () => {
    // The set-up has five rounds; the new holder (signer 4, which only receives) stops at its start or
    // before it takes in a round (at pairs:5 the other two have finished theirs and hold a pending share).
    const points = ['pairs:start', 'pairs:1', 'pairs:2', 'pairs:3', 'pairs:4', 'pairs:5'];
    const point = points[Math.floor(rng(seed ^ 0xec)() * points.length)];
    const label = `new holder killed at ${point} (seed ${seed})`;
    process.stdout.write(`# crash-mid-reshare ecdsa: ${label}\n`);
    const created = await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const w = created.body;
    assert.deepEqual(w.participants.map((p: { nodeId: string }) => p.nodeId), nodes.slice(0, 3));
    const to = nodes.slice(1, 4);

    writeFileSync(pauseFile, `${nodes[3]} ${point}\n`);
    const seen = paused.length;
    const pending = reshare(w.id, to).catch((e: Error) => ({ status: 0, body: { error: { code: 'connection', message: e.message } } }));
    await until(`${label}: the pause point`, () => paused.length > seen);
    assert.match(paused[paused.length - 1], new RegExp(`^signer-4 .*"point":"${point}"`), label);
    // The deal is done, the set-up is stuck: the old committee signs.
    for (const s of await signEcdsa(w)) assert.ok(nodes.slice(0, 3).includes(s), label);
    writeFileSync(pauseFile, '');
    await c.kill('signer-4');
    const failed = await pending;
    assert.notEqual(failed.status, 200, `${label}: ${JSON.stringify(failed.body)}`);
    await c.restart('signer-4');

    // Rolled back: the wallet, its address and committee are as before; the new holder has no active share.
    const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
    assert.deepEqual([now.epoch, now.address, now.publicKey, now.participants], [w.epoch, w.address, w.publicKey, w.participants], label);
    const receiver = await call(c.info.signers[3].url, token, 'POST', '/v1/nonces', { walletId: w.id, epoch: w.epoch + 1, count: 1 });
    assert.equal(receiver.body.error?.code, 'not_found', `${label}: ${JSON.stringify(receiver.body)}`);
    for (const s of await signEcdsa(w)) assert.ok(nodes.slice(0, 3).includes(s), label);

    // The same move again completes at once (the failed one released the wallet's lock).
    const r = await reshare(w.id, to);
    assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body)}`);
    assert.deepEqual([r.body.epoch, r.body.address, r.body.publicKey], [w.epoch + 1, w.address, w.publicKey], label);
    assert.deepEqual(r.body.participants.map((p: { nodeId: string }) => p.nodeId), to);
    for (const s of await signEcdsa(r.body)) assert.ok(to.includes(s), `${label}: ${s} is of the new committee`);
    // Signer 1 left: its share is gone (a held ecdsa share would answer 'unsupported' here, not 404).
    const left = await call(c.info.signers[0].url, token, 'POST', '/v1/nonces', { walletId: w.id, epoch: w.epoch, count: 1 });
    assert.equal(left.status, 404, `${label}: ${JSON.stringify(left.body)}`);
  });
});
