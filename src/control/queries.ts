/**
 * An agent's read-only question about its own grant: which wallets it covers and how much of each
 * wallet's limits is left. Signed with the agent key under a domain of its own, so it can never
 * pass for a request to sign (or anything else); short-lived, so a copy seen on the wire is soon
 * worthless, and it only ever reads what the grant's holder may already know.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { DOMAINS, signBytes, signingInput, verifyBytes, type KeyType } from './keys.ts';
import { idSchema, msSchema, parseOrThrow, sigSchema, type GrantDoc } from './schemas.ts';
import type { PolicyInWords } from '../policy/limits.ts';

export const agentQuerySchema = z.strictObject({ kind: z.literal('grant_status'), grantId: idSchema, issuedAt: msSchema });
export const signedAgentQuerySchema = z.strictObject({ query: agentQuerySchema, sig: sigSchema });
export type AgentQuery = z.infer<typeof agentQuerySchema>;
export type SignedAgentQuery = z.infer<typeof signedAgentQuerySchema>;

/** How far a query's issue time may be from the verifier's clock, either way. */
export const QUERY_WINDOW_MS = 60_000;

export function signAgentQuery(query: AgentQuery, agentSecret: Uint8Array, keyType: KeyType): SignedAgentQuery {
  const valid = parseOrThrow(agentQuerySchema, query, 'query');
  return { query: valid, sig: signBytes(signingInput(DOMAINS.query, valid), agentSecret, keyType) };
}

/** Checks the query names `grant`, is signed by its agent key (`bad_signature`) and is fresh (`request_expired`). */
export function verifyAgentQuery(signed: SignedAgentQuery, grant: GrantDoc, now: number): AgentQuery {
  const q = parseOrThrow(agentQuerySchema, signed.query, 'query');
  if (q.grantId !== grant.id) throw new FleetkeyError('forbidden', 'query names a different grant', { details: { path: 'query.grantId' } });
  if (!verifyBytes(signed.sig, signingInput(DOMAINS.query, q), grant.agent.publicKey, grant.agent.keyType))
    throw new FleetkeyError('bad_signature', "query is not signed by the grant's agent key");
  if (Math.abs(now - q.issuedAt) > QUERY_WINDOW_MS)
    throw new FleetkeyError('request_expired', `query issued more than ${QUERY_WINDOW_MS / 1000} s from the server's clock`, { details: { path: 'query.issuedAt' } });
  return q;
}

/** The answer to a `grant_status` query (POST /v1/agent/status). */
export type AgentWalletStatus = {
  id: string;
  scheme: string;
  network: string | null;
  address: string;
  policy: PolicyInWords | null;
};

export type AgentStatusView = {
  grant: { id: string; status: 'active' | 'expired' | 'revoked'; expiresAt: number; uses: number; maxUses?: number; label?: string };
  wallets: AgentWalletStatus[];
};
