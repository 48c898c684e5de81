/**
 * Turns a validated policy into fast lookups once (Sets of normalised addresses, assets resolved to
 * chain-scoped keys, counter keys prepared, time-zone formatters built), and combines a fleet policy
 * with a wallet policy into one layered policy in which both must allow.
 */
import { FleetkeyError } from '../errors.ts';
import { assetKey, matchHash, normAddress, normSelector, type Scope } from './keys.ts';
import { isValidated, validatePolicy, WEEKDAYS, type AssetRef, type Match, type Policy, type Rule } from './schema.ts';

export interface CompiledMatch {
  chainIds?: ReadonlySet<string>;
  kinds?: ReadonlySet<string>;
  to?: ReadonlySet<string>;
  contracts?: ReadonlySet<string>;
  selectors?: ReadonlySet<string>;
  programs?: ReadonlySet<string>;
  /** assetKey()s */
  assets?: ReadonlySet<string>;
}

export interface AssetInfo {
  key: string;
  chainId: string;
  asset: string;
  /** How to name it to a person: alias, or chainId/asset. */
  label: string;
  symbol?: string;
  decimals?: number;
}

interface Base {
  index: number;
  /** The rule's id, or "rules[i]". */
  ref: string;
  description?: string;
}

export type CompiledRule =
  | (Base & { type: 'allow'; m: CompiledMatch; allowUnknownAssets: boolean })
  | (Base & { type: 'deny'; m: CompiledMatch })
  | (Base & { type: 'tx_cap'; m?: CompiledMatch; asset: AssetInfo; max: bigint; perDest: boolean; to?: ReadonlySet<string> })
  | (Base & {
      type: 'window_cap';
      m?: CompiledMatch;
      asset: AssetInfo;
      max: bigint;
      windowMs: number;
      windowText: string;
      perDest: boolean;
      to?: ReadonlySet<string>;
      /** Whose counter: keys are made at evaluation, where the fleet id is known (keys.ts). */
      scope: Scope;
      mh?: string;
    })
  | (Base & { type: 'rate_limit'; m?: CompiledMatch; max: number; windowMs: number; windowText: string; perDest: boolean; scope: Scope; mh?: string })
  | (Base & {
      type: 'time_window';
      m?: CompiledMatch;
      /** Local minute-of-day and weekday (0 = Monday) at a given instant. */
      local: (ms: number) => { minute: number; weekday: number };
      zoneText: string;
      days?: ReadonlySet<number>;
      from: number;
      to: number;
      fromText: string;
      toText: string;
    })
  | (Base & { type: 'date_window'; m?: CompiledMatch; notBefore?: number; notAfter?: number; notBeforeText?: string; notAfterText?: string })
  | (Base & {
      type: 'approval_limit';
      m?: CompiledMatch;
      asset?: AssetInfo;
      spenders?: ReadonlySet<string>;
      max?: bigint;
      denyUnlimited: boolean;
      unlimitedAtLeast?: bigint;
      maxDurationMs?: number;
    })
  | (Base & { type: 'fee_cap'; m?: CompiledMatch; chainId: string; max: bigint })
  | (Base & { type: 'require_approval'; m?: CompiledMatch; asset?: AssetInfo; above?: bigint; required: number; approvers: readonly string[]; group?: string });

export interface CompiledLayer {
  /** 'policy' for a single policy; 'fleet' / 'wallet' in a combined one. */
  source: 'policy' | 'fleet' | 'wallet';
  version: number;
  name?: string;
  allows: Extract<CompiledRule, { type: 'allow' }>[];
  /** Every other rule, in document order. */
  checks: Exclude<CompiledRule, { type: 'allow' }>[];
  assetsByKey: ReadonlyMap<string, AssetInfo>;
}

const COMPILED = Symbol('fleetkey.compiledPolicy');

export interface CompiledPolicy {
  readonly [COMPILED]: true;
  readonly layers: readonly CompiledLayer[];
  /** "3" for one policy, "fleet@3+wallet@7" for a combined one. */
  readonly version: string | number;
  /** How rolling limits are counted across signers (policySchema.counters); strict unless every layer says per-signer. */
  readonly counters: 'strict' | 'per-signer';
}

export function isCompiled(p: unknown): p is CompiledPolicy {
  return typeof p === 'object' && p !== null && (p as CompiledPolicy)[COMPILED] === true;
}

const cache = new WeakMap<object, CompiledPolicy>();

