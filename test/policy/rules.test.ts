import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../../src/chains/types.ts';
import { assetKey, countKey, evaluate, memoryUsage, NO_USAGE, sumKey, type Decision, type UsageRecord } from '../../src/policy/index.ts';
import {
  ALICE, BOB, EVIL, ROUTER, SOL_ALICE, SOL_USDC, TOKEN_PROGRAM, T, USDC_BASE, USDC_ETH,
  call, ethTransfer, policy, usdcApproval, usdcTransfer,
} from './helpers.ts';

const NOW = T('2026-11-18T12:00:00Z'); // a Wednesday
const H = 3_600_000;
const USDC_KEY = sumKey('wallet', assetKey('8453', USDC_BASE));
const MAX_U256 = (1n << 256n) - 1n;

interface Case {
  name: string;
  rules: unknown[];
  allow?: unknown[];
  action: Action;
  now?: number;
  usage?: UsageRecord[];
  approvals?: string[];
  outcome: Decision['outcome'];
  /** Every reason code, in order. */
  codes?: string[];
  check?: (d: Decision) => void;
}

/** The fleet (root wallet id) every case's wallet belongs to: names its fleet-wide counters. */
const FLEET = 'wal_f1ee7';

function run(cases: Case[]) {
  for (const c of cases) {
    test(c.name, () => {
      const p = policy(c.rules, { allow: c.allow });
      const now = c.now ?? NOW;
      const d = evaluate(p, c.action, { now, usage: memoryUsage(c.usage ?? [], now), approvals: c.approvals, fleet: FLEET });
      assert.equal(d.outcome, c.outcome, JSON.stringify(d.reasons, null, 1));
      if (c.codes) assert.deepEqual(d.reasons.map((r) => r.code), c.codes);
      for (const r of d.reasons) assert.ok(r.message.length > 10, 'every reason has a readable message');
      c.check?.(d);
    });
  }
}

const solanaTransfer = (programs: string[]): Action => ({
  chain: 'solana',
  chainId: 'mainnet-beta',
  kind: 'token_transfer',
  to: SOL_ALICE,
  contract: TOKEN_PROGRAM,
  programs,
  effects: [{ type: 'transfer', asset: SOL_USDC, to: SOL_ALICE, amount: 5n }],
});

