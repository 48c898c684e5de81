/**
 * Operator tokens (issue 12) against a real cluster: created, listed and revoked with the real
 * `fleetkey operator-token` verbs (owner-signed documents), and the role of every route checked
 * over HTTP. The routes are not listed by hand here: they are the server app's own route table
 * (Hono's `app.routes`, built by the same serverApp the server process runs), so a mutating route
 * added without an entry in ROUTE_ACCESS fails the first test.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ed25519 } from '@noble/curves/ed25519.js';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { makeLogger } from '../../src/http/common.ts';
import { nodeJobRoutes } from '../../src/server/node-jobs.ts';
import { serverApp } from '../../src/server/app.ts';
import { ROUTE_ACCESS } from '../../src/server/operators.ts';
import { newOperatorToken, signOperatorDoc } from '../../src/control/operators.ts';
import { call, startCluster } from '../helpers/cluster.ts';

/** The POST routes a viewer may call: each computes an answer and stores nothing. Adding one here is a review decision. */
const READ_ONLY_POSTS = new Set(['POST /v1/passkeys/key', 'POST /v1/control/challenge', 'POST /v1/policy/simulate', 'POST /v1/verify/data']);

/** Every non-GET /v1 route of the real app, as `METHOD /path`, and a concrete path to call it on. */
function mutatingRoutes(): { key: string; method: string; path: string }[] {
  // Only the route table is read: registering routes touches none of the coordinator's parts.
  const coord = { store: { db: undefined }, ownerKeys: [], signers: { peers: () => [] } } as never;
  const app = serverApp(coord, 'x', makeLogger('test', true));
  // The membership jobs' routes are mounted by runServer beside the app (they need its job runner).
  nodeJobRoutes(app, {} as never);
  const seen = new Map<string, { key: string; method: string; path: string }>();
  for (const r of app.routes) {
    if (r.method === 'ALL' || r.method === 'GET' || !r.path.startsWith('/v1/')) continue;
    const key = `${r.method} ${r.path}`;
    const path = r.path.replace(':id', 'wal_000000000000000000000000').replace(':index', '0').replace(/:[a-z]+/g, 'x');
    seen.set(key, { key, method: r.method, path: key.includes('operator-tokens/:id') ? path.replace('wal_000000000000000000000000', 'opt_0000000000000000') : path });
  }
  return [...seen.values()];
}

