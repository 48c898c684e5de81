import { assertSameClaims, getVerifiedWallet } from '../verify-wallet-package.ts';
import type { CreateWalletParameters, FleetkeyRequest, Wallet } from '../types.ts';

/**
 * Runs a distributed key generation across the signer nodes: `POST /v1/wallets`. With `verify`
 * (the pinned node keys, optionally the owner key), the answer is returned only once the holders'
 * signed public package checks out and agrees with it.
 */
export async function createWallet(request: FleetkeyRequest, { verify, ...params }: CreateWalletParameters): Promise<Wallet> {
  const w = await request<Wallet>('POST', '/v1/wallets', params);
  if (verify) assertSameClaims(w as unknown as Record<string, unknown>, await getVerifiedWallet(request, w.id, verify));
  return w;
}
