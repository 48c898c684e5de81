/**
 * evaluate(policy, action, ctx) → Decision. Pure: time comes from ctx.now, history from ctx.usage.
 *
 * Semantics, in order of strength:
 * 1. deny wins: any violated rule in any layer denies, and every violation is listed;
 * 2. default deny: each layer needs at least one `allow` rule matching the whole action
 *    (an allow rule without `kinds` covers only transfers and approvals, DEFAULT_ALLOW_KINDS: contract
 *    calls, deployments, typed data, messages and 'unknown' must be listed in `kinds` explicitly);
 * 3. otherwise, unsatisfied `require_approval` rules make the outcome 'needs_approval';
 * 4. otherwise 'allow'.
 * Reservations (for window caps and rate limits) are returned for allow and needs_approval; the store
 * must make them atomically, re-checking each `checks` entry against its counters (two nodes may
 * evaluate concurrently against the same usage).
 */
import type { Action, Effect } from '../chains/types.ts';
import { FleetkeyError } from '../errors.ts';
import { compilePolicy, windowText, type AssetInfo, type CompiledLayer, type CompiledMatch, type CompiledPolicy, type CompiledRule } from './compile.ts';
import { assetKey, countKey, normAddress, normSelector, sumKey, type CounterScope, type Scope } from './keys.ts';
import type { Policy } from './schema.ts';
import type { UsageView } from './usage.ts';

export type Outcome = 'allow' | 'deny' | 'needs_approval';

/** Stable codes; scripts may match on them. */
export type ReasonCode =
  // deny
  | 'no_allow_rule'
  | 'unknown_kind'
  | 'unknown_asset'
  | 'chain_unknown'
  | 'denied_by_rule'
  | 'tx_cap_exceeded'
  | 'window_cap_exceeded'
  | 'rate_limit_exceeded'
  | 'outside_time_window'
  | 'outside_date_window'
  | 'approval_cap_exceeded'
  | 'unlimited_approval'
  | 'approval_expiry_too_long'
  | 'fee_cap_exceeded'
  // needs_approval
  | 'approval_required'
  // allow
  | 'allowed_by_rule'
  | 'approval_satisfied'
  // only in simulate's trace: a rule that was checked and held, or did not apply
  | 'within_limit'
  | 'not_applicable';

export interface Reason {
  /** Rule id, or "rules[i]"; "(default)" for default deny / unknown asset, "(engine)" for chain_unknown. */
  rule: string;
  /** Index in the policy's rules array; -1 for engine checks. */
  index: number;
  /** Which policy of a combined one; 'policy' when not combined. */
  source: 'policy' | 'fleet' | 'wallet';
  code: ReasonCode;
  message: string;
}

/** One check the store must repeat atomically when reserving: sum (or count) in (now − windowMs, now] + amount ≤ max. */
export interface ReservationCheck {
  windowMs: number;
  max: bigint;
}

export interface Reservation {
  counterKey: string;
  /** Amount in base units; 1n for a count. */
  amount: bigint;
  /** How long the reservation must count: the longest window of any rule over this key. */
  windowMs: number;
  kind: 'sum' | 'count';
  checks: ReservationCheck[];
}

export interface ApprovalRequirement {
  rule: string;
  source: 'policy' | 'fleet' | 'wallet';
  /** M: distinct approvals needed from `approvers`. */
  required: number;
  /** The N people who may approve. */
  approvers: string[];
  group?: string;
  /** Approvers from ctx.approvals that already count toward this requirement. */
  granted: string[];
}

export interface Decision {
  outcome: Outcome;
  /** Why: for 'deny' every violation; for 'needs_approval' each unmet approval rule; for 'allow' the allow rules that matched and approvals met. */
  reasons: Reason[];
  /** What to reserve against usage counters if signing proceeds (empty on deny). */
  reservations: Reservation[];
  /** Present when outcome is 'needs_approval': every requirement must be met. */
  approvals?: ApprovalRequirement[];
  policyVersion: string | number;
}

