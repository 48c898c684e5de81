/**
 * The agent side of fleetkey: an agent holds its own session key (Ed25519 or P-256, generated where
 * it runs) and an owner-issued grant. Every request is signed with that key; the server and every
 * signer check it, the grant and the wallet's policy before any signature exists. No admin token.
 */
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { signAgentQuery, signAgentRequest, type KeyType, type Payload } from '../control/index.ts';
import type { AgentStatusView } from '../control/index.ts';
import { createRequest } from './create-request.ts';
import { FleetkeyApiError } from './errors.ts';
import { resendWhile } from '../retry.ts';

export type AgentConfig = {
  /** The server's base URL. */
  url: string;
  /** The grant the owner issued to this agent's key. */
  grantId: string;
  /** The agent's 32-byte secret key. */
  secretKey: Uint8Array;
  keyType?: KeyType;
  /** How long each request stays valid (default 5 minutes; wait for approvals within it). */
  requestTtlMs?: number;
  /** How long `request` waits for human approvals before it throws `approval_required` (default 0: do not wait). */
  approvalTimeoutMs?: number;
  /**
   * How long `request` keeps sending the same signed request again while the server answers 503
   * (a signer down or slow; under strict counters every share holder must be up to sign a capped
   * request), does not answer, or is still signing it (409 in_progress). Safe: a request id is
   * signed and counted once, ever. Default 30 s; 0 = no retries.
   */
  unavailableRetryMs?: number;
  fetch?: typeof globalThis.fetch;
};

/** What the server answers about a request: its status and, once signed, the signature(s). */
export type AgentRequestView = {
  status: 'pending_approval' | 'signing' | 'signed' | 'rejected' | 'expired' | 'failed';
  requestId: string;
  requestDigest: string;
  walletId: string;
  signature?: string;
  signatures?: { input?: number; signature: string }[];
  serializedTransaction?: string;
  hash?: string;
  /** `solana_message`: the off-chain message bytes that were signed (base64), for its verifier. */
  offchainMessage?: string;
  /** `bitcoin_message`: the BIP-322 simple signature (base64 of the to_sign witness). */
  bip322?: string;
  [k: string]: unknown;
};

export type FleetkeyAgent = {
  grantId: string;
  /** Signs `payload` with `walletId` under the grant: resolves once signed; throws on refusal. */
  request(walletId: string, payload: Payload, options?: { requestId?: string }): Promise<AgentRequestView>;
  /** The current state of a request this agent made. */
  get(requestId: string): Promise<AgentRequestView>;
  /** A wallet's public record (id, scheme, publicKey, address): no token needed. */
  wallet(walletId: string): Promise<{ id: string; scheme: string; publicKey: string; address: string; network?: string | null }>;
  /** The grant's state, its wallets, and each wallet's policy in words with what its rolling limits have left (a query signed with the agent key). */
  status(): Promise<AgentStatusView>;
};

export type { AgentStatusView };

/**
 * @example
 * const agent = createAgent({ url, grantId: 'grant_…', secretKey })
 * const r = await agent.request('wal_…', { kind: 'evm_message', data: { text: 'hello' } })
 */
export function createAgent(config: AgentConfig): FleetkeyAgent {
  const http = createRequest({ url: config.url, token: '', fetch: config.fetch });
  const keyType = config.keyType ?? 'ed25519';
  const get = (requestId: string) => http<AgentRequestView>('GET', `/v1/requests/${encodeURIComponent(requestId)}`);
  return {
    grantId: config.grantId,
    get,
    wallet: (walletId) => http('GET', `/v1/public/wallets/${encodeURIComponent(walletId)}`),
    status: () => http<AgentStatusView>('POST', '/v1/agent/status', signAgentQuery({ kind: 'grant_status', grantId: config.grantId, issuedAt: Date.now() }, config.secretKey, keyType)),
    async request(walletId, payload, options = {}) {
      const now = Date.now();
      const signed = signAgentRequest(
        { grantId: config.grantId, walletId, requestId: options.requestId ?? `r${bytesToHex(randomBytes(12))}`, payload, issuedAt: now, expiresAt: now + (config.requestTtlMs ?? 5 * 60_000) },
        config.secretKey,
        keyType,
      );
      let view = await resendWhile(() => http<AgentRequestView>('POST', '/v1/requests', signed), unavailable, config.unavailableRetryMs ?? 30_000);
      const deadline = Date.now() + (config.approvalTimeoutMs ?? 0);
      while (view.status === 'pending_approval' || view.status === 'signing') {
        if (Date.now() >= deadline)
          throw new FleetkeyApiError({ code: 'approval_required', message: `request ${view.requestId} waits for human approval`, status: 403, data: { requestId: view.requestId, requestDigest: view.requestDigest } });
        await new Promise((r) => setTimeout(r, 500));
        view = await get(view.requestId);
      }
      if (view.status !== 'signed') {
        const err = view.error as { code?: string; message?: string } | undefined;
        throw new FleetkeyApiError({ code: (view.status === 'rejected' ? 'approval_rejected' : view.status === 'expired' ? 'request_expired' : (err?.code ?? 'internal')) as never, message: err?.message ?? `request ${view.requestId} was ${view.status}`, status: 403, data: { requestId: view.requestId } });
      }
      return view;
    },
  };
}

/** 503: a signer was down or slow; 0: no answer came back; in_progress: our first attempt is still signing. */
function unavailable(e: unknown): boolean {
  return e instanceof FleetkeyApiError && (e.status === 503 || e.status === 0 || e.code === 'in_progress');
}