// ---------------------------------------------------------------- allow / deny lists, default deny
run([
  { name: 'default deny: no allow rule matches another chain', rules: [], action: usdcTransfer(1n, ALICE, '10' as never), outcome: 'deny', codes: ['no_allow_rule'] },
  { name: 'an allow rule matching the chain allows', rules: [], action: usdcTransfer(1n), outcome: 'allow', codes: ['allowed_by_rule'] },
  { name: 'empty policy denies everything', rules: [], allow: [], action: usdcTransfer(1n), outcome: 'deny', codes: ['no_allow_rule'] },
  {
    name: "kind 'unknown' is denied by an allow rule that does not list it",
    rules: [],
    action: { chain: 'ethereum', chainId: '8453', kind: 'unknown', effects: [], notes: ['undecodable'] },
    outcome: 'deny',
    codes: ['unknown_kind'],
  },
  {
    name: "kind 'unknown' is allowed only when an allow rule lists it explicitly",
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], kinds: ['unknown'] }],
    action: { chain: 'ethereum', chainId: '8453', kind: 'unknown', effects: [] },
    outcome: 'allow',
  },
  {
    name: 'an allow rule without kinds covers transfers and approvals only: a contract call is denied',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'] }],
    action: call(ROUTER, '0x12345678'),
    outcome: 'deny',
    codes: ['no_allow_rule'],
    check: (d) => assert.match(d.reasons[0].message, /must be listed in an allow rule's kinds/),
  },
  {
    name: 'an allow rule without kinds does not cover typed data or messages',
    rules: [],
    allow: [{ type: 'allow' }],
    action: { chain: 'message', kind: 'message', effects: [] },
    outcome: 'deny',
    codes: ['no_allow_rule'],
  },
  { name: 'an allow rule without kinds covers approvals', rules: [], allow: [{ type: 'allow', chainIds: ['8453'] }], action: usdcApproval(1n), outcome: 'allow' },
  {
    name: "allow list of destinations also covers the action's to (the contract called)",
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], kinds: ['contract_call'], to: [BOB] }],
    action: call(ROUTER, '0x12345678', [{ type: 'transfer', asset: USDC_BASE, to: BOB, amount: 1n }]),
    outcome: 'deny',
    codes: ['no_allow_rule'],
  },
  {
    name: 'deny list of destinations wins over allow (case-insensitive EVM address)',
    rules: [{ id: 'sanctioned', type: 'deny', to: [EVIL.toLowerCase()] }],
    action: usdcTransfer(1n, EVIL),
    outcome: 'deny',
    codes: ['denied_by_rule'],
    check: (d) => assert.equal(d.reasons[0].rule, 'sanctioned'),
  },
  {
    name: 'deny list of destinations also hits an approval spender',
    rules: [{ type: 'deny', to: [ROUTER] }],
    action: usdcApproval(5n, ROUTER),
    outcome: 'deny',
    codes: ['denied_by_rule'],
    check: (d) => assert.equal(d.reasons[0].rule, 'rules[1]'),
  },
  { name: 'deny list of selectors: approve denied', rules: [{ type: 'deny', selectors: ['0x095EA7B3'] }], action: usdcApproval(5n), outcome: 'deny', codes: ['denied_by_rule'] },
  { name: 'deny list of selectors: transfer still allowed', rules: [{ type: 'deny', selectors: ['0x095ea7b3'] }], action: usdcTransfer(5n), outcome: 'allow' },
  { name: 'deny list of chains', rules: [{ type: 'deny', chainIds: [1] }], action: usdcTransfer(5n, ALICE, '1'), outcome: 'deny', codes: ['denied_by_rule'] },
  { name: 'deny list of contracts', rules: [{ type: 'deny', contracts: [USDC_ETH] }], action: usdcTransfer(5n, ALICE, '1'), outcome: 'deny', codes: ['denied_by_rule'] },
  {
    name: 'deny rule fields combine with AND: selector only on chain 1',
    rules: [{ type: 'deny', chainIds: ['1'], selectors: ['0x095ea7b3'] }],
    action: usdcApproval(5n),
    outcome: 'allow',
  },
  {
    name: 'allow list of destinations: listed destination allowed',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], to: [ALICE] }],
    action: usdcTransfer(5n, ALICE),
    outcome: 'allow',
  },
  {
    name: 'allow list of destinations: other destination denied',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], to: [ALICE] }],
    action: usdcTransfer(5n, BOB),
    outcome: 'deny',
    codes: ['no_allow_rule'],
  },
  {
    name: 'allow list of destinations: every recipient of a multi-transfer must be listed',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], to: [ALICE, ROUTER] }],
    action: call(ROUTER, '0x12345678', [
      { type: 'transfer', asset: 'native', to: ROUTER, amount: 1n },
      { type: 'transfer', asset: USDC_BASE, to: BOB, amount: 1n },
    ]),
    outcome: 'deny',
    codes: ['no_allow_rule'],
  },
  {
    name: 'allow list of contracts and selectors',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], kinds: ['contract_call'], contracts: [ROUTER], selectors: ['0x12345678'] }],
    action: call(ROUTER, '0x12345678'),
    outcome: 'allow',
  },
  {
    name: 'allow list of selectors: another selector is denied',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], contracts: [ROUTER], selectors: ['0x12345678'] }],
    action: call(ROUTER, '0xdeadbeef'),
    outcome: 'deny',
  },
  {
    name: 'allow list of assets: USDC on Base is not USDC on Ethereum',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['1', '8453'], assets: ['USDC@base'] }],
    action: usdcTransfer(5n, ALICE, '1'),
    outcome: 'deny',
  },
  {
    name: 'allow list of Solana programs: all programs must be listed',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['mainnet-beta'], programs: [TOKEN_PROGRAM] }],
    action: solanaTransfer([TOKEN_PROGRAM, 'ComputeBudget111111111111111111111111111111']),
    outcome: 'deny',
  },
  {
    name: 'allow list of Solana programs: listed programs allowed',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['mainnet-beta'], programs: [TOKEN_PROGRAM, 'ComputeBudget111111111111111111111111111111'] }],
    action: solanaTransfer([TOKEN_PROGRAM, 'ComputeBudget111111111111111111111111111111']),
    outcome: 'allow',
  },
  {
    name: 'deny list of Solana programs',
    rules: [{ type: 'deny', programs: ['ComputeBudget111111111111111111111111111111'] }],
    allow: [{ type: 'allow', chainIds: ['mainnet-beta'] }],
    action: solanaTransfer([TOKEN_PROGRAM, 'ComputeBudget111111111111111111111111111111']),
    outcome: 'deny',
  },
  {
    name: 'Solana addresses are case-sensitive: a lowercased deny entry is a different address',
    rules: [{ type: 'deny', to: [SOL_ALICE.toLowerCase()] }],
    allow: [{ type: 'allow', chainIds: ['mainnet-beta'] }],
    action: solanaTransfer([TOKEN_PROGRAM]),
    outcome: 'allow',
  },
  {
    name: 'value with no chain id is denied (chain_unknown) on top of default deny',
    rules: [],
    allow: [{ type: 'allow' }],
    action: { ...ethTransfer(1n), chainId: undefined },
    outcome: 'deny',
    codes: ['chain_unknown'],
  },
  {
    name: 'a token the decoder could not identify is denied unless allowUnknownAssets',
    rules: [],
    action: call(ROUTER, '0x12345678', [{ type: 'transfer', asset: 'unknown', to: BOB, amount: 1n }]),
    outcome: 'deny',
    codes: ['unknown_asset'],
  },
  {
    name: 'allowUnknownAssets lets it through',
    rules: [],
    allow: [{ type: 'allow', chainIds: ['8453'], kinds: ['contract_call'], allowUnknownAssets: true }],
    action: call(ROUTER, '0x12345678', [{ type: 'transfer', asset: 'unknown', to: BOB, amount: 1n }]),
    outcome: 'allow',
  },
]);