export interface EvalContext {
  /** The decision time. */
  now: Date | number;
  /**
   * Usage history (committed + reserved). Required when a window_cap or rate_limit rule applies: leaving it
   * out throws rather than silently treating the history as empty (pass NO_USAGE for a real empty history).
   */
  usage?: UsageView;
  /** Recorded in the decision; default the policy's own version. */
  policyVersion?: string | number;
  /** Ids of the people who have approved this exact request (the caller verifies their signatures). */
  approvals?: readonly string[];
  /**
   * The fleet the wallet belongs to: its root wallet's id (a wallet that is no fleet's child is its
   * own). Names the counters of `scope: "fleet"` limits, so fleets under one policy never share a
   * cap. Required when the policy has such a limit: leaving it out throws (no counter is shared by
   * accident).
   */
  fleet?: string;
}

/** What the engine reads from an action, computed once per evaluation. */
export interface ActionFacts {
  kind: string;
  family: Action['chain'];
  chainId?: string;
  /** Where value or permission goes: transfer recipients and approval spenders; if none, `to`. */
  destinations: string[];
  /** destinations plus `to`: what deny lists are checked against. */
  touched: string[];
  contracts: string[];
  selectors: string[];
  programs: string[];
  /** assetKey of every effect (transfers and approvals). */
  assets: string[];
  /** Transfer totals per assetKey (change outputs back to `from` excluded). */
  totals: Map<string, bigint>;
  /** Transfer totals per assetKey per destination. */
  perDest: Map<string, Map<string, bigint>>;
  /** expiry: unix seconds, as the decoder gives it; undefined or 0 = never expires. */
  approvals: { asset: string; spender: string; amount: bigint; expiry?: number }[];
  unknownAssetEffects: number;
  effectCount: number;
  fee?: bigint;
}

const NO_CHAIN = '?';

const missing = (): never => {
  throw new FleetkeyError('bad_request', 'this policy has rolling-window or rate limits: ctx.usage is required (use NO_USAGE for an empty history)');
};
const MISSING_USAGE: UsageView = { sum: missing, count: missing };

export function actionFacts(a: Action): ActionFacts {
  const chainId = a.chainId === undefined || a.chainId === '' ? undefined : String(a.chainId);
  const cid = chainId ?? NO_CHAIN;
  const from = a.from !== undefined ? normAddress(a.from) : undefined;
  const totals = new Map<string, bigint>();
  const perDest = new Map<string, Map<string, bigint>>();
  const approvals: ActionFacts['approvals'] = [];
  const dests = new Set<string>();
  const assets = new Set<string>();
  let unknownAssetEffects = 0;
  for (const e of a.effects as (Effect & { change?: boolean })[]) {
    if (typeof e.amount !== 'bigint' || e.amount < 0n) throw new FleetkeyError('validation_failed', 'action effect amount must be a non-negative bigint');
    if (e.asset === 'unknown') unknownAssetEffects++;
    const ak = assetKey(cid, e.asset);
    assets.add(ak);
    if (e.type === 'transfer') {
      const to = normAddress(e.to);
      // A change output is not a spend only when it provably pays back to the signer.
      if (e.change === true && from !== undefined && to === from) continue;
      dests.add(to);
      totals.set(ak, (totals.get(ak) ?? 0n) + e.amount);
      let m = perDest.get(ak);
      if (!m) perDest.set(ak, (m = new Map()));
      m.set(to, (m.get(to) ?? 0n) + e.amount);
    } else {
      const spender = normAddress(e.spender);
      dests.add(spender);
      approvals.push({ asset: ak, spender, amount: e.amount, ...(e.expiry ? { expiry: e.expiry } : {}) });
    }
  }
  const to = a.to !== undefined ? normAddress(a.to) : undefined;
  if (dests.size === 0 && to !== undefined) dests.add(to);
  const touched = new Set(dests);
  if (to !== undefined) touched.add(to);
  const ext = a as Action & { calls?: { contract: string; function?: { selector: string } }[] };
  const contracts = new Set<string>();
  const selectors = new Set<string>();
  if (a.contract !== undefined) contracts.add(normAddress(a.contract));
  if (a.function?.selector !== undefined) selectors.add(normSelector(a.function.selector));
  for (const c of ext.calls ?? []) {
    contracts.add(normAddress(c.contract));
    if (c.function?.selector !== undefined) selectors.add(normSelector(c.function.selector));
  }
  return {
    kind: a.kind,
    family: a.chain,
    chainId,
    destinations: [...dests],
    touched: [...touched],
    contracts: [...contracts],
    selectors: [...selectors],
    programs: [...new Set((a.programs ?? []).map(normAddress))],
    assets: [...assets],
    totals,
    perDest,
    approvals,
    unknownAssetEffects,
    effectCount: a.effects.length,
    fee: a.fee,
  };
}

