/**
 * Who decides what a new wallet is: the owner, not the server.
 *
 * A key generation starts only with an owner-signed `wallet_create` document (src/control/schemas.ts)
 * that names the wallet id, scheme, threshold, the holders in party order and the network. Every
 * holder checks it here before it takes part (signature by a pinned owner key, fresh, and equal to
 * the session the server started), then records the wallet id as used in its own store before any
 * protocol message leaves it (src/store/create-log.ts), so one document creates one key, ever.
 * The document's digest and the network go into the public package every holder signs at the end
 * (src/enforce/wallet-package.ts), which anyone can check against the pinned node keys.
 */
import { controlDocDigest, verifyControlDoc } from '../control/documents.ts';
import { DEFAULT_WALLET_NETWORK, WALLET_NETWORKS, type WalletCreateDoc } from '../control/schemas.ts';
import { FleetkeyError } from '../errors.ts';
import type { OwnerKey } from '../control/keys.ts';

/** Longest a create document may be valid: long enough for a slow DKLs23 key generation, short enough not to linger. */
export const MAX_CREATE_TTL_MS = 60 * 60_000;
const CLOCK_SKEW_MS = 60_000;

export interface DkgStart {
  walletId: string;
  scheme: string;
  threshold: number;
  /** The session's parties, sorted by index. */
  participants: readonly { index: number; nodeId: string }[];
  /** The network the server named, if any: it must be the document's. */
  network?: string;
}

/**
 * Checks an owner's `wallet_create` document against the key generation a server started. Throws
 * `owner_authorization_required` (none), `validation_failed` / `bad_signature` (not a valid owner
 * document), `request_expired` (stale), `forbidden` (it orders another wallet than this session).
 */
export function checkCreateDoc(signed: unknown, ownerKeys: readonly OwnerKey[], start: DkgStart, now: number): { doc: WalletCreateDoc; digest: string } {
  if (signed === undefined || signed === null) throw new FleetkeyError('owner_authorization_required', 'a key generation needs the owner-signed wallet_create document');
  const doc = verifyControlDoc(signed, ownerKeys);
  if (doc.kind !== 'wallet_create') throw new FleetkeyError('validation_failed', 'a key generation is authorized by a "wallet_create" document', { details: { path: 'create.doc.kind' } });
  if (now >= doc.expiresAt) throw new FleetkeyError('request_expired', 'the wallet_create document has expired', { details: { walletId: doc.walletId } });
  if (doc.expiresAt - now > MAX_CREATE_TTL_MS) throw new FleetkeyError('validation_failed', 'the wallet_create document is valid for too long (at most 1 hour)', { details: { path: 'create.doc.expiresAt' } });
  if (doc.issuedAt > now + CLOCK_SKEW_MS) throw new FleetkeyError('validation_failed', 'the wallet_create document is issued in the future', { details: { path: 'create.doc.issuedAt' } });
  const differs = (field: string) => {
    throw new FleetkeyError('forbidden', `the session's ${field} is not the one the owner's wallet_create document names`, { details: { field, walletId: doc.walletId } });
  };
  if (doc.walletId !== start.walletId) differs('walletId');
  if (doc.scheme !== start.scheme) differs('scheme');
  if (doc.threshold !== start.threshold) differs('threshold');
  const parties = [...start.participants].sort((a, b) => a.index - b.index);
  if (parties.length !== doc.holders.length || parties.some((p, i) => p.index !== i + 1 || p.nodeId !== doc.holders[i])) differs('holders');
  if (start.network !== undefined && start.network !== (doc.network ?? null)) differs('network');
  return { doc, digest: controlDocDigest(doc) };
}

/**
 * A wallet's network: the one it was created with, else (a wallet created before networks were
 * recorded) its scheme's default. Undefined for ecdsa-secp256k1 (the transaction names its chain).
 */
export function walletNetworkOf(scheme: string, stored?: string | null): string | undefined {
  return stored ?? DEFAULT_WALLET_NETWORK[scheme];
}

/** The network a creator asked for, or the scheme's default; `validation_failed` if the scheme has no such network. */
export function chooseNetwork(scheme: string, asked?: string): string | undefined {
  const nets = (WALLET_NETWORKS as Record<string, readonly string[]>)[scheme] ?? [];
  if (asked === undefined) return DEFAULT_WALLET_NETWORK[scheme];
  if (!nets.includes(asked))
    throw new FleetkeyError('validation_failed', nets.length ? `${scheme} wallets are on one of ${nets.join(', ')}, not ${asked}` : `${scheme} wallets have no network (an EVM transaction names its chain id)`, { details: { field: 'network' } });
  return asked;
}
