/**
 * Property tests: the engine against a small, obviously-correct reference model for allow/deny lists,
 * per-transaction caps, rolling-window caps and rate limits, on random policies, actions and usage
 * histories (with window-boundary timestamps on purpose), plus order-independence and narrowing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Action, Effect } from '../../src/chains/types.ts';
import { assetKey, combine, countKey, evaluate, memoryUsage, NO_USAGE, sumKey, validatePolicy, type UsageRecord } from '../../src/policy/index.ts';

const H = 3_600_000;
const NOW = Date.parse('2026-11-18T12:00:00Z');
const CHAINS = ['1', '8453'] as const;
const ADDRS = ['0x1111111111111111111111111111111111111111', '0x2222222222222222222222222222222222222222', '0xaBcDef0000000000000000000000000000000003', '0x00000000000000000000000000000000000000Fe'];
const TOKEN = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const ASSETS = ['native', TOKEN] as const;
const WINDOWS = { '1h': H, '24h': 24 * H } as const;

// ------------------------------------------------------------------ generators
const chain = fc.constantFrom(...CHAINS);
const addrIdx = fc.nat({ max: ADDRS.length - 1 });
/** The same address in random letter case: the engine must treat them as one. */
const addr = fc.tuple(addrIdx, fc.boolean()).map(([i, up]) => (up ? '0x' + ADDRS[i].slice(2).toUpperCase() : ADDRS[i].toLowerCase()));
const assetRef = fc.record({ chainId: chain, asset: fc.constantFrom(...ASSETS) });
const amount = fc.bigInt({ min: 0n, max: 300n });
const windowName = fc.constantFrom('1h', '24h') as fc.Arbitrary<keyof typeof WINDOWS>;

type RawRule =
  | { type: 'allow'; chainIds?: string[]; to?: string[]; kinds?: string[] }
  | { type: 'deny'; chainIds?: string[]; to?: string[] }
  | { type: 'tx_cap'; asset: { chainId: string; asset: string }; max: string; perDestination?: boolean }
  | { type: 'window_cap'; asset: { chainId: string; asset: string }; max: string; window: keyof typeof WINDOWS; perDestination?: boolean }
  | { type: 'rate_limit'; max: number; window: keyof typeof WINDOWS };

const optList = <T>(a: fc.Arbitrary<T>) => fc.option(fc.uniqueArray(a, { minLength: 1, maxLength: 3 }), { nil: undefined });
const kindArb = fc.constantFrom('token_transfer', 'contract_call', 'native_transfer', 'unknown');
const allowArb = fc.record({ type: fc.constant('allow' as const), chainIds: optList(chain), to: optList(addr), kinds: optList(kindArb) }, { requiredKeys: ['type'] });
const ruleArb: fc.Arbitrary<RawRule> = fc.oneof(
  { arbitrary: allowArb, weight: 2 },
  {
    arbitrary: fc.record({ type: fc.constant('deny' as const), chainIds: optList(chain), to: optList(addr) }, { requiredKeys: ['type'] }).filter((r) => !!(r.chainIds || r.to)),
    weight: 1,
  },
  { arbitrary: fc.record({ type: fc.constant('tx_cap' as const), asset: assetRef, max: amount.map(String), perDestination: fc.boolean() }), weight: 2 },
  {
    arbitrary: fc.record({ type: fc.constant('window_cap' as const), asset: assetRef, max: amount.map((a) => String(a * 3n)), window: windowName, perDestination: fc.boolean() }),
    weight: 3,
  },
  { arbitrary: fc.record({ type: fc.constant('rate_limit' as const), max: fc.nat({ max: 14 }), window: windowName }), weight: 1 },
);
/** Most policies start with a broad allow rule, so that the limits behind it get exercised. */
const rulesArb = fc
  .tuple(fc.option(fc.record({ type: fc.constant('allow' as const), chainIds: optList(chain) }, { requiredKeys: ['type'] }), { freq: 4, nil: undefined }), fc.array(ruleArb, { maxLength: 7 }))
  .map(([first, rest]) => (first ? [first as RawRule, ...rest] : rest));

