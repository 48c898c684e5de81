import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, getAddress, hexToBytes, parseSignature, serializeTransaction, type Hex, type LocalAccount, type SignableMessage } from 'viem';
import { publicKeyToAddress, toAccount, type NonceManager } from 'viem/accounts';
import { FleetkeyError } from '../errors.ts';
import type { FleetkeyClient } from './types.ts';
import type { FleetkeyAgent } from './agent.ts';
import type { Payload } from '../control/index.ts';
import { toJson } from './to-json.ts';

/**
 * A viem `LocalAccount` whose key is an `ecdsa-secp256k1` fleetkey wallet: use it wherever viem
 * takes an account, in place of `privateKeyToAccount(key)`.
 *
 * Transactions are serialized unsigned by viem (or the chain's own serializer), signed by the
 * cluster, and serialized again with the signature, as `privateKeyToAccount` does.
 *
 * As with `privateKeyToAccount`, a `nonceManager` (viem's `nonceManager`) lets one process send
 * several transactions at once without nonce clashes.
 *
 * @example
 * const account = await toViemAccount(createClient({ url, token }), 'wal_…')
 * const wallet = createWalletClient({ account, chain, transport: http() })
 */
export async function toViemAccount(client: FleetkeyClient | FleetkeyAgent, walletId: string, options: { nonceManager?: NonceManager } = {}): Promise<LocalAccount<'fleetkey'>> {
  const agent = 'grantId' in client;
  const wallet = agent ? await client.wallet(walletId) : await client.getWallet({ walletId });
  if (wallet.scheme !== 'ecdsa-secp256k1')
    throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: an Ethereum account needs an ecdsa-secp256k1 wallet`);
  // viem's accounts carry the uncompressed key; the address must be the one it derives.
  const publicKey = bytesToHex(secp256k1.Point.fromBytes(hexToBytes(`0x${wallet.publicKey.replace(/^0x/, '')}`)).toBytes(false));
  const address = getAddress(wallet.address);
  if (publicKeyToAddress(publicKey) !== address)
    throw new FleetkeyError('internal', `wallet ${walletId}: address ${address} is not that of its public key`);
  const s = agent ? agentSigners(client, walletId) : adminSigners(client, walletId);
  const account = toAccount({
    address,
    nonceManager: options.nonceManager,
    sign: ({ hash }) => s.hash(hash),
    signMessage: ({ message }) => s.message(message),
    signTypedData: (typedData) => s.typedData(typedData),
    async signTransaction(transaction, { serializer = serializeTransaction } = {}) {
      // EIP-4844: the signature covers the transaction without its sidecars (the network wrapper).
      const signable = transaction.type === 'eip4844' ? { ...transaction, sidecars: false as const } : transaction;
      const unsigned = (await serializer(signable)) as Hex;
      return serializer(transaction, parseSignature(await s.transaction(unsigned, transaction.chainId)));
    },
  });
  return { ...account, publicKey, source: 'fleetkey' };
}

type Signers = {
  hash(hash: Hex): Promise<Hex>;
  message(message: SignableMessage): Promise<Hex>;
  /** viem's typed-data definition (its generic types differ per call; the server validates it). */
  typedData(typedData: unknown): Promise<Hex>;
  transaction(unsigned: Hex, chainId?: number): Promise<Hex>;
};

/** Admin signing through the client's token. */
function adminSigners(client: FleetkeyClient, walletId: string): Signers {
  return {
    hash: async (hash) => (await client.signHash({ walletId, hash })).signature,
    message: async (message) => (await client.signMessage({ walletId, message })).signature,
    typedData: async (typedData) => (await client.signTypedData({ walletId, typedData: typedData as never })).signature,
    transaction: async (transaction) => (await client.signTransaction({ walletId, transaction })).signature,
  };
}

/** An agent: every signature is an agent request under its grant, judged by the wallet's policy. */
function agentSigners(agent: FleetkeyAgent, walletId: string): Signers {
  const sig = async (payload: Payload) => (await agent.request(walletId, payload)).signature as Hex;
  return {
    hash: async () => {
      throw new FleetkeyError('raw_signing_forbidden', 'raw-hash signing is for the owner only, never for agent grants');
    },
    message: (message) => sig({ kind: 'evm_message', data: typeof message === 'string' ? { text: message } : { raw: typeof message.raw === 'string' ? message.raw : bytesToHex(message.raw) } }),
    typedData: (typedData) => sig({ kind: 'evm_typed_data', data: toJson(typedData) as never }),
    transaction: (unsigned, chainId) => sig({ kind: 'evm_transaction', data: unsigned, ...(chainId !== undefined ? { opts: { chainId } } : {}) }),
  };
}
