/**
 * Issue 16 at the signer nodes, against real signer processes. A compromised server (it has the
 * cluster token, like the real one) chooses DKLs23 session ids and can open sessions at will:
 *  - a session id is used once, ever: a replay is refused with `session_reused`, also after a restart;
 *  - a node runs at most one signing per peer pair and wallet at a time (`session_busy`), so a
 *    cheating peer cannot probe its long-lived OT secret through many concurrent sessions;
 *  - after an abort blamed on a peer, no session with it starts (durably) until the wallet is refreshed;
 *  - and ordinary concurrent ECDSA signing through the server still works (the coordinator schedules
 *    around pairs in flight).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { corruptPairwiseDelta } from '../helpers/dkls23-state.ts';
import { ownerSign } from '../helpers/agent.ts';

describe('threshold ECDSA sessions: ids used once, one signing per peer pair, ban on abort until refresh', { timeout: 900_000 }, () => {
  let c: LocalCluster;
  let token: string;
  let nodes: { nodeId: string; url: string }[];
  const S = (i: number, method: string, path: string, body?: unknown) => call(nodes[i].url, token, method, path, body);
  before(async () => {
    c = await startCluster(3);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    nodes = c.info.signers;
  });
  after(async () => c?.stop());

  /** A sign-session start as the server would send it, with a fresh owner authorization of a random hash. */
  const start = (w: any, session: string, signers: number[]) => {
    const hash = bytesToHex(randomBytes(32));
    const now = Date.now();
    const auth = { owner: ownerSign(c, { kind: 'sign', walletId: w.id, requestId: `req_${bytesToHex(randomBytes(8))}`, payload: { kind: 'raw_hash', data: hash }, issuedAt: now, expiresAt: now + 600_000 }) };
    return { session, kind: 'sign', walletId: w.id, scheme: w.scheme, threshold: w.threshold, participants: w.participants, epoch: w.epoch, signers, messageHash: hash, auth };
  };
  const sid = (tag: string) => `ses_${tag}_${bytesToHex(randomBytes(6))}`;

  test('a replayed session id is refused with session_reused, also after the node restarts', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    const id = sid('replay');
    const first = await S(2, 'POST', '/v1/sessions', start(w, id, [1, 3]));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // After a restart nothing of the session is left in memory; its id is still used up.
    await c.restart('signer-3');
    for (const signers of [[1, 3], [2, 3]]) {
      const r = await S(2, 'POST', '/v1/sessions', start(w, id, signers));
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'session_reused');
    }
    // A fresh id works; it is refused again while open, and after the relay aborts it.
    const fresh = sid('fresh');
    assert.equal((await S(2, 'POST', '/v1/sessions', start(w, fresh, [2, 3]))).status, 200);
    for (const when of ['open', 'aborted']) {
      if (when === 'aborted') assert.equal((await S(2, 'POST', `/v1/sessions/${fresh}/abort`, {})).body.status, 'aborted');
      const r = await S(2, 'POST', '/v1/sessions', start(w, fresh, [2, 3]));
      assert.equal(r.status, 409, `${when}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'session_reused');
    }
  });

  test('concurrent sessions with a peer: one at a time; the peer that makes one abort is banned until refresh', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) })).status, 200);
    const [n1, n2, n3] = nodes.map((n) => n.nodeId);
    // Signer-2's OT-extension secret towards signer-1 (Δ) is corrupted at rest (as in ecdsa-abort.test.ts):
    // from signer-2's side, signer-1's round-1 message then fails the KOS check, i.e. signer-1 "cheats".
    await corruptPairwiseDelta(c, 'signer-2', w.id, 1);

    // Many concurrent sessions at signer-2 with signer-1: exactly one starts, the others are refused.
    const ids = Array.from({ length: 6 }, () => sid('many'));
    const starts = await Promise.all(ids.map((id) => S(1, 'POST', '/v1/sessions', start(w, id, [1, 2]))));
    const ok = starts.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, JSON.stringify(starts.map((r) => r.body?.error?.code ?? r.status)));
    for (const r of starts.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'session_busy');
      assert.equal(r.body.error.details.busyPeer, n1);
    }
    const live = ids[starts.indexOf(ok[0])];
    // A session with another peer is a different pair: it may run alongside.
    const other = sid('other');
    const withThree = await S(1, 'POST', '/v1/sessions', start(w, other, [2, 3]));
    assert.equal(withThree.status, 200, JSON.stringify(withThree.body));

    // Run the live session: signer-1 starts too, and signer-2 gets its round-1 message.
    const s1 = await S(0, 'POST', '/v1/sessions', { ...start(w, live, [1, 2]) });
    assert.equal(s1.status, 200, JSON.stringify(s1.body));
    const toTwo = s1.body.messages.filter((e: any) => e.to === undefined || e.to === n2);
    const abort = await S(1, 'POST', `/v1/sessions/${live}/round`, { round: 1, messages: toTwo });
    assert.equal(abort.status, 400, JSON.stringify(abort.body));
    assert.equal(abort.body.error.code, 'bad_share');
    assert.equal(abort.body.error.details.culprit, n1);
    await S(0, 'POST', `/v1/sessions/${live}/abort`, {});

    // The session with signer-3 was not abandoned (it does not involve the culprit).
    assert.equal((await S(1, 'POST', `/v1/sessions/${other}/abort`, {})).body.status, 'aborted');
    // From now on signer-2 starts no session with signer-1 for this wallet, whoever asks, also after a restart.
    for (const when of ['now', 'after restart']) {
      if (when === 'after restart') await c.restart('signer-2');
      const again = await Promise.all([0, 1, 2].map(() => S(1, 'POST', '/v1/sessions', start(w, sid('banned'), [1, 2]))));
      for (const r of again) {
        assert.equal(r.status, 409, `${when}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'protocol_state');
        assert.equal(r.body.error.details.bannedPeer, n1);
      }
    }
    // The pair with signer-3 still starts.
    const three = sid('three');
    assert.equal((await S(1, 'POST', '/v1/sessions', start(w, three, [2, 3]))).status, 200);
    await S(1, 'POST', `/v1/sessions/${three}/abort`, {});

    // A refresh replaces every pairwise OT secret (and so signer-2's corrupted Δ): the pair signs again.
    const f = await A('POST', `/v1/wallets/${w.id}/refresh`);
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.equal(f.body.epoch, 1);
    const signed = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.deepEqual([...signed.body.signers].sort(), [n1, n2].sort(), 'the first pair signs again after the refresh');
    assert.ok(!signed.body.signers.includes(n3));
  });

  test('concurrent ECDSA signing of one wallet through the server still works (pairs in flight are scheduled around)', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    const hashes = Array.from({ length: 8 }, () => randomBytes(32));
    const res = await Promise.all(hashes.map((h) => A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(h) })));
    res.forEach((r, i) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const sig = hexToBytes(r.body.signature.replace(/^0x/, ''));
      assert.ok(secp256k1.verify(sig.slice(0, 64), hashes[i], hexToBytes(w.publicKey), { prehash: false }));
    });
  });
});
