/** Committees change, keys stay (issue #11): `fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]`. */
import { FleetkeyError } from '../errors.ts';
import { api, int, need, print, type Flags } from './common.ts';
import type { CliModule } from './module.ts';
import { signControlDoc, type WalletReshareDoc } from '../control/index.ts';
import { newId } from '../http/common.ts';
import { ownerSecretIfAny } from './control.ts';

/** How long a reshare order the CLI signs stays valid: a slow DKLs23 move of one wallet, with room for retries. */
const ORDER_TTL_MS = 30 * 60_000;

/**
 * The body of `POST /v1/wallets/:id/reshare`. With the owner key at hand (--owner-key,
 * FLEETKEY_OWNER_KEY_FILE, or `fleetkey dev`'s) the CLI signs the `wallet_reshare` order itself, for
 * the wallet's current epoch, which every dealer and new holder checks; without it, it sends the
 * plain fields and only a server that holds the owner key can act on them.
 */
export async function reshareBody(flags: Flags, walletId: string, to: string[], threshold?: number): Promise<Record<string, unknown>> {
  const owner = ownerSecretIfAny(flags);
  if (!owner) return { to, ...(threshold !== undefined ? { threshold } : {}) };
  const w = await api<{ epoch: number; threshold: number }>('GET', `/v1/wallets/${encodeURIComponent(walletId)}`);
  return { order: signReshareOrder(owner, walletId, w.epoch, to, threshold ?? Math.min(w.threshold, to.length)) };
}

/** The owner's signed order to move `walletId` from `epoch` to `holders` (party order) with `threshold`. */
export function signReshareOrder(owner: Uint8Array, walletId: string, epoch: number, holders: string[], threshold: number, now = Date.now()) {
  const doc: WalletReshareDoc = { kind: 'wallet_reshare', orderId: newId('rso'), walletId, epoch, threshold, holders, issuedAt: now, expiresAt: now + ORDER_TTL_MS };
  return signControlDoc(doc, owner);
}

export const committeeCli: CliModule = {
  nouns: ['wallet'],
  options: { to: { type: 'string' } },
  help: `Committees (same public key and addresses; the old epoch signs until every new holder has agreed)
  fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]   move a wallet (a fleet root: with all its devices) to new signer nodes`,
  async run(_noun, verb, args, flags: Flags) {
    if (verb !== 'reshare') return undefined;
    const id = args[0];
    if (!id) throw new FleetkeyError('validation_failed', 'usage: fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]');
    const to = need(flags, 'to').split(',').map((s) => s.trim()).filter(Boolean);
    const threshold = int(flags, 'threshold');
    const body = await reshareBody(flags, id, to, threshold);
    const w = await api<{ id: string; threshold: number; signers: number; epoch: number; address: string; participants: { index: number; nodeId: string }[] }>(
      'POST',
      `/v1/wallets/${encodeURIComponent(id)}/reshare`,
      body,
    );
    print(flags, w, () => `${w.id}  ${w.threshold}-of-${w.signers}  epoch ${w.epoch}\n  address     ${w.address} (unchanged)\n  holders     ${w.participants.map((p) => p.nodeId).join(', ')}`);
    return 0;
  },
};
