/** fleetkey's TypeScript SDK: a typed client of the HTTP API, and a viem account backed by a wallet. */
export { createClient } from './create-client.ts';
export { createRequest } from './create-request.ts';
export { toViemAccount } from './to-viem-account.ts';
export { FleetkeyApiError, FleetkeyError, type ErrorCode } from './errors.ts';
export { createWallet } from './actions/create-wallet.ts';
export { getWallet } from './actions/get-wallet.ts';
export { listWallets } from './actions/list-wallets.ts';
export { sign } from './actions/sign.ts';
export { signHash } from './actions/sign-hash.ts';
export { signTransaction } from './actions/sign-transaction.ts';
export { signMessage } from './actions/sign-message.ts';
export { signTypedData } from './actions/sign-typed-data.ts';
export type * from './types.ts';
