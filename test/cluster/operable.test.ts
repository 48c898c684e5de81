/**
 * Operating a cluster (issue #9, "Operable"): /healthz, /readyz and /metrics on the server and on
 * every signer, and SIGTERM draining, on real processes over real HTTP with real SQLite.
 *
 * An unwritable store: the tests run as root, and root writes through file permissions, so the
 * test installs a SQLite trigger (from another connection, as an operator's mistake or a full
 * disk would) that aborts every write to the table the readiness probe writes to, and drops it again.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, call, fetchAny, startCluster, verifySig } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';

type Sample = { name: string; labels: Record<string, string>; value: number };

/**
 * A strict reader of the Prometheus text format (0.0.4): every line is a HELP, a TYPE, or a sample
 * `name{label="value",...} number`; every sample belongs to a family declared by a TYPE line.
 */
function parseProm(text: string): Sample[] {
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const sampleRe = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|NaN|\\+Inf|-Inf))$`);
  const typed = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m;
    if ((m = new RegExp(`^# HELP (${NAME}) .*$`).exec(line))) continue;
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      typed.set(m[1], m[2]);
      continue;
    }
    m = sampleRe.exec(line);
    assert.ok(m, `not a Prometheus text line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const family = [...typed.keys()].find((f) => m![1] === f || (typed.get(f) === 'histogram' && /^_(bucket|sum|count)$/.test(m![1].slice(f.length)) && m![1].startsWith(f)));
    assert.ok(family, `sample ${m[1]} has no TYPE line`);
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `want` (0 if absent). */
function valueOf(samples: Sample[], name: string, want: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(want)} matches ${hits.length} series`);
  return hits[0]?.value ?? 0;
}

/** Installs (or drops) a trigger that makes every write to the readiness table fail. */
function breakStore(dbFile: string, broken: boolean): void {
  const db = new Database(dbFile);
  try {
    db.pragma('busy_timeout = 5000');
    if (broken) {
      db.exec(`CREATE TRIGGER test_ro_insert BEFORE INSERT ON fleetkey_liveness BEGIN SELECT RAISE(ABORT, 'store made read-only by the test'); END`);
      db.exec(`CREATE TRIGGER test_ro_update BEFORE UPDATE ON fleetkey_liveness BEGIN SELECT RAISE(ABORT, 'store made read-only by the test'); END`);
    } else db.exec(`DROP TRIGGER test_ro_insert; DROP TRIGGER test_ro_update`);
  } finally {
    db.close();
  }
}

