/**
 * The audit entries the control plane writes, in one shape for the server and every signer node:
 * a stored owner document, and a refused signing request. Public fields only, never key material.
 */
import type { AuditFields } from '../audit/index.ts';
import type { FleetkeyError } from '../errors.ts';
import type { DecisionPutResult, PutResult } from '../store/control-store.ts';

type Entry = Omit<AuditFields, 'time' | 'actor'>;

/** A control document was stored: what it is about (grant, wallet, version, status…), not its signature. */
export function storedDocEntry(r: PutResult, signed: unknown): Entry {
  const doc = (signed as { doc: Record<string, unknown> }).doc;
  const type = r.kind === 'grant' || r.kind === 'revocation' ? 'grant' : r.kind === 'policy' ? 'policy' : r.kind === 'approvers' ? 'approval' : 'admin';
  const about = { grantId: doc.id ?? doc.grantId, walletId: doc.walletId, version: doc.version, status: doc.status, seq: doc.seq, wallets: doc.wallets, expiresAt: doc.expiresAt, maxUses: doc.maxUses };
  return { type, outcome: `${r.kind}_stored`, data: { kind: r.kind, digest: r.digest, ...Object.fromEntries(Object.entries(about).filter(([, v]) => v !== undefined)) } };
}

/** An approver's decision on a request was stored (server and every signer: a reject is final). */
export function decisionEntry(r: DecisionPutResult): Entry {
  return { type: 'approval', requestDigest: r.requestDigest, outcome: `${r.decision}_stored`, data: { kind: 'approval', digest: r.digest, approver: r.approver, decision: r.decision } };
}

/** A signing request was refused: its code, the policy's reason codes and version, and whose request it was. */
export function refusalEntry(e: FleetkeyError, about: { walletId: string; requestId: unknown; grantId?: unknown; by?: 'agent' | 'owner'; requestDigest?: string }): Entry {
  const reasons = e.details?.reasons as { code: string }[] | undefined;
  return {
    type: 'decision',
    outcome: e.code,
    ...(about.requestDigest ? { requestDigest: about.requestDigest } : {}),
    policyVersion: e.details?.policyVersion as string | number | undefined,
    data: {
      walletId: about.walletId,
      ...(about.by ? { by: about.by } : {}),
      requestId: typeof about.requestId === 'string' ? about.requestId.slice(0, 128) : null,
      ...(typeof about.grantId === 'string' ? { grantId: about.grantId.slice(0, 128) } : {}),
      ...(reasons ? { reasons: reasons.map((r) => r.code) } : {}),
      message: e.message.slice(0, 300),
    },
  };
}
