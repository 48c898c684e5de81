/**
 * Several API servers on one PostgreSQL schema (README, "Several API servers"): two real `fleetkey
 * server` processes and three signers, every process its own OS process over HTTP, the servers
 * sharing the schema `<run>_server` of the local database. Any request may land on either server;
 * one server is SIGKILLed in the middle of agent requests and the agent's retry at the other
 * completes each exactly once. Runs under `npm run test:pg` (FLEETKEY_TEST_PG=1); every schema of
 * the run is dropped after.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import mqtt from 'mqtt';
import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from '../../src/chains/index.ts';
import { LocalCluster } from '../../src/cli/cluster.ts';
import { signApproval, type Payload } from '../../src/control/index.ts';
import { verifyLog } from '../../src/audit/index.ts';
import { decodeJws, decodeStatusList } from '../../src/identity/index.ts';
import { call, type ApiResult } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer, type Agent } from '../helpers/agent.ts';

const LAMPORTS = 1_000_000_000n;
const AMOUNT = LAMPORTS / 100n;
const solPayload = (from: string, lamports: bigint, salt = 0): Payload => ({ kind: 'solana_transaction', data: solTransfer(from, lamports, SOL_DEST, salt), opts: { network: 'mainnet-beta' } });
const capPolicy = (maxLamports: bigint, extra: unknown[] = []) => ({
  version: 1,
  assets: SOL_ASSETS,
  rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: maxLamports.toString(), window: '24h' }, ...extra],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Without PostgreSQL (plain `npm test`) this file registers nothing; `npm run test:pg` runs it.
if (process.env.FLEETKEY_TEST_PG) {
  const url = process.env.FLEETKEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const MQTT_URL = process.env.FLEETKEY_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
  const run = `mt_${bytesToHex(randomBytes(4))}_`;
  const schemas = ['signer_1', 'signer_2', 'signer_3', 'server'].map((s) => run + s);
  const PREFIX = `fk-multi-${bytesToHex(randomBytes(6))}`;
  /** Environment the servers inherit: a short request lease (a dead server's request is free again soon), MQTT. */
  const env = { FLEETKEY_REQUEST_LEASE_MS: '3000', FLEETKEY_MQTT_URL: MQTT_URL, FLEETKEY_MQTT_PREFIX: PREFIX };

  describe('two API servers on one PostgreSQL schema (3 signers, 2-of-3)', { timeout: 900_000 }, () => {
    let c: LocalCluster;
    let db: pg.Client;
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    /** Calls server `i` (0 or 1) with the admin token. */
    const S = (i: number) => <T = any>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> => call<T>(c.info.servers[i], c.info.token, method, path, body);
    const nameOf = (i: number) => (i === 0 ? 'server' : 'server-2');
    const signatures: { scheme: string; sig: string }[] = [];

    async function wallet(i: number): Promise<{ id: string; address: string; publicKey: string }> {
      const w = await S(i)('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      return w.body;
    }

    async function policy(walletId: string, p: unknown) {
      const r = await publish(c, { kind: 'policy', walletId, version: 1, policy: p, issuedAt: Date.now() });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }

    /** The agent's side: send the same signed request until it settles (503 and in_progress are retried), bounded. */
    async function settle(i: number, q: ReturnType<typeof request>, deadlineMs = 90_000): Promise<ApiResult & { tries: number }> {
      const until = Date.now() + deadlineMs;
      for (let tries = 1; ; tries++) {
        const r = await S(i)('POST', '/v1/requests', q).catch((e: Error) => ({ status: 0, body: { error: { code: 'unreachable', message: e.message } } }));
        if ((r.status !== 503 && r.status !== 0 && r.body?.error?.code !== 'in_progress') || Date.now() > until) return { ...r, tries };
        await sleep(200);
      }
    }

    function verifies(w: { publicKey: string; address: string }, q: ReturnType<typeof request>, sigHex: string): boolean {
      const msg = decode('solana_transaction', q.request.payload.data as string, { from: w.address }).signingPayloads[0];
      return ed25519.verify(hexToBytes(sigHex), msg, hexToBytes(w.publicKey), { zip215: false });
    }

    async function row(requestId: string): Promise<{ status: string; lease_owner: string | null } | undefined> {
      return (await db.query(`SELECT status, lease_owner FROM ${run}server.agent_requests WHERE request_id = $1`, [requestId])).rows[0];
    }

    before(async () => {
      Object.assign(process.env, env);
      db = new pg.Client({ connectionString: url });
      await db.connect();
      c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-multi-')), signers: 3, servers: 2, postgres: url, schemaPrefix: run, quiet: true });
    });
    after(async () => {
      await c?.stop();
      for (const s of schemas) await db?.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await db?.end();
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    });

    test('the servers share one schema: a wallet made at one signs at the other; admin signatures alternate, each nonce once', async () => {
      const w = await wallet(0);
      assert.equal((await S(1)('GET', `/v1/wallets/${w.id}`)).body.publicKey, w.publicKey);
      for (let i = 0; i < 12; i++) {
        const msg = randomBytes(32);
        const r = await S(i % 2)('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(ed25519.verify(hexToBytes(r.body.signature), msg, hexToBytes(w.publicKey), { zip215: false }));
        signatures.push({ scheme: 'ed25519', sig: r.body.signature });
      }
      // The commitments both servers took came from one pool in the store.
      const pools = (await db.query(`SELECT COUNT(DISTINCT pool) AS n FROM ${run}server.nonce_pool WHERE pool LIKE $1`, [w.id + '|%'])).rows[0];
      assert.ok(Number(pools.n) >= 1, 'the pool is in the shared store');
    });

    test('idempotent retries across servers: the same signed request at the other server returns the same signature', async () => {
      const w = await wallet(1);
      await policy(w.id, capPolicy(LAMPORTS));
      const agent = newAgent();
      const g = await grant(c, agent, [w.id]);
      const q = request(agent, g, w.id, solPayload(w.address, AMOUNT));
      const first = await settle(0, q);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.ok(verifies(w, q, first.body.signature));
      const again = await S(1)('POST', '/v1/requests', q);
      assert.equal(again.status, 200);
      assert.equal(again.body.signature, first.body.signature);
      assert.equal((await S(1)('GET', `/v1/requests/${q.request.requestId}`)).body.status, 'signed');
      const other = request(agent, g, w.id, solPayload(w.address, 2n), { requestId: q.request.requestId });
      assert.equal((await S(1)('POST', '/v1/requests', other)).body.error.code, 'conflict');
      signatures.push({ scheme: 'ed25519', sig: first.body.signature });
    });

    test('approvals: filed at one server, listed and approved at the other; two approvers at once at both servers are both kept', async () => {
      const w = await wallet(0);
      await policy(w.id, capPolicy(LAMPORTS, [{ id: 'big', type: 'require_approval', asset: 'SOL', above: '100000000', m: 2, approvers: ['alice', 'bob'] }]));
      const keys = { alice: ed25519.utils.randomSecretKey(), bob: ed25519.utils.randomSecretKey() };
      const registry = Object.fromEntries(Object.entries(keys).map(([n, k]) => [n, { keyType: 'ed25519' as const, publicKey: bytesToHex(ed25519.getPublicKey(k)) }]));
      assert.equal((await publish(c, { kind: 'approvers', version: 1, approvers: registry, issuedAt: Date.now() })).status, 200);
      const agent = newAgent();
      const g = await grant(c, agent, [w.id]);
      const approve = (i: number, requestId: string, digest: string, who: keyof typeof keys) =>
        call(c.info.servers[i], undefined, 'POST', `/v1/approvals/${requestId}`, signApproval({ kind: 'approval', requestDigest: digest, decision: 'approve', approver: who, issuedAt: Date.now() }, keys[who], 'ed25519'));
      // One after the other, at alternate servers.
      const big = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n, 1), { ttlMs: 600_000 });
      const queued = await S(0)('POST', '/v1/requests', big);
      assert.equal(queued.status, 202, JSON.stringify(queued.body));
      assert.ok((await S(1)('GET', '/v1/approvals')).body.requests.some((x: { requestId: string }) => x.requestId === big.request.requestId), 'the other server lists it');
      assert.equal((await approve(1, big.request.requestId, queued.body.requestDigest, 'alice')).body.status, 'pending_approval');
      const two = await approve(0, big.request.requestId, queued.body.requestDigest, 'bob');
      assert.equal(two.body.status, 'signed', JSON.stringify(two.body));
      assert.ok(verifies(w, big, two.body.signature));
      assert.deepEqual(two.body.approvedBy, ['alice', 'bob']);
      // At the same moment, one at each server: neither approval may be lost.
      const both = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n, 2), { ttlMs: 600_000 });
      const q2 = await S(1)('POST', '/v1/requests', both);
      assert.equal(q2.status, 202);
      await Promise.all([approve(0, both.request.requestId, q2.body.requestDigest, 'alice'), approve(1, both.request.requestId, q2.body.requestDigest, 'bob')]);
      let view: any;
      for (let i = 0; i < 300; i++) {
        view = (await S(i % 2)('GET', `/v1/requests/${both.request.requestId}`)).body;
        if (view.status !== 'pending_approval' && view.status !== 'signing') break;
        await sleep(200);
      }
      assert.equal(view.status, 'signed', JSON.stringify(view));
      assert.deepEqual([...view.approvedBy].sort(), ['alice', 'bob']);
      assert.ok(verifies(w, both, view.signature));
      signatures.push({ scheme: 'ed25519', sig: two.body.signature }, { scheme: 'ed25519', sig: view.signature });
    });

    test('concurrent capped requests split across both servers never exceed the cap', async (t) => {
      const CAP = 8;
      const w = await wallet(1);
      await policy(w.id, capPolicy(AMOUNT * BigInt(CAP)));
      const agent = newAgent();
      const g = await grant(c, agent, [w.id]);
      const reqs = Array.from({ length: 24 }, (_, i) => request(agent, g, w.id, solPayload(w.address, AMOUNT, 100 + i)));
      const answers = await Promise.all(reqs.map((q, i) => settle(i % 2, q)));
      const ok = answers.filter((a) => a.status === 200);
      t.diagnostic(`${ok.length} signed, ${answers.length - ok.length} refused, ${answers.reduce((s, a) => s + a.tries - 1, 0)} retries`);
      assert.equal(ok.length, CAP);
      assert.ok(answers.every((a) => a.status === 200 || a.body.error?.code === 'limit_exceeded'), JSON.stringify(answers.find((a) => a.status !== 200 && a.body.error?.code !== 'limit_exceeded')?.body));
      for (const [i, a] of answers.entries()) if (a.status === 200) assert.ok(verifies(w, reqs[i], a.body.signature));
      signatures.push(...ok.map((a) => ({ scheme: 'ed25519', sig: a.body.signature as string })));
    });

    test('status lists: devices revoked at both servers at once all end up in the published list', async () => {
      const f = (await S(0)('POST', '/v1/fleets', { scheme: 'ed25519' })).body;
      assert.ok(f.id, JSON.stringify(f));
      const idx: number[] = [];
      for (let i = 0; i < 6; i++) {
        const d = await S(i % 2)('POST', `/v1/fleets/${f.id}/devices`, {});
        assert.equal(d.status, 201, JSON.stringify(d.body));
        idx.push(d.body.index);
      }
      // Published once before (version 1), then six revocations, three at each server, all at once.
      assert.equal((await fetch(`${c.info.servers[1]}/fleets/${f.id}/status/revocation/0`)).status, 200);
      const r = await Promise.all(idx.map((n, i) => S(i % 2)('POST', `/v1/fleets/${f.id}/devices/${n}/revoke`)));
      for (const x of r) assert.equal(x.status, 200, JSON.stringify(x.body));
      for (const base of c.info.servers) {
        const jwt = await (await fetch(`${base}/fleets/${f.id}/status/revocation/0`)).text();
        const list = decodeStatusList((decodeJws(jwt).payload as any).vc.credentialSubject.encodedList);
        assert.deepEqual(idx.map((n) => list.get(n)), idx.map(() => true), 'every revocation is in the list either server serves');
      }
      const v = (await db.query(`SELECT version FROM ${run}server.fleet_status_lists WHERE fleet = $1 AND purpose = 'revocation' AND k = 0`, [f.id])).rows[0];
      assert.ok(Number(v.version) >= 2, 'republished after the revocations');
    });

    test('MQTT: each reading is handled by one server, and the counters are summed over both', async () => {
      const f = (await S(1)('POST', '/v1/fleets', { scheme: 'ed25519' })).body;
      const topic = (await S(0)('GET', `/v1/fleets/${f.id}/ingest`)).body.topic;
      assert.equal(topic, `${PREFIX}/${f.id}/readings`);
      for (let i = 0; i < 200 && !((await S(0)('GET', `/v1/fleets/${f.id}/ingest`)).body.connected && (await S(1)('GET', `/v1/fleets/${f.id}/ingest`)).body.connected); i++) await sleep(100);
      const N = 40;
      const client = await mqtt.connectAsync(MQTT_URL, { clientId: `fk-multi-device-${bytesToHex(randomBytes(4))}` });
      try {
        for (let i = 0; i < N; i++) await client.publishAsync(topic, `{"not":"a reading ${i}"}`, { qos: 1 });
      } finally {
        await client.endAsync();
      }
      let seen = 0;
      for (let i = 0; i < 300 && seen < N; i++) {
        seen = (await S(i % 2)('GET', `/v1/fleets/${f.id}/ingest`)).body.received;
        if (seen < N) await sleep(100);
      }
      assert.equal(seen, N);
      // A message delivered to both servers would be counted twice; give a second delivery time to show.
      await sleep(1500);
      for (const i of [0, 1]) {
        const got = (await S(i)('GET', `/v1/fleets/${f.id}/ingest`)).body;
        assert.deepEqual([got.received, got.accepted, got.rejected, got.reasons], [N, 0, N, { malformed: N }], JSON.stringify(got));
      }
    });

    test('SIGKILL a server in the middle of agent requests: the retry at the other completes each exactly once', async (t) => {
      const K = 4;
      const w = await wallet(0);
      // Exactly K requests fit under the cap: a request counted twice anywhere would push a later one over it.
      await policy(w.id, capPolicy(AMOUNT * BigInt(K)));
      const agent: Agent = newAgent();
      const g = await grant(c, agent, [w.id]);
      let takenOver = 0;
      for (let k = 0; k < K; k++) {
        const q = request(agent, g, w.id, solPayload(w.address, AMOUNT, 200 + k), { ttlMs: 300_000 });
        // Even rounds: a signer is stopped (SIGSTOP), so the request is certainly mid-way (counted at
        // some holders, no signature yet) when its server dies. Odd rounds: killed wherever it is.
        const stopped = k % 2 === 0 ? c.pid('signer-3') : undefined;
        if (stopped) process.kill(stopped, 'SIGSTOP');
        try {
          const first = S(1)('POST', '/v1/requests', q).catch(() => undefined);
          let r: Awaited<ReturnType<typeof row>>;
          for (let i = 0; i < 500 && (r = await row(q.request.requestId))?.status !== 'signing'; i++) await sleep(10);
          assert.equal(r!?.status, 'signing', 'the request reached the signing state at server-2');
          if (!stopped) await sleep(Math.floor(Math.random() * 30));
          await c.kill('server-2');
          await first;
        } finally {
          if (stopped) process.kill(stopped, 'SIGCONT');
        }
        const before = await row(q.request.requestId);
        const done = await settle(0, q);
        assert.equal(done.status, 200, JSON.stringify(done.body));
        assert.equal(done.body.status, 'signed');
        assert.ok(verifies(w, q, done.body.signature), 'the signature verifies under the wallet key');
        if (before?.status === 'signing') takenOver++;
        await c.restart('server-2');
        // The restarted server answers the same request with the same signature.
        const again = await S(1)('POST', '/v1/requests', q);
        assert.equal(again.body.signature, done.body.signature);
        signatures.push({ scheme: 'ed25519', sig: done.body.signature });
      }
      t.diagnostic(`${takenOver} of ${K} requests were taken over from the killed server`);
      assert.ok(takenOver >= K / 2, 'every request stopped mid-way was taken over');
      // Counted once each, by the server and by every signer (strict counters): the cap is reached exactly.
      const over = await settle(0, request(agent, g, w.id, solPayload(w.address, AMOUNT, 299)));
      assert.equal(over.body.error?.code, 'limit_exceeded', JSON.stringify(over.body));
      const under = await settle(1, request(agent, g, w.id, solPayload(w.address, 1n, 298)));
      assert.equal(under.body.error?.code, 'limit_exceeded', 'nothing is left under the cap');
      const grants = (await S(0)('GET', '/v1/grants')).body.grants as { id: string; uses: number }[];
      assert.equal(grants.find((x) => x.id === g)?.uses, K, 'the grant counts K uses');
      const stuck = (await db.query(`SELECT COUNT(*) AS n FROM ${run}server.agent_requests WHERE wallet_id = $1 AND status = 'signing'`, [w.id])).rows[0];
      assert.equal(Number(stuck.n), 0, 'nothing left pending');
    });

    test('a request a killed server left signing, refused when retried (its grant revoked meanwhile), ends failed, not signing for ever', async () => {
      const w = await wallet(0);
      await policy(w.id, capPolicy(AMOUNT * 10n));
      const agent: Agent = newAgent();
      const g = await grant(c, agent, [w.id]);
      const q = request(agent, g, w.id, solPayload(w.address, AMOUNT, 400), { ttlMs: 300_000 });
      // A signer stopped, so the request is certainly mid-way when its server dies.
      const stopped = c.pid('signer-3')!;
      process.kill(stopped, 'SIGSTOP');
      try {
        const first = S(1)('POST', '/v1/requests', q).catch(() => undefined);
        let r: Awaited<ReturnType<typeof row>>;
        for (let i = 0; i < 500 && (r = await row(q.request.requestId))?.status !== 'signing'; i++) await sleep(10);
        assert.equal(r!?.status, 'signing', 'the request reached the signing state at server-2');
        await c.kill('server-2');
        await first;
      } finally {
        process.kill(stopped, 'SIGCONT');
      }
      assert.equal((await publish(c, { kind: 'revocation', grantId: g, issuedAt: Date.now() })).status, 200);
      const done = await settle(0, q);
      assert.equal(done.status, 403, JSON.stringify(done.body));
      assert.equal((await row(q.request.requestId))?.status, 'failed', 'the orphaned request is settled by the refusal');
      const seen = await S(0)('GET', `/v1/requests/${q.request.requestId}`);
      assert.equal(seen.body.status, 'failed');
      await c.restart('server-2');
    });

    test('no nonce twice: every FROST signature of the run has its own R', () => {
      const rs = signatures.map((s) => s.sig.slice(0, 64));
      assert.ok(rs.length >= 20);
      assert.equal(new Set(rs).size, rs.length);
    });

    test('every audit chain verifies offline: one per server, the killed one continued after each restart', async () => {
      const listed = (await S(0)('GET', '/v1/audit/chains')).body;
      const self = [(await S(0)('GET', '/v1/audit/key')).body.publicKey, (await S(1)('GET', '/v1/audit/key')).body.publicKey];
      assert.deepEqual(listed.chains.map((x: { chain: string }) => x.chain).sort(), [...self].sort(), 'one chain per server, nothing else');
      for (const [i, key] of self.entries()) {
        // Sealed by its own server; the other server exports it as it is.
        for (const [from, query] of [[i, ''], [1 - i, `?chain=${key}`]] as const) {
          const res = await fetch(`${c.info.servers[from]}/v1/audit${query}`, { headers: { authorization: `Bearer ${c.info.token}` } });
          assert.equal(res.status, 200);
          const r = verifyLog(await res.text(), { trustedKeys: [key] });
          assert.ok(r.ok, `chain of ${nameOf(i)} from ${nameOf(from)}: ${JSON.stringify(r.firstBroken)}`);
          assert.ok(r.entries.length > 10);
          // Exported by its own server: sealed by a checkpoint over everything before it.
          if (from === i) assert.deepEqual([r.entries.at(-1)!.type, r.sealedThrough], ['checkpoint', r.entries.at(-2)!.seq]);
        }
      }
      const bad = await S(0)('GET', '/v1/audit?chain=nothex');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'validation_failed');
    });
  });
}
