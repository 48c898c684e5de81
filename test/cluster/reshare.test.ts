/**
 * Issue 11, step 1 on real processes: a five-node cluster reshares a wallet 2-of-3 -> 3-of-5 -> 2-of-3
 * (the last committee on other machines), for every scheme. After each step the same address signs and
 * the signature is checked with noble's plain verifier; a node that left the committee has no share
 * and no epoch of the wallet any more; bad requests are refused with nothing changed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { decode } from '../../src/chains/index.ts';
import type { Payload } from '../../src/control/index.ts';
import { api, call, fetchAny, startCluster, verifySig } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

let c: LocalCluster;
let A: ReturnType<typeof api>;
let token: string;
let nodes: string[];

before(async () => {
  c = await startCluster(5);
  A = api(c);
  token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
  nodes = c.info.signers.map((s) => s.nodeId);
});
after(async () => c?.stop());

async function signVerified(w: { id: string; scheme: string; publicKey: string }): Promise<string[]> {
  const msg = randomBytes(32);
  const body = w.scheme === 'ecdsa-secp256k1' ? { hash: bytesToHex(msg) } : { message: bytesToHex(msg) };
  const r = await A('POST', `/v1/wallets/${w.id}/sign`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const ok = w.scheme === 'ecdsa-secp256k1' ? secp256k1.verify(hexToBytes(r.body.signature).subarray(0, 64), msg, hexToBytes(w.publicKey), { prehash: false }) : verifySig(w.scheme, w.publicKey, msg, r.body.signature);
  assert.ok(ok, `${w.scheme}: signature verifies under the unchanged key`);
  return r.body.signers;
}

const nodeUrl = (nodeId: string) => c.info.signers.find((s) => s.nodeId === nodeId)!.url;

for (const scheme of ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'] as const) {
  describe(scheme, () => {
    test('2-of-3 -> 3-of-5 -> 2-of-3: same address, each committee signs, leavers are erased', { timeout: 900_000 }, async () => {
      const created = await A('POST', '/v1/wallets', { scheme, threshold: 2, signers: 3 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const w0 = created.body;
      assert.deepEqual(w0.participants.map((p: { nodeId: string }) => p.nodeId), nodes.slice(0, 3));
      await signVerified(w0);

      const grown = await A('POST', `/v1/wallets/${w0.id}/reshare`, { to: nodes, threshold: 3 });
      assert.equal(grown.status, 200, JSON.stringify(grown.body));
      const w1 = grown.body;
      assert.equal(w1.publicKey, w0.publicKey);
      assert.equal(w1.address, w0.address);
      assert.equal(w1.threshold, 3);
      assert.equal(w1.signers, 5);
      assert.equal(w1.epoch, w0.epoch + 1);
      assert.equal((await signVerified(w1)).length, 3);

      const moved = nodes.slice(2); // node 3 stays; 4 and 5 came in the last step; 1 and 2 leave
      const shrunk = await A('POST', `/v1/wallets/${w0.id}/reshare`, { to: moved, threshold: 2 });
      assert.equal(shrunk.status, 200, JSON.stringify(shrunk.body));
      const w2 = shrunk.body;
      assert.equal(w2.address, w0.address);
      assert.deepEqual(w2.participants.map((p: { nodeId: string }) => p.nodeId), moved);
      for (let i = 0; i < 3; i++) for (const s of await signVerified(w2)) assert.ok(moved.includes(s), `signer ${s} is in the new committee`);

      // A node that left holds nothing of the wallet: its share and epoch are gone, it refuses to take part.
      for (const gone of nodes.slice(0, 2)) {
        const r = await call(nodeUrl(gone), token, 'POST', '/v1/nonces', { walletId: w0.id, epoch: w1.epoch, count: 1 });
        assert.equal(r.status, 404, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'not_found');
      }
      // A holder still in the committee refuses the old epoch.
      const stale = await call(nodeUrl(nodes[2]), token, 'POST', '/v1/nonces', { walletId: w0.id, epoch: w1.epoch, count: 1 });
      assert.equal(stale.body.error?.code, 'protocol_state', JSON.stringify(stale.body));
    });
  });
}

describe('custody state travels with the shares', () => {
  test('a wholly new committee starts from the old counters and documents: a cap 60% used stops at exactly 100%; a revoked grant stays refused', { timeout: 300_000 }, async () => {
    const LAMPORTS = 1_000_000_000n;
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    const policy = { version: 1, assets: SOL_ASSETS, counters: 'strict', rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: '1000000000', window: '24h' }] };
    assert.equal((await publish(c, { kind: 'policy', walletId: w.id, version: 1, policy, issuedAt: Date.now() })).status, 200);
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const revoked = await grant(c, agent, [w.id]);
    assert.equal((await publish(c, { kind: 'revocation', grantId: revoked, issuedAt: Date.now() })).status, 200);
    let salt = 0;
    const pay = (lamports: bigint): Payload => ({ kind: 'solana_transaction', data: solTransfer(w.address, lamports, SOL_DEST, ++salt), opts: { network: 'mainnet-beta' } });
    const ask = async (lamports: bigint, grantId = g) => A('POST', '/v1/requests', request(agent, grantId, w.id, pay(lamports)));
    for (const part of [3n, 3n]) assert.equal((await ask((LAMPORTS * part) / 10n)).body.status, 'signed'); // 60% of the window

    // Every old holder leaves: the new holders never saw a request of this wallet.
    const to = nodes.slice(3);
    const moved = await A('POST', `/v1/wallets/${w.id}/reshare`, { to, threshold: 2 });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.address, w.address);
    // A new holder asked directly (as a compromised server could) counts the old 60%: 50% more is over the cap.
    const over = pay(LAMPORTS / 2n);
    const q = request(agent, g, w.id, over);
    const message = bytesToHex(decode(over.kind, over.data, { from: w.address }).signingPayloads[0]);
    for (const n of to) {
      const r = await call(nodeUrl(n), token, 'POST', '/v1/reserve', { requestId: q.request.requestId, walletId: w.id, epoch: moved.body.epoch, message, auth: { agent: q } });
      assert.equal(r.body.error?.code, 'limit_exceeded', `${n}: ${JSON.stringify(r.body)}`);
    }
    // Through the server: up to exactly 100%, then not one lamport more; the revoked grant stays refused.
    assert.equal((await ask((LAMPORTS * 3n) / 10n)).body.status, 'signed');
    assert.equal((await ask(LAMPORTS / 10n)).body.status, 'signed');
    const last = await ask(1n);
    assert.equal(last.body.error?.code ?? last.body.code, 'limit_exceeded', JSON.stringify(last.body));
    const rev = await ask(1n, revoked);
    assert.equal(rev.body.error?.code ?? rev.body.code, 'grant_revoked', JSON.stringify(rev.body));
    for (const n of to) {
      const res = await fetchAny(nodeUrl(n) + '/v1/audit', { headers: { authorization: `Bearer ${token}` } });
      const got = (await res.text()).split('\n').filter(Boolean).map((x) => JSON.parse(x)).find((e) => e.outcome === 'custody_received' && e.data?.walletId === w.id);
      assert.ok(got, `${n} logged what it received`);
      assert.equal(got.data.requests, 2, `${n} took both counted requests`);
    }
  });
});

describe('bad input: clear errors, nothing half-done', () => {
  test('unknown node, threshold above n, overlapping jobs', { timeout: 300_000 }, async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    const same = async () => {
      const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
      assert.equal(now.epoch, w.epoch);
      assert.deepEqual(now.participants, w.participants);
    };
    let r = await A('POST', `/v1/wallets/${w.id}/reshare`, { to: [nodes[0], nodes[1], 'node_doesnotexist'] });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'unknown_node');
    await same();
    r = await A('POST', `/v1/wallets/${w.id}/reshare`, { to: nodes.slice(0, 3), threshold: 4 });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'validation_failed');
    await same();
    r = await A('POST', `/v1/wallets/${w.id}/reshare`, { to: [nodes[0], nodes[0], nodes[1]] });
    assert.equal(r.body.error.code, 'validation_failed');
    r = await A('POST', `/v1/wallets/${w.id}.7/reshare`, { to: nodes.slice(0, 3) });
    assert.equal(r.body.error.code, 'validation_failed', 'a derived wallet follows its root');
    await same();
    // Two reshares of one wallet at once: one runs, the other is refused at once.
    const [a, b] = await Promise.all([A('POST', `/v1/wallets/${w.id}/reshare`, { to: nodes.slice(1, 4) }), A('POST', `/v1/wallets/${w.id}/reshare`, { to: nodes.slice(2, 5) })]);
    const codes = [a, b].map((x) => x.status).sort();
    assert.deepEqual(codes, [200, 409], JSON.stringify([a.body, b.body]));
    const done = (await A('GET', `/v1/wallets/${w.id}`)).body;
    assert.equal(done.epoch, w.epoch + 1);
    await signVerified(done);
  });
});
