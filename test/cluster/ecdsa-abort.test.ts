/**
 * DKLs23 aborts can leak a bit of a node's long-lived pairwise OT state to the peer that caused
 * them (src/crypto/dkls23/README.md). A signer therefore stops signing a wallet with a peer that an
 * abort was blamed on, until the wallet is refreshed; the server keeps that pair apart and signs with
 * another (it cannot tell which of the two is at fault, so it quarantines neither).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { corruptPairwiseDelta } from '../helpers/dkls23-state.ts';

describe('threshold ECDSA: a peer that caused an abort is not signed with until refresh', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  before(async () => {
    c = await startCluster(3);
  });
  after(async () => c?.stop());

  test('corrupted pairwise OT state on signer-2: named, banned by its peer, signing goes on without it', async () => {
    const A = api(c);
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) })).status, 200);
    // Signer-2's OT-extension secret towards signer-1 (Δ) is corrupted at rest.
    await corruptPairwiseDelta(c, 'signer-2', w.id, 1);
    const [n1, n2] = [c.info.signers[0].nodeId, c.info.signers[1].nodeId];

    // The check that fails is the one signer-2 makes with its bad Δ on signer-1's message: a node
    // cannot tell its own corrupted state from a cheating peer, so the abort names one of the pair.
    // That is an accusation, not evidence: the server keeps the pair apart, quarantines nobody, and
    // signs with another pair at once.
    const after = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) });
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.ok(!(after.body.signers.includes(n1) && after.body.signers.includes(n2)), JSON.stringify(after.body.signers));
    const res = await fetch(c.info.url + '/v1/audit?checkpoint=false', { headers: { authorization: `Bearer ${c.info.token}` } });
    const accusations = (await res.text()).split('\n').filter(Boolean).map((x) => JSON.parse(x)).filter((e) => e.outcome === 'accusation' && e.data.walletId === w.id);
    assert.equal(accusations.length, 1, JSON.stringify(accusations));
    const { culprit, reportedBy } = accusations[0].data;
    assert.deepEqual([culprit, reportedBy].sort(), [n1, n2].sort());
    const nodes = (await A('GET', '/v1/nodes')).body as { id: string; status: string }[];
    assert.deepEqual(nodes.map((n) => n.status), ['up', 'up', 'up'], 'nobody is quarantined on an accusation');

    // The reporting node itself now refuses a session with the named peer for this wallet, whoever asks.
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    const reporter = c.info.signers.findIndex((s) => s.nodeId === reportedBy);
    const r = await call(c.info.signers[reporter].url, token, 'POST', '/v1/sessions', { session: 'ses_after_abort_1', kind: 'sign', walletId: w.id, scheme: w.scheme, threshold: 2, participants: w.participants, epoch: 0, signers: [1, 2], messageHash: bytesToHex(randomBytes(32)) });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.details.bannedPeer, culprit);

    // A fresh server (nothing kept apart in memory) learns the ban from the reporter and routes around the pair.
    await c.restart('server');
    const ok = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.ok(!(ok.body.signers.includes(n1) && ok.body.signers.includes(n2)), JSON.stringify(ok.body.signers));
  });
});