/**
 * Kinds an allow rule without `kinds` covers: those whose whole effect the decoder states. Running
 * contract code, deploying it, signing typed data or messages (which can be orders or logins) and
 * undecodable payloads must be allowed by name.
 */
export const DEFAULT_ALLOW_KINDS: ReadonlySet<string> = new Set(['native_transfer', 'token_transfer', 'token_approval']);

/** allow semantics: every listed field holds for the whole action (every destination listed, ...). */
export function matchesAll(m: CompiledMatch, f: ActionFacts): boolean {
  if (!(m.kinds ?? DEFAULT_ALLOW_KINDS).has(f.kind)) return false;
  if (m.chainIds && (f.chainId === undefined || !m.chainIds.has(f.chainId))) return false;
  if (m.to && !every(f.touched, m.to)) return false;
  if (m.contracts && !every(f.contracts, m.contracts)) return false;
  if (m.selectors && !every(f.selectors, m.selectors)) return false;
  if (m.programs && !every(f.programs, m.programs)) return false;
  if (m.assets && !every(f.assets, m.assets)) return false;
  return true;
}

/** deny / scope semantics: every listed field is hit by some part of the action. */
export function matchesAny(m: CompiledMatch, f: ActionFacts): boolean {
  if (m.kinds && !m.kinds.has(f.kind)) return false;
  if (m.chainIds && (f.chainId === undefined || !m.chainIds.has(f.chainId))) return false;
  if (m.to && !some(f.touched, m.to)) return false;
  if (m.contracts && !some(f.contracts, m.contracts)) return false;
  if (m.selectors && !some(f.selectors, m.selectors)) return false;
  if (m.programs && !some(f.programs, m.programs)) return false;
  if (m.assets && !some(f.assets, m.assets)) return false;
  return true;
}

function every(xs: readonly string[], set: ReadonlySet<string>): boolean {
  if (xs.length === 0) return false;
  for (const x of xs) if (!set.has(x)) return false;
  return true;
}
function some(xs: readonly string[], set: ReadonlySet<string>): boolean {
  for (const x of xs) if (set.has(x)) return true;
  return false;
}

const U64_MAX = (1n << 64n) - 1n;
const U128 = 1n << 128n;

interface Acc {
  deny: Reason[];
  approve: Reason[];
  allow: Reason[];
  trace?: Reason[];
  requirements: ApprovalRequirement[];
  reservations: Map<string, Reservation>;
}

export function evaluate(policy: Policy | CompiledPolicy, action: Action, ctx: EvalContext): Decision {
  return run(compilePolicy(policy), action, ctx, undefined);
}

/** Like evaluate, also returning a trace of every rule checked (for simulate). */
export function evaluateWithTrace(policy: Policy | CompiledPolicy, action: Action, ctx: EvalContext): { decision: Decision; trace: Reason[] } {
  const trace: Reason[] = [];
  const decision = run(compilePolicy(policy), action, ctx, trace);
  return { decision, trace };
}

