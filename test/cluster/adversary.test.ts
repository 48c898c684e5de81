/**
 * A compromised server talks to real signer processes directly (it has the cluster token, as the
 * real server does). It can relay, drop, replay, reorder and alter messages, and re-send nonce
 * ids; it must not get a signer to accept a forged or misplaced message, or to use a nonce twice,
 * even when signers are SIGKILLed at random points.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { ownerSign } from '../helpers/agent.ts';

describe('compromised server vs signer nodes', () => {
  let c: LocalCluster;
  let token: string;
  let nodes: { nodeId: string; url: string }[];
  const S = (i: number, method: string, path: string, body?: unknown) => call(nodes[i].url, token, method, path, body);
  /** The owner's authorization to sign `message` (hex): these tests are about nonces, not policy. */
  const authorizations = new Map<string, unknown>();
  const owner = (walletId: string, requestId: string, message: string) => {
    // One document per request id: a request id names one request (its digest) for good.
    const key = `${walletId}/${requestId}/${message}`;
    const now = Date.now();
    if (!authorizations.has(key)) authorizations.set(key, { owner: ownerSign(c, { kind: 'sign', walletId, requestId, payload: { kind: 'raw_message', data: message }, issuedAt: now, expiresAt: now + 600_000 }) });
    return authorizations.get(key);
  };

  before(async () => {
    c = await startCluster(3);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    nodes = c.info.signers;
  });
  after(async () => c?.stop());

  const participants = () => nodes.map((n, i) => ({ index: i + 1, nodeId: n.nodeId }));
  const start = async (session: string, _name: string) => {
    // A key generation needs the owner's wallet_create order for a fresh wallet id (test/cluster/wallet-create.test.ts).
    const walletId = `wal_${bytesToHex(randomBytes(12))}`;
    const now = Date.now();
    const create = ownerSign(c, { kind: 'wallet_create', walletId, scheme: 'ed25519', threshold: 2, holders: nodes.map((n) => n.nodeId), network: 'mainnet-beta', issuedAt: now, expiresAt: now + 600_000 });
    const out = await Promise.all(nodes.map((_, i) => S(i, 'POST', '/v1/sessions', { session, kind: 'dkg', walletId, scheme: 'ed25519', threshold: 2, participants: participants(), epoch: 0, create })));
    for (const o of out) assert.equal(o.status, 200, JSON.stringify(o.body));
    return out.map((o) => o.body.messages as any[]);
  };
  const inbox = (msgs: any[][], i: number) => msgs.flat().filter((e) => e.from !== nodes[i].nodeId && (e.to === undefined || e.to === nodes[i].nodeId));

  test('tampered, replayed, cross-session and misaddressed protocol messages are refused with stable codes', async () => {
    const r1 = await start('ses_adversary_a', 'wal_adv_a');
    const other = await start('ses_adversary_b', 'wal_adv_b');
    // Tampered broadcast body: the sender's signature no longer matches.
    const tampered = structuredClone(inbox(r1, 0));
    tampered[0].body.commitment[0] = tampered[0].body.commitment[0].replace(/^../, (b: string) => (b === '00' ? '01' : '00'));
    let r = await S(0, 'POST', '/v1/sessions/ses_adversary_a/round', { round: 1, messages: tampered });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'bad_signature');
    assert.equal(r.body.error.details.from, tampered[0].from);
    // A session that saw a bad message is closed: nothing more is accepted for it.
    r = await S(0, 'POST', '/v1/sessions/ses_adversary_a/round', { round: 1, messages: inbox(r1, 0) });
    assert.equal(r.status, 404);
    // A message from another session (validly signed, but bound to that session).
    r = await S(1, 'POST', '/v1/sessions/ses_adversary_a/round', { round: 1, messages: [...inbox(r1, 1).slice(1), inbox(other, 1)[0]] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'wrong_session');
    // Fresh session: deliver honestly, then replay the same round.
    const r3 = await start('ses_adversary_c', 'wal_adv_c');
    r = await S(2, 'POST', '/v1/sessions/ses_adversary_c/round', { round: 1, messages: inbox(r3, 2) });
    assert.equal(r.status, 200);
    const round2 = r.body.messages;
    r = await S(2, 'POST', '/v1/sessions/ses_adversary_c/round', { round: 1, messages: inbox(r3, 2) });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'replayed_message');
    // A direct message meant for node 2 (index 2) delivered to node 1: refused, not decrypted.
    const r4 = await start('ses_adversary_d', 'wal_adv_d');
    const answers = await Promise.all(nodes.map((_, i) => S(i, 'POST', '/v1/sessions/ses_adversary_d/round', { round: 1, messages: inbox(r4, i) })));
    const toNode1 = answers[2].body.messages.find((e: any) => e.to === nodes[1].nodeId);
    const good0 = inbox([answers.map((a) => a.body.messages).flat()], 0).filter((e) => e.from !== nodes[2].nodeId);
    r = await S(0, 'POST', '/v1/sessions/ses_adversary_d/round', { round: 2, messages: [...good0, toNode1] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'wrong_session');
    // Duplicate: the same broadcast twice in one round.
    const r5 = await start('ses_adversary_e', 'wal_adv_e');
    const dup = inbox(r5, 0);
    r = await S(0, 'POST', '/v1/sessions/ses_adversary_e/round', { round: 1, messages: [...dup, dup[0]] });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'replayed_message');
    assert.ok(round2.length > 0);
  });

  test('without the cluster token a signer refuses everything but /healthz and /v1/identity', async () => {
    assert.equal((await call(nodes[0].url, undefined, 'POST', '/v1/nonces', { walletId: 'x', epoch: 0, count: 1 })).status, 401);
    assert.equal((await call(nodes[0].url, 'wrong', 'POST', '/v1/sign', {})).status, 401);
    assert.equal((await call(nodes[0].url, undefined, 'GET', '/healthz')).status, 200);
  });

  test('a nonce is used once: re-sent, unknown, or misstated nonces give no signature share', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const n1 = (await S(0, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 2 })).body;
    const n2 = (await S(1, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const commitments = { [n1.index]: { hiding: n1.commitments[0].hiding, binding: n1.commitments[0].binding }, [n2.index]: { hiding: n2.commitments[0].hiding, binding: n2.commitments[0].binding } };
    const req = (i: number, nonceId: string, message: string) => S(i, 'POST', '/v1/sign', { requestId: `request1-${message}`, walletId: w.id, epoch: 0, message, nonceId, commitments, auth: owner(w.id, `request1-${message}`, message) });
    let r = await req(0, n1.commitments[0].id, '00');
    assert.equal(r.status, 200);
    r = await req(0, n1.commitments[0].id, '01');
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'nonce_consumed');
    r = await req(0, 'non_doesnotexist', '00');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'nonce_unknown');
    // The server lists a different commitment for the signer's own nonce: refused, and burnt.
    const lying = { ...commitments, [n1.index]: { hiding: n2.commitments[0].hiding, binding: n2.commitments[0].binding } };
    r = await S(0, 'POST', '/v1/sign', { requestId: 'r2-00000', walletId: w.id, epoch: 0, message: '00', nonceId: n1.commitments[1].id, commitments: lying, auth: owner(w.id, 'r2-00000', '00') });
    assert.equal(r.status, 400);
    r = await S(0, 'POST', '/v1/sign', { requestId: 'r3-00000', walletId: w.id, epoch: 0, message: '00', nonceId: n1.commitments[1].id, commitments, auth: owner(w.id, 'r3-00000', '00') });
    assert.equal(r.body.error.code, 'nonce_consumed');
  });

  test('SIGKILL at random points while signing, many times: no nonce is ever used twice', async (t) => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const used = new Map<string, string>(); // node:commitment -> request that used it
    const issued: { i: number; id: string }[] = [];
    let complete = 0;
    let kills = 0;
    for (let round = 0; round < 9; round++) {
      const pair = round % 3 === 0 ? [0, 1] : round % 3 === 1 ? [1, 2] : [0, 2];
      const got = await Promise.all(pair.map((i) => S(i, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })));
      if (got.some((g) => g.status !== 200)) continue;
      const commitments: Record<number, any> = {};
      got.forEach((g) => (commitments[g.body.index] = { hiding: g.body.commitments[0].hiding, binding: g.body.commitments[0].binding }));
      pair.forEach((i, k) => issued.push({ i, id: got[k].body.commitments[0].id }));
      const message = bytesToHex(randomBytes(32));
      const victim = pair[round % 2];
      const delay = Math.floor(Math.random() * 12); // kill before, during or after the signer's work
      const killing = new Promise((r) => setTimeout(r, delay)).then(async () => {
        await c.kill(`signer-${victim + 1}`);
        kills++;
      });
      const answers = await Promise.all(pair.map((i, k) => S(i, 'POST', '/v1/sign', { requestId: `crash-round-${round}`, walletId: w.id, epoch: 0, message, nonceId: got[k].body.commitments[0].id, commitments, auth: owner(w.id, `crash-round-${round}`, message) }).catch(() => undefined)));
      await killing;
      answers.forEach((a, k) => {
        if (a?.status !== 200) return;
        const key = `${pair[k]}:${JSON.stringify(commitments[got[k].body.index])}`;
        assert.ok(!used.has(key), `nonce commitment ${key} used twice`);
        used.set(key, `crash-round-${round}`);
      });
      if (answers.every((a) => a?.status === 200)) complete++;
      await c.restart(`signer-${victim + 1}`);
      // After the restart, every nonce id handed out so far is either consumed or still unused,
      // never usable twice: re-sending each one for signing must not return a second share.
      for (const { i, id } of issued.filter((x) => x.i === victim)) {
        const again = await S(i, 'POST', '/v1/sign', { requestId: `replay-round-${round}`, walletId: w.id, epoch: 0, message: '00', nonceId: id, commitments, auth: owner(w.id, `replay-round-${round}`, '00') });
        if (again.status === 200) {
          const key = `${i}:${JSON.stringify(commitments[again.body.index])}`;
          assert.ok(!used.has(key), 'a nonce that produced a share produced a second one');
          used.set(key, `replay-round-${round}`);
        } else assert.ok(['nonce_consumed', 'validation_failed'].includes(again.body.error.code), JSON.stringify(again.body));
      }
    }
    assert.ok(kills >= 9);
    assert.ok(used.size > 0, 'some signature shares were produced, so the check above checked something');
    t.diagnostic(`${kills} kills, ${used.size} signature shares emitted, ${complete} rounds with every share`);
    // The cluster still signs correctly afterwards.
    const msg = randomBytes(32);
    const s = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.ok(ed25519.verify(hexToBytes(s.body.signature), msg, hexToBytes(w.publicKey)));
  });
});
