import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError } from '../../src/errors.ts';
import { compilePolicy, lintPolicy, policyDigest, policyJsonSchema, validatePolicy } from '../../src/policy/index.ts';
import { ASSETS } from './helpers.ts';

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    validatePolicy(doc);
  } catch (e) {
    assert.ok(e instanceof FleetkeyError);
    assert.equal(e.code, 'validation_failed');
    assert.equal(e.status, 400);
    const issues = e.details?.issues as { path: string; message: string }[];
    assert.equal(e.details?.path, issues[0].path);
    return issues;
  }
  assert.fail('expected validation to fail');
}

const ok = { type: 'allow', chainIds: ['1'] };
const doc = (rules: unknown[], extra: object = {}) => ({ version: 1, assets: ASSETS, approverGroups: { ops: ['a', 'b'] }, rules, ...extra });

const cases: [string, unknown, string, RegExp?][] = [
  ['bad window', doc([ok, ok, ok, { type: 'window_cap', asset: 'USDC@base', max: '1', window: '24 hours' }]), 'rules[3].window', /window must look like/],
  ['amount with decimals', doc([{ type: 'tx_cap', asset: 'USDC@base', max: '1.5' }]), 'rules[0].max', /base units/],
  ['amount as a number', doc([{ type: 'tx_cap', asset: 'USDC@base', max: 100 }]), 'rules[0].max'],
  ['negative amount', doc([{ type: 'tx_cap', asset: 'USDC@base', max: '-1' }]), 'rules[0].max'],
  ['unknown rule type', doc([ok, { type: 'allow_everything' }]), 'rules[1].type'],
  ['typo in a field name', doc([{ type: 'window_cap', asset: 'USDC@base', max: '1', widnow: '1h' }]), 'rules[0].widnow', /unknown field/],
  ['unknown top-level field', doc([], { rulez: [] }), 'rulez'],
  ['missing version', { rules: [] }, 'version'],
  ['unknown asset alias', doc([{ type: 'tx_cap', asset: 'USDT@base', max: '1' }]), 'rules[0].asset', /unknown asset alias/],
  ['unknown alias inside match', doc([{ type: 'rate_limit', max: 1, window: '1h', match: { assets: ['nope'] } }]), 'rules[0].match.assets[0]'],
  ['unknown kind', doc([{ type: 'allow', kinds: ['transfer'] }]), 'rules[0].kinds[0]'],
  ['empty list', doc([{ type: 'allow', to: [] }]), 'rules[0].to'],
  ['deny without fields', doc([{ type: 'deny' }]), 'rules[0]', /at least one/],
  ['bad time', doc([{ type: 'time_window', from: '9:00', to: '17:00' }]), 'rules[0].from'],
  ['bad time zone', doc([{ type: 'time_window', timezone: 'Mars/Olympus', from: '09:00', to: '17:00' }]), 'rules[0].timezone', /time zone/],
  ['both zone and offset', doc([{ type: 'time_window', timezone: 'UTC', utcOffset: '+01:00', from: '09:00', to: '17:00' }]), 'rules[0].utcOffset'],
  ['bad offset', doc([{ type: 'time_window', utcOffset: '+1', from: '09:00', to: '17:00' }]), 'rules[0].utcOffset'],
  ['empty time window', doc([{ type: 'time_window', from: '09:00', to: '09:00' }]), 'rules[0].to'],
  ['date order', doc([{ type: 'date_window', notBefore: '2027-01-01', notAfter: '2026-01-01' }]), 'rules[0].notAfter'],
  ['bad date', doc([{ type: 'date_window', notBefore: 'tomorrow' }]), 'rules[0].notBefore'],
  ['date-time without a zone', doc([{ type: 'date_window', notBefore: '2026-12-01T09:00:00' }]), 'rules[0].notBefore', /offset/],
  ['impossible date', doc([{ type: 'date_window', notBefore: '2026-13-45' }]), 'rules[0].notBefore'],
  ['unknown approver group', doc([{ type: 'require_approval', m: 1, group: 'board' }]), 'rules[0].group'],
  ['m larger than n', doc([{ type: 'require_approval', m: 3, group: 'ops' }]), 'rules[0].m'],
  ['approvers and group', doc([{ type: 'require_approval', m: 1, group: 'ops', approvers: ['x'] }]), 'rules[0]'],
  ['above without asset', doc([{ type: 'require_approval', m: 1, group: 'ops', above: '5' }]), 'rules[0].asset'],
  ['duplicate rule ids', doc([{ id: 'x', ...ok }, { id: 'x', ...ok }]), 'rules[1].id', /duplicate/],
  ['rate limit not an integer', doc([{ type: 'rate_limit', max: 1.5, window: '1h' }]), 'rules[0].max'],
  ['bad inline asset', doc([{ type: 'tx_cap', asset: { chain: '1', asset: 'native' }, max: '1' }]), 'rules[0].asset'],
  ['asset alias definition missing chainId', doc([], { assets: { X: { asset: 'native' } } }), 'assets.X.chainId'],
];

for (const [name, input, path, msg] of cases) {
  test(`validation: ${name} -> ${path}`, () => {
    const issues = issuesOf(input);
    assert.ok(issues.some((i) => i.path === path), `expected an issue at ${path}, got ${JSON.stringify(issues)}`);
    if (msg) assert.ok(issues.some((i) => i.path === path && msg.test(i.message)), JSON.stringify(issues));
  });
}

