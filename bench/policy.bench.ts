/**
 * Policy evaluation benchmark. Prints one JSON line per measurement:
 *   {"name", "medianUs", "p99Us", "opsPerSec", ...}
 * Run: node --import tsx bench/policy.bench.ts   (set BENCH_N to change the sample count)
 *
 * Baselines measured in the same run: a bare loop of 20 Set.has + bigint compares (the floor for
 * "20 rules"), and JSON.parse of the action (the cost of merely reading the request).
 */
import type { Action } from '../src/chains/types.ts';
import { assetKey, compilePolicy, countKey, evaluate, memoryUsage, sumKey, validatePolicy, type UsageView } from '../src/policy/index.ts';

const N = Number(process.env.BENCH_N ?? 100_000);
const WARMUP = Math.min(20_000, N);
const USDC = '0x833589fCD6eDb6E08f4c7dA32A3e2dF4b2C3F0D7';
const ALICE = '0x1111111111111111111111111111111111111111';
const NOW = Date.parse('2026-11-18T12:00:00Z');
/** The fleet (root wallet id) whose fleet-wide counters the policy reads. */
const FLEET = 'wal_f1ee7';
const addrs = (n: number, seed: number) => Array.from({ length: n }, (_, i) => '0x' + (seed * 1000 + i).toString(16).padStart(40, '0'));

const rawPolicy = {
  version: 12,
  assets: {
    'USDC@base': { chainId: '8453', asset: USDC, symbol: 'USDC', decimals: 6 },
    'ETH@base': { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 },
  },
  approverGroups: { treasury: ['alice', 'bob', 'carol', 'dave'] },
  rules: [
    { id: 'allow-payees', type: 'allow', chainIds: ['8453'], kinds: ['token_transfer', 'native_transfer'], to: [ALICE, ...addrs(200, 1)] },
    { id: 'allow-router', type: 'allow', chainIds: ['8453'], kinds: ['contract_call'], contracts: addrs(10, 2), selectors: ['0x12345678', '0x38ed1739'] },
    { id: 'allow-approvals', type: 'allow', chainIds: ['8453'], kinds: ['token_approval'], assets: ['USDC@base'] },
    { id: 'sanctions', type: 'deny', to: addrs(2000, 3) },
    { id: 'no-eth-mainnet', type: 'deny', chainIds: ['1'] },
    { id: 'no-set-approval-for-all', type: 'deny', selectors: ['0xa22cb465'] },
    { id: 'usdc-per-tx', type: 'tx_cap', asset: 'USDC@base', max: '5000000000' },
    { id: 'eth-per-tx', type: 'tx_cap', asset: 'ETH@base', max: '1000000000000000000' },
    { id: 'usdc-daily', type: 'window_cap', asset: 'USDC@base', max: '20000000000', window: '24h' },
    { id: 'usdc-hourly', type: 'window_cap', asset: 'USDC@base', max: '8000000000', window: '1h' },
    { id: 'usdc-per-payee-weekly', type: 'window_cap', asset: 'USDC@base', max: '10000000000', window: '7d', perDestination: true },
    { id: 'fleet-usdc-daily', type: 'window_cap', asset: 'USDC@base', max: '500000000000', window: '24h', scope: 'fleet' },
    { id: 'rate-hour', type: 'rate_limit', max: 120, window: '1h' },
    { id: 'rate-payee', type: 'rate_limit', max: 20, window: '24h', perDestination: true },
    { id: 'office-hours', type: 'time_window', timezone: 'Europe/Zurich', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:00', to: '20:00' },
    { id: 'contract-term', type: 'date_window', notBefore: '2026-01-01', notAfter: '2027-01-01' },
    { id: 'approvals', type: 'approval_limit', max: '1000000000' },
    { id: 'gas', type: 'fee_cap', chainId: '8453', max: '50000000000000000' },
    { id: 'big-usdc', type: 'require_approval', asset: 'USDC@base', above: '2000000000', m: 2, group: 'treasury' },
    { id: 'big-eth', type: 'require_approval', asset: 'ETH@base', above: '500000000000000000', m: 2, group: 'treasury' },
  ],
};
const policy = validatePolicy(rawPolicy);
if (policy.rules.length !== 20) throw new Error('benchmark policy must have 20 rules');
const compiled = compilePolicy(policy);

const action: Action = {
  chain: 'ethereum',
  chainId: '8453',
  kind: 'token_transfer',
  from: '0x9999999999999999999999999999999999999999',
  to: ALICE,
  contract: USDC,
  function: { selector: '0xa9059cbb', name: 'transfer' },
  effects: [{ type: 'transfer', asset: USDC, to: ALICE, amount: 150_000_000n }],
  fee: 21_000n * 1_000_000_000n,
};

/** A store that answers from a snapshot it prefetched for this request (what a signer node would pass). */
const ak = assetKey('8453', USDC);
const snapshot = new Map<string, bigint>([
  [sumKey('wallet', ak), 1_000_000_000n],
  [sumKey('wallet', ak, ALICE.toLowerCase()), 300_000_000n],
  [sumKey({ fleet: FLEET }, ak), 90_000_000_000n],
]);
const snapshotUsage: UsageView = { sum: (k) => snapshot.get(k) ?? 0n, count: (k) => (k === countKey('wallet') ? 40 : 3) };

/** An in-memory history of 100 records (the reference UsageView, scanning). */
const records = Array.from({ length: 100 }, (_, i) => ({ key: i % 2 ? sumKey('wallet', ak) : countKey('wallet'), amount: i % 2 ? 1_000_000n : 1n, at: NOW - i * 60_000 }));
const listUsage = memoryUsage(records, NOW);

/**
 * Times batches of BATCH calls (one hrtime pair per batch, so the timer's own cost, ~0.1-1 µs on a VM,
 * does not swamp µs-scale work) and reports per-call median / p99 over batches.
 */
const BATCH = 10;
function measure(name: string, fn: () => unknown, n = N) {
  let sink: unknown;
  for (let i = 0; i < Math.min(WARMUP, n); i++) sink = fn();
  const batches = Math.max(1, Math.floor(n / BATCH));
  const samples = new Float64Array(batches);
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) {
    const a = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink = fn();
    samples[b] = Number(process.hrtime.bigint() - a) / BATCH;
  }
  const total = Number(process.hrtime.bigint() - t0);
  samples.sort();
  const r = {
    name,
    medianUs: round(samples[Math.floor(batches * 0.5)] / 1000),
    p99Us: round(samples[Math.floor(batches * 0.99)] / 1000),
    opsPerSec: Math.round((batches * BATCH) / (total / 1e9)),
    n: batches * BATCH,
    batch: BATCH,
  };
  if (sink === Symbol.for('never')) console.log(sink);
  return r;
}
const round = (x: number) => Math.round(x * 1000) / 1000;