function run(p: CompiledPolicy, action: Action, ctx: EvalContext, trace: Reason[] | undefined): Decision {
  const now = typeof ctx.now === 'number' ? ctx.now : ctx.now.getTime();
  if (!Number.isFinite(now)) throw new FleetkeyError('validation_failed', 'ctx.now is not a valid time');
  const usage = ctx.usage ?? MISSING_USAGE;
  const granted = new Set(ctx.approvals ?? []);
  const fleet = ctx.fleet;
  if ((typeof fleet !== 'string' || !fleet) && p.layers.some((l) => l.checks.some((r) => (r.type === 'window_cap' || r.type === 'rate_limit') && r.scope === 'fleet'))) {
    throw new FleetkeyError('bad_request', 'this policy has fleet-wide limits: ctx.fleet (the fleet\'s root wallet id) is required');
  }
  const f = actionFacts(action);
  const acc: Acc = { deny: [], approve: [], allow: [], trace, requirements: [], reservations: new Map() };

  if (f.chainId === undefined && f.effectCount > 0) {
    push(acc, 'deny', {
      rule: '(engine)',
      index: -1,
      source: 'policy',
      code: 'chain_unknown',
      message: 'the action moves or approves value but its chain id is unknown, so no asset limit can be applied',
    });
  }
  for (const layer of p.layers) evalLayer(layer, f, now, usage, fleet, granted, acc);

  const outcome: Outcome = acc.deny.length ? 'deny' : acc.requirements.length ? 'needs_approval' : 'allow';
  return {
    outcome,
    reasons: outcome === 'deny' ? acc.deny : outcome === 'needs_approval' ? acc.approve : acc.allow,
    reservations: outcome === 'deny' ? [] : [...acc.reservations.values()],
    ...(outcome === 'needs_approval' ? { approvals: acc.requirements } : {}),
    policyVersion: ctx.policyVersion ?? p.version,
  };
}

function push(acc: Acc, kind: 'deny' | 'approve' | 'allow' | 'trace', r: Reason): void {
  if (kind !== 'trace') acc[kind].push(r);
  acc.trace?.push(r);
}

function reason(layer: CompiledLayer, rule: CompiledRule, code: ReasonCode, message: string): Reason {
  return { rule: rule.ref, index: rule.index, source: layer.source, code, message };
}

function evalLayer(layer: CompiledLayer, f: ActionFacts, now: number, usage: UsageView, fleet: string | undefined, granted: ReadonlySet<string>, acc: Acc): void {
  const where = layer.source === 'policy' ? 'the policy' : `the ${layer.source} policy`;
  // 1. default deny: some allow rule must match the whole action
  let allowed = false;
  let unknownAssetsOk = false;
  for (const r of layer.allows) {
    if (matchesAll(r.m, f)) {
      allowed = true;
      if (r.allowUnknownAssets) unknownAssetsOk = true;
      push(acc, 'allow', reason(layer, r, 'allowed_by_rule', `allowed by ${r.ref}${r.description ? ` (${r.description})` : ''}`));
    } else if (acc.trace) {
      push(acc, 'trace', reason(layer, r, 'not_applicable', `allow rule ${r.ref} does not match this action`));
    }
  }
  if (!allowed) {
    const unknown = f.kind === 'unknown';
    const byName = DEFAULT_ALLOW_KINDS.has(f.kind) ? '' : ` (a ${f.kind} must be listed in an allow rule's kinds)`;
    acc.deny.push({
      rule: '(default)',
      index: -1,
      source: layer.source,
      code: unknown ? 'unknown_kind' : 'no_allow_rule',
      message: unknown
        ? `the payload could not be decoded (kind "unknown") and no allow rule in ${where} lists "unknown" in kinds`
        : `no allow rule in ${where} matches this ${f.kind} action (default deny)${byName}`,
    });
    acc.trace?.push(acc.deny[acc.deny.length - 1]);
  }
  if (f.unknownAssetEffects > 0 && !unknownAssetsOk) {
    acc.deny.push({
      rule: '(default)',
      index: -1,
      source: layer.source,
      code: 'unknown_asset',
      message: `${f.unknownAssetEffects} effect(s) move a token the decoder could not identify; no matching allow rule in ${where} sets allowUnknownAssets`,
    });
    acc.trace?.push(acc.deny[acc.deny.length - 1]);
  }

  // 2. every other rule, in order
  for (const r of layer.checks) {
    if (r.type === 'deny') {
      if (matchesAny(r.m, f)) push(acc, 'deny', reason(layer, r, 'denied_by_rule', `denied by ${r.ref}${r.description ? ` (${r.description})` : ''}: ${describeDenyHit(r.m, f)}`));
      else if (acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `deny rule ${r.ref} does not match`));
      continue;
    }
    if (r.m && !matchesAny(r.m, f)) {
      if (acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `${r.ref} is limited by "match" to other actions`));
      continue;
    }
    switch (r.type) {
      case 'tx_cap':
        txCap(layer, r, f, acc);
        break;
      case 'window_cap':
        windowCap(layer, r, f, now, usage, owner(r.scope, fleet), acc);
        break;
      case 'rate_limit':
        rateLimit(layer, r, f, now, usage, owner(r.scope, fleet), acc);
        break;
      case 'time_window':
        timeWindow(layer, r, now, acc);
        break;
      case 'date_window':
        dateWindow(layer, r, now, acc);
        break;
      case 'approval_limit':
        approvalLimit(layer, r, f, now, acc);
        break;
      case 'fee_cap':
        if (f.chainId === r.chainId && f.fee !== undefined && f.fee > r.max) {
          push(acc, 'deny', reason(layer, r, 'fee_cap_exceeded', `network fee ${f.fee} exceeds the cap of ${r.max} on chain ${r.chainId} (${r.ref})`));
        } else if (acc.trace) {
          push(acc, 'trace', reason(layer, r, f.chainId === r.chainId && f.fee !== undefined ? 'within_limit' : 'not_applicable', `fee cap ${r.ref}: fee ${f.fee ?? 'unknown'} on chain ${f.chainId ?? '?'}`));
        }
        break;
      case 'require_approval':
        requireApproval(layer, r, f, granted, acc);
        break;
    }
  }
}

