import type { GetWalletParameters, FleetkeyRequest, Wallet } from '../types.ts';

/** `GET /v1/wallets/:id`. */
export function getWallet(request: FleetkeyRequest, { walletId }: GetWalletParameters): Promise<Wallet> {
  return request('GET', `/v1/wallets/${encodeURIComponent(walletId)}`);
}
