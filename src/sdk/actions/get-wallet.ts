import type { GetWalletParameters, Request, Wallet } from '../types.ts';

/** `GET /v1/wallets/:id`. */
export function getWallet(request: Request, { walletId }: GetWalletParameters): Promise<Wallet> {
  return request('GET', `/v1/wallets/${encodeURIComponent(walletId)}`);
}