// ---------------------------------------------------------------- per-transaction caps
const btcCap = { rules: [{ type: 'tx_cap', asset: { chainId: 'bitcoin', asset: 'native' }, max: '1000' }], allow: [{ type: 'allow', chainIds: ['bitcoin'] }] };
const btcSpend = (effects: Action['effects']): Action => ({ chain: 'bitcoin', chainId: 'bitcoin', kind: 'native_transfer', from: 'bc1qself', effects });
const cap100 = { id: 'cap', type: 'tx_cap', asset: 'USDC@base', max: '100' };
run([
  { name: 'tx_cap: exactly at the cap is allowed', rules: [cap100], action: usdcTransfer(100n), outcome: 'allow' },
  {
    name: 'tx_cap: one unit over is denied',
    rules: [cap100],
    action: usdcTransfer(101n),
    outcome: 'deny',
    codes: ['tx_cap_exceeded'],
    check: (d) => assert.match(d.reasons[0].message, /0\.000101 USDC/),
  },
  { name: 'tx_cap: USDC on Ethereum is a different asset', rules: [cap100], action: usdcTransfer(1000n, ALICE, '1'), outcome: 'allow' },
  {
    name: 'tx_cap: inline asset with a checksum-less address is the same asset',
    rules: [{ type: 'tx_cap', asset: { chainId: '8453', asset: USDC_BASE.toLowerCase() }, max: '100' }],
    action: usdcTransfer(101n),
    outcome: 'deny',
  },
  {
    name: 'tx_cap: all transfers of the asset in one action add up',
    rules: [cap100],
    action: call(ROUTER, '0x12345678', [
      { type: 'transfer', asset: USDC_BASE, to: ALICE, amount: 60n },
      { type: 'transfer', asset: USDC_BASE, to: BOB, amount: 60n },
    ]),
    outcome: 'deny',
  },
  {
    name: 'tx_cap perDestination: each destination on its own',
    rules: [{ ...cap100, perDestination: true }],
    action: call(ROUTER, '0x12345678', [
      { type: 'transfer', asset: USDC_BASE, to: ALICE, amount: 60n },
      { type: 'transfer', asset: USDC_BASE, to: BOB, amount: 60n },
    ]),
    outcome: 'allow',
  },
  {
    name: 'tx_cap for one destination only',
    rules: [{ type: 'tx_cap', asset: 'USDC@base', max: '10', to: [BOB] }],
    action: usdcTransfer(50n, ALICE),
    outcome: 'allow',
  },
  {
    name: 'tx_cap for one destination only: over for that destination',
    rules: [{ type: 'tx_cap', asset: 'USDC@base', max: '10', to: [BOB] }],
    action: usdcTransfer(11n, BOB),
    outcome: 'deny',
  },
  {
    name: 'tx_cap on native counts the value of a contract call',
    rules: [{ type: 'tx_cap', asset: 'ETH@base', max: '1000' }],
    action: call(ROUTER, '0x12345678', [{ type: 'transfer', asset: 'native', to: ROUTER, amount: 1001n }]),
    outcome: 'deny',
  },
  {
    name: 'Bitcoin change back to the signer is not a spend; other outputs are',
    ...btcCap,
    action: btcSpend([
      { type: 'transfer', asset: 'native', to: 'bc1qother', amount: 900n },
      { type: 'transfer', asset: 'native', to: 'BC1QSELF', amount: 50_000n, change: true } as never,
    ]),
    outcome: 'allow',
  },
  {
    name: 'a change flag on an output to someone else still counts',
    ...btcCap,
    action: btcSpend([{ type: 'transfer', asset: 'native', to: 'bc1qother', amount: 5000n, change: true } as never]),
    outcome: 'deny',
  },
]);

