/**
 * Agent requests: what an agent signs with its session key to ask for a signature, and the checks a
 * signer node makes on its own before taking part (signature by the grant's key, grant scope and
 * expiry, request expiry), plus the grant's usability against revocations and use counts.
 */
import { FleetkeyError } from '../errors.ts';
import { DOMAINS, digestOf, signBytes, signingInput, verifyBytes, type KeyType } from './keys.ts';
import { agentRequestSchema, msSchema, parseOrThrow, signedAgentRequestSchema, type AgentRequest, type GrantDoc, type SignedAgentRequest } from './schemas.ts';

/** Default bound on clock skew for `issuedAt` in the future. */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;

export function signAgentRequest(req: AgentRequest, agentSecret: Uint8Array, keyType: KeyType): SignedAgentRequest {
  const valid = parseOrThrow(agentRequestSchema, req, 'request');
  return { request: valid, sig: signBytes(signingInput(DOMAINS.request, valid), agentSecret, keyType) };
}

/**
 * sha256 hex over "fleetkey/agent-request/v1\n" + canonicalJson(request): the request's stable id in
 * audit entries and approvals. It covers the request, not the signature (so it does not depend on
 * the signing randomness of ECDSA); the request names its grant, hence its key.
 */
export function requestDigest(signed: SignedAgentRequest | { request: unknown }): string {
  return digestOf(DOMAINS.request, parseOrThrow(agentRequestSchema, signed.request, 'request'));
}

export interface VerifyRequestOptions {
  now: number;
  /** Longest accepted lifetime left: expiresAt − now ≤ maxTtlMs. */
  maxTtlMs: number;
  /** How far in the future issuedAt may be (default 60 s). */
  clockSkewMs?: number;
}

/**
 * Verifies a signed agent request under an (already verified) grant. Order: shape
 * (`validation_failed`), grant named (`forbidden`), signature (`bad_signature`), grant expiry
 * (`grant_expired`), wallet in scope (`wallet_not_in_grant`), request expiry (`request_expired`),
 * lifetime and issue time (`validation_failed` at `request.expiresAt` / `request.issuedAt`).
 * Revocation and use counts need the store: see `checkGrantUsable`.
 */
export function verifyAgentRequest(signed: unknown, grant: GrantDoc, opts: VerifyRequestOptions): AgentRequest {
  const now = parseOrThrow(msSchema, opts.now, 'now');
  const maxTtlMs = parseOrThrow(msSchema, opts.maxTtlMs, 'maxTtlMs');
  const skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const env = parseOrThrow(signedAgentRequestSchema, signed, 'signed');
  const req = parseOrThrow(agentRequestSchema, env.request, 'request');
  if (req.grantId !== grant.id) throw new FleetkeyError('forbidden', 'request names a different grant', { details: { path: 'request.grantId' } });
  if (!verifyBytes(env.sig, signingInput(DOMAINS.request, req), grant.agent.publicKey, grant.agent.keyType))
    throw new FleetkeyError('bad_signature', 'request is not signed by the grant\'s agent key');
  if (now >= grant.expiresAt) throw new FleetkeyError('grant_expired', `grant ${grant.id} expired`, { details: { grantId: grant.id, expiresAt: grant.expiresAt } });
  if (!grant.wallets.includes(req.walletId))
    throw new FleetkeyError('wallet_not_in_grant', `grant ${grant.id} does not cover wallet ${req.walletId}`, { details: { grantId: grant.id, walletId: req.walletId } });
  if (now >= req.expiresAt) throw new FleetkeyError('request_expired', 'request expired', { details: { requestId: req.requestId, expiresAt: req.expiresAt } });
  if (req.expiresAt - now > maxTtlMs)
    throw new FleetkeyError('validation_failed', `invalid request: request.expiresAt: more than ${maxTtlMs} ms ahead`, { details: { path: 'request.expiresAt' } });
  if (req.issuedAt > now + skew)
    throw new FleetkeyError('validation_failed', 'invalid request: request.issuedAt: in the future', { details: { path: 'request.issuedAt' } });
  return req;
}

export interface GrantUsableOptions {
  now: number;
  revoked: boolean;
  /** Uses recorded so far (ControlStore.usesSoFar), not counting the request being checked. */
  usesSoFar: number;
  /** The wallet's policy version on this node (null: none yet); checked against grant.policyVersion unless left out. */
  policyVersion?: number | null;
}

/**
 * Throws `grant_revoked`, `grant_expired`, `grant_exhausted`, or `conflict` (the node's policy is
 * older than the grant requires: retry once the newer policy has reached it). A pre-check only: the
 * authoritative use count is taken atomically by ControlStore.reserve.
 */
export function checkGrantUsable(grant: GrantDoc, opts: GrantUsableOptions): void {
  if (opts.revoked) throw new FleetkeyError('grant_revoked', `grant ${grant.id} was revoked`, { details: { grantId: grant.id } });
  if (opts.now >= grant.expiresAt) throw new FleetkeyError('grant_expired', `grant ${grant.id} expired`, { details: { grantId: grant.id, expiresAt: grant.expiresAt } });
  if (grant.maxUses !== undefined && opts.usesSoFar >= grant.maxUses)
    throw new FleetkeyError('grant_exhausted', `grant ${grant.id} used ${opts.usesSoFar} of ${grant.maxUses} times`, { details: { grantId: grant.id, maxUses: grant.maxUses } });
  if (grant.policyVersion !== undefined && opts.policyVersion !== undefined && (opts.policyVersion === null || opts.policyVersion < grant.policyVersion))
    throw new FleetkeyError('conflict', `grant ${grant.id} needs policy version ${grant.policyVersion} or later; this node has ${opts.policyVersion ?? 'none'}`, {
      details: { grantId: grant.id, policyVersion: grant.policyVersion },
    });
}