const effectArb: fc.Arbitrary<Effect> = fc.record({ type: fc.constant('transfer' as const), asset: fc.constantFrom(...ASSETS), to: addr, amount });
const actionArb: fc.Arbitrary<Action> = fc
  .record({ chainId: chain, effects: fc.array(effectArb, { maxLength: 3 }), to: fc.option(addr, { nil: undefined }), kind: fc.oneof({ arbitrary: fc.constantFrom('token_transfer', 'contract_call', 'native_transfer'), weight: 9 }, { arbitrary: fc.constant('unknown'), weight: 1 }) as fc.Arbitrary<Action['kind']> })
  .map(({ chainId, effects, to, kind }) => ({ chain: 'ethereum' as const, chainId, kind, ...(to ? { to } : {}), effects }));

/** A past signed spend, `ago` ms before NOW; boundary offsets are over-represented. */
interface Spend {
  ago: number;
  chainId: string;
  asset: string;
  to: string;
  amount: bigint;
}
const agoArb = fc.oneof(fc.integer({ min: 0, max: 30 * H }), fc.constantFrom(0, 1, H - 1, H, H + 1, 24 * H - 1, 24 * H, 24 * H + 1));
const historyArb = fc.array(fc.record({ ago: agoArb, chainId: chain, asset: fc.constantFrom(...ASSETS), to: addr, amount }), { maxLength: 12 });

// ------------------------------------------------------------------ the store, as a signer would have filled it
function usageOf(history: Spend[]): UsageRecord[] {
  const out: UsageRecord[] = [];
  for (const s of history) {
    const ak = assetKey(s.chainId, s.asset);
    const at = NOW - s.ago;
    out.push({ key: sumKey('wallet', ak), amount: s.amount, at });
    out.push({ key: sumKey('wallet', ak, s.to.toLowerCase()), amount: s.amount, at });
    out.push({ key: countKey('wallet'), amount: 1n, at });
  }
  return out;
}

// ------------------------------------------------------------------ the reference model: loops over arrays, nothing clever
const lc = (s: string) => s.toLowerCase();

function reference(rules: RawRule[], a: Action, history: Spend[]): { outcome: 'allow' | 'deny'; codes: string[] } {
  const codes: string[] = [];
  const transfers = a.effects.filter((e): e is Extract<Effect, { type: 'transfer' }> => e.type === 'transfer');
  let dests: string[] = [];
  for (const t of transfers) if (!dests.includes(lc(t.to))) dests.push(lc(t.to));
  if (dests.length === 0 && a.to) dests = [lc(a.to)];
  const touched = a.to && !dests.includes(lc(a.to)) ? [...dests, lc(a.to)] : dests;

  let allowed = false;
  for (const r of rules) {
    // without `kinds`, an allow rule covers transfers and approvals only
    if (r.type !== 'allow' || !(r.kinds ?? ['native_transfer', 'token_transfer', 'token_approval']).includes(a.kind)) continue;
    const chainOk = !r.chainIds || r.chainIds.includes(a.chainId!);
    const toOk = !r.to || (touched.length > 0 && touched.every((d) => r.to!.map(lc).includes(d)));
    if (chainOk && toOk) allowed = true;
  }
  if (!allowed) codes.push(a.kind === 'unknown' ? 'unknown_kind' : 'no_allow_rule');

  for (const r of rules) {
    if (r.type === 'deny') {
      const chainHit = !r.chainIds || r.chainIds.includes(a.chainId!);
      const toHit = !r.to || touched.some((d) => r.to!.map(lc).includes(d));
      if (chainHit && toHit) codes.push('denied_by_rule');
    }
    if (r.type === 'tx_cap' || r.type === 'window_cap') {
      const mine = transfers.filter((t) => a.chainId === r.asset.chainId && lc(t.asset) === lc(r.asset.asset));
      const groups: [string | undefined, bigint][] = [];
      if (r.perDestination) {
        for (const d of dests) {
          const s = mine.filter((t) => lc(t.to) === d).reduce((x, t) => x + t.amount, 0n);
          if (s > 0n) groups.push([d, s]);
        }
      } else {
        const s = mine.reduce((x, t) => x + t.amount, 0n);
        if (s > 0n) groups.push([undefined, s]);
      }
      for (const [d, amt] of groups) {
        let used = 0n;
        if (r.type === 'window_cap') {
          for (const h of history) {
            const inWindow = h.ago < WINDOWS[r.window] && h.ago >= 0;
            if (inWindow && h.chainId === r.asset.chainId && lc(h.asset) === lc(r.asset.asset) && (d === undefined || lc(h.to) === d)) used += h.amount;
          }
        }
        if (used + amt > BigInt(r.max)) codes.push(r.type === 'tx_cap' ? 'tx_cap_exceeded' : 'window_cap_exceeded');
      }
    }
    if (r.type === 'rate_limit') {
      const used = history.filter((h) => h.ago < WINDOWS[r.window]).length;
      if (used + 1 > r.max) codes.push('rate_limit_exceeded');
    }
  }
  return { outcome: codes.length ? 'deny' : 'allow', codes };
}