// ---------------------------------------------------------------- rolling windows
const daily = { id: 'daily', type: 'window_cap', asset: 'USDC@base', max: '100', window: '24h' };
const rec = (amount: bigint, ago: number, key = USDC_KEY): UsageRecord => ({ key, amount, at: NOW - ago });
run([
  {
    name: 'window_cap: used + this exactly at the cap is allowed, and reserves this amount',
    rules: [daily],
    action: usdcTransfer(40n),
    usage: [rec(60n, H)],
    outcome: 'allow',
    check: (d) => assert.deepEqual(d.reservations, [{ counterKey: USDC_KEY, amount: 40n, windowMs: 24 * H, kind: 'sum', checks: [{ windowMs: 24 * H, max: 100n }] }]),
  },
  { name: 'window_cap: one over is denied, no reservations', rules: [daily], action: usdcTransfer(41n), usage: [rec(60n, H)], outcome: 'deny', codes: ['window_cap_exceeded'], check: (d) => assert.deepEqual(d.reservations, []) },
  { name: 'window boundary: usage exactly one window old no longer counts', rules: [daily], action: usdcTransfer(100n), usage: [rec(60n, 24 * H)], outcome: 'allow' },
  { name: 'window boundary: one ms inside the window still counts', rules: [daily], action: usdcTransfer(100n), usage: [rec(60n, 24 * H - 1)], outcome: 'deny' },
  { name: 'window_cap: usage of USDC on Ethereum does not count', rules: [daily], action: usdcTransfer(100n), usage: [rec(60n, H, sumKey('wallet', assetKey('1', USDC_ETH)))], outcome: 'allow' },
  { name: 'window_cap: an action without the asset is not limited', rules: [daily], action: ethTransfer(10n ** 18n), usage: [rec(500n, H)], outcome: 'allow', check: (d) => assert.deepEqual(d.reservations, []) },
  {
    name: 'window_cap per destination uses a per-destination counter',
    rules: [{ ...daily, perDestination: true }],
    action: usdcTransfer(50n, BOB),
    usage: [rec(90n, H, sumKey('wallet', assetKey('8453', USDC_BASE), ALICE.toLowerCase())), rec(60n, H, sumKey('wallet', assetKey('8453', USDC_BASE), BOB.toLowerCase()))],
    outcome: 'deny',
    check: (d) => assert.match(d.reasons[0].message, new RegExp(BOB.toLowerCase())),
  },
  {
    name: 'fleet-scoped window cap uses the fleet counter',
    rules: [{ ...daily, scope: 'fleet' }],
    action: usdcTransfer(50n),
    usage: [rec(60n, H)],
    outcome: 'allow',
    check: (d) => assert.equal(d.reservations[0].counterKey, sumKey({ fleet: FLEET }, assetKey('8453', USDC_BASE))),
  },
  {
    name: 'two windows over one counter: one reservation, both checks, longest window',
    rules: [daily, { id: 'hourly', type: 'window_cap', asset: 'USDC@base', max: '50', window: '1h' }],
    action: usdcTransfer(10n),
    outcome: 'allow',
    check: (d) => {
      assert.equal(d.reservations.length, 1);
      assert.equal(d.reservations[0].windowMs, 24 * H);
      assert.deepEqual(d.reservations[0].checks, [{ windowMs: 24 * H, max: 100n }, { windowMs: H, max: 50n }]);
    },
  },
  {
    name: 'every denial is listed, not only the first',
    rules: [cap100, daily, { type: 'time_window', from: '00:00', to: '06:00' }, { type: 'deny', to: [ALICE] }],
    action: usdcTransfer(150n),
    outcome: 'deny',
    codes: ['tx_cap_exceeded', 'window_cap_exceeded', 'outside_time_window', 'denied_by_rule'],
  },
]);

