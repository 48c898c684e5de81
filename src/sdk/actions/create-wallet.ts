import type { CreateWalletParameters, Request, Wallet } from '../types.ts';

/** Runs a distributed key generation across the signer nodes: `POST /v1/wallets`. */
export function createWallet(request: Request, params: CreateWalletParameters): Promise<Wallet> {
  return request('POST', '/v1/wallets', params);
}
