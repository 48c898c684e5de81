import { createWallet } from './actions/create-wallet.ts';
import { getWallet } from './actions/get-wallet.ts';
import { listWallets } from './actions/list-wallets.ts';
import { signHash } from './actions/sign-hash.ts';
import { signMessage } from './actions/sign-message.ts';
import { signTransaction } from './actions/sign-transaction.ts';
import { signTypedData } from './actions/sign-typed-data.ts';
import { sign } from './actions/sign.ts';
import { createRequest } from './create-request.ts';
import type { ClientConfig, FleetkeyClient } from './types.ts';

/**
 * A typed client of a fleetkey server's HTTP API.
 *
 * @example
 * const client = createClient({ url: 'http://127.0.0.1:8080', token: process.env.FLEETKEY_TOKEN! })
 * const wallet = await client.createWallet({ scheme: 'ecdsa-secp256k1' })
 */
export function createClient(config: ClientConfig): FleetkeyClient {
  const request = createRequest(config);
  return {
    request,
    createWallet: (p) => createWallet(request, p),
    getWallet: (p) => getWallet(request, p),
    listWallets: (p) => listWallets(request, p),
    sign: (p) => sign(request, p),
    signHash: (p) => signHash(request, p),
    signTransaction: (p) => signTransaction(request, p),
    signMessage: (p) => signMessage(request, p),
    signTypedData: (p) => signTypedData(request, p),
  };
}
