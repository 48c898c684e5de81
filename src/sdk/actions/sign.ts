import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { FleetkeyRequest, SignParameters, SignReturnType } from '../types.ts';

/** Signs raw bytes with a FROST wallet (`ed25519`, `secp256k1-schnorr`). Admin only. */
export async function sign(request: FleetkeyRequest, { walletId, message }: SignParameters): Promise<SignReturnType> {
  const answer = await request<SignReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign`, { message: toJson(message) });
  return { ...answer, signature: toHex(answer.signature) };
}
