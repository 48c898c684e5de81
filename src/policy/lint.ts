/**
 * Warnings about valid but risky policies, for `fleetkey policy validate` and review. A lint never
 * changes a decision; it points a person at rules that allow more than they probably meant.
 */
import type { Policy, Rule } from './schema.ts';

export interface PolicyWarning {
  /** Field path, as in validation errors ("rules[2]"). */
  path: string;
  code:
    | 'allow_any_chain'
    | 'allow_any_contract'
    | 'allow_unknown_kind'
    | 'allow_unknown_assets'
    | 'approvals_unbounded'
    | 'transfers_uncapped'
    | 'no_allow_rule';
  message: string;
}

const CODE_KINDS = ['contract_call', 'contract_deploy', 'typed_data'] as const;
const DEFAULT_KINDS = ['native_transfer', 'token_transfer', 'token_approval'];

export function lintPolicy(policy: Policy): PolicyWarning[] {
  const out: PolicyWarning[] = [];
  const allows = policy.rules.map((r, i) => [r, i] as const).filter((x): x is readonly [Extract<Rule, { type: 'allow' }>, number] => x[0].type === 'allow');
  if (!allows.length) out.push({ path: 'rules', code: 'no_allow_rule', message: 'no allow rule: this policy denies everything' });
  const kindsOf = (r: Extract<Rule, { type: 'allow' }>) => r.kinds ?? DEFAULT_KINDS;
  for (const [r, i] of allows) {
    const path = `rules[${i}]`;
    const kinds = kindsOf(r);
    if (!r.chainIds) out.push({ path, code: 'allow_any_chain', message: `${r.id ?? path} allows actions on every chain; list chainIds` });
    const code = CODE_KINDS.filter((k) => kinds.includes(k));
    if (code.length && !r.contracts && !r.selectors && !r.programs) {
      out.push({ path, code: 'allow_any_contract', message: `${r.id ?? path} allows ${code.join(', ')} on any contract; list contracts, selectors or programs` });
    }
    if (kinds.includes('unknown')) out.push({ path, code: 'allow_unknown_kind', message: `${r.id ?? path} allows payloads that could not be decoded` });
    if (r.allowUnknownAssets) out.push({ path, code: 'allow_unknown_assets', message: `${r.id ?? path} lets through tokens the decoder could not identify; no cap applies to them` });
  }
  const allowsKind = (k: string) => allows.some(([r]) => kindsOf(r).includes(k));
  const has = (t: Rule['type']) => policy.rules.some((r) => r.type === t);
  if (allowsKind('token_approval') && !has('approval_limit')) {
    out.push({ path: 'rules', code: 'approvals_unbounded', message: 'token approvals are allowed but no approval_limit rule bounds them (unlimited approvals pass)' });
  }
  if ((allowsKind('native_transfer') || allowsKind('token_transfer')) && !has('tx_cap') && !has('window_cap')) {
    out.push({ path: 'rules', code: 'transfers_uncapped', message: 'transfers are allowed but no tx_cap or window_cap limits amounts' });
  }
  return out;
}