// ---- baselines
const set = new Set([ALICE.toLowerCase(), ...addrs(2000, 3)]);
const caps = Array.from({ length: 20 }, (_, i) => BigInt(i) * 1_000_000_000n);
const baselineSet = measure('baseline: 20x (Set.has + bigint compare)', () => {
  let ok = 0;
  for (let i = 0; i < 20; i++) if (set.has(ALICE.toLowerCase()) && 150_000_000n <= caps[i]) ok++;
  return ok;
});
const actionJson = JSON.stringify(action, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
const baselineParse = measure('baseline: JSON.parse(action)', () => JSON.parse(actionJson));

// ---- the engine
const evalSnapshot = measure('evaluate: 20 rules, compiled, snapshot usage', () => evaluate(compiled, action, { now: NOW, usage: snapshotUsage, fleet: FLEET }));
const evalList = measure('evaluate: 20 rules, compiled, memoryUsage(100 records)', () => evaluate(compiled, action, { now: NOW, usage: listUsage, fleet: FLEET }));
const evalUncompiledCache = measure('evaluate: 20 rules, validated policy (compile cache hit)', () => evaluate(policy, action, { now: NOW, usage: snapshotUsage, fleet: FLEET }));
// one-time cost per policy version: parse, check and compile from JSON text
const policyText = JSON.stringify(rawPolicy);
const compileOnce = measure('validatePolicy + compilePolicy from JSON text: 20 rules, 2,211 addresses', () => compilePolicy(validatePolicy(policyText)), 300);

const decision = evaluate(compiled, action, { now: NOW, usage: snapshotUsage, fleet: FLEET });
for (const r of [baselineSet, baselineParse, evalSnapshot, evalList, evalUncompiledCache, compileOnce]) {
  const ratio = r.name.startsWith('evaluate')
    ? { ratioToSetBaseline: round(r.medianUs / baselineSet.medianUs), ratioToJsonParse: round(r.medianUs / baselineParse.medianUs) }
    : {};
  console.log(JSON.stringify({ ...r, ...ratio }));
}
console.log(JSON.stringify({ name: 'decision (sanity)', outcome: decision.outcome, reasons: decision.reasons.length, reservations: decision.reservations.length }));
