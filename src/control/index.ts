export { KEY_TYPES, DOMAINS, signingInput, digestOf, publicKeyOf, signBytes, verifyBytes, verifySignature, verifyWebAuthn, webauthnChallenge, p256PublicKeyFromSpki, sameOwnerKey } from './keys.ts';
export type { KeyType, Domain, OwnerKey, SigningKey, Signature, WebAuthnKey, WebAuthnAssertion } from './keys.ts';
export {
  controlDocSchema, walletCreateDocSchema, walletReshareDocSchema, WALLET_NETWORKS, DEFAULT_WALLET_NETWORK, policyDocSchema, walletStatusDocSchema, signDocSchema, payloadSchema, grantDocSchema, revocationDocSchema, approversDocSchema, signedControlDocSchema,
  agentRequestSchema, signedAgentRequestSchema, approvalSchema, signedApprovalSchema, signatureSchema, webauthnKeySchema, webauthnAssertionSchema, approverKeySchema, publicKeySchema, requestIdSchema, idSchema,
  PAYLOAD_KINDS, parseOrThrow,
} from './schemas.ts';
export type { ExportDoc, ControlDoc, WalletCreateDoc, WalletReshareDoc, WalletScheme, WalletStatusDoc, SignDoc, Payload, PolicyDoc, GrantDoc, RevocationDoc, ApproversDoc, SignedControlDoc, AgentKey, AgentRequest, SignedAgentRequest, Approval, SignedApproval } from './schemas.ts';
export { signControlDoc, verifyControlDoc, controlDocDigest } from './documents.ts';
export { signAgentRequest, verifyAgentRequest, requestDigest, checkGrantUsable, DEFAULT_CLOCK_SKEW_MS } from './requests.ts';
export type { VerifyRequestOptions, GrantUsableOptions } from './requests.ts';
export { signApproval, verifyApprovals } from './approvals.ts';
export type { ApprovalRequirementLike, ApprovalTally, IgnoredReason } from './approvals.ts';
export { signAgentQuery, verifyAgentQuery, agentQuerySchema, signedAgentQuerySchema, QUERY_WINDOW_MS } from './queries.ts';
export type { AgentQuery, SignedAgentQuery, AgentStatusView, AgentWalletStatus } from './queries.ts';
