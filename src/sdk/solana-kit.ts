/**
 * `@fleetkey/sdk/solana`: `@solana/kit` signers for an `ed25519` fleetkey wallet, used through the agent
 * path (the agent's session key under an owner-issued grant, judged by the wallet's policy on every
 * signer). Importing it loads @solana/kit, never viem, ethers or another framework's integration.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { address as toAddress, getBase64EncodedWireTransaction, type Address, type MessagePartialSigner, type SignatureBytes, type SignatureDictionary, type TransactionPartialSigner } from '@solana/kit';
import { FleetkeyError } from '../errors.ts';
import type { Payload } from '../control/index.ts';
import type { FleetkeyAgent } from './agent.ts';

export type FleetkeySolanaSigner = TransactionPartialSigner & MessagePartialSigner & { readonly walletId: string };

/**
 * A `TransactionPartialSigner` and `MessagePartialSigner` in one: pass it wherever @solana/kit takes a
 * signer (`setTransactionMessageFeePayerSigner`, an instruction's signer account, `signTransactionMessageWithSigners`).
 *
 * Transactions go to the cluster as wire transactions (`solana_transaction`): the policy reads their
 * instructions on the wallet's own network. Messages must be Solana off-chain messages (the `content`
 * that `compileOffchainMessageEnvelope` makes), signed as `solana_message`: fleetkey never signs bare bytes
 * for an agent, since bare bytes can be a transaction message. Each signature is checked against the
 * wallet's key over the exact bytes before it is returned. A refusal throws `FleetkeyApiError`.
 *
 * @example
 * const signer = await toSolanaSigner(createAgent({ url, grantId, secretKey }), 'wal_…')
 * const signed = await signTransactionMessageWithSigners(pipe(createTransactionMessage({ version: 0 }), (m) => setTransactionMessageFeePayerSigner(signer, m), …))
 */
export async function toSolanaSigner(agent: FleetkeyAgent, walletId: string): Promise<FleetkeySolanaSigner> {
  const wallet = await agent.wallet(walletId);
  if (wallet.scheme !== 'ed25519') throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: a Solana signer needs an ed25519 wallet`);
  const address: Address = toAddress(wallet.address);
  const publicKey = hexToBytes(wallet.publicKey.replace(/^0x/, ''));
  const sign = async (payload: Payload, signed: Uint8Array): Promise<SignatureDictionary> => {
    const view = await agent.request(walletId, payload);
    const signature = hexToBytes(String(view.signature ?? '').replace(/^0x/, ''));
    if (signature.length !== 64 || !ed25519.verify(signature, signed, publicKey, { zip215: false }))
      throw new FleetkeyError('internal', `wallet ${walletId}: the cluster's signature does not verify over the signed bytes`);
    return Object.freeze({ [address]: signature as SignatureBytes });
  };
  const signer: FleetkeySolanaSigner = {
    address,
    walletId,
    // One request per transaction, in order: each is its own policy decision (and its own rolling-limit use).
    async signTransactions(transactions) {
      const out: SignatureDictionary[] = [];
      for (const tx of transactions) out.push(await sign({ kind: 'solana_transaction', data: getBase64EncodedWireTransaction(tx) }, tx.messageBytes as unknown as Uint8Array));
      return out;
    },
    async signMessages(messages) {
      const out: SignatureDictionary[] = [];
      for (const m of messages) out.push(await sign({ kind: 'solana_message', data: { encoded: base64.encode(m.content as Uint8Array) }, opts: { from: address } }, m.content as Uint8Array));
      return out;
    },
  };
  return Object.freeze(signer);
}
