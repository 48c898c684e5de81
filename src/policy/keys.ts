/**
 * Identity of addresses, assets and usage counters. Every signer node must derive the same strings
 * from the same policy and action, so everything here is a plain function of its inputs.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../audit/canonical.ts';
import { FleetkeyError } from '../errors.ts';

const HEX = /^0x[0-9a-fA-F]*$/;
const BECH32 = /^(bc|tb|bcrt)1[0-9a-z]+$/i;

/**
 * Canonical comparison form of an address. EVM addresses (and any 0x hex, e.g. selectors) compare
 * lowercased; bech32 Bitcoin addresses lowercased (they are case-insensitive); everything else
 * (Solana base58, Bitcoin base58) is case-sensitive and kept exactly as written. Base58 has no "0",
 * so nothing that starts with "0x" is base58.
 */
export function normAddress(a: string): string {
  const c0 = a.charCodeAt(0);
  if (c0 === 48 /* 0 */ && (a.charCodeAt(1) | 32) === 120 /* x */) return a.toLowerCase();
  if ((c0 | 32) === 98 /* b */ || (c0 | 32) === 116 /* t */) return BECH32.test(a) ? a.toLowerCase() : a;
  return a;
}

/** Function selector: 0x hex lowercased; Solana "program:instruction" names kept as written. */
export function normSelector(s: string): string {
  return HEX.test(s) ? s.toLowerCase() : s;
}

export type Scope = 'wallet' | 'fleet';

/**
 * Whose history a counter holds: this wallet's own (`'wallet'`), or one fleet's, every wallet of it
 * together (`{ fleet }`, the fleet's id: its root wallet's id). Fleets never share a counter: a
 * fleet-wide cap written once in a policy that several fleets use is a cap per fleet.
 */
export type CounterScope = 'wallet' | { fleet: string };

function scopeSegment(scope: CounterScope): string {
  if (scope === 'wallet') return 'wallet';
  if (typeof scope.fleet !== 'string' || !scope.fleet) throw new FleetkeyError('bad_request', 'a fleet counter needs the fleet id');
  return `fleet/${enc(scope.fleet)}`;
}

/** Asset identity: chain + asset ('native' or token address / mint), e.g. "8453/0x8335…" (lowercased EVM). */
export function assetKey(chainId: string, asset: string): string {
  return `${enc(chainId)}/${asset === 'native' ? 'native' : enc(normAddress(asset))}`;
}

/**
 * Counter keys. A store records a reservation under each key a decision returns and answers
 * `sum` / `count` for it. Formats (each segment URI-encoded; addresses in `normAddress` form):
 *
 *   sum/<owner>/<chainId>/<asset>[/to/<destination>][/m/<matchHash>]
 *   count/<owner>/all[/m/<matchHash>]
 *   count/<owner>/to/<chainId>/<destination>[/m/<matchHash>]
 *
 * `<owner>` is `wallet` (the store keeps it per wallet) or `fleet/<fleetId>` (the fleet's root wallet
 * id: one counter per fleet, whichever wallet of it signs). `<matchHash>` is the first 32 hex digits of
 * sha256(canonicalJson(rule.match)) (match normalised), present only when the rule limits itself to
 * some actions. The window length is not part of a key: two rules over the same key with different
 * windows share one usage history.
 */
export function sumKey(scope: CounterScope, asset: string /* from assetKey */, dest?: string, matchHash?: string): string {
  return `sum/${scopeSegment(scope)}/${asset}${dest !== undefined ? `/to/${enc(dest)}` : ''}${matchHash ? `/m/${matchHash}` : ''}`;
}

export function countKey(scope: CounterScope, dest?: { chainId: string; to: string }, matchHash?: string): string {
  const base = dest ? `count/${scopeSegment(scope)}/to/${enc(dest.chainId)}/${enc(dest.to)}` : `count/${scopeSegment(scope)}/all`;
  return matchHash ? `${base}/m/${matchHash}` : base;
}

export function matchHash(normalisedMatch: unknown): string {
  return bytesToHex(sha256(utf8ToBytes('fleetkey/policy/match/v1\n' + canonicalJson(normalisedMatch)))).slice(0, 32);
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/**
 * sha256 hex of a validated policy's canonical encoding (amounts as decimal strings, windows in ms).
 * Two documents that differ only in formatting, key order or window spelling ("24h" / "1d") agree.
 * Record it with decisions and 'policy' audit entries to pin exactly which rules were in force.
 */
export function policyDigest(policy: unknown): string {
  return bytesToHex(sha256(utf8ToBytes('fleetkey/policy/v1\n' + canonicalJson(policy))));
}
