import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { Request, SignTypedDataParameters, SignatureReturnType } from '../types.ts';

/** EIP-712 typed data signing; bigints in the domain or message travel as decimal strings. */
export async function signTypedData(request: Request, { walletId, typedData }: SignTypedDataParameters): Promise<SignatureReturnType> {
  const { domain, types, primaryType, message } = typedData as Record<string, unknown>;
  const answer = await request<SignatureReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign/typed-data`, { typedData: toJson({ domain: domain ?? {}, types, primaryType, message }) });
  return { ...answer, signature: toHex(answer.signature) };
}