describe('operator tokens and route roles', { timeout: 180_000 }, () => {
  let c: LocalCluster;
  const run = (...args: string[]): Promise<{ code: number | null; out: any; err: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args, '--json'], { env: { ...process.env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out: out.trim() ? JSON.parse(out) : undefined, err }));
    });
  const as = (token: string, method: string, path: string, body?: unknown) => call(c.info.url, token, method, path, body);

  before(async () => {
    c = await startCluster(2);
  });
  after(async () => c?.stop());

  test('every mutating route of the app has a role decision', () => {
    const routes = mutatingRoutes();
    assert.ok(routes.length >= 25, `the app's route table was read (${routes.length} mutating routes)`);
    const missing = routes.filter((r) => !(r.key in ROUTE_ACCESS)).map((r) => r.key);
    assert.deepEqual(missing, [], 'each mutating /v1 route is listed in ROUTE_ACCESS (src/server/operators.ts)');
    const viewerPosts = routes.filter((r) => ROUTE_ACCESS[r.key] === 'viewer').map((r) => r.key);
    assert.deepEqual(viewerPosts.filter((k) => !READ_ONLY_POSTS.has(k)), [], 'no mutating route is open to viewers');
  });

  test('create, list, use, forbid by role, revoke (CLI and HTTP)', async () => {
    const v = await run('operator-token', 'create', '--role', 'viewer', '--label', 'auditor');
    assert.equal(v.code, 0, v.err);
    assert.match(v.out.token, /^fko_[A-Za-z0-9_-]{43}$/);
    assert.match(v.out.id, /^opt_[0-9a-f]{16}$/);
    const o = await run('operator-token', 'create', '--role', 'operator');
    assert.equal(o.code, 0, o.err);

    // Reads: both roles; the token list is the admin's.
    for (const t of [v.out.token, o.out.token]) {
      assert.equal((await as(t, 'GET', '/v1/wallets')).status, 200);
      assert.equal((await as(t, 'GET', '/v1/grants')).status, 200);
      const list = await as(t, 'GET', '/v1/operator-tokens');
      assert.equal(list.status, 403);
      assert.equal(list.body.error.code, 'forbidden_role');
    }
    assert.equal((await as('fko_' + 'A'.repeat(43), 'GET', '/v1/wallets')).status, 401, 'an unknown token');

    // Every mutating route: a viewer is refused by role unless the route is a pure computation or
    // authenticated by a signature; an operator may enrol devices and create wallets only.
    for (const r of mutatingRoutes()) {
      const access = ROUTE_ACCESS[r.key];
      const rv = await as(v.out.token, r.method, r.path, {});
      const ro = await as(o.out.token, r.method, r.path, {});
      if (access === 'public' || access === 'viewer') {
        assert.notEqual(rv.body?.error?.code, 'forbidden_role', `${r.key} (viewer)`);
        assert.notEqual(ro.body?.error?.code, 'forbidden_role', `${r.key} (operator)`);
        continue;
      }
      assert.equal(rv.status, 403, `${r.key}: viewer ${JSON.stringify(rv.body)}`);
      assert.equal(rv.body.error.code, 'forbidden_role', r.key);
      if (access === 'operator') {
        // Past the role check: the empty body is what is refused.
        assert.ok(ro.status === 400 || ro.status === 404, `${r.key}: operator ${ro.status} ${JSON.stringify(ro.body)}`);
        assert.notEqual(ro.body.error.code, 'forbidden_role', r.key);
      } else {
        assert.equal(ro.status, 403, `${r.key}: operator ${JSON.stringify(ro.body)}`);
        assert.equal(ro.body.error.code, 'forbidden_role', r.key);
      }
    }

    // The listing: no token and no hash in it; last use recorded.
    const l = await run('operator-token', 'list');
    assert.equal(l.code, 0, l.err);
    const mine = l.out.find((t: any) => t.id === v.out.id);
    assert.deepEqual(Object.keys(mine).sort(), ['createdAt', 'id', 'label', 'lastUsedAt', 'revokedAt', 'role', 'status']);
    assert.equal(mine.label, 'auditor');
    assert.equal(mine.status, 'active');
    assert.equal(typeof mine.lastUsedAt, 'number');
    assert.ok(!JSON.stringify(l.out).includes(v.out.token.slice(4)), 'the token is never listed');

    // Only the owner's signature creates or revokes: another key's document is refused.
    const stranger = ed25519.utils.randomSecretKey();
    const t = newOperatorToken();
    const forged = await call(c.info.url, c.info.token, 'POST', '/v1/operator-tokens', signOperatorDoc({ kind: 'operator_token', id: t.id, role: 'operator', tokenHash: t.tokenHash, issuedAt: Date.now() }, stranger));
    assert.equal(forged.status, 400);
    assert.equal(forged.body.error.code, 'bad_signature');
    const forgedRevoke = await call(c.info.url, c.info.token, 'POST', `/v1/operator-tokens/${v.out.id}/revoke`, signOperatorDoc({ kind: 'operator_token_revocation', id: v.out.id, issuedAt: Date.now() }, stranger));
    assert.equal(forgedRevoke.body.error.code, 'bad_signature');
    assert.equal((await as(v.out.token, 'GET', '/v1/wallets')).status, 200, 'still valid after a forged revocation');

    const rev = await run('operator-token', 'revoke', v.out.id);
    assert.equal(rev.code, 0, rev.err);
    assert.equal(rev.out.status, 'revoked');
    for (const r of [{ method: 'GET', path: '/v1/wallets' }, ...mutatingRoutes().filter((x) => ROUTE_ACCESS[x.key] !== 'public')]) {
      const res = await as(v.out.token, r.method, r.path, r.method === 'GET' ? undefined : {});
      assert.equal(res.status, 401, `${r.method} ${r.path} with a revoked token`);
      assert.equal(res.body.error.code, 'unauthorized');
    }
    assert.equal((await as(o.out.token, 'GET', '/v1/wallets')).status, 200, 'revoking one token leaves the other');
  });
});
