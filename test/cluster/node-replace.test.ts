/**
 * Issue 11, the disaster test on real processes: one signer of a 2-of-3 cluster is SIGKILLed and
 * its data folder deleted; `fleetkey node replace OLD NEW` (the CLI, signing one owner order per
 * wallet) moves every wallet it held to a fresh node in a background job. Then every wallet signs
 * with the new committee (ed25519, secp256k1-schnorr, and an ecdsa-secp256k1 fleet root with 1,000
 * derived devices, which move with their root: the job counts one wallet for them), each signature
 * checked with noble; and a capped policy under strict counters with 60% of its window used before
 * the loss stops at exactly 100% after it. The fresh node is a brand-new signer made after the loss,
 * joined as an operator joins one (test/helpers/cluster.ts joinSigner: `fleetkey signer init`, `node
 * add`, the new manifest copied to every process, each restarted; the manifest is the membership list:
 * src/cli/committee.ts). Then `node retire`,
 * with the API server SIGKILLed right after the job was accepted: the restarted server resumes the
 * job, every wallet moves, and the retired node's shares are gone (it refuses the new epoch).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import type { Payload } from '../../src/control/index.ts';
import { api, call, joinSigner, startCluster, verifySig } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

let c: LocalCluster;
let A: ReturnType<typeof api>;

before(async () => {
  // A job whose server died is taken over once its lease has run out: 3 s here instead of 30 s.
  process.env.FLEETKEY_NODE_JOB_LEASE_MS = '3000';
  c = await startCluster(3);
  A = api(c);
});
after(async () => c?.stop());

function cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'fk-node-replace-cli-'));
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

async function signs(w: { id: string; scheme: string; publicKey: string }, committee: string[]): Promise<void> {
  const msg = randomBytes(32);
  const body = w.scheme === 'ecdsa-secp256k1' ? { hash: bytesToHex(msg) } : { message: bytesToHex(msg) };
  const r = await A('POST', `/v1/wallets/${w.id}/sign`, body);
  assert.equal(r.status, 200, `${w.id}: ${JSON.stringify(r.body)}`);
  const ok = w.scheme === 'ecdsa-secp256k1' ? secp256k1.verify(hexToBytes(r.body.signature).subarray(0, 64), msg, hexToBytes(w.publicKey), { prehash: false }) : verifySig(w.scheme, w.publicKey, msg, r.body.signature);
  assert.ok(ok, `${w.id} (${w.scheme}): the signature verifies under the unchanged key`);
  for (const s of r.body.signers) assert.ok(committee.includes(s), `${w.id}: signer ${s} is in the new committee`);
}

describe('disaster: a signer and its disk are lost; node replace moves every wallet to a fresh node', () => {
  test('every wallet (and 1,000 fleet devices) signs with the new committee; a strict cap 60% used stops at exactly 100%', { timeout: 900_000 }, async () => {
    const nodes = c.info.signers.map((s) => s.nodeId);
    const [lost] = nodes;
    const ed = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    const sc = (await A('POST', '/v1/wallets', { scheme: 'secp256k1-schnorr', threshold: 2, signers: 3 })).body;
    const fleet = await A('POST', '/v1/fleets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
    assert.equal(fleet.status, 201, JSON.stringify(fleet.body));
    const root = (await A('GET', `/v1/wallets/${fleet.body.id}`)).body;
    for (const w of [ed, sc, root]) assert.deepEqual(w.participants.map((p: { nodeId: string }) => p.nodeId), nodes.slice(0, 3), `${w.id} is on the three nodes`);
    const batch = await A('POST', `/v1/fleets/${root.id}/devices/batch`, { count: 1000 });
    assert.equal(batch.body.enrolled, 1000, JSON.stringify(batch.body));

    // A 1 SOL window cap under strict counters, 60% used before the loss.
    const LAMPORTS = 1_000_000_000n;
    const policy = { version: 1, assets: SOL_ASSETS, counters: 'strict', rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: '1000000000', window: '24h' }] };
    assert.equal((await publish(c, { kind: 'policy', walletId: ed.id, version: 1, policy, issuedAt: Date.now() })).status, 200);
    const agent = newAgent();
    const g = await grant(c, agent, [ed.id]);
    let salt = 0;
    const ask = async (lamports: bigint) => {
      const pay: Payload = { kind: 'solana_transaction', data: solTransfer(ed.address, lamports, SOL_DEST, ++salt), opts: { network: 'mainnet-beta' } };
      return A('POST', '/v1/requests', request(agent, g, ed.id, pay));
    };
    for (const part of [3n, 3n]) assert.equal((await ask((LAMPORTS * part) / 10n)).body.status, 'signed');

    // The loss: no shutdown, and the node's store, shares and nonces are gone.
    const lostDir = join(c.dataDir, 'signer-1');
    assert.ok(existsSync(lostDir));
    await c.kill('signer-1');
    rmSync(lostDir, { recursive: true, force: true });

    // Its replacement is made now, on a new host: init, node add, the manifest to every process, restarts.
    // The lost node stays in the manifest until its wallets have moved.
    const fresh = await joinSigner(c, 'signer-4');
    assert.deepEqual(c.info.signers.map((s) => s.nodeId), [...nodes, fresh]);

    // A replace without the owner key is refused before any job is written.
    const noKey = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'node', 'replace', lost, fresh], { cwd: mkdtempSync(join(tmpdir(), 'fk-node-replace-cli-')), env: { ...process.env, FLEETKEY_OWNER_KEY_FILE: '', FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token } });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, err }));
    });
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.err, /owner_authorization_required/);
    assert.deepEqual((await A('GET', '/v1/node-jobs')).body.jobs, []);

    const r = await cli('node', 'replace', lost, fresh, '--wait', '--json');
    assert.equal(r.code, 0, r.err + r.out);
    const job = JSON.parse(r.out);
    assert.equal(job.status, 'done', r.out);
    assert.deepEqual(job.progress, { total: 3, done: 3, failed: 0, pending: 0 }, 'three roots moved: the 1,000 devices follow theirs');
    assert.deepEqual(job.wallets.map((w: { walletId: string }) => w.walletId).sort(), [ed.id, sc.id, root.id].sort());
    const listed = await cli('node', 'jobs', '--json');
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(JSON.parse(listed.out).map((j: { id: string; status: string }) => [j.id, j.status]), [[job.id, 'done']]);

    const committee = [fresh, nodes[1], nodes[2]];
    for (const w of [ed, sc, root]) {
      const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
      assert.deepEqual(now.participants.map((p: { nodeId: string }) => p.nodeId), committee);
      assert.equal(now.address, w.address, `${w.id}: same address`);
      assert.equal(now.epoch, w.epoch + 1);
      await signs(w, committee);
    }
    // Derived devices sign under their own keys with the new committee, without re-enrolment.
    for (const i of [0, 1 + Math.floor(Math.random() * 998), 999]) {
      const d = (await A('GET', `/v1/fleets/${root.id}/devices/${i}`)).body;
      await signs({ id: d.walletId, scheme: 'ecdsa-secp256k1', publicKey: d.publicKey }, committee);
    }

    // The cap: 40% more signs, exactly to 100%; then not one lamport more.
    assert.equal((await ask((LAMPORTS * 3n) / 10n)).body.status, 'signed');
    assert.equal((await ask(LAMPORTS / 10n)).body.status, 'signed');
    const over = await ask(1n);
    assert.equal(over.body.error?.code ?? over.body.code, 'limit_exceeded', JSON.stringify(over.body));
  });

  test('node retire survives a SIGKILL of the API server: the restarted server resumes the job; the retired node holds nothing', { timeout: 600_000 }, async () => {
    const nodes = c.info.signers.map((s) => s.nodeId);
    const [, leaving, stays, fresh] = nodes;
    const before = (await A('GET', '/v1/wallets?limit=1000')).body.wallets.filter((w: { participants: { nodeId: string }[] }) => w.participants.some((p) => p.nodeId === leaving));
    assert.equal(before.length, 3);
    const r = await cli('node', 'retire', leaving, '--json');
    assert.equal(r.code, 0, r.err + r.out);
    const accepted = JSON.parse(r.out);
    assert.equal(accepted.progress.total, 3);
    await c.kill('server');
    await c.restart('server');
    let job = accepted;
    for (let i = 0; i < 600 && job.status === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 500));
      job = (await A('GET', `/v1/node-jobs/${accepted.id}`)).body;
    }
    assert.equal(job.status, 'done', JSON.stringify(job));
    assert.deepEqual(job.progress, { total: 3, done: 3, failed: 0, pending: 0 });
    for (const w of before) {
      const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
      assert.deepEqual(now.participants.map((p: { nodeId: string }) => p.nodeId), [fresh, stays]);
      assert.equal(now.threshold, 2);
      assert.equal(now.address, w.address);
      await signs(w, [fresh, stays]);
      // The retired node erased its share: it refuses the wallet at the new epoch (and has no other).
      const url = c.info.signers.find((s) => s.nodeId === leaving)!.url;
      const refused = await call(url, readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim(), 'POST', '/v1/nonces', { walletId: w.id, epoch: now.epoch, count: 1 });
      assert.equal(refused.body.error?.code, 'not_found', JSON.stringify(refused.body));
    }
  });

  test('bad membership changes are refused before any job is written', { timeout: 60_000 }, async () => {
    const nodes = c.info.signers.map((s) => s.nodeId);
    const jobs = async () => (await A('GET', '/v1/node-jobs')).body.jobs.length;
    const n0 = await jobs();
    const cases: [unknown, string][] = [
      [{ kind: 'retire', node: 'node_000000000000', orders: [] }, 'unknown_node'],
      [{ kind: 'replace', node: nodes[2], replacement: nodes[2], orders: [] }, 'validation_failed'],
      [{ kind: 'replace', node: nodes[2], replacement: nodes[0], orders: [] }, 'owner_authorization_required'],
      [{ kind: 'retire', node: nodes[2], orders: [{ doc: { walletId: 'wal_nope' } }] }, 'validation_failed'],
      [{ kind: 'demote', node: nodes[2], orders: [] }, 'validation_failed'],
    ];
    for (const [body, code] of cases) {
      const r = await A('POST', '/v1/node-jobs', body);
      assert.equal(r.body.error?.code, code, `${JSON.stringify(body)} -> ${r.status} ${JSON.stringify(r.body)}`);
    }
    assert.equal(await jobs(), n0);
    assert.equal((await A('GET', '/v1/node-jobs/job_000000000000000000000000')).status, 404);
  });
});
