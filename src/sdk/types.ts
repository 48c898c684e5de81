import type { ByteArray, Hex, SignableMessage, TransactionSerializable, TypedData, TypedDataDefinition } from 'viem';

export type Scheme = 'ed25519' | 'secp256k1-schnorr' | 'ecdsa-secp256k1';

/** A wallet as the server shows it. No key material: `publicKey` is the group public key. */
export type Wallet = {
  id: string;
  scheme: Scheme;
  /** Hex; for `ecdsa-secp256k1` the 33-byte compressed key. */
  publicKey: string;
  /** For `ecdsa-secp256k1` an EIP-55 checksummed Ethereum address. */
  address: string;
  threshold: number;
  signers: number;
  participants: { index: number; nodeId: string }[];
  label: string | null;
  network: string | null;
  epoch: number;
  internalKey?: string;
  createdAt: string;
};

export type ClientConfig = {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** A bearer token (the admin token for the raw signing routes). */
  token: string;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
};

/** Sends one request to the API and returns its JSON answer; throws {@link FleetkeyApiError}. */
export type FleetkeyRequest = <T>(method: 'GET' | 'POST', path: string, body?: unknown) => Promise<T>;

export type CreateWalletParameters = {
  scheme?: Scheme;
  threshold?: number;
  signers?: number;
  label?: string;
  /** Bitcoin (`secp256k1-schnorr`): mainnet (default), testnet, regtest. Solana (`ed25519`): mainnet-beta (default), devnet, testnet. */
  network?: string;
  /** The owner-signed `wallet_create` document (`signControlDoc`), instead of scheme/threshold/signers/network; needed unless the server holds the owner key. */
  create?: { doc: unknown; sig: string; signer: string };
  /** Check the holders' signed package before returning (see `verifyWalletPackage`). */
  verify?: import('../enforce/wallet-package.ts').VerifyWalletPackageOptions;
};
export type GetWalletParameters = { walletId: string };
export type ListWalletsParameters = { after?: string; limit?: number };
export type ListWalletsReturnType = { wallets: Wallet[]; next: string | null };

/** Raw message signing, for the FROST schemes (`ed25519`, `secp256k1-schnorr`). */
export type SignParameters = { walletId: string; message: Hex | ByteArray };
export type SignReturnType = { signature: Hex; signers?: string[] };

/** Raw 32-byte digest signing with an `ecdsa-secp256k1` wallet. */
export type SignHashParameters = { walletId: string; hash: Hex | ByteArray };
export type SignatureReturnType = { signature: Hex };

/** A serialized unsigned transaction, or a transaction request (bigints are sent as decimal strings). */
export type SignTransactionParameters = { walletId: string; transaction: Hex | TransactionSerializable };
export type SignTransactionReturnType = { signature: Hex; serializedTransaction: Hex; hash: Hex };

/** EIP-191: a UTF-8 string, or `{ raw }` bytes. */
export type SignMessageParameters = { walletId: string; message: SignableMessage };

/** EIP-712, typed as viem types it: the message is checked against `types` and `primaryType`. */
export type SignTypedDataParameters<
  typedData extends TypedData | Record<string, unknown> = TypedData,
  primaryType extends keyof typedData | 'EIP712Domain' = keyof typedData,
> = { walletId: string; typedData: TypedDataDefinition<typedData, primaryType> };

export type FleetkeyClient = {
  request: FleetkeyRequest;
  createWallet: (p: CreateWalletParameters) => Promise<Wallet>;
  getWallet: (p: GetWalletParameters) => Promise<Wallet>;
  listWallets: (p?: ListWalletsParameters) => Promise<ListWalletsReturnType>;
  sign: (p: SignParameters) => Promise<SignReturnType>;
  signHash: (p: SignHashParameters) => Promise<SignatureReturnType>;
  signTransaction: (p: SignTransactionParameters) => Promise<SignTransactionReturnType>;
  signMessage: (p: SignMessageParameters) => Promise<SignatureReturnType>;
  signTypedData: <const typedData extends TypedData | Record<string, unknown>, primaryType extends keyof typedData | 'EIP712Domain'>(
    p: SignTypedDataParameters<typedData, primaryType>,
  ) => Promise<SignatureReturnType>;
};
