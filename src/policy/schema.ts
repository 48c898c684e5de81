/**
 * The policy document: a versioned JSON file a person can read and write by hand.
 * `validatePolicy(json)` parses and checks it (zod) and returns the typed policy with amounts as
 * bigint and windows in milliseconds, or throws FleetkeyError('validation_failed') whose details name
 * every offending field path (`rules[3].window`). See README.md in this folder for the format.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import type { ActionKind } from '../chains/types.ts';

export const ACTION_KINDS = [
  'native_transfer',
  'token_transfer',
  'token_approval',
  'contract_call',
  'contract_deploy',
  'typed_data',
  'message',
  'unknown',
] as const satisfies readonly ActionKind[];

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const MAX_U256 = (1n << 256n) - 1n;

const amount = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, 'amount must be a decimal string of base units, e.g. "100000000" (no sign, decimals or exponent)')
  .transform((s) => BigInt(s))
  .refine((v) => v <= MAX_U256, 'amount exceeds 2^256-1');

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** "30s", "15m", "24h", "7d", "2w", or combinations like "1h30m". */
const duration = z
  .string()
  .regex(/^([1-9][0-9]{0,5}[smhdw])+$/, 'window must look like "30s", "15m", "24h", "7d", "2w" or "1h30m"')
  .transform((s) => {
    let ms = 0;
    for (const m of s.matchAll(/([0-9]+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    return ms;
  })
  .refine((ms) => ms <= 366 * UNIT_MS.d, 'window longer than 366 days');

const chainId = z.union([z.string().min(1).max(64), z.number().int().nonnegative()]).transform((v) => String(v).trim());
const address = z.string().trim().min(1, 'address must not be empty').max(128);
const selector = z.string().trim().min(1).max(128);
const nonEmpty = <T extends z.ZodType>(t: T) => z.array(t).min(1, 'list must not be empty').max(10_000);

/** Chain-scoped asset: an alias from `assets`, or inline `{ "chainId": "8453", "asset": "0x…" | "native" }`. */
const inlineAsset = z.strictObject({ chainId, asset: address });
const assetRef = z.union([z.string().min(1).max(64), inlineAsset]);

/** Which actions a rule is about. In `allow`, every listed field must hold for the whole action. */
const matchFields = {
  chainIds: nonEmpty(chainId).optional(),
  kinds: nonEmpty(z.enum(ACTION_KINDS)).optional(),
  to: nonEmpty(address).optional(),
  contracts: nonEmpty(address).optional(),
  selectors: nonEmpty(selector).optional(),
  programs: nonEmpty(address).optional(),
  assets: nonEmpty(assetRef).optional(),
};
const match = z.strictObject(matchFields);

const common = {
  id: z.string().min(1).max(100).regex(/^[A-Za-z0-9_.:-]+$/, 'id may use letters, digits and _ . : -').optional(),
  description: z.string().max(1000).optional(),
};
const scoped = { ...common, match: match.optional() };
const scope = z.enum(['wallet', 'fleet']).default('wallet');

const allowRule = z.strictObject({
  type: z.literal('allow'),
  ...common,
  ...matchFields,
  /** Let through effects whose token the decoder could not identify (asset "unknown"). */
  allowUnknownAssets: z.boolean().optional(),
});
const denyRule = z.strictObject({ type: z.literal('deny'), ...common, ...matchFields });
const txCapRule = z.strictObject({
  type: z.literal('tx_cap'),
  ...scoped,
  asset: assetRef,
  max: amount,
  perDestination: z.boolean().optional(),
  to: nonEmpty(address).optional(),
});
const windowCapRule = z.strictObject({
  type: z.literal('window_cap'),
  ...scoped,
  asset: assetRef,
  max: amount,
  window: duration,
  perDestination: z.boolean().optional(),
  to: nonEmpty(address).optional(),
  scope,
});
const rateLimitRule = z.strictObject({
  type: z.literal('rate_limit'),
  ...scoped,
  max: z.number().int().nonnegative().max(1_000_000_000),
  window: duration,
  perDestination: z.boolean().optional(),
  scope,
});
const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/, 'time must be "HH:MM" (24-hour)');
const timeWindowRule = z.strictObject({
  type: z.literal('time_window'),
  ...scoped,
  /** IANA zone ("Europe/Zurich"); or use utcOffset; neither means UTC. */
  timezone: z.string().min(1).max(64).optional(),
  utcOffset: z.string().regex(/^[+-]([01][0-9]|2[0-3]):[0-5][0-9]$/, 'utcOffset must look like "+02:00" or "-05:30"').optional(),
  days: nonEmpty(z.enum(WEEKDAYS)).optional(),
  from: hhmm,
  to: hhmm,
});
/** A date (UTC midnight) or a date-time with an explicit zone: "2026-12-01", "2026-12-01T09:00:00Z", "…+01:00".
 *  A date-time without a zone is refused: Date.parse would read it in each node's local zone. */
const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, 'must be "YYYY-MM-DD" or an ISO-8601 date-time with Z or an offset')
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not a real date');
const dateWindowRule = z.strictObject({
  type: z.literal('date_window'),
  ...scoped,
  notBefore: isoDate.optional(),
  notAfter: isoDate.optional(),
});
const approvalLimitRule = z.strictObject({
  type: z.literal('approval_limit'),
  ...scoped,
  asset: assetRef.optional(),
  spenders: nonEmpty(address).optional(),
  max: amount.optional(),
  denyUnlimited: z.boolean().default(true),
  /** Amounts at or above this count as unlimited. Default: 2^64-1 on Solana, 2^128 elsewhere. */
  unlimitedAtLeast: amount.optional(),
  /** Approvals must expire within this long from now (an approval without expiry is refused). */
  maxDuration: duration.optional(),
});
const feeCapRule = z.strictObject({ type: z.literal('fee_cap'), ...scoped, chainId, max: amount });
const requireApprovalRule = z.strictObject({
  type: z.literal('require_approval'),
  ...scoped,
  asset: assetRef.optional(),
  above: amount.optional(),
  m: z.number().int().min(1).max(100),
  approvers: nonEmpty(z.string().min(1).max(200)).optional(),
  group: z.string().min(1).max(100).optional(),
});

export const ruleSchema = z.discriminatedUnion('type', [
  allowRule,
  denyRule,
  txCapRule,
  windowCapRule,
  rateLimitRule,
  timeWindowRule,
  dateWindowRule,
  approvalLimitRule,
  feeCapRule,
  requireApprovalRule,
]);

export const policySchema = z.strictObject({
  /** Revision of this policy; increases on every edit and is recorded with every decision. */
  version: z.number().int().min(1),
  name: z.string().max(200).optional(),
  description: z.string().max(5000).optional(),
  /** Readable names for chain-scoped assets, usable wherever a rule takes an asset. */
  assets: z
    .record(
      z.string().min(1).max(64),
      z.strictObject({ chainId, asset: address, symbol: z.string().max(32).optional(), decimals: z.number().int().min(0).max(77).optional() }),
    )
    .optional(),
  /**
   * Where rolling limits (window_cap, rate_limit, grant max uses) are counted. "strict" (the
   * default): a signer issues a share for a counted request only with signed receipts showing that
   * every share holder has counted it, so the limit holds cluster-wide even if the server and up to
   * t-1 signers are compromised; signing capped requests then needs every holder up. "per-signer":
   * each signer counts only what it signs, so a compromised server that spreads requests over
   * different signer subsets gets up to n/t times the limit signed, in exchange for signing with any
   * t holders up. A fleet wallet is strict if its fleet's policy or its own is.
   */
  counters: z.enum(['strict', 'per-signer']).optional(),
  /**
   * The owner may export the wallet's whole key (`fleetkey wallet export`, issue 11): each holder
   * then encrypts its share to the owner's recovery key under an owner-signed export document. Off
   * unless true; a holder refuses an export unless the latest policy it holds says so.
   */
  exportable: z.boolean().optional(),
  /** Named lists of human approvers for require_approval. */
  approverGroups: z.record(z.string().min(1).max(100), nonEmpty(z.string().min(1).max(200))).optional(),
  rules: z.array(ruleSchema).max(1000),
});

/** JSON Schema (draft 2020-12) of the document as written by hand, for editors and `fleetkey policy schema`. */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export type PolicyDocument = z.output<typeof policySchema>;
export type Rule = PolicyDocument['rules'][number];
export type RuleType = Rule['type'];
export type Match = z.output<typeof match>;
export type AssetRef = z.output<typeof assetRef>;

/** A validated policy. Brand-free on purpose: it is plain data (bigints, ms) and can be logged. */
export type Policy = PolicyDocument;

export interface PolicyIssue {
  path: string;
  message: string;
}

/** "rules[3].window" from ['rules', 3, 'window']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

/** Parse and check a policy document (object or JSON text). Throws FleetkeyError('validation_failed'). */
export function validatePolicy(json: unknown): Policy {
  let input = json;
  if (typeof json === 'string') {
    try {
      input = JSON.parse(json);
    } catch (e) {
      throw new FleetkeyError('validation_failed', `policy is not valid JSON: ${(e as Error).message}`, {
        details: { path: '(root)', issues: [{ path: '(root)', message: 'invalid JSON' }] },
      });
    }
  }
  const r = policySchema.safeParse(input);
  const issues: PolicyIssue[] = [];
  if (!r.success) {
    for (const i of r.error.issues) {
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys) issues.push({ path: formatPath([...i.path, k]), message: `unknown field "${k}"` });
      } else {
        issues.push({ path: formatPath(i.path), message: i.message });
      }
    }
  } else {
    semanticChecks(r.data, issues);
  }
  if (issues.length) {
    const first = issues[0];
    throw new FleetkeyError('validation_failed', `invalid policy: ${first.path}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`, {
      details: { path: first.path, issues },
    });
  }
  const policy = (r as { data: Policy }).data;
  deepFreeze(policy);
  VALIDATED.add(policy);
  return policy;
}

