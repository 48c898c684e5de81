/**
 * Who decides that a wallet moves to other signer nodes: the owner, not the server (issue 11).
 *
 * A reshare session starts only with an owner-signed `wallet_reshare` order (src/control/schemas.ts)
 * naming the wallet, the epoch it moves from, the new holders in party order and the new threshold.
 * Every node of the session (each dealer, whether it stays or leaves, and each new holder) checks it
 * here against the pinned owner keys before it deals or receives anything, as key generation checks
 * `wallet_create` (src/enforce/wallet-create.ts). The epoch is what makes an order good for one move:
 * after it, the wallet is at another epoch on every holder and the order matches no session, so a
 * server cannot replay it (say, to move the wallet back to a retired node). Before it, a failed
 * attempt may be retried under the same order: it can only do what the owner ordered.
 */
import { controlDocDigest, verifyControlDoc } from '../control/documents.ts';
import type { WalletReshareDoc } from '../control/schemas.ts';
import { FleetkeyError } from '../errors.ts';
import type { OwnerKey } from '../control/keys.ts';

/** Longest a reshare order may be valid: a node job of many wallets runs under orders signed up front. */
export const MAX_RESHARE_TTL_MS = 24 * 60 * 60_000;
const CLOCK_SKEW_MS = 60_000;

export interface ReshareSession {
  walletId: string;
  /** The epoch the session moves the wallet from (this node's record, or the dealers' package for a new holder). */
  epoch: number;
  threshold: number;
  /** The new committee, each at its new party index. */
  holders: readonly { index: number; nodeId: string }[];
}

/**
 * Checks an owner's `wallet_reshare` order against the reshare a server started. Throws
 * `owner_authorization_required` (none), `validation_failed` / `bad_signature` (not a valid owner
 * document), `request_expired` (stale), `forbidden` (it orders another move than this session).
 */
export function checkReshareOrder(signed: unknown, ownerKeys: readonly OwnerKey[], s: ReshareSession, now: number): { doc: WalletReshareDoc; digest: string } {
  if (signed === undefined || signed === null) throw new FleetkeyError('owner_authorization_required', 'a reshare needs the owner-signed wallet_reshare order');
  const doc = verifyControlDoc(signed, ownerKeys);
  if (doc.kind !== 'wallet_reshare') throw new FleetkeyError('validation_failed', 'a reshare is authorized by a "wallet_reshare" document', { details: { path: 'order.doc.kind' } });
  if (now >= doc.expiresAt) throw new FleetkeyError('request_expired', 'the wallet_reshare order has expired', { details: { walletId: doc.walletId, orderId: doc.orderId } });
  if (doc.expiresAt - now > MAX_RESHARE_TTL_MS) throw new FleetkeyError('validation_failed', 'the wallet_reshare order is valid for too long (at most 24 hours)', { details: { path: 'order.doc.expiresAt' } });
  if (doc.issuedAt > now + CLOCK_SKEW_MS) throw new FleetkeyError('validation_failed', 'the wallet_reshare order is issued in the future', { details: { path: 'order.doc.issuedAt' } });
  const differs = (field: string) => {
    throw new FleetkeyError('forbidden', `the session's ${field} is not the one the owner's wallet_reshare order names`, { details: { field, walletId: doc.walletId, orderId: doc.orderId } });
  };
  if (doc.walletId !== s.walletId) differs('walletId');
  if (doc.epoch !== s.epoch) differs('epoch');
  if (doc.threshold !== s.threshold) differs('threshold');
  const parties = [...s.holders].sort((a, b) => a.index - b.index);
  if (parties.length !== doc.holders.length || parties.some((p, i) => p.index !== i + 1 || p.nodeId !== doc.holders[i])) differs('holders');
  return { doc, digest: controlDocDigest(doc) };
}
