/**
 * A policy told to the one it binds: each rule in a sentence, and for each rolling limit how much of
 * it is used and how much remains. For an agent (and the model behind it) to plan within its limits
 * and explain a refusal; the decision itself is always `evaluate`'s, taken again by every signer.
 */
import { compilePolicy, type CompiledPolicy, type CompiledRule } from './compile.ts';
import { formatAmount } from './evaluate.ts';
import { countKey, sumKey, type CounterScope } from './keys.ts';
import type { UsageView } from './usage.ts';

export interface RollingLimit {
  rule: string;
  kind: 'amount' | 'count';
  /** The asset's label (amount limits). */
  asset?: string;
  window: string;
  /** Base units (amount) or signatures (count), as decimal strings. */
  max: string;
  /** Absent for limits kept per destination: each destination has its own counter. */
  used?: string;
  remaining?: string;
  perDestination: boolean;
  /** The limit in words, with what is used and what remains. */
  text: string;
}

export interface PolicyInWords {
  version: string | number;
  rules: string[];
  limits: RollingLimit[];
}

/**
 * `policy` in words, with its rolling limits read from `usage` at `now`. `fleet` is the fleet root's
 * wallet id when the wallet belongs to one (fleet-scoped limits count there).
 */
export function describePolicy(policy: CompiledPolicy | unknown, usage: UsageView, now: number, fleet?: string): PolicyInWords {
  const p = compilePolicy(policy);
  const rules: string[] = [];
  const limits: RollingLimit[] = [];
  for (const layer of p.layers) {
    const from = layer.source === 'policy' ? '' : `${layer.source}: `;
    for (const r of [...layer.allows, ...layer.checks].sort((a, b) => a.index - b.index)) {
      rules.push(`${from}${r.ref}: ${r.description ?? ruleText(r)}`);
      const scope: CounterScope | undefined = 'scope' in r ? (r.scope === 'fleet' ? (fleet ? { fleet } : undefined) : 'wallet') : undefined;
      if (r.type === 'window_cap') {
        const base = { rule: `${from}${r.ref}`, kind: 'amount' as const, asset: r.asset.label, window: r.windowText, max: r.max.toString(), perDestination: r.perDest };
        if (r.perDest || !scope) {
          limits.push({ ...base, text: `${r.ref}: at most ${formatAmount(r.max, r.asset)} per ${r.windowText}${r.perDest ? ' to each destination' : ''}` });
          continue;
        }
        const used = usage.sum(sumKey(scope, r.asset.key, undefined, r.mh), now - r.windowMs);
        const remaining = used >= r.max ? 0n : r.max - used;
        limits.push({ ...base, used: used.toString(), remaining: remaining.toString(), text: `${r.ref}: ${formatAmount(used, r.asset)} of ${formatAmount(r.max, r.asset)} used in the last ${r.windowText}; ${formatAmount(remaining, r.asset)} remains` });
      } else if (r.type === 'rate_limit') {
        const base = { rule: `${from}${r.ref}`, kind: 'count' as const, window: r.windowText, max: String(r.max), perDestination: r.perDest };
        if (r.perDest || !scope) {
          limits.push({ ...base, text: `${r.ref}: at most ${r.max} signature(s) per ${r.windowText}${r.perDest ? ' to each destination' : ''}` });
          continue;
        }
        const used = usage.count(countKey(scope, undefined, r.mh), now - r.windowMs);
        const remaining = Math.max(0, r.max - used);
        limits.push({ ...base, used: String(used), remaining: String(remaining), text: `${r.ref}: ${used} of ${r.max} signature(s) used in the last ${r.windowText}; ${remaining} remain` });
      }
    }
  }
  return { version: p.version, rules, limits };
}

function list(s: ReadonlySet<string> | undefined): string | undefined {
  return s && s.size ? [...s].join(', ') : undefined;
}

function ruleText(r: CompiledRule): string {
  switch (r.type) {
    case 'allow':
    case 'deny': {
      const parts = [
        list(r.m.kinds) && `kinds ${list(r.m.kinds)}`,
        list(r.m.chainIds) && `on chains ${list(r.m.chainIds)}`,
        list(r.m.to) && `to ${list(r.m.to)}`,
        list(r.m.contracts) && `calling ${list(r.m.contracts)}`,
        list(r.m.assets) && `moving ${list(r.m.assets)}`,
      ].filter(Boolean);
      const what = parts.length ? parts.join(', ') : r.type === 'allow' ? 'transfers and approvals' : 'everything';
      return `${r.type === 'allow' ? 'allows' : 'denies'} ${what}`;
    }
    case 'tx_cap':
      return `at most ${formatAmount(r.max, r.asset)} per transaction${r.perDest ? ' to each destination' : ''}`;
    case 'window_cap':
      return `at most ${formatAmount(r.max, r.asset)} per ${r.windowText}${r.scope === 'fleet' ? ' across the fleet' : ''}${r.perDest ? ' to each destination' : ''}`;
    case 'rate_limit':
      return `at most ${r.max} signature(s) per ${r.windowText}${r.scope === 'fleet' ? ' across the fleet' : ''}${r.perDest ? ' to each destination' : ''}`;
    case 'time_window':
      return `only from ${r.fromText} to ${r.toText} (${r.zoneText})`;
    case 'date_window':
      return `only${r.notBeforeText ? ` from ${r.notBeforeText}` : ''}${r.notAfterText ? ` until ${r.notAfterText}` : ''}`;
    case 'approval_limit':
      return `token approvals limited${r.max !== undefined && r.asset ? ` to ${formatAmount(r.max, r.asset)}` : ''}${r.denyUnlimited ? ', never unlimited' : ''}${list(r.spenders) ? `, spenders ${list(r.spenders)}` : ''}`;
    case 'fee_cap':
      return `fees at most ${r.max} base units on chain ${r.chainId}`;
    case 'require_approval':
      return `needs ${r.required} approval(s) of ${r.group ?? r.approvers.join(', ')}${r.above !== undefined && r.asset ? ` above ${formatAmount(r.above, r.asset)}` : ''}`;
  }
}
