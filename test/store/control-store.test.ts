/**
 * ControlStore against every backend (SQLite always, PostgreSQL with FLEETKEY_TEST_PG), like store.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { storageBackends } from '../helpers/backends.ts';
import { ControlStore } from '../../src/store/control-store.ts';
import { SignerStore } from '../../src/store/signer-store.ts';
import { signControlDoc, publicKeyOf, type GrantDoc } from '../../src/control/index.ts';
import { compilePolicy, evaluate, validatePolicy, NO_USAGE, type Reservation } from '../../src/policy/index.ts';
import type { Action } from '../../src/chains/types.ts';
import fc from 'fast-check';
import { codeOfAsync } from '../helpers/errors.ts';

const { backends, fresh: freshDb } = storageBackends('fk-control');

const OWNER = new Uint8Array(32).fill(1);
const OWNER_PUB = publicKeyOf(OWNER, 'ed25519');
const NOW = 1_800_000_000_000;
const H = 3_600_000;
const digest = (n: number | string) => String(n).padStart(64, '0').replace(/[^0-9a-f]/g, 'a').slice(-64);
const rid = (n: number | string) => `req_${String(n).padStart(6, '0')}`;

async function fresh(cfg: Parameters<typeof freshDb>[0]): Promise<ControlStore> {
  const db = await freshDb(cfg);
  const s = new ControlStore(db, { ownerPublicKeys: [OWNER_PUB] });
  await s.init();
  return s;
}

const sum = (counterKey: string, amount: bigint, max: bigint, windowMs = 24 * H): Reservation => ({ counterKey, amount, windowMs, kind: 'sum', checks: [{ windowMs, max }] });
const cnt = (counterKey: string, max: number, windowMs = H): Reservation => ({ counterKey, amount: 1n, windowMs, kind: 'count', checks: [{ windowMs, max: BigInt(max) }] });
const USDC = 'sum/wallet/8453/0x833589fcd6edb6e08f4c7da32a3e2df4b2c3f0d7';
const opts = (n: number | string, extra: Partial<Parameters<ControlStore['reserve']>[2]> = {}) => ({ walletId: 'wal_a', requestDigest: digest(n), now: NOW, ttlMs: 60_000, ...extra });

const code = codeOfAsync;

const policy = (version: number, max = '100') => ({ version, rules: [{ type: 'allow', chainIds: ['8453'] }, { type: 'window_cap', asset: { chainId: '8453', asset: 'native' }, max, window: '24h' }] });
const grant = (extra: Partial<GrantDoc> = {}): GrantDoc => ({
  kind: 'grant', id: 'grant-1', agent: { keyType: 'ed25519', publicKey: publicKeyOf(new Uint8Array(32).fill(9), 'ed25519') }, wallets: ['wal_a'], expiresAt: NOW + H, issuedAt: NOW, ...extra,
});

for (const [name, cfg] of backends) {
  describe(`control store (${name})`, () => {
    test('policy versions are monotonic per wallet; identical resubmission is a no-op', async () => {
      const s = await fresh(cfg);
      await s.init();
      const p3 = signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 3, policy: policy(3), issuedAt: NOW }, OWNER);
      assert.equal((await s.putControlDoc(p3)).status, 'stored');
      assert.equal((await s.putControlDoc(JSON.parse(JSON.stringify(p3)))).status, 'exists');
      assert.equal(await code(s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 3, policy: policy(3, '200'), issuedAt: NOW }, OWNER))), 'conflict');
      assert.equal(await code(s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 2, policy: policy(2), issuedAt: NOW }, OWNER))), 'conflict');
      assert.equal((await s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_b', version: 1, policy: policy(1), issuedAt: NOW }, OWNER))).status, 'stored');
      await s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 7, policy: policy(7, '5'), issuedAt: NOW }, OWNER));
      const latest = (await s.latestPolicy('wal_a'))!;
      assert.equal(latest.version, 7);
      assert.equal(latest.doc.version, 7);
      assert.equal(validatePolicy(latest.doc.policy).version, 7);
      assert.equal((await s.latestPolicy('wal_b'))!.version, 1);
      assert.equal(await s.latestPolicy('wal_c'), undefined);
      // concurrent puts of versions 8..27: all stored, latest is the highest
      const many = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 8 + i, policy: policy(8 + i), issuedAt: NOW }, OWNER))));
      assert.ok(many.some((r) => r.status === 'fulfilled'));
      assert.equal((await s.latestPolicy('wal_a'))!.version, 27);
    });

    test('grants, revocations and approvers; documents not signed by the pinned owner are refused and not stored', async () => {
      const s = await fresh(cfg);
      const g = signControlDoc(grant(), OWNER);
      assert.equal((await s.putControlDoc(g)).status, 'stored');
      assert.equal((await s.putControlDoc(g)).status, 'exists');
      assert.equal(await code(s.putControlDoc(signControlDoc(grant({ maxUses: 1 }), OWNER))), 'conflict');
      assert.deepEqual(await s.getGrant('grant-1'), grant());
      assert.equal(await s.getGrant('nope'), undefined);
      assert.equal(await s.isRevoked('grant-1'), false);
      assert.equal((await s.putControlDoc(signControlDoc({ kind: 'revocation', grantId: 'grant-1', issuedAt: NOW }, OWNER))).status, 'stored');
      assert.equal((await s.putControlDoc(signControlDoc({ kind: 'revocation', grantId: 'grant-1', issuedAt: NOW + 1 }, OWNER))).status, 'exists');
      assert.equal(await s.isRevoked('grant-1'), true);
      assert.equal(await s.approvers(), undefined);
      const apv = (v: number, who: string) => signControlDoc({ kind: 'approvers', version: v, approvers: { [who]: { keyType: 'ed25519', publicKey: OWNER_PUB } }, issuedAt: NOW }, OWNER);
      await s.putControlDoc(apv(2, 'alice'));
      assert.equal(await code(s.putControlDoc(apv(1, 'bob'))), 'conflict');
      await s.putControlDoc(apv(3, 'carol'));
      assert.deepEqual(Object.keys((await s.approvers())!.approvers), ['carol']);
      const intruder = new Uint8Array(32).fill(2);
      assert.equal(await code(s.putControlDoc(signControlDoc(grant({ id: 'evil' }), intruder))), 'bad_signature');
      assert.equal(await code(s.putControlDoc({ ...signControlDoc(grant({ id: 'evil' }), intruder), signer: OWNER_PUB })), 'bad_signature');
      assert.equal(await code(s.putControlDoc({ ...g, doc: { ...g.doc, id: 'evil' } })), 'bad_signature');
      assert.equal(await s.getGrant('evil'), undefined);
    });

    test('1,000 concurrent reserves each worth 1/100 of a window cap: exactly 100 succeed, the cap is never exceeded', async () => {
      const s = await fresh(cfg);
      const cap = 100_000_000n;
      const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.reserve(rid(i), [sum(USDC, cap / 100n, cap)], opts(i))));
      const ok = results.filter((r) => r.ok);
      assert.equal(ok.length, 100);
      assert.ok(results.every((r) => r.ok || r.reason === 'limit_exceeded'));
      const view = await s.usageView('wal_a', { now: NOW, keys: [USDC] });
      assert.equal(view.sum(USDC, NOW - 24 * H), cap);
      assert.equal(view.count(USDC, NOW - 24 * H), 100);
      const refused = results.find((r) => !r.ok);
      assert.ok(refused && !refused.ok && refused.reason === 'limit_exceeded' && refused.exceeded[0].used + refused.exceeded[0].amount > cap);
    });

    test('concurrent reserves over a shared fleet counter and per-wallet counters, with a rate limit', async () => {
      const s = await fresh(cfg);
      const fleet = 'sum/fleet/8453/native';
      const wallet = 'sum/wallet/8453/native';
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const w = ['wal_a', 'wal_b', 'walXa'][i % 3];
          return s.reserve(rid(i), [sum(fleet, 10n, 1000n), sum(wallet, 10n, 400n), cnt('count/wallet/all', 35)], opts(i, { walletId: w })).then((r) => [w, r.ok] as const);
        }),
      );
      const per = (w: string) => results.filter(([x, ok]) => x === w && ok).length;
      assert.equal(per('wal_a') + per('wal_b') + per('walXa'), 100, 'the fleet cap (100 reservations) is shared by all wallets');
      assert.ok([per('wal_a'), per('wal_b'), per('walXa')].every((n) => n <= 35), 'rate limit 35 per wallet');
      const a = await s.usageView('wal_a', { now: NOW });
      assert.equal(a.sum(fleet, 0), 1000n);
      assert.equal(a.sum(wallet, 0), 10n * BigInt(per('wal_a')), 'wal_a sees only its own wallet counter (not walXa: no LIKE wildcards)');
      assert.equal(a.count('count/wallet/all', 0), per('wal_a'));
      // the rate limit binds on its own once the fleet cap is out of the way
      const more = await Promise.all(Array.from({ length: 60 }, (_, i) => s.reserve(rid(1000 + i), [cnt('count/wallet/all', 35)], opts(1000 + i, { walletId: 'wal_b' }))));
      assert.equal(more.filter((r) => r.ok).length, 35 - per('wal_b'));
    });

    test('idempotent by request id: a retry returns the reservation without counting twice; another request under the same id conflicts', async () => {
      const s = await fresh(cfg);
      const first = await s.reserve(rid(1), [sum(USDC, 60n, 100n)], opts(1));
      assert.ok(first.ok && !first.replayed && first.request.status === 'reserved');
      const again = await s.reserve(rid(1), [sum(USDC, 60n, 100n)], opts(1, { now: NOW + 10 }));
      assert.ok(again.ok && again.replayed);
      assert.deepEqual(again.request, first.request);
      const burst = await Promise.all(Array.from({ length: 30 }, () => s.reserve(rid(2), [sum(USDC, 30n, 100n)], opts(2))));
      assert.equal(burst.filter((r) => r.ok && !r.replayed).length, 1);
      assert.ok(burst.every((r) => r.ok));
      assert.equal((await s.usageView('wal_a', { now: NOW, keys: [USDC] })).sum(USDC, 0), 90n);
      assert.equal(await code(s.reserve(rid(1), [sum(USDC, 1n, 100n)], opts(99))), 'conflict');
      assert.equal(await code(s.reserve(rid(1), [sum(USDC, 60n, 100n)], opts(1, { walletId: 'wal_b' }))), 'conflict');
      assert.equal(await s.commit(rid(1), NOW), 'committed');
      const after = await s.reserve(rid(1), [sum(USDC, 60n, 100n)], opts(1));
      assert.ok(after.ok && after.replayed && after.request.status === 'committed');
    });

    test('commit and release', async () => {
      const s = await fresh(cfg);
      const view = async () => (await s.usageView('wal_a', { now: NOW, keys: [USDC] })).sum(USDC, 0);
      await s.reserve(rid(1), [sum(USDC, 40n, 100n)], opts(1));
      await s.reserve(rid(2), [sum(USDC, 40n, 100n)], opts(2));
      assert.equal(await view(), 80n);
      assert.equal(await s.commit(rid(1), NOW), 'committed');
      assert.equal(await s.commit(rid(1), NOW), 'already_committed');
      assert.equal(await s.release(rid(1), NOW), 'committed', 'a committed reservation cannot be released');
      assert.equal(await s.release(rid(2), NOW), 'released');
      assert.equal(await s.release(rid(2), NOW), 'already_released');
      assert.equal(await s.commit(rid(2), NOW), 'released', 'a released reservation cannot be committed');
      assert.equal(await s.commit(rid(3), NOW), 'unknown');
      assert.equal(await s.release(rid(3), NOW), 'unknown');
      assert.equal(await view(), 40n);
      // a released request may be reserved afresh (checked again)
      const again = await s.reserve(rid(2), [sum(USDC, 40n, 100n)], opts(2));
      assert.ok(again.ok && !again.replayed && again.request.status === 'reserved');
      assert.equal(await view(), 80n);
      assert.equal((await s.getRequest(rid(2)))!.reservations.length, 1);
    });

    test('a reserved row past its ttl no longer counts; expireStale marks it; a late commit still counts', async () => {
      const s = await fresh(cfg);
      assert.ok((await s.reserve(rid(1), [sum(USDC, 70n, 100n)], opts(1, { ttlMs: 1000 }))).ok);
      assert.ok(!(await s.reserve(rid(2), [sum(USDC, 70n, 100n)], opts(2, { now: NOW + 999 }))).ok);
      assert.ok((await s.reserve(rid(3), [sum(USDC, 70n, 100n)], opts(3, { now: NOW + 1000 }))).ok, 'expired at its ttl');
      assert.deepEqual(await s.expireStale(NOW + 1000), [rid(1)]);
      assert.deepEqual(await s.expireStale(NOW + 1000), []);
      assert.equal((await s.getRequest(rid(1)))!.status, 'expired');
      assert.equal(await s.commit(rid(1), NOW + 2000), 'committed');
      assert.equal((await s.usageView('wal_a', { now: NOW + 2000, keys: [USDC] })).sum(USDC, 0), 140n, 'a signature that exists is counted');
      // window: a record exactly one window old no longer counts
      assert.ok((await s.reserve(rid(4), [sum(USDC, 100n, 100n, 24 * H)], opts(4, { now: NOW + 24 * H + 1000 }))).ok);
    });

    test('a failed reserve writes nothing (all or nothing across counters), and leaves a released request released', async () => {
      const s = await fresh(cfg);
      await s.reserve(rid(1), [sum('sum/wallet/1/native', 90n, 100n)], opts(1));
      const r = await s.reserve(rid(2), [sum(USDC, 10n, 100n), sum('sum/wallet/1/native', 20n, 100n), cnt('count/wallet/all', 5)], opts(2));
      assert.ok(!r.ok && r.reason === 'limit_exceeded');
      assert.deepEqual(r.exceeded, [{ counterKey: 'sum/wallet/1/native', windowMs: 24 * H, max: 100n, used: 90n, amount: 20n }]);
      assert.equal(await s.getRequest(rid(2)), undefined);
      const v = await s.usageView('wal_a', { now: NOW });
      assert.equal(v.sum(USDC, 0), 0n);
      assert.equal(v.count('count/wallet/all', 0), 0);
      // re-reserving a released request that no longer fits: refused, and still released with no usage
      await s.reserve(rid(3), [sum(USDC, 50n, 100n)], opts(3));
      await s.release(rid(3), NOW);
      await s.reserve(rid(4), [sum(USDC, 60n, 100n)], opts(4));
      assert.ok(!(await s.reserve(rid(3), [sum(USDC, 50n, 100n)], opts(3))).ok);
      assert.equal((await s.getRequest(rid(3)))!.status, 'released');
      assert.equal((await s.usageView('wal_a', { now: NOW, keys: [USDC] })).sum(USDC, 0), 60n);
      // invalid input: validation_failed with a path, nothing written
      assert.equal(await code(s.reserve(rid(5), [{ ...sum(USDC, 1n, 2n), kind: 'count' }], opts(5))), 'validation_failed');
      assert.equal(await code(s.reserve('bad id', [], opts(5))), 'validation_failed');
      assert.equal(await code(s.reserve(rid(5), [sum('sum/other/x', 1n, 2n)], opts(5))), 'validation_failed');
      assert.equal(await s.getRequest(rid(5)), undefined);
    });

    test('grant uses: maxUses enforced atomically under concurrency, consistent with the request log', async () => {
      const s = await fresh(cfg);
      const g = { id: 'grant-1', maxUses: 3 };
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.reserve(rid(i), [], opts(i, { grant: g }))));
      assert.equal(results.filter((r) => r.ok).length, 3);
      const no = results.find((r) => !r.ok);
      assert.ok(no && !no.ok && no.reason === 'grant_exhausted' && no.usesSoFar === 3);
      assert.equal(await s.usesSoFar('grant-1', NOW), 3);
      const okIds = results.flatMap((r) => (r.ok ? [r.request.requestId] : []));
      await s.commit(okIds[0], NOW);
      await s.release(okIds[1], NOW);
      assert.equal(await s.usesSoFar('grant-1', NOW), 2);
      assert.equal(await s.usesSoFar('grant-1', NOW + 60_000), 1, 'a lapsed reservation is not a use');
      assert.ok((await s.reserve(rid(100), [], opts(100, { grant: g }))).ok);
      assert.equal(await s.usesSoFar('grant-1', NOW), 3);
      assert.equal(await s.usesSoFar('other', NOW), 0);
    });

    test('a revoked grant reserves nothing, even when the revocation lands after the pre-check', async () => {
      const s = await fresh(cfg);
      assert.ok((await s.reserve(rid(1), [sum(USDC, 1n, 100n)], opts(1, { grant: { id: 'grant-1' } }))).ok);
      await s.putControlDoc(signControlDoc({ kind: 'revocation', grantId: 'grant-1', issuedAt: NOW }, OWNER));
      const r = await s.reserve(rid(2), [sum(USDC, 1n, 100n)], opts(2, { grant: { id: 'grant-1', maxUses: 10 } }));
      assert.deepEqual(r, { ok: false, reason: 'grant_revoked' });
      assert.equal(await s.getRequest(rid(2)), undefined);
    });

    test('reserveAndCommitHook: consuming the nonce and counting the request are one transaction', async () => {
      const s = await fresh(cfg);
      const signer = new SignerStore(s.db);
      await signer.init();
      await signer.putNonces([1, 2].map((i) => ({ id: `n${i}`, walletId: 'wal_a', epoch: 0, sealed: 's', commitment: 'c' })));
      await s.reserve(rid(1), [sum(USDC, 10n, 100n)], opts(1));
      assert.ok((await signer.consumeNonce('n1', 'wal_a', rid(1), s.reserveAndCommitHook(rid(1), [sum(USDC, 10n, 100n)], opts(1)))).ok);
      assert.equal((await s.getRequest(rid(1)))!.status, 'committed');
      assert.equal(await code(signer.consumeNonce('n2', 'wal_a', rid(2), s.reserveAndCommitHook(rid(2), [sum(USDC, 91n, 100n)], opts(2)))), 'limit_exceeded');
      assert.equal(await signer.countNonces('wal_a'), 1, 'the nonce was not consumed for a request over the cap');
      assert.equal(await s.getRequest(rid(2)), undefined, 'nor was the request counted');
    });

    test('property: concurrent random reserves never exceed the cap, and every refusal was needed', async () => {
      const s = await fresh(cfg);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.bigInt({ min: 1n, max: 60n }), { minLength: 1, maxLength: 40 }), fc.bigInt({ min: 1n, max: 300n }), async (amounts, cap) => {
          const key = `sum/wallet/8453/native/to/r${run++}`;
          const results = await Promise.all(amounts.map((a, i) => s.reserve(rid(`${run}_${i}`), [sum(key, a, cap)], opts(`${run}x${i}`))));
          const total = amounts.reduce((t, a, i) => (results[i].ok ? t + a : t), 0n);
          assert.ok(total <= cap);
          assert.equal((await s.usageView('wal_a', { now: NOW, keys: [key] })).sum(key, 0), total);
          amounts.forEach((a, i) => assert.ok(results[i].ok || total + a > cap, 'a refused reservation would not have fit'));
        }),
        { numRuns: name === 'sqlite' ? 40 : 15 },
      );
    });

    test('usageView with keys refuses other keys; wallet scope separates wallets, fleet scope does not', async () => {
      const s = await fresh(cfg);
      await s.reserve(rid(1), [sum('sum/wallet/8453/native', 5n, 100n), sum('sum/fleet/8453/native', 5n, 100n)], opts(1, { walletId: 'wal_1' }));
      const v = await s.usageView('wal_2', { now: NOW, keys: ['sum/wallet/8453/native', 'sum/fleet/8453/native'] });
      assert.equal(v.sum('sum/wallet/8453/native', 0), 0n);
      assert.equal(v.sum('sum/fleet/8453/native', 0), 5n);
      assert.throws(() => v.sum('sum/wallet/1/native', 0), /not loaded/);
      assert.equal((await s.pruneUsage(NOW + 24 * H)), 2);
    });

    test('totals computed by the database equal the records summed one by one: uint256 amounts, int64 overflow, windows, live rows, the request left out', async () => {
      const s = await fresh(cfg);
      const K = 'sum/wallet/1/native';
      const C = 'count/wallet/all';
      const big = 2n ** 256n - 1n; // 78 digits: never a 64-bit integer
      const near = 999_999_999_999_999_999n; // 18 digits, the longest the SQLite path sums as integers; ten overflow int64
      const huge = 10n ** 80n;
      const amounts = [big, near, near, near, near, near, near, near, near, near, near, 1n, 0n, 123_456_789n];
      let i = 0;
      for (const a of amounts) {
        i++;
        const r = await s.reserve(rid(`t${i}`), [sum(K, a, huge), cnt(C, 1000, 24 * H)], opts(`t${i}`, { now: NOW - i * 60_000 }));
        assert.ok(r.ok, JSON.stringify(r, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
        if (i % 2) await s.commit(rid(`t${i}`), NOW);
      }
      // A released request and an unexpired reservation: the first does not count, the second does (ttl 60 s from its own time).
      await s.release(rid('t2'));
      const live = (k: number) => k !== 2 && (k % 2 === 1 || NOW - k * 60_000 + 60_000 > NOW);
      const expect = (sinceMs: number, except?: number) => {
        const inWindow = amounts.map((a, j) => [a, j + 1] as const).filter(([, k]) => NOW - k * 60_000 > sinceMs && live(k) && k !== except);
        return { sum: inWindow.reduce((t, [a]) => t + a, 0n), count: inWindow.length };
      };
      for (const windowMs of [90_000, 5 * 60_000, 11 * 60_000, 24 * H])
        for (const except of [undefined, 1, 3]) {
          const v = await s.usageTotals('wal_a', { now: NOW, checks: [{ counterKey: K, windowMs }, { counterKey: C, windowMs }], ...(except ? { except: rid(`t${except}`) } : {}) });
          const want = expect(NOW - windowMs, except);
          assert.equal(v.sum(K, NOW - windowMs), want.sum, `sum over ${windowMs} ms without ${except}`);
          assert.equal(v.count(C, NOW - windowMs), want.count, `count over ${windowMs} ms without ${except}`);
          const rows = await s.usageView('wal_a', { now: NOW, keys: [K, C], ...(except ? { except: rid(`t${except}`) } : {}) });
          assert.equal(rows.sum(K, NOW - windowMs), want.sum, 'the records, one by one');
          assert.throws(() => v.sum(K, NOW - windowMs - 1), /not loaded/, 'a window not asked for');
        }
      assert.ok(expect(NOW - 24 * H).sum > 2n ** 63n, 'the sum overflows a 64-bit integer');
      // The atomic reservation uses the same totals: exactly up to the cap, not one unit more.
      const used = expect(NOW - 24 * H).sum;
      const over = await s.reserve(rid('t-over'), [sum(K, 2n, used + 1n)], opts('t-over'));
      assert.ok(!over.ok && over.reason === 'limit_exceeded' && over.exceeded[0].used === used, JSON.stringify(over, (_, x) => (typeof x === 'bigint' ? x.toString() : x)));
      assert.ok((await s.reserve(rid('t-fits'), [sum(K, 1n, used + 1n)], opts('t-fits'))).ok);
    });

    test('end to end with the policy engine: evaluate with the node\'s own counters, reserve, deny once the window is full', async () => {
      const s = await fresh(cfg);
      await s.putControlDoc(signControlDoc({ kind: 'policy', walletId: 'wal_a', version: 1, policy: { version: 1, rules: [{ type: 'allow', chainIds: ['8453'] }, { type: 'window_cap', asset: { chainId: '8453', asset: 'native' }, max: '100', window: '24h' }, { type: 'rate_limit', max: 3, window: '1h' }] }, issuedAt: NOW }, OWNER));
      const compiled = compilePolicy(validatePolicy((await s.latestPolicy('wal_a'))!.doc.policy));
      const action = (amount: bigint): Action => ({ chain: 'ethereum', chainId: '8453', kind: 'native_transfer', to: '0x1111111111111111111111111111111111111111', effects: [{ type: 'transfer', asset: 'native', to: '0x1111111111111111111111111111111111111111', amount }] });
      const attempt = async (i: number, amount: bigint) => {
        const pre = evaluate(compiled, action(amount), { now: NOW, usage: NO_USAGE });
        if (pre.outcome === 'deny') return 'deny';
        const usage = await s.usageView('wal_a', { now: NOW, keys: pre.reservations.map((r) => r.counterKey) });
        const d = evaluate(compiled, action(amount), { now: NOW, usage });
        if (d.outcome !== 'allow') return d.outcome;
        const r = await s.reserve(rid(i), d.reservations, opts(i));
        return r.ok ? 'reserved' : r.reason;
      };
      assert.equal(await attempt(1, 60n), 'reserved');
      assert.equal(await attempt(2, 50n), 'deny', 'the engine sees the reserved 60');
      assert.equal(await attempt(3, 40n), 'reserved');
      assert.equal(await attempt(4, 0n), 'reserved');
      assert.equal(await attempt(5, 0n), 'deny', 'rate limit of 3 per hour');
      for (const i of [1, 3, 4]) assert.equal(await s.commit(rid(i), NOW + 1), 'committed'); // else they lapse after their 60 s ttl
      const full = evaluate(compiled, action(1n), { now: NOW + H, usage: await s.usageView('wal_a', { now: NOW + H }) });
      assert.deepEqual([full.outcome, full.reasons.map((r) => r.code)], ['deny', ['window_cap_exceeded']], 'rate limit reset, window sum still full');
      // two evaluations racing on the same usage both allow; the store's re-check refuses the second
      const later = NOW + 25 * H;
      const usage = await s.usageView('wal_a', { now: later });
      const [d1, d2] = [evaluate(compiled, action(70n), { now: later, usage }), evaluate(compiled, action(70n), { now: later, usage })];
      assert.deepEqual([d1.outcome, d2.outcome], ['allow', 'allow']);
      assert.ok((await s.reserve(rid(10), d1.reservations, opts(10, { now: later }))).ok);
      const second = await s.reserve(rid(11), d2.reservations, opts(11, { now: later }));
      assert.ok(!second.ok && second.reason === 'limit_exceeded');
    });
  });
}