/** Compile a policy returned by validatePolicy (anything else, JSON text or object, is validated first). Cached per object. */
export function compilePolicy(policy: Policy | CompiledPolicy | unknown): CompiledPolicy {
  if (isCompiled(policy)) return policy;
  if (typeof policy === 'object' && policy !== null) {
    const hit = cache.get(policy);
    if (hit) return hit;
  }
  const p = isValidated(policy) ? policy : validatePolicy(policy);
  const layer = compileLayer(p, 'policy');
  const out: CompiledPolicy = Object.freeze({ [COMPILED]: true as const, layers: [layer], version: p.version, counters: p.counters ?? 'strict' });
  if (typeof policy === 'object' && policy !== null) cache.set(policy, out);
  return out;
}

/**
 * Fleet inheritance: the wallet policy can only narrow the fleet policy. The result evaluates both
 * layers on every action: an action is allowed only if each layer allows it (each needs its own
 * matching allow rule), any denial in either layer denies, approvals required by either are required,
 * and the reservations of both are made.
 */
export function combine(fleetPolicy: Policy | CompiledPolicy, walletPolicy: Policy | CompiledPolicy): CompiledPolicy {
  const f = compilePolicy(fleetPolicy);
  const w = compilePolicy(walletPolicy);
  const relabel = (l: CompiledLayer, source: 'fleet' | 'wallet'): CompiledLayer => (l.source === 'policy' ? { ...l, source } : l);
  const layers = [...f.layers.map((l) => relabel(l, 'fleet')), ...w.layers.map((l) => relabel(l, 'wallet'))];
  // A wallet's policy can only narrow its fleet's: strict counting wins over per-signer.
  const counters = f.counters === 'per-signer' && w.counters === 'per-signer' ? 'per-signer' : 'strict';
  return Object.freeze({ [COMPILED]: true as const, layers, version: layers.map((l) => `${l.source}@${l.version}`).join('+'), counters });
}

function compileLayer(p: Policy, source: CompiledLayer['source']): CompiledLayer {
  const assetsByKey = new Map<string, AssetInfo>();
  const resolve = (a: AssetRef): AssetInfo => {
    if (typeof a === 'string') {
      const d = p.assets?.[a];
      if (!d) throw new FleetkeyError('validation_failed', `unknown asset alias "${a}"`);
      const info: AssetInfo = { key: assetKey(d.chainId, d.asset), chainId: d.chainId, asset: d.asset, label: a, symbol: d.symbol, decimals: d.decimals };
      if (!assetsByKey.has(info.key)) assetsByKey.set(info.key, info);
      return info;
    }
    const key = assetKey(a.chainId, a.asset);
    const known = assetsByKey.get(key);
    if (known) return known;
    return { key, chainId: a.chainId, asset: a.asset, label: `${a.chainId}/${a.asset}` };
  };
  // aliases first so inline references to the same asset get the readable label
  for (const name of Object.keys(p.assets ?? {})) resolve(name);

  const cmatch = (m: Partial<Match>): CompiledMatch => {
    const set = <T,>(xs: readonly T[] | undefined, f: (x: T) => string) => (xs ? new Set(xs.map(f)) : undefined);
    return {
      chainIds: set(m.chainIds, String),
      kinds: set(m.kinds, String),
      to: set(m.to, normAddress),
      contracts: set(m.contracts, normAddress),
      selectors: set(m.selectors, normSelector),
      programs: set(m.programs, normAddress),
      assets: set(m.assets, (a) => resolve(a).key),
    };
  };
  const scoped = (m: Match | undefined) => (m ? { m: cmatch(m), mh: matchHash(normalisedMatch(m, resolve)) } : { m: undefined, mh: undefined });

  const allows: CompiledLayer['allows'] = [];
  const checks: CompiledLayer['checks'] = [];
  p.rules.forEach((r: Rule, index) => {
    const base: Base = { index, ref: r.id ?? `rules[${index}]`, description: r.description };
    switch (r.type) {
      case 'allow':
        allows.push({ ...base, type: 'allow', m: cmatch(r), allowUnknownAssets: r.allowUnknownAssets === true });
        return;
      case 'deny':
        checks.push({ ...base, type: 'deny', m: cmatch(r) });
        return;
      case 'tx_cap': {
        const to = r.to ? new Set(r.to.map(normAddress)) : undefined;
        checks.push({ ...base, type: 'tx_cap', m: scoped(r.match).m, asset: resolve(r.asset), max: r.max, perDest: r.perDestination === true || !!to, to });
        return;
      }
      case 'window_cap': {
        const { m, mh } = scoped(r.match);
        const asset = resolve(r.asset);
        const to = r.to ? new Set(r.to.map(normAddress)) : undefined;
        checks.push({
          ...base,
          type: 'window_cap',
          m,
          mh,
          asset,
          max: r.max,
          windowMs: r.window,
          windowText: windowText(r.window),
          perDest: r.perDestination === true || !!to,
          to,
          scope: r.scope,
        });
        return;
      }
      case 'rate_limit': {
        const { m, mh } = scoped(r.match);
        checks.push({
          ...base,
          type: 'rate_limit',
          m,
          mh,
          max: r.max,
          windowMs: r.window,
          windowText: windowText(r.window),
          perDest: r.perDestination === true,
          scope: r.scope,
        });
        return;
      }
      case 'time_window': {
        const days = r.days ? new Set(r.days.map((d) => WEEKDAYS.indexOf(d))) : undefined;
        checks.push({
          ...base,
          type: 'time_window',
          m: scoped(r.match).m,
          local: localClock(r.timezone, r.utcOffset),
          zoneText: r.timezone ?? (r.utcOffset ? `UTC${r.utcOffset}` : 'UTC'),
          days,
          from: hhmmToMin(r.from),
          to: hhmmToMin(r.to),
          fromText: r.from,
          toText: r.to,
        });
        return;
      }
      case 'date_window':
        checks.push({
          ...base,
          type: 'date_window',
          m: scoped(r.match).m,
          notBefore: r.notBefore ? Date.parse(r.notBefore) : undefined,
          notAfter: r.notAfter ? Date.parse(r.notAfter) : undefined,
          notBeforeText: r.notBefore,
          notAfterText: r.notAfter,
        });
        return;
      case 'approval_limit':
        checks.push({
          ...base,
          type: 'approval_limit',
          m: scoped(r.match).m,
          asset: r.asset ? resolve(r.asset) : undefined,
          spenders: r.spenders ? new Set(r.spenders.map(normAddress)) : undefined,
          max: r.max,
          denyUnlimited: r.denyUnlimited,
          unlimitedAtLeast: r.unlimitedAtLeast,
          maxDurationMs: r.maxDuration,
        });
        return;
      case 'fee_cap':
        checks.push({ ...base, type: 'fee_cap', m: scoped(r.match).m, chainId: r.chainId, max: r.max });
        return;
      case 'require_approval': {
        const approvers = [...new Set(r.approvers ?? p.approverGroups?.[r.group!] ?? [])];
        checks.push({
          ...base,
          type: 'require_approval',
          m: scoped(r.match).m,
          asset: r.asset ? resolve(r.asset) : undefined,
          above: r.above,
          required: r.m,
          approvers,
          group: r.group,
        });
        return;
      }
    }
  });
  return { source, version: p.version, name: p.name, allows, checks, assetsByKey };
}