describe('operable: health, readiness, metrics, drain (3 signer processes)', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let clusterToken: string;
  const signerUrl = (i: number) => c.info.signers[i].url;
  const metricsOf = async (base: string, token: string) => {
    const res = await fetchAny(base + '/metrics', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { text, samples: parseProm(text) };
  };

  before(async () => {
    c = await startCluster(3);
    A = api(c);
    clusterToken = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
  });
  after(async () => c?.stop());

  test('/healthz and /readyz answer on the server and every signer, with no token', async () => {
    const h = await call(c.info.url, undefined, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.body, { status: 'ok', signers: { up: 3, total: 3 } }, 'the server /healthz shape is unchanged');
    const r = await call(c.info.url, undefined, 'GET', '/readyz');
    assert.deepEqual([r.status, r.body], [200, { status: 'ready' }], 'no wallet yet: ready with signers reachable');
    for (let i = 0; i < 3; i++) {
      const sh = await call(signerUrl(i), undefined, 'GET', '/healthz');
      assert.deepEqual([sh.status, sh.body], [200, { status: 'ok', nodeId: c.info.signers[i].nodeId }]);
      const sr = await call(signerUrl(i), undefined, 'GET', '/readyz');
      assert.deepEqual([sr.status, sr.body], [200, { status: 'ready', nodeId: c.info.signers[i].nodeId }]);
    }
    // /metrics is not open: the admin token on the server, the cluster token on signers.
    assert.equal((await call(c.info.url, undefined, 'GET', '/metrics')).status, 401);
    assert.equal((await call(c.info.url, clusterToken, 'GET', '/metrics')).body.error.code, 'unauthorized');
    assert.equal((await call(signerUrl(0), undefined, 'GET', '/metrics')).status, 401);
    assert.equal((await call(signerUrl(0), c.info.token, 'GET', '/metrics')).status, 401);
  });

  test('/metrics is Prometheus text; signing, outcome and policy series move by exactly what was done', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    const before = (await metricsOf(c.info.url, c.info.token)).samples;
    const signersBefore = await Promise.all([0, 1, 2].map(async (i) => (await metricsOf(signerUrl(i), clusterToken)).samples));
    const msgs = [randomBytes(10), randomBytes(32), randomBytes(0)];
    for (const m of msgs) {
      const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(m) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(verifySig('ed25519', w.publicKey, m, r.body.signature));
    }
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: 'zz' })).body.error.code, 'validation_failed');
    assert.equal((await A('GET', `/v1/wallets/wal_${'0'.repeat(24)}`)).body.error.code, 'not_found');
    assert.equal((await call(c.info.url, 'wrong', 'GET', '/v1/wallets')).body.error.code, 'unauthorized');
    // The agent path: one request the policy allows (signed), one it denies.
    const pol = { version: 1, assets: SOL_ASSETS, rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'per-tx', type: 'tx_cap', asset: 'SOL', max: '500000000' }] };
    assert.equal((await publish(c, { kind: 'policy', walletId: w.id, version: 1, policy: pol, issuedAt: Date.now() })).status, 200);
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const payload = (lamports: bigint) => ({ kind: 'solana_transaction' as const, data: solTransfer(w.address, lamports), opts: { network: 'mainnet-beta' } });
    const ok = await call(c.info.url, undefined, 'POST', '/v1/requests', request(agent, g, w.id, payload(1000n)));
    assert.equal(ok.body.status, 'signed', JSON.stringify(ok.body));
    const denied = await call(c.info.url, undefined, 'POST', '/v1/requests', request(agent, g, w.id, payload(900_000_000n)));
    assert.equal(denied.body.error.code, 'policy_denied');

    const { text, samples: after } = await metricsOf(c.info.url, c.info.token);
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('fleetkey_sign_seconds_count', { scheme: 'ed25519', path: 'admin', result: 'signed' }), 3);
    assert.equal(delta('fleetkey_sign_seconds_count', { scheme: 'ed25519', path: 'agent', result: 'signed' }), 1);
    assert.equal(delta('fleetkey_sign_seconds_count', { scheme: 'ed25519', path: 'admin', result: 'failed' }), 0, 'a bad body never reaches the signers');
    assert.equal(delta('fleetkey_sign_seconds_bucket', { scheme: 'ed25519', path: 'admin', result: 'signed', le: '+Inf' }), 3);
    // ok: 3 admin signatures, the policy, the grant, the allowed agent request.
    assert.equal(delta('fleetkey_http_requests_total', { code: 'ok' }), 6);
    assert.equal(delta('fleetkey_http_requests_total', { code: 'validation_failed' }), 1);
    assert.equal(delta('fleetkey_http_requests_total', { code: 'not_found' }), 1);
    assert.equal(delta('fleetkey_http_requests_total', { code: 'unauthorized' }), 1);
    assert.equal(delta('fleetkey_http_requests_total', { code: 'policy_denied' }), 1);
    assert.equal(delta('fleetkey_policy_decisions_total', { result: 'deny' }), 1);
    assert.equal(delta('fleetkey_policy_decisions_total', { result: 'allow' }), 1);
    assert.ok(delta('fleetkey_store_seconds_count', { op: 'tx' }) > 0 && delta('fleetkey_store_seconds_count', { op: 'query' }) > 0);
    for (const s of c.info.signers) assert.equal(valueOf(after, 'fleetkey_signer_up', { node: s.nodeId }), 1);
    const depth = c.info.signers.map((s) => valueOf(after, 'fleetkey_nonce_pool_depth', { node: s.nodeId }));
    assert.ok(depth.some((d) => d > 0), 'the FROST nonce pools are counted per signer');
    assert.equal(valueOf(after, 'fleetkey_http_requests_in_flight'), 0);
    // Bounded labels, and nothing secret or per-request in them.
    for (const secret of [w.id, w.publicKey, c.info.token, clusterToken, g, agent.publicKey]) assert.ok(!text.includes(secret), 'no wallet, key, grant or token in /metrics');
    const labelNames = new Set(after.flatMap((s) => Object.keys(s.labels)));
    assert.deepEqual([...labelNames].sort(), ['code', 'component', 'le', 'node', 'op', 'path', 'result', 'scheme']);

    // Each signer's own registry: its requests, store latency, and its own policy check. The allowed
    // agent request was checked by the 2 signers that signed it; the denied one never left the server.
    const signersAfter = await Promise.all([0, 1, 2].map(async (i) => (await metricsOf(signerUrl(i), clusterToken)).samples));
    const signerDelta = (name: string, labels: Record<string, string>) => signersAfter.reduce((n, sm, i) => n + valueOf(sm, name, labels) - valueOf(signersBefore[i], name, labels), 0);
    assert.equal(signerDelta('fleetkey_policy_decisions_total', { result: 'allow' }), 2);
    assert.equal(signerDelta('fleetkey_policy_decisions_total', { result: 'deny' }), 0);
    for (const sm of signersAfter) {
      assert.ok(valueOf(sm, 'fleetkey_http_requests_total', { code: 'ok' }) > 0);
      assert.ok(valueOf(sm, 'fleetkey_store_seconds_count', { op: 'tx' }) > 0);
      assert.ok(sm.every((s) => s.labels.component === 'signer'));
    }
  });

  test("a signer is not ready when its KEK no longer opens its sealed identity, or its store refuses writes", async () => {
    const kekFile = join(c.dataDir, 'signer-1', 'kek.key');
    const good = readFileSync(kekFile);
    writeFileSync(kekFile, randomBytes(32), { mode: 0o600 });
    try {
      const r = await call(signerUrl(0), undefined, 'GET', '/readyz');
      assert.equal(r.status, 503);
      assert.deepEqual(r.body.reasons, ["shares cannot be unsealed: the KEK does not open this node's sealed identity"]);
      assert.equal((await call(signerUrl(0), undefined, 'GET', '/healthz')).status, 200, 'alive, just not ready');
    } finally {
      writeFileSync(kekFile, good, { mode: 0o600 });
    }
    assert.equal((await call(signerUrl(0), undefined, 'GET', '/readyz')).status, 200);

    const dbFile = join(c.dataDir, 'signer-2', 'signer.db');
    breakStore(dbFile, true);
    try {
      const r = await call(signerUrl(1), undefined, 'GET', '/readyz');
      assert.deepEqual([r.status, r.body.reasons], [503, ['store is not writable']]);
    } finally {
      breakStore(dbFile, false);
    }
    assert.equal((await call(signerUrl(1), undefined, 'GET', '/readyz')).status, 200);
  });

  test('the server is not ready when its store refuses writes, or no wallet has t signers reachable', async () => {
    const dbFile = join(c.dataDir, 'server', 'server.db');
    breakStore(dbFile, true);
    try {
      const r = await call(c.info.url, undefined, 'GET', '/readyz');
      assert.deepEqual([r.status, r.body.reasons], [503, ['store is not writable']]);
    } finally {
      breakStore(dbFile, false);
    }
    // Every wallet here is 2-of-3: one signer down leaves it ready, two down do not.
    await c.kill('signer-3');
    assert.equal((await call(c.info.url, undefined, 'GET', '/readyz')).status, 200);
    await c.kill('signer-2');
    const r = await call(c.info.url, undefined, 'GET', '/readyz');
    assert.equal(r.status, 503);
    assert.match(r.body.reasons.join(), /no wallet has its threshold of signers reachable \(1 of 3/);
    assert.equal((await call(c.info.url, undefined, 'GET', '/healthz')).status, 200, 'alive, just not ready');
    await c.restart('signer-2');
    await c.restart('signer-3');
    assert.equal((await call(c.info.url, undefined, 'GET', '/readyz')).status, 200);
  });

  test('SIGTERM drains the server: the signing in flight completes and verifies, a new request is refused, exit code 0', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 3, signers: 3 })).body;
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: '00' })).status, 200, 'nonce pools warm');
    // Freeze one holder of a 3-of-3 wallet: the server's signing waits on it (well inside its 5 s timeout).
    const frozen = c.pid('signer-3')!;
    process.kill(frozen, 'SIGSTOP');
    let thawed = false;
    const thaw = () => {
      if (!thawed) process.kill(frozen, 'SIGCONT');
      thawed = true;
    };
    try {
      const msg = randomBytes(40);
      const inFlight = A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
      while (valueOf((await metricsOf(c.info.url, c.info.token)).samples, 'fleetkey_http_requests_in_flight') < 1) await new Promise((r) => setTimeout(r, 10));
      const ended = c.terminate('server', 'SIGTERM');
      // Once the drain has begun, the listening socket is closed: wait for that, then try a new request.
      for (;;) {
        const h = await fetch(c.info.url + '/healthz').catch(() => undefined);
        if (!h) break;
        await h.body?.cancel();
        await new Promise((r) => setTimeout(r, 10));
      }
      const late = await A('POST', `/v1/wallets/${w.id}/sign`, { message: '01' }).then(
        (r) => r,
        (e: Error) => e,
      );
      if (late instanceof Error) assert.match(late.message, /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed/);
      else assert.deepEqual([late.status, late.body.error.code], [503, 'shutting_down']);
      // Keep the signing waiting past the drain's 1 s grace for closing sockets, so that only the
      // drain's wait for requests in flight can let it finish (still well inside the 5 s signer timeout).
      await new Promise((r) => setTimeout(r, 1500));
      thaw();
      const r = await inFlight;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(verifySig('ed25519', w.publicKey, msg, r.body.signature), 'the request in flight completed with a valid signature');
      assert.deepEqual(await ended, { code: 0, signal: null });
    } finally {
      thaw();
    }
  });

  test('SIGTERM on an idle signer: exit code 0', async () => {
    assert.deepEqual(await c.terminate('signer-1', 'SIGTERM'), { code: 0, signal: null });
  });
});
