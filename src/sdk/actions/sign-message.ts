import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { FleetkeyRequest, SignMessageParameters, SignatureReturnType } from '../types.ts';

/** EIP-191 personal message signing: a string is signed as UTF-8, `{ raw }` as its bytes. */
export async function signMessage(request: FleetkeyRequest, { walletId, message }: SignMessageParameters): Promise<SignatureReturnType> {
  const answer = await request<SignatureReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign/message`, { message: toJson(message) });
  return { ...answer, signature: toHex(answer.signature) };
}
