/**
 * simulate(policy, action, ctx): the decision plus a plain-text explanation of every rule checked,
 * for `fleetkey policy simulate` and for people writing policies. Same engine, same result as evaluate.
 */
import type { Action } from '../chains/types.ts';
import type { CompiledPolicy } from './compile.ts';
import { windowText } from './compile.ts';
import { evaluateWithTrace, type Decision, type EvalContext, type Reason } from './evaluate.ts';
import type { Policy } from './schema.ts';

export interface Simulation {
  decision: Decision;
  /** Every rule's verdict, in evaluation order (including rules that held or did not apply). */
  trace: Reason[];
  /** Multi-line text for a person. */
  explanation: string;
}

const MARK: Record<string, string> = {
  allowed_by_rule: '+',
  approval_satisfied: '+',
  within_limit: '+',
  not_applicable: '.',
  approval_required: '?',
};

export function simulate(policy: Policy | CompiledPolicy, action: Action, ctx: EvalContext): Simulation {
  const { decision, trace } = evaluateWithTrace(policy, action, ctx);
  const lines: string[] = [];
  lines.push(`Outcome: ${decision.outcome.toUpperCase()} (policy version ${decision.policyVersion})`);
  lines.push(`Action: ${describeAction(action)}`);
  lines.push(decision.outcome === 'deny' ? 'Denied because:' : decision.outcome === 'needs_approval' ? 'Waiting for:' : 'Allowed because:');
  for (const r of decision.reasons) lines.push(`  ${line(r)}`);
  if (decision.approvals?.length) {
    for (const a of decision.approvals) {
      lines.push(`  approval: ${a.required} of ${a.approvers.length} from ${a.group ? `group ${a.group} ` : ''}[${a.approvers.join(', ')}]; granted so far: ${a.granted.join(', ') || 'none'}`);
    }
  }
  lines.push('Rules checked:');
  for (const r of trace) lines.push(`  ${MARK[r.code] ?? 'x'} ${line(r)}`);
  if (decision.reservations.length) {
    lines.push('Would reserve if signed:');
    for (const s of decision.reservations) {
      lines.push(`  ${s.counterKey} += ${s.amount} for ${windowText(s.windowMs)} (limits: ${s.checks.map((c) => `${c.max} per ${windowText(c.windowMs)}`).join(', ')})`);
    }
  }
  return { decision, trace, explanation: lines.join('\n') };
}

function line(r: Reason): string {
  return `${r.source === 'policy' ? '' : `[${r.source}] `}${r.code}: ${r.message}`;
}

function describeAction(a: Action): string {
  const parts = [`${a.kind} on ${a.chain}${a.chainId ? ` chain ${a.chainId}` : ''}`];
  if (a.to) parts.push(`to ${a.to}`);
  if (a.contract && a.contract !== a.to) parts.push(`contract ${a.contract}`);
  if (a.function) parts.push(`calling ${a.function.name ?? a.function.selector}`);
  for (const e of a.effects) {
    parts.push(e.type === 'transfer' ? `transfers ${e.amount} of ${e.asset} to ${e.to}` : `approves ${e.spender} for ${e.amount} of ${e.asset}`);
  }
  if (a.fee !== undefined) parts.push(`fee ${a.fee}`);
  return parts.join('; ');
}