test('validation: all issues are reported, each with its path', () => {
  const issues = issuesOf(doc([{ type: 'tx_cap', asset: 'USDC@base', max: 'x' }, ok, { type: 'window_cap', asset: 'USDC@base', max: '1', window: 'forever' }]));
  assert.deepEqual(issues.map((i) => i.path), ['rules[0].max', 'rules[2].window']);
});

test('validation: JSON text, invalid JSON', () => {
  assert.equal(validatePolicy(JSON.stringify(doc([ok]))).version, 1);
  assert.equal(issuesOf('{"version": 1, rules: []}')[0].path, '(root)');
});

test('validated policy: amounts are bigint, windows ms, chain ids strings; it is frozen', () => {
  const p = validatePolicy(doc([{ type: 'window_cap', asset: 'USDC@base', max: '100000000', window: '1h30m' }, { type: 'allow', chainIds: [8453] }]));
  const r = p.rules[0] as { max: bigint; window: number; scope: string };
  assert.equal(r.max, 100_000_000n);
  assert.equal(r.window, 5_400_000);
  assert.equal(r.scope, 'wallet');
  assert.deepEqual((p.rules[1] as { chainIds: string[] }).chainIds, ['8453']);
  assert.ok(Object.isFrozen(p.rules[0]));
  assert.throws(() => {
    (p.rules as unknown[]).push(ok);
  });
});

test('compilePolicy validates raw input and caches per object', () => {
  const raw = doc([ok]);
  const a = compilePolicy(raw);
  assert.equal(compilePolicy(raw), a);
  assert.throws(() => compilePolicy({ version: 0, rules: [] }), (e: unknown) => e instanceof FleetkeyError && e.code === 'validation_failed');
});

test('the example policy in src/policy/README.md is valid and behaves as described', async () => {
  const { readFile } = await import('node:fs/promises');
  const md = await readFile(new URL('../../src/policy/README.md', import.meta.url), 'utf8');
  const json = /```json\n([\s\S]*?)\n```/.exec(md)![1];
  const p = validatePolicy(json);
  assert.equal(p.version, 12);
  assert.equal(p.rules.length, 15);
  assert.deepEqual(lintPolicy(p), [], 'the documented example passes lint');
  const { evaluate, NO_USAGE } = await import('../../src/policy/index.ts');
  const { usdcTransfer } = await import('./helpers.ts');
  const monday10 = Date.parse('2026-11-23T09:00:00Z');
  const d = evaluate(p, usdcTransfer(30_000_000n), { now: monday10, usage: NO_USAGE, fleet: 'wal_f1ee7' });
  assert.equal(d.outcome, 'needs_approval');
  assert.equal(evaluate(p, usdcTransfer(10_000_000n), { now: monday10, usage: NO_USAGE, fleet: 'wal_f1ee7' }).outcome, 'allow');
  assert.deepEqual(
    evaluate(p, usdcTransfer(10_000_000n), { now: Date.parse('2026-11-22T09:00:00Z'), usage: NO_USAGE, fleet: 'wal_f1ee7' }).reasons.map((r) => r.rule),
    ['office-hours'],
  );
});

test('a JSON Schema of the hand-written format is available for editors', () => {
  const js = policyJsonSchema() as { $schema: string; required: string[]; properties: Record<string, unknown> };
  assert.match(js.$schema, /json-schema\.org/);
  assert.deepEqual([...js.required].sort(), ['rules', 'version']);
  assert.ok(JSON.stringify(js.properties.rules).includes('"window_cap"'));
});

test('lint warns about valid but risky policies', () => {
  const risky = validatePolicy(doc([{ type: 'allow' }, { type: 'allow', chainIds: ['1'], kinds: ['contract_call', 'unknown'], allowUnknownAssets: true }]));
  assert.deepEqual(
    lintPolicy(risky).map((w) => `${w.path} ${w.code}`),
    ['rules[0] allow_any_chain', 'rules[1] allow_any_contract', 'rules[1] allow_unknown_kind', 'rules[1] allow_unknown_assets', 'rules approvals_unbounded', 'rules transfers_uncapped'],
  );
  assert.deepEqual(lintPolicy(validatePolicy(doc([]))).map((w) => w.code), ['no_allow_rule']);
  const careful = validatePolicy(
    doc([
      { type: 'allow', chainIds: ['8453'] },
      { type: 'allow', chainIds: ['8453'], kinds: ['contract_call'], contracts: ['0x3333333333333333333333333333333333333333'] },
      { type: 'approval_limit', max: '10' },
      { type: 'window_cap', asset: 'USDC@base', max: '10', window: '1d' },
    ]),
  );
  assert.deepEqual(lintPolicy(careful), []);
});

test('policyDigest ignores formatting and window spelling, not content', () => {
  const a = validatePolicy(JSON.stringify(doc([{ type: 'window_cap', asset: 'USDC@base', max: '10', window: '24h' }])));
  const b = validatePolicy(JSON.stringify(doc([{ window: '1d', max: '10', asset: 'USDC@base', type: 'window_cap' }]), null, 2));
  const c = validatePolicy(doc([{ type: 'window_cap', asset: 'USDC@base', max: '11', window: '24h' }]));
  assert.match(policyDigest(a), /^[0-9a-f]{64}$/);
  assert.equal(policyDigest(a), policyDigest(b));
  assert.notEqual(policyDigest(a), policyDigest(c));
});
