import type { CreateWalletParameters, FleetkeyRequest, Wallet } from '../types.ts';

/** Runs a distributed key generation across the signer nodes: `POST /v1/wallets`. */
export function createWallet(request: FleetkeyRequest, params: CreateWalletParameters): Promise<Wallet> {
  return request('POST', '/v1/wallets', params);
}
