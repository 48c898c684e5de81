/**
 * Approvals: a person listed in the owner-signed approver registry signs a decision on one request
 * (by its requestDigest). verifyApprovals counts distinct eligible approvers with valid signatures.
 */
import { DOMAINS, signBytes, signingInput, verifySignature, type KeyType } from './keys.ts';
import { approvalSchema, parseOrThrow, signedApprovalSchema, type Approval, type ApproversDoc, type SignedApproval } from './schemas.ts';

export function signApproval(approval: Approval, approverSecret: Uint8Array, keyType: KeyType): SignedApproval & { sig: string } {
  const valid = parseOrThrow(approvalSchema, approval, 'approval');
  return { approval: valid, sig: signBytes(signingInput(DOMAINS.approval, valid), approverSecret, keyType) };
}

/** M of the named approvers, as in the policy engine's ApprovalRequirement (`required`, `approvers`). */
export interface ApprovalRequirementLike {
  required: number;
  approvers: readonly string[];
  group?: string;
}

export type IgnoredReason = 'malformed' | 'wrong_request' | 'unknown_approver' | 'not_eligible' | 'bad_signature';

export interface ApprovalTally {
  /** Distinct eligible approvers with a valid 'approve' (and no valid 'reject'), sorted. */
  approved: string[];
  /** Distinct eligible approvers with a valid 'reject', sorted. A reject outweighs the same person's approve. */
  rejected: string[];
  /** approved.length ≥ required. Rejections are reported, not counted against: the policy says M of N. */
  satisfied: boolean;
  /** Entries that did not count, by index in the input, with why. */
  ignored: { index: number; approver?: string; reason: IgnoredReason }[];
}

/**
 * Never throws on a bad entry: each is ignored and reported, so one malformed approval cannot block
 * the others. Duplicates from the same approver count once.
 */
export function verifyApprovals(requestDigest: string, signedApprovals: readonly unknown[], approversDoc: ApproversDoc, requirement: ApprovalRequirementLike): ApprovalTally {
  const eligible = new Set(requirement.approvers);
  const approve = new Set<string>();
  const reject = new Set<string>();
  const ignored: ApprovalTally['ignored'] = [];
  signedApprovals.forEach((s, index) => {
    let a: Approval;
    let sig: SignedApproval['sig'];
    try {
      const env = parseOrThrow(signedApprovalSchema, s, 'approval');
      a = parseOrThrow(approvalSchema, env.approval, 'approval');
      sig = env.sig;
    } catch {
      return void ignored.push({ index, reason: 'malformed' });
    }
    if (a.requestDigest !== requestDigest) return void ignored.push({ index, approver: a.approver, reason: 'wrong_request' });
    const key = Object.hasOwn(approversDoc.approvers, a.approver) ? approversDoc.approvers[a.approver] : undefined;
    if (!key) return void ignored.push({ index, approver: a.approver, reason: 'unknown_approver' });
    if (!eligible.has(a.approver)) return void ignored.push({ index, approver: a.approver, reason: 'not_eligible' });
    if (!verifySignature(sig, DOMAINS.approval, a, key)) return void ignored.push({ index, approver: a.approver, reason: 'bad_signature' });
    (a.decision === 'approve' ? approve : reject).add(a.approver);
  });
  const approved = [...approve].filter((n) => !reject.has(n)).sort();
  return { approved, rejected: [...reject].sort(), satisfied: approved.length >= requirement.required, ignored };
}
