/**
 * `wallet create` and `fleet create`: the owner orders the wallet, and the CLI shows an address only
 * once it has checked what the holders signed.
 *
 * With the owner key at hand (--owner-key, FLEETKEY_OWNER_KEY_FILE, or `fleetkey dev`'s), the CLI
 * writes and signs the `wallet_create` document itself (holders: the first n pinned nodes that are
 * up), as it signs policies; without it, it sends the plain fields and a server that holds the owner
 * key (`fleetkey dev`) signs the order. Then it fetches `GET /v1/public/wallets/:id` and checks the
 * package against the node identity keys it pins (FLEETKEY_NODE_KEYS, a peers.json file, or the
 * `signers` of .fleetkey/cluster.json) and, when it signed the order, against the owner key; the
 * server's answer must agree with it. No pinned node keys: no address (fail closed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { publicKeyOf, signControlDoc } from '../control/index.ts';
import { chooseNetwork } from '../enforce/wallet-create.ts';
import { assertSameClaims, verifyWalletPackage, type VerifiedWallet } from '../enforce/wallet-package.ts';
import { FleetkeyError } from '../errors.ts';
import { newId } from '../http/common.ts';
import { api, clusterJson, int, need, type Flags } from './common.ts';
import { ownerSecretIfAny } from './control.ts';

/** The node identity keys this CLI pins: FLEETKEY_NODE_KEYS (a peers.json-style file) or cluster.json's signers. */
export function pinnedNodeKeys(): { nodeId: string; signPub: string }[] {
  const file = process.env.FLEETKEY_NODE_KEYS;
  if (file) {
    if (!existsSync(file)) throw new FleetkeyError('bad_request', `FLEETKEY_NODE_KEYS: no file ${file}`);
    const list = JSON.parse(readFileSync(file, 'utf8')) as { nodeId?: unknown; signPub?: unknown }[];
    if (!Array.isArray(list) || list.some((p) => typeof p?.nodeId !== 'string' || typeof p?.signPub !== 'string' || !/^[0-9a-f]{64}$/i.test(p.signPub as string)))
      throw new FleetkeyError('bad_request', `FLEETKEY_NODE_KEYS: ${file} is not a list of {nodeId, signPub} (the cluster's peers.json)`);
    return list as { nodeId: string; signPub: string }[];
  }
  const fromDev = clusterJson() as { signers?: { nodeId: string; signPub?: string }[] } | undefined;
  const keys = (fromDev?.signers ?? []).filter((s): s is { nodeId: string; signPub: string } => typeof s.signPub === 'string');
  if (!keys.length)
    throw new FleetkeyError('bad_request', 'no pinned node identity keys to check the wallet against: set FLEETKEY_NODE_KEYS to the cluster\'s peers.json, or run `fleetkey dev` here');
  return keys;
}

/** Creates a wallet (path /v1/wallets) or fleet (/v1/fleets, with `extra` such as a policy) and returns the server's answer once verified. */
export async function createVerified<T extends { id: string }>(flags: Flags, path: '/v1/wallets' | '/v1/fleets', extra: Record<string, unknown> = {}): Promise<{ view: T; verified: VerifiedWallet }> {
  const nodeKeys = pinnedNodeKeys();
  const scheme = need(flags, 'scheme');
  const owner = ownerSecretIfAny(flags);
  const body: Record<string, unknown> = { ...extra };
  if (flags.label !== undefined) body.label = flags.label;
  if (owner) {
    const pinned = new Set(nodeKeys.map((k) => k.nodeId));
    const nodes = await api<{ id: string; status: string }[]>('GET', '/v1/nodes');
    const n = int(flags, 'signers') ?? nodes.length;
    const up = nodes.filter((x) => x.status === 'up' && pinned.has(x.id)).map((x) => x.id);
    if (up.length < n) throw new FleetkeyError('not_enough_signers', `need ${n} pinned signer nodes up, ${up.length} are`);
    const network = chooseNetwork(scheme, flags.network as string | undefined);
    const now = Date.now();
    const doc = { kind: 'wallet_create' as const, walletId: newId('wal'), scheme: scheme as 'ed25519', threshold: int(flags, 'threshold') ?? Math.min(2, n), holders: up.slice(0, n), ...(network ? { network } : {}), issuedAt: now, expiresAt: now + 30 * 60_000 };
    body.create = signControlDoc(doc, owner);
  } else {
    body.scheme = scheme;
    for (const k of ['threshold', 'signers'] as const) if (flags[k] !== undefined) body[k] = int(flags, k);
    if (flags.network !== undefined) body.network = flags.network;
  }
  const view = await api<T>('POST', path, body);
  const pub = await api<Record<string, unknown>>('GET', `/v1/public/wallets/${encodeURIComponent(view.id)}`);
  const verified = verifyWalletPackage(pub, { nodeKeys, ...(owner ? { ownerKey: publicKeyOf(owner, 'ed25519') } : {}) });
  assertSameClaims(view as unknown as Record<string, unknown>, verified);
  return { view, verified };
}
