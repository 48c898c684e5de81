/**
 * Issue 11, step 1 on real processes: a five-node cluster reshares a wallet 2-of-3 -> 3-of-5 -> 2-of-3
 * (the last committee on other machines), for every scheme. After each step the same address signs and
 * the signature is checked with noble's plain verifier; a node that left the committee has no share
 * and no epoch of the wallet any more; bad requests are refused with nothing changed. Each move is
 * the owner's signed order: one the server forged, or none, is refused by every node of the session.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { decode } from '../../src/chains/index.ts';
import { signControlDoc, type Payload, type WalletReshareDoc } from '../../src/control/index.ts';
import { api, call, fetchAny, startCluster, verifySig } from '../helpers/cluster.ts';
import { grant, newAgent, ownerSign, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

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

/** The owner's order to move `walletId` from `epoch` to `holders` with `threshold`. */
function orderDoc(walletId: string, epoch: number, holders: string[], threshold: number, o: Partial<WalletReshareDoc> = {}): WalletReshareDoc {
  const now = Date.now();
  return { kind: 'wallet_reshare', orderId: `rso_${bytesToHex(randomBytes(12))}`, walletId, epoch, threshold, holders, issuedAt: now, expiresAt: now + 600_000, ...o };
}

/** `wallet reshare` as the CLI does it with the owner key: an owner-signed order for the wallet's current epoch. */
async function reshare(walletId: string, to: string[], threshold: number) {
  const w = (await A('GET', `/v1/wallets/${walletId}`)).body;
  return A('POST', `/v1/wallets/${walletId}/reshare`, { order: ownerSign(c, orderDoc(walletId, w.epoch, to, threshold)) });
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

      const grown = await reshare(w0.id, nodes, 3);
      assert.equal(grown.status, 200, JSON.stringify(grown.body));
      const w1 = grown.body;
      assert.equal(w1.publicKey, w0.publicKey);
      assert.equal(w1.address, w0.address);
      assert.equal(w1.threshold, 3);
      assert.equal(w1.signers, 5);
      assert.equal(w1.epoch, w0.epoch + 1);
      assert.equal((await signVerified(w1)).length, 3);

      const moved = nodes.slice(2); // node 3 stays; 4 and 5 came in the last step; 1 and 2 leave
      const shrunk = await reshare(w0.id, moved, 2);
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
    const moved = await reshare(w.id, to, 2);
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

describe('a reshare is the owner\'s order, checked by every dealer and new holder', () => {
  test('none, forged, or for another committee, threshold or epoch, or expired: refused by every node; the owner\'s order moves the wallet once', { timeout: 300_000 }, async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    const pub = (await call(c.info.url, undefined, 'GET', `/v1/public/wallets/${w.id}`)).body.package.public;
    // Nodes 2 and 3 stay and deal, node 4 comes in; node 1 leaves without dealing.
    const to = nodes.slice(1, 4);
    const session = nodes.slice(1, 4);
    /** The start a compromised server sends each node of the session, with `order`. */
    const start = (order: unknown, epoch = w.epoch) => ({
      session: `ses_${bytesToHex(randomBytes(8))}`,
      kind: 'reshare',
      walletId: w.id,
      scheme: 'ed25519',
      threshold: 2,
      participants: to.map((nodeId, i) => ({ index: i + 1, nodeId })),
      epoch,
      reshare: { dealers: [{ index: 2, nodeId: nodes[1] }, { index: 3, nodeId: nodes[2] }], holders: to.map((nodeId, i) => ({ index: i + 1, nodeId })), current: pub },
      ...(order === undefined ? {} : { order }),
    });
    const refusedByAll = async (order: unknown, code: string, what: string, epoch?: number) => {
      const rs = await Promise.all(session.map((n) => call(nodeUrl(n), token, 'POST', '/v1/sessions', start(order, epoch))));
      for (const [i, r] of rs.entries()) assert.equal(r.body?.error?.code, code, `${what}: ${session[i]} answered ${r.status} ${JSON.stringify(r.body)}`);
    };
    const doc = orderDoc(w.id, w.epoch, to, 2);
    await refusedByAll(undefined, 'owner_authorization_required', 'no order');
    await refusedByAll(signControlDoc(doc, ed25519.utils.randomSecretKey()), 'bad_signature', 'signed by a key that is not the owner\'s');
    const good = ownerSign(c, doc);
    await refusedByAll({ ...good, doc: { ...doc, threshold: 3 } }, 'bad_signature', 'altered after signing');
    await refusedByAll(ownerSign(c, orderDoc(w.id, w.epoch, to, 3)), 'forbidden', 'another threshold');
    await refusedByAll(ownerSign(c, orderDoc(w.id, w.epoch, [nodes[1], nodes[2], nodes[4]], 2)), 'forbidden', 'another committee');
    await refusedByAll(ownerSign(c, orderDoc(w.id, w.epoch + 1, to, 2)), 'forbidden', 'another epoch');
    await refusedByAll(ownerSign(c, orderDoc(w.id, w.epoch, to, 2, { issuedAt: Date.now() - 120_000, expiresAt: Date.now() - 1 })), 'request_expired', 'expired');
    // Through the server: a forged order is refused before anything runs; nothing changed.
    const forged = await A('POST', `/v1/wallets/${w.id}/reshare`, { order: signControlDoc(doc, ed25519.utils.randomSecretKey()) });
    assert.equal(forged.body.error?.code, 'bad_signature', JSON.stringify(forged.body));
    const same = (await A('GET', `/v1/wallets/${w.id}`)).body;
    assert.deepEqual([same.epoch, same.participants], [w.epoch, w.participants]);
    // The owner's order moves the wallet.
    const moved = await A('POST', `/v1/wallets/${w.id}/reshare`, { order: good });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.deepEqual(moved.body.participants.map((p: { nodeId: string }) => p.nodeId), to);
    await signVerified(moved.body);
    // Replayed after the move (to move the wallet again): the server and every holder refuse it.
    const again = await A('POST', `/v1/wallets/${w.id}/reshare`, { order: good });
    assert.equal(again.body.error?.code, 'forbidden', JSON.stringify(again.body));
    const movedPub = (await call(c.info.url, undefined, 'GET', `/v1/public/wallets/${w.id}`)).body.package.public;
    const replay = { ...start(good, moved.body.epoch), reshare: { dealers: [{ index: 1, nodeId: nodes[1] }, { index: 2, nodeId: nodes[2] }], holders: to.map((nodeId, i) => ({ index: i + 1, nodeId })), current: movedPub } };
    for (const n of to) {
      const r = await call(nodeUrl(n), token, 'POST', '/v1/sessions', { ...replay, session: `ses_${bytesToHex(randomBytes(8))}` });
      assert.equal(r.body?.error?.code, 'forbidden', `${n}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.details.field, 'epoch');
    }
    // Every node of the move logged the owner's order in its own audit chain.
    for (const n of to) {
      const res = await fetchAny(nodeUrl(n) + '/v1/audit', { headers: { authorization: `Bearer ${token}` } });
      const got = (await res.text()).split('\n').filter(Boolean).map((x) => JSON.parse(x)).filter((e) => e.outcome === 'wallet_reshare_accepted' && e.data?.walletId === w.id);
      assert.deepEqual([...new Set(got.map((e) => e.data.orderId))], [doc.orderId], `${n} accepted only the owner's order`);
    }
    assert.equal((await A('GET', `/v1/wallets/${w.id}`)).body.epoch, w.epoch + 1);
  });
});
