/**
 * Policy before every signature, end to end: real signer processes, real HTTP. Agents sign requests
 * under owner-issued grants; the server pre-checks and reserves; every signer checks the request,
 * the grant and the policy again with its own counters. A compromised server (the cluster token in
 * hand, talking to signers directly) gets no share for anything the owner has not allowed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { recoverTransactionAddress, serializeTransaction, parseEther } from 'viem';
import { decode } from '../../src/chains/index.ts';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { signApproval, signControlDoc, type Payload } from '../../src/control/index.ts';
import { api, call, fetchAny, startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, ownerSign, publish, request, SOL_ASSETS, SOL_DEST, solTransfer, type Agent } from '../helpers/agent.ts';

/** Policy amounts are base units: 1 SOL = 10^9 lamports. */
const LAMPORTS = 1_000_000_000n;
const solPolicy = (extra: unknown[] = [], version = 1) => ({
  version,
  assets: SOL_ASSETS,
  rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'per-tx', type: 'tx_cap', asset: 'SOL', max: '500000000' }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: '1000000000', window: '24h' }, ...extra],
});
const solPayload = (from: string, lamports: bigint, salt = 0, to?: string): Payload => ({ kind: 'solana_transaction', data: solTransfer(from, lamports, to, salt), opts: { network: 'mainnet-beta' } });