function describeDenyHit(m: CompiledMatch, f: ActionFacts): string {
  const parts: string[] = [];
  const hit = (name: string, xs: readonly string[], set?: ReadonlySet<string>) => {
    if (!set) return;
    const h = xs.filter((x) => set.has(x));
    parts.push(`${name} ${h.join(', ')}`);
  };
  if (m.kinds) parts.push(`kind ${f.kind}`);
  if (m.chainIds) parts.push(`chain ${f.chainId}`);
  hit('destination', f.touched, m.to);
  hit('contract', f.contracts, m.contracts);
  hit('selector', f.selectors, m.selectors);
  hit('program', f.programs, m.programs);
  hit('asset', f.assets, m.assets);
  return parts.join('; ') + ' is on a deny list';
}

export function formatAmount(v: bigint, a: AssetInfo): string {
  if (a.decimals === undefined) return `${v} ${a.label}`;
  const d = BigInt(a.decimals);
  const base = 10n ** d;
  const whole = v / base;
  const frac = (v % base).toString().padStart(a.decimals, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} ${a.symbol ?? a.label} (${v} base units)`;
}

/** Transfers of `asset` this rule counts: [destination | undefined (all), amount]. */
function amountsFor(r: { asset: AssetInfo; perDest: boolean; to?: ReadonlySet<string> }, f: ActionFacts): [string | undefined, bigint][] {
  if (!r.perDest) {
    const t = f.totals.get(r.asset.key);
    return t !== undefined && t > 0n ? [[undefined, t]] : [];
  }
  const m = f.perDest.get(r.asset.key);
  if (!m) return [];
  const out: [string, bigint][] = [];
  for (const [dest, amt] of m) if (amt > 0n && (!r.to || r.to.has(dest))) out.push([dest, amt]);
  return out;
}

function txCap(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'tx_cap' }>, f: ActionFacts, acc: Acc): void {
  const items = amountsFor(r, f);
  for (const [dest, amt] of items) {
    if (amt > r.max) {
      push(acc, 'deny', reason(layer, r, 'tx_cap_exceeded', `transfer of ${formatAmount(amt, r.asset)}${dest ? ` to ${dest}` : ''} exceeds the per-transaction cap of ${formatAmount(r.max, r.asset)} (${r.ref})`));
    } else if (acc.trace) {
      push(acc, 'trace', reason(layer, r, 'within_limit', `${formatAmount(amt, r.asset)}${dest ? ` to ${dest}` : ''} is within the per-transaction cap of ${formatAmount(r.max, r.asset)} (${r.ref})`));
    }
  }
  if (!items.length && acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `${r.ref}: no transfer of ${r.asset.label}`));
}

function reserve(acc: Acc, key: string, kind: 'sum' | 'count', amount: bigint, windowMs: number, max: bigint): void {
  const have = acc.reservations.get(key);
  if (!have) {
    acc.reservations.set(key, { counterKey: key, amount, windowMs, kind, checks: [{ windowMs, max }] });
    return;
  }
  if (amount > have.amount) have.amount = amount; // same key, same action: same amount
  if (windowMs > have.windowMs) have.windowMs = windowMs;
  if (!have.checks.some((c) => c.windowMs === windowMs && c.max === max)) have.checks.push({ windowMs, max });
}

/** Whose counters a limit reads and reserves: this wallet's, or its fleet's (run() checked that `fleet` is set). */
function owner(scope: Scope, fleet: string | undefined): CounterScope {
  return scope === 'fleet' ? { fleet: fleet! } : 'wallet';
}

function windowCap(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'window_cap' }>, f: ActionFacts, now: number, usage: UsageView, scope: CounterScope, acc: Acc): void {
  const items = amountsFor(r, f);
  for (const [dest, amt] of items) {
    const key = sumKey(scope, r.asset.key, dest, r.mh);
    const used = usage.sum(key, now - r.windowMs);
    const who = dest ? ` to ${dest}` : '';
    const scopeText = r.scope === 'fleet' ? ' fleet-wide' : '';
    if (used + amt > r.max) {
      push(acc, 'deny', reason(layer, r, 'window_cap_exceeded', `${formatAmount(amt, r.asset)}${who} would bring the${scopeText} ${r.windowText} total to ${formatAmount(used + amt, r.asset)}, over the cap of ${formatAmount(r.max, r.asset)} (${formatAmount(used, r.asset)} already used; ${r.ref})`));
    } else if (acc.trace) {
      push(acc, 'trace', reason(layer, r, 'within_limit', `${r.ref}:${scopeText} ${r.windowText} total${who} would be ${formatAmount(used + amt, r.asset)} of ${formatAmount(r.max, r.asset)}`));
    }
    reserve(acc, key, 'sum', amt, r.windowMs, r.max);
  }
  if (!items.length && acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `${r.ref}: no transfer of ${r.asset.label}`));
}

function rateLimit(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'rate_limit' }>, f: ActionFacts, now: number, usage: UsageView, scope: CounterScope, acc: Acc): void {
  const keys: [string, string][] = [];
  if (!r.perDest) keys.push([countKey(scope, undefined, r.mh), '']);
  else for (const d of f.destinations) keys.push([countKey(scope, { chainId: f.chainId ?? NO_CHAIN, to: d }, r.mh), ` to ${d}`]);
  for (const [key, who] of keys) {
    const used = usage.count(key, now - r.windowMs);
    if (used + 1 > r.max) {
      push(acc, 'deny', reason(layer, r, 'rate_limit_exceeded', `${used} signature(s)${who} in the last ${r.windowText}; the limit is ${r.max} (${r.ref})`));
    } else if (acc.trace) {
      push(acc, 'trace', reason(layer, r, 'within_limit', `${r.ref}: this would be signature ${used + 1} of ${r.max}${who} in ${r.windowText}`));
    }
    reserve(acc, key, 'count', 1n, r.windowMs, BigInt(r.max));
  }
}

const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

function timeWindow(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'time_window' }>, now: number, acc: Acc): void {
  const { minute, weekday } = r.local(now);
  const dayOk = (d: number) => !r.days || r.days.has(d);
  let inside: boolean;
  if (r.from < r.to) inside = dayOk(weekday) && minute >= r.from && minute < r.to;
  // wraps midnight: the early-morning part belongs to the window that opened the day before
  else inside = (minute >= r.from && dayOk(weekday)) || (minute < r.to && dayOk((weekday + 6) % 7));
  const local = `${DAY_NAMES[weekday]} ${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')} ${r.zoneText}`;
  const win = `${r.days ? [...r.days].sort().map((d) => DAY_NAMES[d]).join(',') + ' ' : ''}${r.fromText}–${r.toText} ${r.zoneText}`;
  if (!inside) push(acc, 'deny', reason(layer, r, 'outside_time_window', `signing is allowed only ${win}; it is ${local} (${r.ref})`));
  else if (acc.trace) push(acc, 'trace', reason(layer, r, 'within_limit', `${local} is inside ${win} (${r.ref})`));
}

function dateWindow(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'date_window' }>, now: number, acc: Acc): void {
  if (r.notBefore !== undefined && now < r.notBefore) {
    push(acc, 'deny', reason(layer, r, 'outside_date_window', `not active before ${r.notBeforeText} (${r.ref})`));
  } else if (r.notAfter !== undefined && now >= r.notAfter) {
    push(acc, 'deny', reason(layer, r, 'outside_date_window', `expired at ${r.notAfterText} (${r.ref})`));
  } else if (acc.trace) {
    push(acc, 'trace', reason(layer, r, 'within_limit', `inside the date window (${r.ref})`));
  }
}

