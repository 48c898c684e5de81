/**
 * The owner's and approvers' verbs through the real `fleetkey` command against a real cluster:
 * key create, policy set/show, grant create/list/revoke, approvers set, request (as an agent),
 * approval list/approve. Documents are signed by the CLI with the owner key file; the server only
 * forwards them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { startCluster } from '../helpers/cluster.ts';
import { SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

describe('fleetkey owner / agent / approver verbs', { timeout: 300_000 }, () => {
  let c: LocalCluster;
  const dir = mkdtempSync(join(tmpdir(), 'fk-cli-control-'));
  const run = (...args: string[]): Promise<{ code: number | null; out: any; err: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args, '--json'], { env: { ...process.env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey, FLEETKEY_NODE_KEYS: join(c.dataDir, 'server', 'peers.json') } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out: out.trim() ? JSON.parse(out) : undefined, err }));
    });

  before(async () => {
    c = await startCluster(3);
  });
  after(async () => c?.stop());

  test('policy, grant, agent request, approval, revoke', async () => {
    const w = await run('wallet', 'create', '--scheme', 'ed25519', '--threshold', '2', '--signers', '3');
    assert.equal(w.code, 0, w.err);
    const agentKey = join(dir, 'agent.key');
    const k = await run('key', 'create', '--out', agentKey);
    assert.equal(k.code, 0, k.err);
    assert.equal(statSync(agentKey).mode & 0o077, 0, 'secret file is 0600');
    assert.match(k.out.publicKey, /^[0-9a-f]{64}$/);
    assert.equal((await run('key', 'create', '--out', agentKey)).out.error.code, 'conflict', 'never overwrites a key');

    const policyFile = join(dir, 'policy.json');
    const policy = { version: 1, assets: SOL_ASSETS, rules: [{ type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { type: 'require_approval', asset: 'SOL', above: '100000000', m: 1, approvers: ['alice'] }] };
    writeFileSync(policyFile, JSON.stringify(policy));
    const set = await run('policy', 'set', w.out.id, policyFile);
    assert.equal(set.code, 0, set.err);
    assert.equal(set.out.delivered.length, 3);
    assert.equal((await run('policy', 'show', w.out.id)).out.version, 1);
    writeFileSync(policyFile, JSON.stringify({ ...policy, rules: [{ type: 'allow', to: ['x'], bogus: 1 }] }));
    const bad = await run('policy', 'set', w.out.id, policyFile);
    assert.equal(bad.code, 1, 'refused before anything is sent');
    assert.equal(bad.out.error.code, 'validation_failed');
    assert.match(bad.out.error.details.path, /^doc\.policy\.rules\[0\]/);

    const g = await run('grant', 'create', '--agent-key', `@${join(dir, 'agent.pub')}`, '--wallets', w.out.id);
    assert.equal(g.code, 1, 'a missing key file is a local error');
    writeFileSync(join(dir, 'agent.pub'), k.out.publicKey);
    const grant = await run('grant', 'create', '--agent-key', `@${join(dir, 'agent.pub')}`, '--wallets', w.out.id, '--expires', '1h', '--max-uses', '5', '--label', 'cli test');
    assert.equal(grant.code, 0, grant.err);
    const list = await run('grant', 'list');
    assert.equal(list.out.find((x: { id: string }) => x.id === grant.out.id).status, 'active');

    const small = await run('request', '--grant', grant.out.id, '--agent-key', agentKey, '--wallet', w.out.id, '--kind', 'solana_transaction', '--network', 'mainnet-beta', '--payload', solTransfer(w.out.address, 1000n));
    assert.equal(small.code, 0, JSON.stringify(small.out));
    assert.equal(small.out.status, 'signed');
    assert.match(small.out.signature, /^[0-9a-f]{128}$/);

    const aliceKey = join(dir, 'alice.key');
    const alice = await run('key', 'create', '--out', aliceKey);
    writeFileSync(join(dir, 'approvers.json'), JSON.stringify({ alice: { keyType: 'ed25519', publicKey: alice.out.publicKey } }));
    assert.equal((await run('approvers', 'set', join(dir, 'approvers.json'))).code, 0);
    const big = await run('request', '--grant', grant.out.id, '--agent-key', agentKey, '--wallet', w.out.id, '--kind', 'solana_transaction', '--network', 'mainnet-beta', '--payload', solTransfer(w.out.address, 200_000_000n), '--expires', '10m');
    assert.equal(big.out.status, 'pending_approval', JSON.stringify(big.out));
    const waiting = await run('approval', 'list');
    assert.deepEqual(waiting.out.map((x: { requestId: string }) => x.requestId), [big.out.requestId]);
    const ok = await run('approval', 'approve', big.out.requestId, '--approver', 'alice', '--approver-key', aliceKey);
    assert.equal(ok.out.status, 'signed', JSON.stringify(ok.out));

    const rv = await run('grant', 'revoke', grant.out.id);
    assert.equal(rv.code, 0);
    assert.deepEqual(rv.out.pending, []);
    const after = await run('request', '--grant', grant.out.id, '--agent-key', agentKey, '--wallet', w.out.id, '--kind', 'solana_transaction', '--network', 'mainnet-beta', '--payload', solTransfer(w.out.address, 1000n, undefined, 1));
    assert.equal(after.code, 2, 'refused by the server: exit 2');
    assert.equal(after.out.error.code, 'grant_revoked');
    assert.ok(readFileSync(c.info.ownerKey, 'utf8').trim().length === 64);
  });

  test('request: while a share holder is down, 503 at once with --retry-for 0; signed once it is back with the default retries', async () => {
    const w = await run('wallet', 'create', '--scheme', 'ed25519', '--threshold', '2', '--signers', '3');
    const agentKey = join(dir, 'agent2.key');
    const k = await run('key', 'create', '--out', agentKey);
    const policyFile = join(dir, 'policy2.json');
    // A rolling cap: counted strictly, so every share holder must be up to sign.
    writeFileSync(policyFile, JSON.stringify({ version: 1, assets: SOL_ASSETS, rules: [{ type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { type: 'window_cap', asset: 'SOL', max: '1000000000', window: '24h' }] }));
    assert.equal((await run('policy', 'set', w.out.id, policyFile)).code, 0);
    const grant = await run('grant', 'create', '--agent-key', k.out.publicKey, '--wallets', w.out.id, '--expires', '1h');
    assert.equal(grant.code, 0, grant.err);
    const req = (salt: number, ...more: string[]) =>
      run('request', '--grant', grant.out.id, '--agent-key', agentKey, '--wallet', w.out.id, '--kind', 'solana_transaction', '--network', 'mainnet-beta', '--payload', solTransfer(w.out.address, 1000n, undefined, salt), ...more);
    await c.kill('signer-3');
    const now = await req(1, '--retry-for', '0');
    assert.equal(now.code, 2, JSON.stringify(now.out));
    assert.equal(now.out.error.code, 'not_enough_signers');
    const back = new Promise<void>((resolve, reject) => setTimeout(() => c.restart('signer-3').then(resolve, reject), 1500));
    const later = await req(2);
    await back;
    assert.equal(later.code, 0, JSON.stringify(later.out));
    assert.equal(later.out.status, 'signed');
  });
});