// ---------------------------------------------------------------- rate limits
const rate = { id: 'rate', type: 'rate_limit', max: 3, window: '1h' };
const cnt = (ago: number, key = countKey('wallet')): UsageRecord => ({ key, amount: 1n, at: NOW - ago });
run([
  { name: 'rate_limit: under the limit allowed, reserves a count', rules: [rate], action: usdcTransfer(1n), usage: [cnt(1), cnt(2)], outcome: 'allow', check: (d) => assert.deepEqual(d.reservations[0], { counterKey: 'count/wallet/all', amount: 1n, windowMs: H, kind: 'count', checks: [{ windowMs: H, max: 3n }] }) },
  { name: 'rate_limit: at the limit denied', rules: [rate], action: usdcTransfer(1n), usage: [cnt(1), cnt(2), cnt(3)], outcome: 'deny', codes: ['rate_limit_exceeded'] },
  { name: 'rate_limit: old signatures fall out of the window', rules: [rate], action: usdcTransfer(1n), usage: [cnt(H), cnt(H + 5), cnt(3)], outcome: 'allow' },
  {
    name: 'rate_limit per destination',
    rules: [{ ...rate, perDestination: true }],
    action: usdcTransfer(1n, BOB),
    usage: [cnt(1, countKey('wallet', { chainId: '8453', to: ALICE.toLowerCase() })), cnt(1, countKey('wallet', { chainId: '8453', to: ALICE.toLowerCase() })), cnt(1, countKey('wallet', { chainId: '8453', to: ALICE.toLowerCase() }))],
    outcome: 'allow',
  },
  {
    name: 'rate_limit scoped by match has its own counter and ignores other actions',
    rules: [{ ...rate, match: { kinds: ['contract_call'] } }],
    action: usdcTransfer(1n),
    usage: [cnt(1), cnt(2), cnt(3)],
    outcome: 'allow',
    check: (d) => assert.deepEqual(d.reservations, []),
  },
  {
    name: 'rate_limit scoped by match counts matching actions under a match-hashed key',
    rules: [{ ...rate, match: { kinds: ['contract_call'] } }],
    action: call(ROUTER, '0x12345678'),
    outcome: 'allow',
    check: (d) => assert.match(d.reservations[0].counterKey, /^count\/wallet\/all\/m\/[0-9a-f]{32}$/),
  },
]);

