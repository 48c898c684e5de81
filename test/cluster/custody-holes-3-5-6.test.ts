/**
 * Issue 15, items 3, 5 and 6, against a real cluster (3 signer processes, 2-of-3), with the test
 * acting as a compromised server where the attack needs one: it calls signer nodes directly with
 * the cluster token.
 *
 * 3. A stalled DKLs23 session must not let a request's reservation lapse and the limit's room be
 *    spent twice (the clock of every process is moved ahead with test/helpers/clock-shift.mjs).
 * 5. A consumed FROST nonce restored in the signer's database (row put back, consumed row deleted)
 *    must be refused: the node's nonce ledger in its data dir says it is spent.
 * 6. An approver's signed reject, once posted, stops the request at every signer even when a
 *    compromised server withholds it and hands the signers only M approvals.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { parseEther, serializeTransaction } from 'viem';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { decode } from '../../src/chains/index.ts';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { signApproval, type Payload } from '../../src/control/index.ts';
import type { Envelope } from '../../src/signer/envelope.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, ownerSign, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

const CLOCK_SHIFT = resolve(fileURLToPath(import.meta.url), '../../helpers/clock-shift.mjs');
const ETH_TO = '0x2222222222222222222222222222222222222222';
const ethTx = (value: bigint, nonce = 0) => serializeTransaction({ type: 'eip1559', chainId: 8453, nonce, to: ETH_TO, value, gas: 21000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n });

describe('issue 15: stalled sessions, rolled-back nonces, withheld rejections (3 signer processes, 2-of-3)', { timeout: 900_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let token: string;
  const clockFile = join(mkdtempSync(join(tmpdir(), 'fk-clock-')), 'offset');
  /** Moves every cluster process's clock `ms` ahead of real time (and waits until they re-read it). */
  const setClock = async (ms: number) => {
    writeFileSync(clockFile, String(ms));
    await new Promise((r) => setTimeout(r, 200));
  };
  const signerCall = (i: number, method: string, path: string, body?: unknown) => call(c.info.signers[i].url, token, method, path, body);

  async function newWallet(scheme: string): Promise<{ id: string; address: string; publicKey: string; participants: { index: number; nodeId: string }[] }> {
    const w = await A('POST', '/v1/wallets', { scheme, threshold: 2, signers: 3 });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    return (await A('GET', `/v1/wallets/${w.body.id}`)).body;
  }
  async function setPolicy(walletId: string, policy: { version: number }) {
    const r = await publish(c, { kind: 'policy', walletId, version: policy.version, policy, issuedAt: Date.now() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.delivered.length, 3, 'every signer has the policy');
  }

  before(async () => {
    writeFileSync(clockFile, '0');
    const saved = { opts: process.env.NODE_OPTIONS, file: process.env.FLEETKEY_TEST_CLOCK_FILE };
    process.env.NODE_OPTIONS = `${saved.opts ?? ''} --import ${CLOCK_SHIFT}`.trim();
    process.env.FLEETKEY_TEST_CLOCK_FILE = clockFile;
    try {
      c = await startCluster(3);
    } finally {
      if (saved.opts === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved.opts;
      if (saved.file === undefined) delete process.env.FLEETKEY_TEST_CLOCK_FILE;
      else process.env.FLEETKEY_TEST_CLOCK_FILE = saved.file;
    }
    A = api(c);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
  });
  after(async () => c?.stop());

  test('item 3: a DKLs23 session stalled past the old reservation ttl cannot spend a per-signer limit twice', async () => {
    const w = await newWallet('ecdsa-secp256k1');
    // Per-signer counters: each node's own cap is the guarantee under test (strict counters commit at /v1/reserve).
    await setPolicy(w.id, {
      version: 1,
      counters: 'per-signer',
      assets: { ETH: { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 } },
      rules: [{ type: 'allow', chainIds: ['8453'], to: [ETH_TO] }, { type: 'window_cap', asset: 'ETH', max: parseEther('0.1').toString(), window: '24h' }],
    } as never);
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);

    // Request A takes the whole cap. The compromised server opens its session at signers 1 and 2 and stalls it.
    const pA: Payload = { kind: 'evm_transaction', data: ethTx(parseEther('0.1'), 1), opts: { chainId: 8453 } };
    const qA = request(agent, g, w.id, pA, { ttlMs: 600_000 });
    const hashA = decode(pA.kind, pA.data, { from: w.address, chainId: 8453 }).signingPayloads[0];
    const session = 'ses_stalled_item3';
    const start = { session, kind: 'sign', walletId: w.id, scheme: 'ecdsa-secp256k1', threshold: 2, participants: w.participants, epoch: 0, signers: [1, 2], messageHash: bytesToHex(hashA), auth: { agent: qA } };
    let answers = await Promise.all([0, 1].map((i) => signerCall(i, 'POST', '/v1/sessions', start)));
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));

    // Three minutes pass (past the old 2-minute reservation ttl, within the 5-minute session ttl).
    await setClock(3 * 60_000);
    try {
      // Request B, same amount, through the server as usual.
      const qB = request(agent, g, w.id, { kind: 'evm_transaction', data: ethTx(parseEther('0.1'), 2), opts: { chainId: 8453 } }, { ttlMs: 600_000 });
      const b = await A('POST', '/v1/requests', qB);
      // Then the stalled session is delivered to the end.
      const nodes = [0, 1].map((i) => c.info.signers[i].nodeId);
      let aSigned: { signature: string; v: number } | undefined;
      let aError: string | undefined;
      for (let round = 1; round <= 8 && !aSigned && !aError; round++) {
        const sent = answers.flatMap((x) => x.body.messages as Envelope[]);
        answers = await Promise.all(
          [0, 1].map((i) => signerCall(i, 'POST', `/v1/sessions/${session}/round`, { round, messages: sent.filter((e) => e.from !== nodes[i] && (e.to === undefined || e.to === nodes[i])) })),
        );
        const bad = answers.find((x) => x.status !== 200);
        if (bad) aError = bad.body.error.code;
        else if (answers.every((x) => x.body.result)) aSigned = answers[0].body.result.body;
      }
      // At most one of the two (0.1 ETH each) may be signed under a 0.1 ETH cap per signer.
      const bSigned = b.status === 200;
      assert.ok(!(bSigned && aSigned), `both requests were signed under one cap (B: ${b.status}, A: ${aError ?? 'signed'})`);
      if (!bSigned) assert.equal(b.body.error.code, 'limit_exceeded', JSON.stringify(b.body));
      // Here the stalled reservation still holds, so A completes and its signature is the wallet's.
      assert.ok(aSigned, `A: ${aError}`);
      const recovered = secp256k1.Signature.fromBytes(hexToBytes(aSigned!.signature), 'compact').addRecoveryBit(aSigned!.v).recoverPublicKey(hashA).toBytes(true);
      assert.equal(bytesToHex(recovered), w.publicKey);
    } finally {
      await setClock(0);
    }
  });
  test('item 6: a posted reject stops the request at every signer, even when the server withholds it; a signer that was down gets it when back', async () => {
    const w = await newWallet('ed25519');
    await setPolicy(w.id, {
      version: 1,
      assets: SOL_ASSETS,
      rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'big', type: 'require_approval', asset: 'SOL', above: '100000000', m: 2, approvers: ['alice', 'bob', 'carol'] }],
    } as never);
    const keys = { alice: ed25519.utils.randomSecretKey(), bob: ed25519.utils.randomSecretKey(), carol: ed25519.utils.randomSecretKey() };
    const registry = Object.fromEntries(Object.entries(keys).map(([n, k]) => [n, { keyType: 'ed25519' as const, publicKey: bytesToHex(ed25519.getPublicKey(k)) }]));
    assert.equal((await publish(c, { kind: 'approvers', version: 1, approvers: registry, issuedAt: Date.now() })).status, 200);
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const payload = (salt: number): Payload => ({ kind: 'solana_transaction', data: solTransfer(w.address, 200_000_000n, SOL_DEST, salt), opts: { network: 'mainnet-beta' } });
    const decision = (digest: string, who: keyof typeof keys, d: 'approve' | 'reject') => signApproval({ kind: 'approval', requestDigest: digest, decision: d, approver: who, issuedAt: Date.now() }, keys[who], 'ed25519');
    /** What a compromised server does: asks signer `i` for its share directly, handing it only the approvals it chooses. */
    const signDirect = async (i: number, q: ReturnType<typeof request>, approvals: unknown[]) => {
      const mine = (await signerCall(i, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
      const j = (i + 1) % 3;
      const other = (await signerCall(j, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
      const p = q.request.payload;
      const message = bytesToHex(decode(p.kind, p.data, { from: w.address, network: 'mainnet-beta' }).signingPayloads[0]);
      const pick = (x: { hiding: string; binding: string }) => ({ hiding: x.hiding, binding: x.binding });
      return signerCall(i, 'POST', '/v1/sign', {
        requestId: q.request.requestId, walletId: w.id, epoch: 0, message, nonceId: mine.commitments[0].id,
        commitments: { [mine.index]: pick(mine.commitments[0]), [other.index]: pick(other.commitments[0]) }, auth: { agent: q, approvals },
      });
    };

    // Control: a request bob and carol approved gets a share from every signer when the server hands their approvals over.
    const fine = request(agent, g, w.id, payload(11), { ttlMs: 600_000 });
    const fq = await A('POST', '/v1/requests', fine);
    assert.equal(fq.status, 202, JSON.stringify(fq.body));
    for (const i of [0, 1, 2]) {
      const r = await signDirect(i, fine, [decision(fq.body.requestDigest, 'bob', 'approve'), decision(fq.body.requestDigest, 'carol', 'approve')]);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.share);
    }

    // Alice rejects the next one through the server while signer 3 is down.
    const rej = request(agent, g, w.id, payload(12), { ttlMs: 600_000 });
    const rq = await A('POST', '/v1/requests', rej);
    assert.equal(rq.status, 202, JSON.stringify(rq.body));
    await c.kill('signer-3');
    try {
      const r = await A('POST', `/v1/approvals/${rej.request.requestId}`, decision(rq.body.requestDigest, 'alice', 'reject'));
      assert.equal(r.body.status, 'rejected', JSON.stringify(r.body));
    } finally {
      await c.restart('signer-3');
    }
    // The compromised server leaves the reject out and hands over bob's and carol's approvals.
    const withheld = [decision(rq.body.requestDigest, 'bob', 'approve'), decision(rq.body.requestDigest, 'carol', 'approve')];
    for (const i of [0, 1]) {
      const r = await signDirect(i, rej, withheld);
      assert.equal(r.body.error?.code, 'approval_rejected', JSON.stringify(r.body));
    }
    // Signer 3 was down when the reject was posted: the server owes it the decision and delivers it once it is back.
    let third: { body: { error?: { code: string } } } | undefined;
    for (let k = 0; k < 60; k++) {
      third = await signDirect(2, rej, withheld);
      if (third.body.error?.code === 'approval_rejected') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(third!.body.error?.code, 'approval_rejected', JSON.stringify(third!.body));
  });
  test('item 5: a used nonce put back in a signer process\'s database (its consumed row deleted) is refused, also after a SIGKILL and restart', async () => {
    const w = await newWallet('ed25519');
    let salt = 40;
    /** A fresh owner-authorized transfer; signer `i` asked for its share with nonce `nonce` (and a co-signer's commitment). */
    const signWith = async (i: number, nonce: { id: string; hiding: string; binding: string }, index: number) => {
      const payload: Payload = { kind: 'solana_transaction', data: solTransfer(w.address, 1000n, SOL_DEST, ++salt), opts: { network: 'mainnet-beta' } };
      const now = Date.now();
      const requestId = `nonce-rollback-${salt}`;
      const auth = { owner: ownerSign(c, { kind: 'sign', walletId: w.id, requestId, payload, issuedAt: now, expiresAt: now + 120_000 }) };
      const other = (await signerCall((i + 1) % 3, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
      const message = bytesToHex(decode(payload.kind, payload.data, { from: w.address, network: 'mainnet-beta' }).signingPayloads[0]);
      return signerCall(i, 'POST', '/v1/sign', {
        requestId, walletId: w.id, epoch: 0, message, nonceId: nonce.id, auth,
        commitments: { [index]: { hiding: nonce.hiding, binding: nonce.binding }, [other.index]: { hiding: other.commitments[0].hiding, binding: other.commitments[0].binding } },
      });
    };
    const made = (await signerCall(0, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 2 })).body;
    const [n1, n2] = made.commitments;
    // Someone with write access to signer 1's database (not to its data dir's KEK or ledger).
    const db = new Database(join(c.dataDir, 'signer-1', 'signer.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const saved = db.prepare('SELECT * FROM nonces WHERE id = ?').get(n1.id) as Record<string, unknown>;
      assert.ok(saved);
      const restore = () => {
        const cols = Object.keys(saved);
        db.prepare('DELETE FROM consumed_nonces WHERE id = ?').run(n1.id);
        db.prepare(`INSERT INTO nonces (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((k) => saved[k]));
      };
      const first = await signWith(0, n1, made.index);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      restore();
      const second = await signWith(0, n1, made.index);
      assert.equal(second.body.error?.code, 'nonce_consumed', `a second share from one nonce: ${JSON.stringify(second.body)}`);
      await c.kill('signer-1');
      await c.restart('signer-1');
      restore();
      const third = await signWith(0, n1, made.index);
      assert.equal(third.body.error?.code, 'nonce_consumed', JSON.stringify(third.body));
      // The node still signs with its other nonce.
      const fresh = await signWith(0, n2, made.index);
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    } finally {
      db.close();
    }
  });
});