function approvalLimit(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'approval_limit' }>, f: ActionFacts, now: number, acc: Acc): void {
  let seen = 0;
  for (const a of f.approvals) {
    if (r.asset && a.asset !== r.asset.key) continue;
    if (r.spenders && !r.spenders.has(a.spender)) continue;
    seen++;
    const label = r.asset ? formatAmount(a.amount, r.asset) : `${a.amount} of ${a.asset}`;
    const unlimitedAt = r.unlimitedAtLeast ?? (f.family === 'solana' ? U64_MAX : U128);
    let ok = true;
    if (r.denyUnlimited && a.amount >= unlimitedAt) {
      ok = false;
      push(acc, 'deny', reason(layer, r, 'unlimited_approval', `unlimited approval (${a.amount}) of ${a.asset} to ${a.spender} is not allowed (${r.ref})`));
    }
    if (r.max !== undefined && a.amount > r.max) {
      ok = false;
      push(acc, 'deny', reason(layer, r, 'approval_cap_exceeded', `approval of ${label} to ${a.spender} exceeds the approval cap of ${r.asset ? formatAmount(r.max, r.asset) : r.max} (${r.ref})`));
    }
    if (r.maxDurationMs !== undefined && (a.expiry === undefined || a.expiry * 1000 - now > r.maxDurationMs)) {
      ok = false;
      const until = a.expiry === undefined ? 'never expires' : `expires ${new Date(a.expiry * 1000).toISOString()}`;
      push(acc, 'deny', reason(layer, r, 'approval_expiry_too_long', `approval to ${a.spender} ${until}; approvals must expire within ${windowText(r.maxDurationMs)} (${r.ref})`));
    }
    if (ok && acc.trace) push(acc, 'trace', reason(layer, r, 'within_limit', `approval of ${label} to ${a.spender} is within ${r.ref}`));
  }
  if (!seen && acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `${r.ref}: no approval it covers`));
}