// ---------------------------------------------------------------- time of day and dates
const hours = (extra: object = {}) => ({ id: 'hours', type: 'time_window', from: '09:00', to: '17:00', ...extra });
run([
  { name: 'time_window UTC: 09:00 is inside', rules: [hours()], action: usdcTransfer(1n), now: T('2026-11-18T09:00:00Z'), outcome: 'allow' },
  { name: 'time_window UTC: 08:59 is outside', rules: [hours()], action: usdcTransfer(1n), now: T('2026-11-18T08:59:59Z'), outcome: 'deny', codes: ['outside_time_window'] },
  { name: 'time_window UTC: 16:59 is inside', rules: [hours()], action: usdcTransfer(1n), now: T('2026-11-18T16:59:59Z'), outcome: 'allow' },
  { name: 'time_window UTC: 17:00 is outside (end exclusive)', rules: [hours()], action: usdcTransfer(1n), now: T('2026-11-18T17:00:00Z'), outcome: 'deny' },
  { name: 'time_window utcOffset +02:00: 07:00Z is 09:00 local', rules: [hours({ utcOffset: '+02:00' })], action: usdcTransfer(1n), now: T('2026-11-18T07:00:00Z'), outcome: 'allow' },
  { name: 'time_window utcOffset -05:30: 14:29Z is 08:59 local', rules: [hours({ utcOffset: '-05:30' })], action: usdcTransfer(1n), now: T('2026-11-18T14:29:00Z'), outcome: 'deny' },
  { name: 'time_window New York before DST: 13:30Z is 08:30 EST', rules: [hours({ timezone: 'America/New_York' })], action: usdcTransfer(1n), now: T('2026-03-07T13:30:00Z'), outcome: 'deny' },
  { name: 'time_window New York after DST: 13:30Z is 09:30 EDT', rules: [hours({ timezone: 'America/New_York' })], action: usdcTransfer(1n), now: T('2026-03-09T13:30:00Z'), outcome: 'allow' },
  { name: 'time_window days: Saturday is outside mon-fri', rules: [hours({ days: ['mon', 'tue', 'wed', 'thu', 'fri'] })], action: usdcTransfer(1n), now: T('2026-11-21T10:00:00Z'), outcome: 'deny' },
  {
    name: 'time_window timezone moves the weekday: Friday 15:30Z is Saturday in Tokyo',
    rules: [hours({ from: '00:00', to: '24:00', timezone: 'Asia/Tokyo', days: ['mon', 'tue', 'wed', 'thu', 'fri'] })],
    action: usdcTransfer(1n),
    now: T('2026-11-20T15:30:00Z'),
    outcome: 'deny',
  },
  { name: 'time_window across midnight: Saturday 01:00 belongs to Friday night', rules: [hours({ from: '22:00', to: '02:00', days: ['fri'] })], action: usdcTransfer(1n), now: T('2026-11-21T01:00:00Z'), outcome: 'allow' },
  { name: 'time_window across midnight: Friday 01:00 belongs to Thursday night', rules: [hours({ from: '22:00', to: '02:00', days: ['fri'] })], action: usdcTransfer(1n), now: T('2026-11-20T01:00:00Z'), outcome: 'deny' },
  { name: 'time_window scoped by match does not limit other actions', rules: [hours({ match: { kinds: ['token_approval'] } })], action: usdcTransfer(1n), now: T('2026-11-18T20:00:00Z'), outcome: 'allow' },
  { name: 'date_window: before notBefore', rules: [{ type: 'date_window', notBefore: '2026-12-01', notAfter: '2027-01-01T00:00:00Z' }], action: usdcTransfer(1n), now: T('2026-11-30T23:59:59Z'), outcome: 'deny', codes: ['outside_date_window'] },
  { name: 'date_window: at notBefore', rules: [{ type: 'date_window', notBefore: '2026-12-01', notAfter: '2027-01-01T00:00:00Z' }], action: usdcTransfer(1n), now: T('2026-12-01T00:00:00Z'), outcome: 'allow' },
  { name: 'date_window: at notAfter (exclusive)', rules: [{ type: 'date_window', notBefore: '2026-12-01', notAfter: '2027-01-01T00:00:00Z' }], action: usdcTransfer(1n), now: T('2027-01-01T00:00:00Z'), outcome: 'deny' },
]);

