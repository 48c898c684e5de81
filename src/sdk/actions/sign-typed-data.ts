import type { TypedData } from 'viem';
import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { FleetkeyRequest, SignTypedDataParameters, SignatureReturnType } from '../types.ts';

/** EIP-712 typed data signing; bigints in the domain or message travel as decimal strings. */
export async function signTypedData<
  const typedData extends TypedData | Record<string, unknown>,
  primaryType extends keyof typedData | 'EIP712Domain',
>(request: FleetkeyRequest, { walletId, typedData }: SignTypedDataParameters<typedData, primaryType>): Promise<SignatureReturnType> {
  const { domain, types, primaryType, message } = typedData as { domain?: unknown; types: unknown; primaryType: unknown; message?: unknown };
  const answer = await request<SignatureReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign/typed-data`, { typedData: toJson({ domain: domain ?? {}, types, primaryType, message }) });
  return { ...answer, signature: toHex(answer.signature) };
}
