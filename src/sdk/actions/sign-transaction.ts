import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { FleetkeyRequest, SignTransactionParameters, SignTransactionReturnType } from '../types.ts';

/**
 * Signs an EVM transaction, given serialized and unsigned or as a request. The answer holds the
 * signed serialization, ready for `eth_sendRawTransaction`, and its hash.
 */
export async function signTransaction(request: FleetkeyRequest, { walletId, transaction }: SignTransactionParameters): Promise<SignTransactionReturnType> {
  const answer = await request<SignTransactionReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign/transaction`, { transaction: toJson(transaction) });
  return { signature: toHex(answer.signature), serializedTransaction: toHex(answer.serializedTransaction), hash: toHex(answer.hash) };
}