// ---------------------------------------------------------------- approvals (ERC-20 allowances)
run([
  { name: 'approval_limit: unlimited approval denied by default', rules: [{ type: 'approval_limit' }], action: usdcApproval(MAX_U256), outcome: 'deny', codes: ['unlimited_approval'] },
  { name: 'approval_limit: Permit2-style uint160 max counts as unlimited', rules: [{ type: 'approval_limit' }], action: usdcApproval((1n << 160n) - 1n), outcome: 'deny' },
  {
    name: 'approval_limit: Solana u64 max counts as unlimited',
    rules: [{ type: 'approval_limit' }],
    allow: [{ type: 'allow', chainIds: ['mainnet-beta'] }],
    action: { chain: 'solana', chainId: 'mainnet-beta', kind: 'token_approval', to: SOL_ALICE, effects: [{ type: 'approval', asset: SOL_USDC, spender: SOL_ALICE, amount: (1n << 64n) - 1n }] },
    outcome: 'deny',
  },
  { name: 'approval_limit: a large but bounded approval passes when only unlimited is denied', rules: [{ type: 'approval_limit' }], action: usdcApproval(1n << 100n), outcome: 'allow' },
  { name: 'approval_limit: exactly at max', rules: [{ type: 'approval_limit', asset: 'USDC@base', max: '1000' }], action: usdcApproval(1000n), outcome: 'allow' },
  { name: 'approval_limit: over max', rules: [{ type: 'approval_limit', asset: 'USDC@base', max: '1000' }], action: usdcApproval(1001n), outcome: 'deny', codes: ['approval_cap_exceeded'] },
  { name: 'approval_limit: unlimited and over max lists both', rules: [{ type: 'approval_limit', max: '1000' }], action: usdcApproval(MAX_U256), outcome: 'deny', codes: ['unlimited_approval', 'approval_cap_exceeded'] },
  { name: 'approval_limit: spenders scope', rules: [{ type: 'approval_limit', spenders: [BOB], max: '10' }], action: usdcApproval(1000n, ROUTER), outcome: 'allow' },
  { name: 'approval_limit: denyUnlimited false allows unlimited under no max', rules: [{ type: 'approval_limit', denyUnlimited: false, spenders: [BOB], max: '10' }], action: usdcApproval(MAX_U256, ROUTER), outcome: 'allow' },
  { name: 'tx caps do not count approvals', rules: [cap100], action: usdcApproval(1000n), outcome: 'allow' },
  {
    name: 'approval_limit maxDuration: an approval without expiry is refused',
    rules: [{ type: 'approval_limit', maxDuration: '30d', denyUnlimited: false }],
    action: usdcApproval(10n),
    outcome: 'deny',
    codes: ['approval_expiry_too_long'],
  },
  {
    name: 'approval_limit maxDuration: expiring exactly at the limit is allowed, one second later is not',
    rules: [{ type: 'approval_limit', maxDuration: '30d' }],
    action: { ...usdcApproval(10n), effects: [{ type: 'approval', asset: USDC_BASE, spender: ROUTER, amount: 10n, expiry: (NOW + 30 * 24 * H) / 1000 }] },
    outcome: 'allow',
  },
  {
    name: 'approval_limit maxDuration: one second too long',
    rules: [{ type: 'approval_limit', maxDuration: '30d' }],
    action: { ...usdcApproval(10n), effects: [{ type: 'approval', asset: USDC_BASE, spender: ROUTER, amount: 10n, expiry: (NOW + 30 * 24 * H) / 1000 + 1 }] },
    outcome: 'deny',
    codes: ['approval_expiry_too_long'],
  },
]);

// ---------------------------------------------------------------- fees
run([
  { name: 'fee_cap: at the cap', rules: [{ type: 'fee_cap', chainId: '8453', max: '1000' }], action: ethTransfer(1n, ALICE, '8453', 1000n), outcome: 'allow' },
  { name: 'fee_cap: over', rules: [{ type: 'fee_cap', chainId: '8453', max: '1000' }], action: ethTransfer(1n, ALICE, '8453', 1001n), outcome: 'deny', codes: ['fee_cap_exceeded'] },
  { name: 'fee_cap: other chain', rules: [{ type: 'fee_cap', chainId: '1', max: '1000' }], action: ethTransfer(1n, ALICE, '8453', 5000n), outcome: 'allow' },
]);