describe('policy enforced by every signer (3 signer processes, 2-of-3)', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  const signerCall = (i: number, method: string, path: string, body?: unknown) => call(c.info.signers[i].url, clusterToken(), method, path, body);
  /** A signer's audit chain (JSON lines), as a compromised server could read it. */
  const signerLog = async (i: number) => {
    const res = await fetchAny(c.info.signers[i].url + '/v1/audit', { headers: { authorization: `Bearer ${clusterToken()}` } });
    return (await res.text()).split('\n').filter(Boolean).map((x) => JSON.parse(x));
  };
  let clusterToken: () => string;

  async function newWallet(scheme = 'ed25519'): Promise<{ id: string; address: string; publicKey: string }> {
    const w = await A('POST', '/v1/wallets', { scheme, threshold: 2, signers: 3 });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    return w.body;
  }

  async function setPolicy(walletId: string, policy: unknown) {
    const r = await publish(c, { kind: 'policy', walletId, version: (policy as { version: number }).version, policy, issuedAt: Date.now() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.delivered.length, 3, 'every signer has the policy');
  }

  before(async () => {
    c = await startCluster(3);
    A = api(c);
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    clusterToken = () => token;
  });
  after(async () => c?.stop());

  test('an agent signs a Solana transfer its grant and policy allow; the same request again returns the same answer', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const payload = solPayload(w.address, LAMPORTS / 100n);
    const signed = request(agent, g, w.id, payload);
    const r = await A('POST', '/v1/requests', signed);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'signed');
    const msg = decode('solana_transaction', payload.data, { from: w.address }).signingPayloads[0];
    assert.ok(ed25519.verify(hexToBytes(r.body.signature), msg, hexToBytes(w.publicKey), { zip215: false }), 'the transaction message verifies under the wallet key');
    const again = await A('POST', '/v1/requests', signed);
    assert.equal(again.status, 200);
    assert.equal(again.body.signature, r.body.signature);
    const got = await A('GET', `/v1/requests/${signed.request.requestId}`);
    assert.equal(got.body.status, 'signed');
    // The same new request sent twice at once: one signing, the other waits its turn (in_progress) or
    // gets the same answer; never two signings of it.
    const twin = request(agent, g, w.id, solPayload(w.address, 3n));
    const pair = await Promise.all([A('POST', '/v1/requests', twin), A('POST', '/v1/requests', twin)]);
    const signedTwins = pair.filter((x) => x.status === 200);
    assert.ok(signedTwins.length >= 1, JSON.stringify(pair.map((x) => x.body)));
    for (const x of pair) if (x.status !== 200) assert.deepEqual([x.status, x.body.error?.code], [409, 'in_progress'], JSON.stringify(x.body));
    assert.equal(new Set(signedTwins.map((x) => x.body.signature)).size, 1);
    // The same request id for another request is a conflict.
    const other = request(agent, g, w.id, solPayload(w.address, 2n), { requestId: signed.request.requestId });
    assert.equal((await A('POST', '/v1/requests', other)).body.error.code, 'conflict');
    // Every signer that took part logged the decision with the policy version, in its own chain.
    const logs = await Promise.all([0, 1, 2].map(signerLog));
    const issued = logs.flat().filter((e) => e.outcome === 'share_issued' && e.data.requestId === signed.request.requestId);
    assert.equal(issued.length, 2, 'two signers issued a share, once each');
    assert.equal(logs.flat().filter((e) => e.outcome === 'share_issued' && e.data.requestId === twin.request.requestId).length, 2, 'the twin request was signed once');
    for (const e of issued) assert.equal(e.policyVersion, 1);
  });

  test('agents may not sign raw hashes, or for a wallet outside their grant; a wallet without a policy refuses agents', async () => {
    const w = await newWallet();
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const none = await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1n)));
    assert.equal(none.body.error.code, 'no_policy');
    await setPolicy(w.id, solPolicy());
    const raw = await A('POST', '/v1/requests', request(agent, g, w.id, { kind: 'raw_hash', data: bytesToHex(randomBytes(32)) }));
    assert.equal(raw.status, 403);
    assert.equal(raw.body.error.code, 'raw_signing_forbidden');
    const w2 = await newWallet();
    const outside = await A('POST', '/v1/requests', request(agent, g, w2.id, solPayload(w2.address, 1n)));
    assert.equal(outside.body.error.code, 'wallet_not_in_grant');
    const big = await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, LAMPORTS)));
    assert.equal(big.body.error.code, 'policy_denied');
    assert.deepEqual(big.body.error.details.reasons.map((x: { code: string }) => x.code), ['tx_cap_exceeded']);
  });

  /** Sends `n` requests of 1/100 of the daily cap at once; returns the answers. */
  async function burst(agent: Agent, g: string, w: { id: string; address: string }, n: number, onProgress?: (signed: number) => void) {
    let signedSoFar = 0;
    const reqs = Array.from({ length: n }, (_, i) => request(agent, g, w.id, solPayload(w.address, LAMPORTS / 100n, i)));
    const answers = await Promise.all(
      reqs.map(async (q) => {
        const r = await A('POST', '/v1/requests', q);
        if (r.status === 200) onProgress?.(++signedSoFar);
        return { q, r };
      }),
    );
    return answers;
  }

  /**
   * What an agent does with a 503 (a signer timed out or was down): send the same signed request
   * again. Retrying is safe because a request id is signed or counted once, ever. Returns how many
   * answers needed a retry.
   */
  async function retryUnavailable(t: { diagnostic(m: string): void }, answers: { q: ReturnType<typeof request>; r: { status: number; body: any } }[]): Promise<number> {
    let retried = 0;
    for (let round = 0; round < 10; round++) {
      const failed = answers.filter((a) => a.r.status >= 500);
      if (!failed.length) break;
      retried += failed.length;
      for (const a of failed) a.r = await A('POST', '/v1/requests', a.q);
    }
    t.diagnostic(`${retried} answers were 5xx and retried`);
    return retried;
  }

  /** `{ "429 limit_exceeded": 900, "200": 100 }`: what a failed count assertion prints, so a failure says why. */
  function histogram(answers: { r: { status: number; body: any } }[]): Record<string, number> {
    const h: Record<string, number> = {};
    for (const a of answers) {
      const k = `${a.r.status}${a.r.body?.error?.code ? ` ${a.r.body.error.code}` : ''}`;
      h[k] = (h[k] ?? 0) + 1;
    }
    return h;
  }

  /**
   * How many distinct requests each signer issued shares for. Not the number of shares: when a
   * signing attempt times out under load, the server tries the same request again with fresh nonces,
   * and a signer may issue a second share for a request it has already counted (once).
   */
  function signersCountFor(logs: { outcome?: string; data: { walletId?: string; requestId?: string } }[][], walletId: string): number[] {
    return logs.map((l) => new Set(l.filter((e) => e.outcome === 'share_issued' && e.data.walletId === walletId).map((e) => e.data.requestId)).size);
  }

  test('1,000 concurrent requests of 1/100 of a rolling limit: exactly 100 signed, the rest refused with limit_exceeded', async (t) => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const answers = await burst(agent, g, w, 1000);
    // Under heavy load a signer call can time out (503); the agent sends the same request again.
    await retryUnavailable(t, answers);
    const ok = answers.filter((a) => a.r.status === 200);
    const refused = answers.filter((a) => a.r.status !== 200);
    assert.equal(ok.length, 100, `answers by status and code: ${JSON.stringify(histogram(answers))}`);
    assert.ok(refused.every((a) => a.r.status === 429 && a.r.body.error.code === 'limit_exceeded'), JSON.stringify(refused.find((a) => a.r.body.error?.code !== 'limit_exceeded')?.r.body));
    const sum = ok.reduce((s, a) => s + decode('solana_transaction', a.q.request.payload.data, { from: w.address }).action.effects.reduce((t, e) => t + (e.type === 'transfer' ? e.amount : 0n), 0n), 0n);
    assert.equal(sum, LAMPORTS, 'the sum signed is the limit, not more');
    // Each signer's own counters agree: none took part in more than the limit allows.
    const logs = await Promise.all([0, 1, 2].map(signerLog));
    for (const n of signersCountFor(logs, w.id)) assert.ok(n <= 100, `a signer issued shares for ${n} requests`);
    // A request refused by the server's check is not recorded (404); one that passed it and was refused
    // by the reservation (the limit reached meanwhile: its row rolled back with it) is recorded as
    // failed. None is left half-written (`signing`), and every signed one reads back signed.
    const records = await Promise.all(answers.map((a) => A('GET', `/v1/requests/${a.q.request.requestId}`)));
    const seen: Record<string, number> = {};
    for (const g of records) {
      const k = g.status === 404 ? '404' : `${g.body.status}${g.body.error ? ` ${g.body.error.code}` : ''}`;
      seen[k] = (seen[k] ?? 0) + 1;
    }
    assert.equal(seen.signed, 100, JSON.stringify(seen));
    assert.deepEqual(Object.keys(seen).filter((k) => !['404', 'signed', 'failed limit_exceeded'].includes(k)), [], JSON.stringify(seen));
  });

  test('the same with a signer SIGKILLed in the middle: never more than the limit; retried requests reach exactly 100', async (t) => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    let killed = false;
    const answers = await burst(agent, g, w, 1000, (n) => {
      if (n === 30 && !killed) {
        killed = true;
        c.kill('signer-2');
      }
    });
    assert.ok(killed);
    assert.ok(answers.filter((a) => a.r.status === 200).length <= 100);
    // The policy counts strictly: with a holder down nothing capped is signed (503). Once it is back,
    // agents retry what failed (same request, same id): it is signed or refused, never counted twice.
    await c.restart('signer-2');
    await retryUnavailable(t, answers);
    const refused = answers.filter((a) => a.r.status !== 200);
    assert.ok(refused.every((a) => a.r.body.error?.code === 'limit_exceeded'), JSON.stringify(refused.find((a) => a.r.body.error?.code !== 'limit_exceeded')?.r.body));
    assert.equal(answers.length - refused.length, 100);
  });

  test('a request that failed with a holder down keeps its place in the limit: a newcomer cannot take it, and the retry signs', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const half = LAMPORTS / 2n;
    assert.equal((await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, half, 1)))).status, 200);
    // The last half of the daily limit: signers 1 and 2 count it (strict counters); signer 3 is down, so it fails.
    await c.kill('signer-3');
    const x = request(agent, g, w.id, solPayload(w.address, half, 2));
    const failed = await A('POST', '/v1/requests', x);
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'not_enough_signers');
    await c.restart('signer-3');
    // Another request for the same half: the server still counts the failed one, so it never reaches
    // signer 3 (which has room and would count it for good while the other two refuse it).
    const z = await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, half, 3)));
    assert.equal(z.status, 429, JSON.stringify(z.body));
    assert.equal(z.body.error.code, 'limit_exceeded');
    const retry = await A('POST', '/v1/requests', x);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.status, 'signed');
  });

  test('a compromised server calling signers directly gets no share for anything the owner did not allow', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const revokedGrant = await grant(c, agent, [w.id]);
    assert.equal((await publish(c, { kind: 'revocation', grantId: revokedGrant, issuedAt: Date.now() })).body.delivered.length, 3);
    // Real nonces of signers 1 and 2, so a missing check would really produce a share.
    const n1 = (await signerCall(0, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const n2 = (await signerCall(1, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const commitments = { [n1.index]: { hiding: n1.commitments[0].hiding, binding: n1.commitments[0].binding }, [n2.index]: { hiding: n2.commitments[0].hiding, binding: n2.commitments[0].binding } };
    const direct = (message: Uint8Array, auth: unknown, requestId = 'direct-request-1') =>
      signerCall(0, 'POST', '/v1/sign', { requestId, walletId: w.id, epoch: 0, message: bytesToHex(message), nonceId: n1.commitments[0].id, commitments, ...(auth === undefined ? {} : { auth }) });
    const msgOf = (p: Payload) => decode(p.kind, p.data, { from: w.address }).signingPayloads[0];

    const tooBig = solPayload(w.address, LAMPORTS);
    const elsewhere = solPayload(w.address, 1000n, 0, w.address);
    const okPayload = solPayload(w.address, 1000n);
    const forger = ed25519.utils.randomSecretKey();
    const forgedGrant = signControlDoc({ kind: 'grant', id: 'forged-grant', agent: { keyType: 'ed25519', publicKey: agent.publicKey }, wallets: [w.id], expiresAt: Date.now() + 60_000, issuedAt: Date.now() }, forger);
    assert.equal((await signerCall(0, 'POST', '/v1/control', forgedGrant)).body.error.code, 'bad_signature', 'a grant not signed by the owner is not stored');
    const tampered = request(agent, g, w.id, okPayload, { requestId: 'direct-request-2' });
    const tamperedData = solTransfer(w.address, 900_000_000n);
    tampered.request = { ...tampered.request, payload: { ...okPayload, data: tamperedData } };
    const cases: [string, Uint8Array, unknown, string][] = [
      ['no authorization at all', msgOf(okPayload), undefined, 'validation_failed'],
      ['a transfer over the per-transaction cap', msgOf(tooBig), { agent: request(agent, g, w.id, tooBig) }, 'policy_denied'],
      ['a destination the policy does not allow', msgOf(elsewhere), { agent: request(agent, g, w.id, elsewhere) }, 'policy_denied'],
      ['a grant forged with another key', msgOf(okPayload), { agent: request(agent, 'forged-grant', w.id, okPayload) }, 'unknown_grant'],
      ['a revoked grant', msgOf(okPayload), { agent: request(agent, revokedGrant, w.id, okPayload) }, 'grant_revoked'],
      ['a payload changed after the agent signed it', msgOf({ ...okPayload, data: tamperedData }), { agent: tampered }, 'bad_signature'],
      ['a message other than the one the payload commits to', randomBytes(40), { agent: request(agent, g, w.id, okPayload) }, 'forbidden'],
      ['a raw hash under an agent grant', randomBytes(32), { agent: request(agent, g, w.id, { kind: 'raw_hash', data: bytesToHex(randomBytes(32)) }) }, 'raw_signing_forbidden'],
      ['an owner authorization signed by another key', msgOf(okPayload), { owner: signControlDoc({ kind: 'sign', walletId: w.id, requestId: 'direct-request-1', payload: okPayload, issuedAt: Date.now(), expiresAt: Date.now() + 60_000 }, forger) }, 'bad_signature'],
    ];
    for (const [what, message, auth, code] of cases) {
      const r = await direct(message, auth, (auth as { agent?: { request: { requestId: string } } })?.agent?.request.requestId ?? 'direct-request-1');
      assert.equal(r.body.error?.code, code, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.share, undefined, `${what}: no share`);
    }
    // An allowed request that the holder outside the signing set (signer 3: the commitment list names
    // signers 1 and 2) has not counted (the policy counts strictly): no share.
    const good = request(agent, g, w.id, okPayload);
    const uncounted = await direct(msgOf(okPayload), { agent: good }, good.request.requestId);
    assert.equal(uncounted.body.error?.code, 'reservation_missing', JSON.stringify(uncounted.body));
    assert.deepEqual(uncounted.body.error.details.missing, [c.info.signers[2].nodeId]);
    // A receipt signed by another key, or for another request, does not count either.
    const reserveBody = (q: ReturnType<typeof request>, p: Payload) => ({ requestId: q.request.requestId, walletId: w.id, epoch: 0, message: bytesToHex(msgOf(p)), auth: { agent: q } });
    const r1 = (await signerCall(1, 'POST', '/v1/reserve', reserveBody(good, okPayload))).body.receipt;
    const r2 = (await signerCall(2, 'POST', '/v1/reserve', reserveBody(good, okPayload))).body.receipt;
    const otherReq = request(agent, g, w.id, solPayload(w.address, 1000n, 7));
    const rOther = (await signerCall(2, 'POST', '/v1/reserve', reserveBody(otherReq, solPayload(w.address, 1000n, 7)))).body.receipt;
    const forgedReceipt = { receipt: r2.receipt, sig: bytesToHex(ed25519.sign(randomBytes(8), forger)).slice(0, 128) };
    for (const [what, receipts] of [['another request\'s receipt', [r1, rOther]], ['a receipt with a forged signature', [r1, forgedReceipt]], ['one receipt of two', [r1]]] as const) {
      const r = await direct(msgOf(okPayload), { agent: good, receipts }, good.request.requestId);
      assert.equal(r.body.error?.code, 'reservation_missing', `${what}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.error.details.missing, [c.info.signers[2].nodeId], what);
    }
    // The same nonces with every other holder's receipt: a share.
    const s1 = await direct(msgOf(okPayload), { agent: good, receipts: [r1, r2] }, good.request.requestId);
    assert.equal(s1.status, 200, JSON.stringify(s1.body));
    assert.match(s1.body.share, /^[0-9a-f]+$/);
  });

  /**
   * A compromised server (cluster token in hand) signs request i with signer pair i mod 3, so that
   * each signer sees only 2/3 of the requests. Returns how many requests got both shares.
   */
  async function spreadOverPairs(w: { id: string; address: string }, agent: Agent, g: string, n: number, receiptsFrom: (pair: number[]) => number[]): Promise<{ shares: number; refusals: string[] }> {
    const pairs = [[0, 1], [1, 2], [0, 2]];
    let shares = 0;
    const refusals: string[] = [];
    for (let i = 0; i < n; i++) {
      const pair = pairs[i % 3];
      const p = solPayload(w.address, LAMPORTS / 10n, 1000 + i);
      const q = request(agent, g, w.id, p);
      const message = bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]);
      const receipts: unknown[] = [];
      for (const k of receiptsFrom(pair)) {
        const r = await signerCall(k, 'POST', '/v1/reserve', { requestId: q.request.requestId, walletId: w.id, epoch: 0, message, auth: { agent: q } });
        if (r.status !== 200) refusals.push(r.body.error.code);
        else if (r.body.receipt) receipts.push(r.body.receipt);
      }
      const ns = await Promise.all(pair.map((k) => signerCall(k, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })));
      const commitments = Object.fromEntries(ns.map((x) => [x.body.index, { hiding: x.body.commitments[0].hiding, binding: x.body.commitments[0].binding }]));
      const answers = await Promise.all(
        pair.map((k, j) => signerCall(k, 'POST', '/v1/sign', { requestId: q.request.requestId, walletId: w.id, epoch: 0, message, nonceId: ns[j].body.commitments[0].id, commitments, auth: { agent: q, receipts } })),
      );
      if (answers.every((a) => a.status === 200 && a.body.share)) shares++;
      else refusals.push(...answers.filter((a) => a.status !== 200).map((a) => a.body.error.code));
    }
    return { shares, refusals };
  }

  test('strict counters: a server spreading requests over signer pairs gets exactly the limit, not n/t times it; per-signer counters give n/t', async () => {
    const agent = newAgent();
    // Per-signer counting (opt-in): each signer stays within 1 SOL, yet 1.5 SOL gets signed.
    const loose = await newWallet();
    await setPolicy(loose.id, { ...solPolicy(), counters: 'per-signer' });
    const gl = await grant(c, agent, [loose.id]);
    const spread = await spreadOverPairs(loose, agent, gl, 15, () => []);
    assert.equal(spread.shares, 15, `per-signer: ${JSON.stringify(spread.refusals)}`);

    // Strict (the default): without receipts, or with receipts from the pair only, no shares at all.
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const g = await grant(c, agent, [w.id]);
    const none = await spreadOverPairs(w, agent, g, 3, () => []);
    assert.equal(none.shares, 0);
    assert.deepEqual([...new Set(none.refusals)], ['reservation_missing']);
    const pairOnly = await spreadOverPairs(w, agent, g, 3, (pair) => pair);
    assert.equal(pairOnly.shares, 0);
    assert.deepEqual([...new Set(pairOnly.refusals)], ['reservation_missing']);
    // The six requests above were counted by the pairs that reserved them (2 each per signer), so each
    // signer has room for 8 more of 0.1 SOL; the ninth is refused. Receipts from every holder (as
    // before issue 13) for 4 requests, then from the holder outside the pair only (what the server
    // asks for now: the pair counts in its share transactions): 8 signed in all, and no more.
    const all = await spreadOverPairs(w, agent, g, 4, () => [0, 1, 2]);
    assert.equal(all.shares, 4, JSON.stringify(all.refusals));
    const outside = await spreadOverPairs(w, agent, g, 11, (pair) => [0, 1, 2].filter((k) => !pair.includes(k)));
    assert.equal(outside.shares, 4, JSON.stringify(outside.refusals));
    assert.ok(outside.refusals.includes('limit_exceeded'));
    // No signer issued a share for more than the limit: 8 shares for requests every holder counted.
    const logs = await Promise.all([0, 1, 2].map(signerLog));
    for (const n of signersCountFor(logs, w.id)) assert.ok(n <= 8, `a signer issued shares for ${n} requests`);
  });

  test('after grant revoke returns, every signer refuses the grant', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    assert.equal((await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1000n)))).status, 200);
    const rv = await publish(c, { kind: 'revocation', grantId: g, issuedAt: Date.now() });
    assert.deepEqual(rv.body.pending, []);
    const next = await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1000n, 1)));
    assert.equal(next.body.error.code, 'grant_revoked');
    const p = solPayload(w.address, 1000n, 2);
    for (const i of [0, 1, 2]) {
      const r = await signerCall(i, 'POST', '/v1/sign', { requestId: 'after-revoke', walletId: w.id, epoch: 0, message: bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]), nonceId: 'x', commitments: {}, auth: { agent: request(agent, g, w.id, p, { requestId: 'after-revoke' }) } });
      assert.equal(r.body.error.code, 'grant_revoked', `signer ${i + 1}`);
    }
    const grants = await A('GET', '/v1/grants');
    assert.equal(grants.body.grants.find((x: { id: string }) => x.id === g).status, 'revoked');
  });

  test('a signer that was down when a revocation was published gets it when it is back, before it signs again', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    await c.kill('signer-3');
    const rv = await publish(c, { kind: 'revocation', grantId: g, issuedAt: Date.now() });
    assert.equal(rv.status, 200, JSON.stringify(rv.body));
    assert.deepEqual(rv.body.pending, [c.info.signers[2].nodeId], 'the server says who has not got it');
    await c.restart('signer-3');
    // The server's probe loop re-delivers owed documents; signer-3 then refuses the grant itself.
    const p = solPayload(w.address, 1000n, 4);
    const message = bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]);
    let code = '';
    for (let i = 0; i < 50 && code !== 'grant_revoked'; i++) {
      const r = await signerCall(2, 'POST', '/v1/sign', { requestId: `owed-${i}-x`, walletId: w.id, epoch: 0, message, nonceId: 'x', commitments: {}, auth: { agent: request(agent, g, w.id, p, { requestId: `owed-${i}-x` }) } });
      code = r.body.error?.code;
      if (code !== 'grant_revoked') await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(code, 'grant_revoked');
  });

  test('maxUses 1: the grant signs once; a retry of that request reaching a signer again is not a second use; another request is refused', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy());
    const agent = newAgent();
    const g = await grant(c, agent, [w.id], { maxUses: 1 });
    const p = solPayload(w.address, 1000n, 5);
    const first = request(agent, g, w.id, p);
    assert.equal((await A('POST', '/v1/requests', first)).status, 200);
    const n1 = (await signerCall(0, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const n2 = (await signerCall(1, 'POST', '/v1/nonces', { walletId: w.id, epoch: 0, count: 1 })).body;
    const commitments = { [n1.index]: { hiding: n1.commitments[0].hiding, binding: n1.commitments[0].binding }, [n2.index]: { hiding: n2.commitments[0].hiding, binding: n2.commitments[0].binding } };
    const message = bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]);
    // The other holders counted it already (strict counters): asking them again gives a receipt, not a second use.
    const receipts = [];
    for (const k of [1, 2]) {
      const r = await signerCall(k, 'POST', '/v1/reserve', { requestId: first.request.requestId, walletId: w.id, epoch: 0, message, auth: { agent: first } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      receipts.push(r.body.receipt);
    }
    const retry = await signerCall(0, 'POST', '/v1/sign', { requestId: first.request.requestId, walletId: w.id, epoch: 0, message, nonceId: n1.commitments[0].id, commitments, auth: { agent: first, receipts } });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    const second = await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1000n, 6)));
    assert.equal(second.body.error.code, 'grant_exhausted');
  });

  test('human approvals: M-of-N above a threshold; reject; timeout', async () => {
    const w = await newWallet();
    await setPolicy(w.id, solPolicy([{ id: 'big', type: 'require_approval', asset: 'SOL', above: '100000000', m: 2, approvers: ['alice', 'bob'] }]));
    const keys = { alice: ed25519.utils.randomSecretKey(), bob: ed25519.utils.randomSecretKey(), carol: ed25519.utils.randomSecretKey() };
    const registry = Object.fromEntries(Object.entries(keys).map(([n, k]) => [n, { keyType: 'ed25519' as const, publicKey: bytesToHex(ed25519.getPublicKey(k)) }]));
    assert.equal((await publish(c, { kind: 'approvers', version: 1, approvers: registry, issuedAt: Date.now() })).status, 200);
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const approve = async (requestId: string, who: keyof typeof keys, decision: 'approve' | 'reject' = 'approve') => {
      const cur = await A('GET', `/v1/requests/${requestId}`);
      return A('POST', `/v1/approvals/${requestId}`, signApproval({ kind: 'approval', requestDigest: cur.body.requestDigest, decision, approver: who, issuedAt: Date.now() }, keys[who], 'ed25519'));
    };
    // Under the threshold: signed at once.
    assert.equal((await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, LAMPORTS / 20n)))).status, 200);
    // Above: waits, M approvals sign it.
    const big = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n, 1), { ttlMs: 600_000 });
    const q = await A('POST', '/v1/requests', big);
    assert.equal(q.status, 202, JSON.stringify(q.body));
    assert.equal(q.body.status, 'pending_approval');
    assert.ok((await A('GET', '/v1/approvals')).body.requests.some((x: { requestId: string }) => x.requestId === big.request.requestId));
    // Signers refuse it without the approvals, whatever the server says.
    const p = big.request.payload;
    const direct = await signerCall(0, 'POST', '/v1/sign', { requestId: big.request.requestId, walletId: w.id, epoch: 0, message: bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]), nonceId: 'x', commitments: {}, auth: { agent: big } });
    assert.equal(direct.body.error.code, 'approval_required');
    assert.equal((await approve(big.request.requestId, 'carol')).body.error.code, 'forbidden', 'carol is not an approver of this rule');
    const one = await approve(big.request.requestId, 'alice');
    assert.equal(one.body.status, 'pending_approval');
    const two = await approve(big.request.requestId, 'bob');
    assert.equal(two.body.status, 'signed', JSON.stringify(two.body));
    assert.ok(ed25519.verify(hexToBytes(two.body.signature), decode(p.kind, p.data, { from: w.address }).signingPayloads[0], hexToBytes(w.publicKey)));
    assert.deepEqual(two.body.approvedBy, ['alice', 'bob']);
    // A reject ends a request.
    const rej = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n, 2), { ttlMs: 600_000 });
    assert.equal((await A('POST', '/v1/requests', rej)).status, 202);
    assert.equal((await approve(rej.request.requestId, 'alice', 'reject')).body.status, 'rejected');
    assert.equal((await approve(rej.request.requestId, 'bob')).body.error.code, 'conflict');
    // Nobody answers in time: it expires.
    const late = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n, 3), { ttlMs: 1500 });
    assert.equal((await A('POST', '/v1/requests', late)).status, 202);
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal((await A('GET', `/v1/requests/${late.request.requestId}`)).body.status, 'expired');
    assert.equal((await approve(late.request.requestId, 'alice')).body.error.code, 'conflict');
  });

  test('child wallets: the root\'s policy applies, a child\'s own policy narrows it, a revoked child is refused by every signer', async () => {
    const root = await newWallet();
    await setPolicy(root.id, solPolicy());
    const childId = `${root.id}.7`;
    const child = (await A('GET', `/v1/wallets/${childId}`)).body;
    assert.notEqual(child.publicKey, root.publicKey);
    const agent = newAgent();
    const g = await grant(c, agent, [childId, `${root.id}.8`]);
    const p = solPayload(child.address, LAMPORTS / 10n);
    const r = await A('POST', '/v1/requests', request(agent, g, childId, p));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(ed25519.verify(hexToBytes(r.body.signature), decode(p.kind, p.data, { from: child.address }).signingPayloads[0], hexToBytes(child.publicKey), { zip215: false }), 'verifies under the child key');
    // The child's own policy can only narrow the root's: 0.1 SOL per transaction here.
    await setPolicy(childId, solPolicy([{ type: 'tx_cap', asset: 'SOL', max: '100000000' }]));
    const over = await A('POST', '/v1/requests', request(agent, g, childId, solPayload(child.address, LAMPORTS / 5n, 1)));
    assert.equal(over.body.error.code, 'policy_denied');
    // Revoke the child: every signer refuses it, the sibling still signs.
    const st = await publish(c, { kind: 'wallet_status', walletId: childId, status: 'revoked', seq: 1, issuedAt: Date.now() });
    assert.equal(st.body.delivered.length, 3);
    assert.equal((await A('POST', '/v1/requests', request(agent, g, childId, solPayload(child.address, 1000n, 2)))).body.error.code, 'wallet_inactive');
    const q = solPayload(child.address, 1000n, 3);
    for (const i of [0, 1, 2]) {
      const d = await signerCall(i, 'POST', '/v1/sign', { requestId: `revoked-child-${i}`, walletId: childId, epoch: 0, message: bytesToHex(decode(q.kind, q.data, { from: child.address }).signingPayloads[0]), nonceId: 'x', commitments: {}, auth: { agent: request(agent, g, childId, q, { requestId: `revoked-child-${i}` }) } });
      assert.equal(d.body.error.code, 'wallet_inactive', `signer ${i + 1}`);
    }
    assert.equal((await publish(c, { kind: 'wallet_status', walletId: childId, status: 'active', seq: 2, issuedAt: Date.now() })).body.error.code, 'conflict', 'revoked is final');
    const sibling = (await A('GET', `/v1/wallets/${root.id}.8`)).body;
    assert.equal((await A('POST', '/v1/requests', request(agent, g, sibling.id, solPayload(sibling.address, 1000n)))).status, 200);
  });

  test('fleet-wide caps count per fleet: two fleets under one policy, one spending its cap leaves the other\'s whole (issue #15, item 8)', async () => {
    // Two fleets (root wallets) under the same policy, with a fleet-wide daily cap of 0.2 SOL; their children sign.
    const policy = { version: 1, assets: SOL_ASSETS, rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'fleet-daily', type: 'window_cap', asset: 'SOL', max: String(LAMPORTS / 5n), window: '24h', scope: 'fleet' }] };
    const [fa, fb] = [await newWallet(), await newWallet()];
    await setPolicy(fa.id, policy);
    await setPolicy(fb.id, policy);
    const [a1, a2, b1] = await Promise.all([`${fa.id}.1`, `${fa.id}.2`, `${fb.id}.1`].map(async (id) => (await A('GET', `/v1/wallets/${id}`)).body as { id: string; address: string }));
    const agent = newAgent();
    const g = await grant(c, agent, [a1.id, a2.id, b1.id]);
    const spend = (w: { id: string; address: string }, lamports: bigint, salt: number) => A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, lamports, salt)));
    // Fleet A spends its whole cap from one device: its other device has no room left.
    const a = await spend(a1, LAMPORTS / 5n, 1);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const over = await spend(a2, 1000n, 2);
    assert.equal(over.body.error?.code, 'limit_exceeded', JSON.stringify(over.body));
    assert.match(over.body.error.message, /fleet-daily/);
    // Fleet B, same policy, same signers: its whole cap is still there.
    const b = await spend(b1, LAMPORTS / 5n, 3);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.status, 'signed');
  });

  test('admin signing (owner authorization by a dev server): a retry under the same request id signs; another message under it is a conflict', async () => {
    const w = await newWallet();
    const msg = bytesToHex(randomBytes(20));
    const a = await A('POST', `/v1/wallets/${w.id}/sign`, { message: msg, requestId: 'admin-retry-1' });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const b = await A('POST', `/v1/wallets/${w.id}/sign`, { message: msg, requestId: 'admin-retry-1' });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    for (const s of [a.body.signature, b.body.signature]) assert.ok(ed25519.verify(hexToBytes(s), hexToBytes(msg), hexToBytes(w.publicKey), { zip215: false }));
    const c2 = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(20)), requestId: 'admin-retry-1' });
    assert.equal(c2.status, 409, JSON.stringify(c2.body));
  });

  test('threshold ECDSA: an agent EIP-1559 transaction is signed under the policy (receipts carried into the session); one over the cap is not', async () => {
    const w = await newWallet('ecdsa-secp256k1');
    const to = '0x2222222222222222222222222222222222222222';
    await setPolicy(w.id, {
      version: 1,
      assets: { ETH: { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 } },
      rules: [{ type: 'allow', chainIds: ['8453'], to: [to] }, { type: 'tx_cap', asset: 'ETH', max: '100000000000000000' }, { type: 'window_cap', asset: 'ETH', max: '1000000000000000000', window: '24h' }],
    });
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const tx = (value: bigint) => serializeTransaction({ type: 'eip1559', chainId: 8453, nonce: 0, to, value, gas: 21000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n });
    const r = await A('POST', '/v1/requests', request(agent, g, w.id, { kind: 'evm_transaction', data: tx(parseEther('0.05')), opts: { chainId: 8453 } }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: r.body.serializedTransaction as `0x02${string}` })).toLowerCase(), w.address.toLowerCase());
    const over = await A('POST', '/v1/requests', request(agent, g, w.id, { kind: 'evm_transaction', data: tx(parseEther('0.2')), opts: { chainId: 8453 } }));
    assert.equal(over.body.error.code, 'policy_denied');
    // A compromised server opening a DKLs23 signing session for an allowed request that the other
    // holders have not counted: refused before the session starts.
    const p2: Payload = { kind: 'evm_transaction', data: tx(parseEther('0.01')), opts: { chainId: 8453 } };
    const q2 = request(agent, g, w.id, p2);
    const view = (await A('GET', `/v1/wallets/${w.id}`)).body;
    const session = { session: 'ses_uncounted_1', kind: 'sign', walletId: w.id, scheme: 'ecdsa-secp256k1', threshold: 2, participants: view.participants, epoch: 0, signers: [1, 2], messageHash: bytesToHex(decode(p2.kind, p2.data, { from: w.address, chainId: 8453 }).signingPayloads[0]), auth: { agent: q2 } };
    const direct = await signerCall(0, 'POST', '/v1/sessions', session);
    assert.equal(direct.body.error?.code, 'reservation_missing', JSON.stringify(direct.body));
    // Owner-signed documents are what the signers trust: a document from the server's own key would be refused.
    assert.equal((await call(c.info.url, c.info.token, 'POST', '/v1/control', { ...ownerSign(c, { kind: 'revocation', grantId: g, issuedAt: Date.now() }), sig: '00'.repeat(64) })).body.error.code, 'bad_signature');
  });
});
