import { toHex } from '../to-hex.ts';
import { toJson } from '../to-json.ts';
import type { FleetkeyRequest, SignHashParameters, SignatureReturnType } from '../types.ts';

/** Signs a 32-byte digest with an `ecdsa-secp256k1` wallet: r ‖ s ‖ v, low s, v = 27 + yParity. Admin only. */
export async function signHash(request: FleetkeyRequest, { walletId, hash }: SignHashParameters): Promise<SignatureReturnType> {
  const answer = await request<SignatureReturnType>('POST', `/v1/wallets/${encodeURIComponent(walletId)}/sign`, { hash: toJson(hash) });
  return { ...answer, signature: toHex(answer.signature) };
}
