import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, getAddress, hexToBytes, parseSignature, serializeTransaction, type Hex, type LocalAccount } from 'viem';
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
  if ('grantId' in client) return agentAccount(client, walletId, options);
  const wallet = await client.getWallet({ walletId });
  if (wallet.scheme !== 'ecdsa-secp256k1')
    throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: an Ethereum account needs an ecdsa-secp256k1 wallet`);
  // viem's accounts carry the uncompressed key; the address must be the one it derives.
  const publicKey = bytesToHex(secp256k1.Point.fromBytes(hexToBytes(`0x${wallet.publicKey.replace(/^0x/, '')}`)).toBytes(false));
  const address = getAddress(wallet.address);
  if (publicKeyToAddress(publicKey) !== address)
    throw new FleetkeyError('internal', `wallet ${walletId}: address ${address} is not that of its public key`);
  const account = toAccount({
    address,
    nonceManager: options.nonceManager,
    async sign({ hash }) {
      return (await client.signHash({ walletId, hash })).signature;
    },
    async signMessage({ message }) {
      return (await client.signMessage({ walletId, message })).signature;
    },
    async signTypedData(typedData) {
      return (await client.signTypedData({ walletId, typedData })).signature;
    },
    async signTransaction(transaction, { serializer = serializeTransaction } = {}) {
      // EIP-4844: the signature covers the transaction without its sidecars (the network wrapper).
      const signable = transaction.type === 'eip4844' ? { ...transaction, sidecars: false as const } : transaction;
      const unsigned = (await serializer(signable)) as Hex;
      const { signature } = await client.signTransaction({ walletId, transaction: unsigned });
      return serializer(transaction, parseSignature(signature));
    },
  });
  return { ...account, publicKey, source: 'fleetkey' };
}

/** The same, for an agent: every signature is an agent request under its grant, judged by the wallet's policy. */
async function agentAccount(agent: FleetkeyAgent, walletId: string, options: { nonceManager?: NonceManager }): Promise<LocalAccount<'fleetkey'>> {
  const wallet = await agent.wallet(walletId);
  if (wallet.scheme !== 'ecdsa-secp256k1')
    throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: an Ethereum account needs an ecdsa-secp256k1 wallet`);
  const publicKey = bytesToHex(secp256k1.Point.fromBytes(hexToBytes(`0x${wallet.publicKey.replace(/^0x/, '')}`)).toBytes(false));
  const address = getAddress(wallet.address);
  if (publicKeyToAddress(publicKey) !== address) throw new FleetkeyError('internal', `wallet ${walletId}: address ${address} is not that of its public key`);
  const sig = async (payload: Payload) => (await agent.request(walletId, payload)).signature as Hex;
  const account = toAccount({
    address,
    nonceManager: options.nonceManager,
    async sign() {
      throw new FleetkeyError('forbidden', 'raw-hash signing is for the owner only, never for agent grants');
    },
    async signMessage({ message }) {
      return sig({ kind: 'evm_message', data: typeof message === 'string' ? { text: message } : { raw: typeof message.raw === 'string' ? message.raw : bytesToHex(message.raw) } });
    },
    async signTypedData(typedData) {
      return sig({ kind: 'evm_typed_data', data: toJson(typedData) as never });
    },
    async signTransaction(transaction, { serializer = serializeTransaction } = {}) {
      const signable = transaction.type === 'eip4844' ? { ...transaction, sidecars: false as const } : transaction;
      const unsigned = (await serializer(signable)) as Hex;
      const signature = await sig({ kind: 'evm_transaction', data: unsigned, ...(transaction.chainId !== undefined ? { opts: { chainId: transaction.chainId } } : {}) });
      return serializer(transaction, parseSignature(signature));
    },
  });
  return { ...account, publicKey, source: 'fleetkey' };
}