/** A validated policy is frozen, so it cannot be changed after validation and compilation. */
function deepFreeze(v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x);
}

const VALIDATED = new WeakSet<object>();

/** True for objects returned by validatePolicy (so compilePolicy does not validate twice). */
export function isValidated(p: unknown): p is Policy {
  return typeof p === 'object' && p !== null && VALIDATED.has(p);
}

function semanticChecks(p: Policy, issues: PolicyIssue[]): void {
  const add = (path: string, message: string) => issues.push({ path, message });
  const checkAsset = (a: AssetRef | undefined, path: string) => {
    if (typeof a === 'string' && !p.assets?.[a]) add(path, `unknown asset alias "${a}" (define it under "assets" or write { "chainId", "asset" })`);
  };
  const checkMatch = (m: Partial<Match> | undefined, path: string) => {
    m?.assets?.forEach((a, j) => checkAsset(a, `${path}assets[${j}]`));
  };
  const ids = new Map<string, number>();
  p.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (rule.id !== undefined) {
      if (ids.has(rule.id)) add(`${at}.id`, `duplicate rule id "${rule.id}" (also rules[${ids.get(rule.id)}])`);
      else ids.set(rule.id, i);
    }
    if (rule.type === 'allow' || rule.type === 'deny') checkMatch(rule, `${at}.`);
    else checkMatch(rule.match, `${at}.match.`);
    switch (rule.type) {
      case 'deny':
        if (!rule.chainIds && !rule.kinds && !rule.to && !rule.contracts && !rule.selectors && !rule.programs && !rule.assets) {
          add(at, 'a deny rule needs at least one of chainIds, kinds, to, contracts, selectors, programs, assets');
        }
        break;
      case 'tx_cap':
      case 'window_cap':
        checkAsset(rule.asset, `${at}.asset`);
        break;
      case 'approval_limit':
        checkAsset(rule.asset, `${at}.asset`);
        if (rule.max === undefined && !rule.denyUnlimited && rule.maxDuration === undefined) {
          add(at, 'approval_limit needs "max", "maxDuration" or "denyUnlimited": true');
        }
        break;
      case 'time_window':
        if (rule.timezone !== undefined && rule.utcOffset !== undefined) add(`${at}.utcOffset`, 'give either timezone or utcOffset, not both');
        if (rule.timezone !== undefined) {
          try {
            new Intl.DateTimeFormat('en-US', { timeZone: rule.timezone });
          } catch {
            add(`${at}.timezone`, `unknown IANA time zone "${rule.timezone}"`);
          }
        }
        if (rule.from === rule.to) add(`${at}.to`, '"from" and "to" are equal: the window would be empty');
        break;
      case 'date_window':
        if (rule.notBefore === undefined && rule.notAfter === undefined) add(at, 'date_window needs notBefore and/or notAfter');
        if (rule.notBefore && rule.notAfter && Date.parse(rule.notBefore) >= Date.parse(rule.notAfter)) {
          add(`${at}.notAfter`, 'notAfter must be later than notBefore');
        }
        break;
      case 'require_approval': {
        checkAsset(rule.asset, `${at}.asset`);
        if (rule.above !== undefined && rule.asset === undefined) add(`${at}.asset`, '"above" needs the asset it counts');
        if ((rule.approvers === undefined) === (rule.group === undefined)) {
          add(at, 'require_approval needs exactly one of "approvers" or "group"');
          break;
        }
        const list = rule.approvers ?? p.approverGroups?.[rule.group!];
        if (!list) add(`${at}.group`, `unknown approver group "${rule.group}"`);
        else if (new Set(list).size < rule.m) add(`${at}.m`, `needs ${rule.m} approvals but only ${new Set(list).size} distinct approvers are listed`);
        break;
      }
    }
  });
}