function requireApproval(layer: CompiledLayer, r: Extract<CompiledRule, { type: 'require_approval' }>, f: ActionFacts, granted: ReadonlySet<string>, acc: Acc): void {
  let why: string;
  if (r.asset) {
    const above = r.above ?? 0n;
    const total = f.totals.get(r.asset.key) ?? 0n;
    const maxApproval = f.approvals.reduce((m, a) => (a.asset === r.asset!.key && a.amount > m ? a.amount : m), 0n);
    const biggest = total > maxApproval ? total : maxApproval;
    const touches = f.totals.has(r.asset.key) || maxApproval > 0n;
    if (!touches || biggest <= above) {
      if (acc.trace) push(acc, 'trace', reason(layer, r, 'not_applicable', `${r.ref}: ${formatAmount(biggest, r.asset)} is not above ${formatAmount(above, r.asset)}`));
      return;
    }
    why = `${total >= maxApproval ? 'transfer' : 'approval'} of ${formatAmount(biggest, r.asset)} is above ${formatAmount(above, r.asset)}`;
  } else {
    why = 'every matching action needs approval';
  }
  const have = r.approvers.filter((a) => granted.has(a));
  const who = r.group ? `group "${r.group}"` : `[${r.approvers.join(', ')}]`;
  if (have.length >= r.required) {
    push(acc, 'allow', reason(layer, r, 'approval_satisfied', `${why}; approved by ${have.join(', ')} (${r.required} of ${r.approvers.length} needed from ${who}; ${r.ref})`));
    return;
  }
  push(acc, 'approve', reason(layer, r, 'approval_required', `${why}: needs ${r.required} of ${r.approvers.length} approvers from ${who}, has ${have.length} (${r.ref})`));
  acc.requirements.push({ rule: r.ref, source: layer.source, required: r.required, approvers: [...r.approvers], ...(r.group ? { group: r.group } : {}), granted: have });
}