/** The match with addresses normalised, sorted and assets resolved, so equal scopes hash equal. */
function normalisedMatch(m: Match, resolve: (a: AssetRef) => AssetInfo): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const put = (k: string, xs: readonly string[] | undefined) => {
    if (xs) out[k] = [...new Set(xs)].sort();
  };
  put('chainIds', m.chainIds);
  put('kinds', m.kinds);
  put('to', m.to?.map(normAddress));
  put('contracts', m.contracts?.map(normAddress));
  put('selectors', m.selectors?.map(normSelector));
  put('programs', m.programs?.map(normAddress));
  put('assets', m.assets?.map((a) => resolve(a).key));
  return out;
}

function hhmmToMin(s: string): number {
  return Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
}

export function windowText(ms: number): string {
  const units: [number, string][] = [
    [604_800_000, 'w'],
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  let rest = ms;
  let out = '';
  for (const [n, u] of units) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out || '0s';
}

function localClock(timezone: string | undefined, utcOffset: string | undefined): (ms: number) => { minute: number; weekday: number } {
  if (timezone) {
    const fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    // Intl is slow (~10 µs a call), and a zone's UTC offset only changes at transitions, which in
    // every current zone fall on a quarter hour of UTC. So the offset is computed once per 15-minute
    // bucket and reused: same answers, memoised.
    const BUCKET = 900_000;
    let lastBucket = Number.NaN;
    let lastOffset = 0;
    const offsetAt = (ms: number) => {
      const p: Record<string, number> = {};
      for (const part of fmt.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
      const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute);
      return wall - Math.floor(ms / 60_000) * 60_000;
    };
    return (ms) => {
      const bucket = Math.floor(ms / BUCKET);
      if (bucket !== lastBucket) {
        lastOffset = offsetAt(bucket * BUCKET);
        lastBucket = bucket;
      }
      const d = new Date(ms + lastOffset);
      return { minute: d.getUTCHours() * 60 + d.getUTCMinutes(), weekday: (d.getUTCDay() + 6) % 7 };
    };
  }
  let offsetMin = 0;
  if (utcOffset) offsetMin = (utcOffset[0] === '-' ? -1 : 1) * (Number(utcOffset.slice(1, 3)) * 60 + Number(utcOffset.slice(4, 6)));
  return (ms) => {
    const d = new Date(ms + offsetMin * 60_000);
    return { minute: d.getUTCHours() * 60 + d.getUTCMinutes(), weekday: (d.getUTCDay() + 6) % 7 };
  };
}
