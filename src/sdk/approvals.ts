/**
 * `@fleetkey/sdk/approvals`: what an approver's console or wallet page needs to approve a request: the request's
 * digest, the approver's signature over an approval, and the same count of valid approvals the signers make.
 * No Node-only API: it runs in browsers (the packaging test bundles it for platform=browser).
 */
export { signApproval, verifyApprovals, requestDigest, publicKeyOf, KEY_TYPES } from '../control/index.ts';
export type { Approval, SignedApproval, ApproversDoc, KeyType, ApprovalRequirementLike, ApprovalTally, IgnoredReason } from '../control/index.ts';
