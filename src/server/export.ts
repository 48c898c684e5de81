/**
 * POST /v1/wallets/:id/export (issue 11): the server relays the owner's signed `export` document to
 * every holder of the wallet and hands back the sealed shares. It can neither make nor read one:
 * each holder checks the owner's document and the wallet's policy itself (SignerNode.exportShare),
 * and each box is sealed to the owner's offline recovery key. The CLI (`fleetkey wallet export`)
 * needs t boxes; the server says so when fewer holders answer.
 */
import { z } from 'zod';
import { signedControlDocSchema } from '../control/schemas.ts';
import { FleetkeyError, type ErrorCode } from '../errors.ts';
import { splitWalletId } from '../enforce/authorize.ts';
import type { Coordinator } from './coordinator.ts';
import { SignerCallError } from './signers.ts';

export const exportSchema = z.strictObject({ order: signedControlDocSchema });

export interface ExportAnswer {
  walletId: string;
  scheme: string;
  threshold: number;
  publicKey: string;
  address: string;
  network: string | null;
  /** `sig`: the holder's identity-key signature over the box and what it answers (src/crypto/export.ts, BoxStatement). */
  shares: { nodeId: string; index: number; epoch: number; box: string; sig: string }[];
}

export async function exportWallet(coord: Coordinator, walletId: string, body: z.infer<typeof exportSchema>): Promise<ExportAnswer> {
  if (splitWalletId(walletId).index !== undefined)
    throw new FleetkeyError('unsupported', 'a derived wallet has no share of its own: export its root (the child key is the root key plus the public derivation tweak)', { details: { field: 'id' } });
  if ((body.order.doc as { walletId?: unknown }).walletId !== walletId)
    throw new FleetkeyError('validation_failed', 'the export document names another wallet than the route', { details: { path: 'order.doc.walletId' } });
  const w = await coord.wallet(walletId);
  const answers = await Promise.allSettled(w.participants.map((p) => coord.signers.call<ExportAnswer['shares'][number]>(p.nodeId, '/v1/export', body.order)));
  const shares = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  if (shares.length >= w.threshold) return { walletId: w.id, scheme: w.scheme, threshold: w.threshold, publicKey: w.publicKey, address: w.address, network: w.network ?? null, shares };
  // A holder's own refusal (policy, owner's document) is the answer; only unreachable holders make it "not enough".
  const refused = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected' && a.reason instanceof SignerCallError && !a.reason.unavailable);
  if (refused) {
    const e = refused.reason as SignerCallError;
    throw new FleetkeyError((e.remoteCode ?? 'forbidden') as ErrorCode, `holder ${e.nodeId} refused the export: ${e.message}`, { details: { nodeId: e.nodeId } });
  }
  throw new FleetkeyError('not_enough_signers', `${shares.length} of the ${w.threshold} holders needed answered the export`, { details: { answered: shares.length, threshold: w.threshold } });
}
