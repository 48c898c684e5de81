import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combine, compilePolicy, evaluate, memoryUsage, NO_USAGE, simulate, sumKey, assetKey } from '../../src/policy/index.ts';
import { ALICE, BOB, T, USDC_BASE, policy, usdcApproval, usdcTransfer } from './helpers.ts';

const NOW = T('2026-11-18T12:00:00Z');
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
  assert.equal(evaluate(fleet, usdcTransfer(500n), { now: NOW, usage: NO_USAGE }).outcome, 'allow');
  const d = evaluate(c, usdcTransfer(500n), { now: NOW, usage: NO_USAGE });
  assert.equal(d.outcome, 'deny');
  assert.deepEqual(d.reasons.map((r) => [r.source, r.rule, r.code]), [['wallet', 'wallet-cap', 'tx_cap_exceeded']]);
  assert.equal(d.policyVersion, 'fleet@3+wallet@7');
});

test('wallet cannot widen: a looser wallet cap or a wallet allow of a fleet-denied address does not help', () => {
  const wallet = policy([{ type: 'tx_cap', asset: 'USDC@base', max: '100000' }], { allow: [{ type: 'allow', chainIds: ['8453'], to: [BOB] }] });
  const c = combine(fleet, wallet);
  const over = evaluate(c, usdcTransfer(2000n), { now: NOW, usage: NO_USAGE });
  assert.equal(over.outcome, 'deny');
  assert.deepEqual(over.reasons.map((r) => [r.source, r.code]), [['fleet', 'tx_cap_exceeded'], ['wallet', 'no_allow_rule']]);
  const bob = evaluate(c, usdcTransfer(5n, BOB), { now: NOW, usage: NO_USAGE });
  assert.deepEqual(bob.reasons.map((r) => [r.source, r.code]), [['fleet', 'denied_by_rule']]);
});

test('both layers must allow: a chain only the wallet allows is denied by the fleet', () => {
  const wallet = policy([], { allow: [{ type: 'allow', chainIds: ['10'] }] });
  const d = evaluate(combine(fleet, wallet), usdcTransfer(5n, ALICE, '10'), { now: NOW, usage: NO_USAGE });
  assert.deepEqual(d.reasons.map((r) => [r.source, r.code]), [['fleet', 'no_allow_rule']]);
});

test('an empty wallet policy denies everything (it must allow too)', () => {
  const d = evaluate(combine(fleet, policy([], { allow: [] })), usdcTransfer(5n), { now: NOW, usage: NO_USAGE });
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
  const d = evaluate(c, usdcTransfer(90n), { now: NOW, usage: memoryUsage([{ key: sumKey('wallet', assetKey('8453', USDC_BASE)), amount: 200n, at: NOW - 1000 }], NOW) });
  assert.equal(d.outcome, 'needs_approval');
  assert.deepEqual(d.approvals!.map((a) => [a.source, a.rule, a.required]), [['fleet', 'f-big', 2], ['wallet', 'w-big', 1]]);
  assert.deepEqual(d.reservations.map((r) => r.counterKey).sort(), [sumKey('fleet', assetKey('8453', USDC_BASE)), sumKey('wallet', assetKey('8453', USDC_BASE))]);
  const approved = evaluate(c, usdcTransfer(90n), { now: NOW, usage: NO_USAGE, approvals: ['owner', 'alice', 'bob'] });
  assert.equal(approved.outcome, 'allow');
});

test('combined approvals: unlimited approval denied by the wallet only', () => {
  const wallet = policy([{ type: 'approval_limit' }]);
  const d = evaluate(combine(fleet, wallet), usdcApproval((1n << 256n) - 1n), { now: NOW, usage: NO_USAGE });
  assert.deepEqual(d.reasons.map((r) => [r.source, r.code]), [['wallet', 'unlimited_approval']]);
});

test('simulate explains a combined decision', () => {
  const wallet = policy([{ id: 'wallet-cap', type: 'tx_cap', asset: 'USDC@base', max: '100' }], { version: 7 });
  const s = simulate(combine(fleet, wallet), usdcTransfer(500n), { now: NOW, usage: NO_USAGE });
  assert.equal(s.decision.outcome, 'deny');
  assert.match(s.explanation, /^Outcome: DENY \(policy version fleet@3\+wallet@7\)/);
  assert.match(s.explanation, /\[wallet\] tx_cap_exceeded: transfer of 0\.0005 USDC/);
  assert.match(s.explanation, /\+ \[fleet\] within_limit/);
  assert.ok(s.trace.length >= 5);
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
