/**
 * Checking a wallet offline: `verifyWalletPackage(pkg, { nodeKeys, ownerKey? })` takes the answer of
 * `GET /v1/public/wallets/:id` (or its `package`) and returns the threshold, holders, key, address and
 * network every holder signed, after checking each holder's signature against the node identity key
 * you pin for it (the cluster's peers.json) and, with `ownerKey`, the owner's wallet_create order.
 * `getVerifiedWallet` fetches and checks in one call.
 */
import { verifyWalletPackage, type VerifiedWallet, type VerifyWalletPackageOptions } from '../enforce/wallet-package.ts';
import type { FleetkeyRequest } from './types.ts';

export { verifyWalletPackage, assertSameClaims, type VerifiedWallet, type VerifyWalletPackageOptions, type NodeKeys, type WalletPackage } from '../enforce/wallet-package.ts';

/** `GET /v1/public/wallets/:id`, checked with {@link verifyWalletPackage}: a server cannot change what the holders signed. */
export async function getVerifiedWallet(request: FleetkeyRequest, walletId: string, opts: VerifyWalletPackageOptions): Promise<VerifiedWallet> {
  return verifyWalletPackage(await request('GET', `/v1/public/wallets/${encodeURIComponent(walletId)}`), opts);
}