// ---------------------------------------------------------------- human approval
const big = { id: 'big', type: 'require_approval', asset: 'USDC@base', above: '1000', m: 2, group: 'treasury' };
run([
  { name: 'require_approval: at the threshold no approval needed', rules: [big], action: usdcTransfer(1000n), outcome: 'allow' },
  {
    name: 'require_approval: above the threshold needs 2 of 3',
    rules: [big, daily],
    action: usdcTransfer(1001n),
    usage: [],
    outcome: 'deny', // the 24h cap of 100 denies: deny wins over needs_approval
    codes: ['window_cap_exceeded'],
  },
  {
    name: 'require_approval: needs_approval carries the requirement and the reservations',
    rules: [big, { ...daily, max: '5000' }],
    action: usdcTransfer(1001n),
    approvals: ['alice', 'mallory'],
    outcome: 'needs_approval',
    codes: ['approval_required'],
    check: (d) => {
      assert.deepEqual(d.approvals, [{ rule: 'big', source: 'policy', required: 2, approvers: ['alice', 'bob', 'carol'], group: 'treasury', granted: ['alice'] }]);
      assert.equal(d.reservations.length, 1);
    },
  },
  { name: 'require_approval: two approvers from the group satisfy it', rules: [big], action: usdcTransfer(1001n), approvals: ['carol', 'alice'], outcome: 'allow', codes: ['allowed_by_rule', 'approval_satisfied'] },
  { name: 'require_approval: the same approver twice counts once', rules: [big], action: usdcTransfer(1001n), approvals: ['alice', 'alice'], outcome: 'needs_approval' },
  { name: 'require_approval: an approval above the threshold also needs approval', rules: [big], action: usdcApproval(5000n), outcome: 'needs_approval' },
  { name: 'require_approval: USDC on Ethereum is not covered', rules: [big], action: usdcTransfer(5000n, ALICE, '1'), outcome: 'allow' },
  { name: 'require_approval without asset: every matching action', rules: [{ type: 'require_approval', m: 1, approvers: ['ops'], match: { kinds: ['contract_deploy'] } }], action: { chain: 'ethereum', chainId: '8453', kind: 'contract_deploy', effects: [] }, outcome: 'needs_approval' },
]);

test('decision records ctx.policyVersion, else the policy version', () => {
  const p = policy([], { version: 7 });
  assert.equal(evaluate(p, usdcTransfer(1n), { now: NOW }).policyVersion, 7);
  assert.equal(evaluate(p, usdcTransfer(1n), { now: new Date(NOW), policyVersion: 'p-7@abc' }).policyVersion, 'p-7@abc');
});

test('a policy with window or rate limits refuses to evaluate without ctx.usage', () => {
  assert.throws(() => evaluate(policy([daily]), usdcTransfer(1n), { now: NOW }), /ctx\.usage is required/);
  assert.throws(() => evaluate(policy([rate]), usdcTransfer(1n), { now: NOW }), /ctx\.usage is required/);
  assert.equal(evaluate(policy([cap100]), usdcTransfer(1n), { now: NOW }).outcome, 'allow');
});

test('negative effect amounts are refused', () => {
  assert.throws(() => evaluate(policy([]), usdcApproval(-1n), { now: NOW }), /non-negative/);
});

test('counter keys are stable strings', () => {
  assert.equal(sumKey('wallet', assetKey('8453', USDC_BASE)), 'sum/wallet/8453/0x833589fcd6edb6e08f4c7da32a3e2df4b2c3f0d7');
  assert.equal(sumKey({ fleet: 'wal_f00d' }, assetKey('mainnet-beta', SOL_USDC), SOL_ALICE), `sum/fleet/wal_f00d/mainnet-beta/${SOL_USDC}/to/${SOL_ALICE}`);
  assert.equal(countKey({ fleet: 'wal_f00d' }), 'count/fleet/wal_f00d/all');
  assert.throws(() => sumKey({ fleet: '' }, assetKey('1', 'native')), /fleet id/);
  assert.equal(sumKey('wallet', assetKey('1', 'native')), 'sum/wallet/1/native');
  assert.equal(countKey('wallet', { chainId: '1', to: ALICE.toLowerCase() }), `count/wallet/to/1/${ALICE.toLowerCase()}`);
  // the same scope written differently (order, case) gives the same match-hashed key
  const a = evaluate(policy([{ ...rate, match: { to: [ALICE, BOB], kinds: ['token_transfer'] } }]), usdcTransfer(1n), { now: NOW, usage: NO_USAGE });
  const b = evaluate(policy([{ ...rate, match: { kinds: ['token_transfer'], to: [BOB.toLowerCase(), ALICE] } }]), usdcTransfer(1n), { now: NOW, usage: NO_USAGE });
  assert.equal(a.reservations[0].counterKey, b.reservations[0].counterKey);
});