const sorted = (xs: string[]) => [...xs].sort();
const docOf = (rules: RawRule[]) => ({ version: 1, rules });

test('property: engine agrees with the reference model on outcome and every denial', () => {
  fc.assert(
    fc.property(rulesArb, actionArb, historyArb, (rules, action, history) => {
      const d = evaluate(validatePolicy(docOf(rules)), action, { now: NOW, usage: memoryUsage(usageOf(history), NOW) });
      const ref = reference(rules, action, history);
      assert.equal(d.outcome, ref.outcome, JSON.stringify({ got: d.reasons, want: ref.codes }));
      if (d.outcome === 'deny') assert.deepEqual(sorted(d.reasons.map((r) => r.code)), sorted(ref.codes));
    }),
    { numRuns: 1500 },
  );
});

test('property: reservations reserve exactly what the action moves under each limited counter', () => {
  fc.assert(
    fc.property(rulesArb, actionArb, (rules, action) => {
      const d = evaluate(validatePolicy(docOf(rules)), action, { now: NOW, usage: NO_USAGE });
      if (d.outcome === 'deny') return assert.deepEqual(d.reservations, []);
      for (const r of d.reservations) {
        if (r.kind === 'count') {
          assert.equal(r.amount, 1n);
          continue;
        }
        const [, , chainId, asset, , to] = r.counterKey.split('/');
        const want = action.effects
          .filter((e) => e.type === 'transfer' && action.chainId === chainId && lc(e.asset) === asset && (to === undefined || lc(e.to) === to))
          .reduce((s, e) => s + e.amount, 0n);
        assert.equal(r.amount, want, r.counterKey);
        assert.ok(r.amount > 0n);
        assert.ok(r.checks.every((c) => c.windowMs <= r.windowMs));
      }
    }),
    { numRuns: 500 },
  );
});

test('property: rule order changes neither the outcome nor the set of reasons', () => {
  fc.assert(
    fc.property(rulesArb, actionArb, historyArb, fc.integer(), (rules, action, history, seed) => {
      const shuffled = [...rules].map((r, i) => ({ r, k: (Math.imul(i + 1, 2654435761) ^ seed) >>> 0 })).sort((x, y) => x.k - y.k).map((x) => x.r);
      const ctx = { now: NOW, usage: memoryUsage(usageOf(history), NOW) };
      const a = evaluate(validatePolicy(docOf(rules)), action, ctx);
      const b = evaluate(validatePolicy(docOf(shuffled)), action, ctx);
      assert.equal(a.outcome, b.outcome);
      assert.deepEqual(sorted(a.reasons.map((r) => r.code)), sorted(b.reasons.map((r) => r.code)));
    }),
    { numRuns: 300 },
  );
});

test('property: combine only narrows: combined allows iff both allow; its denials are the union', () => {
  fc.assert(
    fc.property(rulesArb, rulesArb, actionArb, historyArb, (fleetRules, walletRules, action, history) => {
      const ctx = { now: NOW, usage: memoryUsage(usageOf(history), NOW) };
      const f = validatePolicy(docOf(fleetRules));
      const w = validatePolicy(docOf(walletRules));
      const df = evaluate(f, action, ctx);
      const dw = evaluate(w, action, ctx);
      const dc = evaluate(combine(f, w), action, ctx);
      assert.equal(dc.outcome, df.outcome === 'allow' && dw.outcome === 'allow' ? 'allow' : 'deny');
      if (dc.outcome === 'deny') {
        const expected = [...(df.outcome === 'deny' ? df.reasons : []), ...(dw.outcome === 'deny' ? dw.reasons : [])].map((r) => r.code);
        assert.deepEqual(sorted(dc.reasons.map((r) => r.code)), sorted(expected));
      }
    }),
    { numRuns: 500 },
  );
});
