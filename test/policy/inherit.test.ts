import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combine, compilePolicy, evaluate, memoryUsage, NO_USAGE, simulate, sumKey, assetKey, type UsageRecord } from '../../src/policy/index.ts';
import { ALICE, BOB, T, USDC_BASE, policy, usdcApproval, usdcTransfer } from './helpers.ts';

const NOW = T('2026-11-18T12:00:00Z');
/** The fleet (its root wallet's id) the wallets of these tests belong to. */
const FLEET = 'wal_f1ee7';
const fleet = policy(
  [
    { id: 'fleet-cap', type: 'tx_cap', asset: 'USDC@base', max: '1000' },
    { id: 'fleet-daily', type: 'window_cap', asset: 'USDC@base', max: '5000', window: '24h', scope: 'fleet' },
    { id: 'no-bob', type: 'deny', to: [BOB] },
  ],
  { version: 3, allow: [{ id: 'fleet-allow', type: 'allow', chainIds: ['8453', '1'] }] },
);

test('wallet narrows: a stricter cap in the wallet denies what the fleet allows', () => {
  const wallet = policy([{ id: 'wallet-cap', type: 'tx_cap', asset: 'USDC@base', max: '100' }], { version: 7 });
  const c = combine(fleet, wallet);
  assert.equal(c.version, 'fleet@3+wallet@7');
  assert.equal(evaluate(fleet, usdcTransfer(500n), { now: NOW, fleet: FLEET, usage: NO_USAGE }).outcome, 'allow');
  const d = evaluate(c, usdcTransfer(500n), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.equal(d.outcome, 'deny');
  assert.deepEqual(d.reasons.map((r) => [r.source, r.rule, r.code]), [['wallet', 'wallet-cap', 'tx_cap_exceeded']]);
  assert.equal(d.policyVersion, 'fleet@3+wallet@7');
});

test('wallet cannot widen: a looser wallet cap or a wallet allow of a fleet-denied address does not help', () => {
  const wallet = policy([{ type: 'tx_cap', asset: 'USDC@base', max: '100000' }], { allow: [{ type: 'allow', chainIds: ['8453'], to: [BOB] }] });
  const c = combine(fleet, wallet);
  const over = evaluate(c, usdcTransfer(2000n), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.equal(over.outcome, 'deny');
  assert.deepEqual(over.reasons.map((r) => [r.source, r.code]), [['fleet', 'tx_cap_exceeded'], ['wallet', 'no_allow_rule']]);
  const bob = evaluate(c, usdcTransfer(5n, BOB), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.deepEqual(bob.reasons.map((r) => [r.source, r.code]), [['fleet', 'denied_by_rule']]);
});

test('both layers must allow: a chain only the wallet allows is denied by the fleet', () => {
  const wallet = policy([], { allow: [{ type: 'allow', chainIds: ['10'] }] });
  const d = evaluate(combine(fleet, wallet), usdcTransfer(5n, ALICE, '10'), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.deepEqual(d.reasons.map((r) => [r.source, r.code]), [['fleet', 'no_allow_rule']]);
});

test('an empty wallet policy denies everything (it must allow too)', () => {
  const d = evaluate(combine(fleet, policy([], { allow: [] })), usdcTransfer(5n), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.deepEqual(d.reasons.map((r) => [r.source, r.code]), [['wallet', 'no_allow_rule']]);
});

test('reservations of both layers are made; approvals of both are required', () => {
  const wallet = policy([
    { id: 'w-daily', type: 'window_cap', asset: 'USDC@base', max: '300', window: '1h' },
    { id: 'w-big', type: 'require_approval', asset: 'USDC@base', above: '50', m: 1, approvers: ['owner'] },
  ]);
  const fleetWithApproval = policy(
    [
      { id: 'fleet-daily', type: 'window_cap', asset: 'USDC@base', max: '5000', window: '24h', scope: 'fleet' },
      { id: 'f-big', type: 'require_approval', asset: 'USDC@base', above: '80', m: 2, group: 'treasury' },
    ],
    { version: 3 },
  );
  const c = combine(fleetWithApproval, wallet);
  const d = evaluate(c, usdcTransfer(90n), { now: NOW, fleet: FLEET, usage: memoryUsage([{ key: sumKey('wallet', assetKey('8453', USDC_BASE)), amount: 200n, at: NOW - 1000 }], NOW) });
  assert.equal(d.outcome, 'needs_approval');
  assert.deepEqual(d.approvals!.map((a) => [a.source, a.rule, a.required]), [['fleet', 'f-big', 2], ['wallet', 'w-big', 1]]);
  assert.deepEqual(d.reservations.map((r) => r.counterKey).sort(), [sumKey({ fleet: FLEET }, assetKey('8453', USDC_BASE)), sumKey('wallet', assetKey('8453', USDC_BASE))]);
  const approved = evaluate(c, usdcTransfer(90n), { now: NOW, fleet: FLEET, usage: NO_USAGE, approvals: ['owner', 'alice', 'bob'] });
  assert.equal(approved.outcome, 'allow');
});

test('combined approvals: unlimited approval denied by the wallet only', () => {
  const wallet = policy([{ type: 'approval_limit' }]);
  const d = evaluate(combine(fleet, wallet), usdcApproval((1n << 256n) - 1n), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.deepEqual(d.reasons.map((r) => [r.source, r.code]), [['wallet', 'unlimited_approval']]);
});

test('simulate explains a combined decision', () => {
  const wallet = policy([{ id: 'wallet-cap', type: 'tx_cap', asset: 'USDC@base', max: '100' }], { version: 7 });
  const s = simulate(combine(fleet, wallet), usdcTransfer(500n), { now: NOW, fleet: FLEET, usage: NO_USAGE });
  assert.equal(s.decision.outcome, 'deny');
  assert.match(s.explanation, /^Outcome: DENY \(policy version fleet@3\+wallet@7\)/);
  assert.match(s.explanation, /\[wallet\] tx_cap_exceeded: transfer of 0\.0005 USDC/);
  assert.match(s.explanation, /\+ \[fleet\] within_limit/);
  assert.ok(s.trace.length >= 5);
});

test('fleet-wide limits count per fleet: two fleets under one fleet policy never share a cap (issue #15, item 8)', () => {
  // One fleet policy that two fleets use (root wallets wal_a and wal_b); each device wallet adds an allow-all policy.
  const shared = policy(
    [
      { id: 'fleet-daily', type: 'window_cap', asset: 'USDC@base', max: '5000', window: '24h', scope: 'fleet' },
      { id: 'fleet-rate', type: 'rate_limit', max: 1, window: '1h', scope: 'fleet' },
    ],
    { version: 3 },
  );
  const device = combine(shared, policy([]));
  // A device of fleet A spends A's whole daily cap; the node records what the decision reserved.
  const records: UsageRecord[] = [];
  const a1 = evaluate(device, usdcTransfer(5000n), { now: NOW, fleet: 'wal_a', usage: NO_USAGE });
  assert.equal(a1.outcome, 'allow');
  for (const r of a1.reservations) records.push({ key: r.counterKey, amount: r.amount, at: NOW - 1000 });
  const usage = memoryUsage(records, NOW);
  // Another device of fleet A: no room left in A, by either limit.
  const a2 = evaluate(device, usdcTransfer(1n), { now: NOW, fleet: 'wal_a', usage });
  assert.deepEqual(a2.reasons.map((r) => [r.source, r.rule, r.code]), [['fleet', 'fleet-daily', 'window_cap_exceeded'], ['fleet', 'fleet-rate', 'rate_limit_exceeded']]);
  // Fleet B, same policy, same node: its whole cap is still there, and it counts under its own keys.
  const b1 = evaluate(device, usdcTransfer(5000n), { now: NOW, fleet: 'wal_b', usage });
  assert.equal(b1.outcome, 'allow', JSON.stringify(b1.reasons));
  assert.deepEqual(b1.reservations.map((r) => r.counterKey).sort(), [`count/fleet/wal_b/all`, sumKey({ fleet: 'wal_b' }, assetKey('8453', USDC_BASE))].sort());
  assert.ok(a1.reservations.every((r) => r.counterKey.startsWith(`${r.kind}/fleet/wal_a/`)));
});

test('a fleet-wide limit needs ctx.fleet: without it evaluate throws rather than share a counter', () => {
  assert.throws(() => evaluate(fleet, usdcTransfer(5n), { now: NOW, usage: NO_USAGE }), /ctx\.fleet/);
  assert.throws(() => evaluate(fleet, usdcTransfer(5n), { now: NOW, fleet: '', usage: NO_USAGE }), /ctx\.fleet/);
  // a policy with wallet-scoped limits only does not need it
  assert.equal(evaluate(policy([{ type: 'window_cap', asset: 'USDC@base', max: '10', window: '1h' }]), usdcTransfer(5n), { now: NOW, usage: NO_USAGE }).outcome, 'allow');
});

test('counters: strict by default; per-signer only when every layer says so (a wallet cannot loosen its fleet)', () => {
  const p = (counters?: 'strict' | 'per-signer') => ({ ...policy([]), ...(counters ? { counters } : {}) });
  assert.equal(compilePolicy(p()).counters, 'strict');
  assert.equal(compilePolicy(p('per-signer')).counters, 'per-signer');
  assert.equal(combine(p('per-signer'), p('per-signer')).counters, 'per-signer');
  assert.equal(combine(p('strict'), p('per-signer')).counters, 'strict');
  assert.equal(combine(p('per-signer'), p()).counters, 'strict');
  assert.throws(() => compilePolicy({ ...policy([]), counters: 'none' }), /counters/);
});
