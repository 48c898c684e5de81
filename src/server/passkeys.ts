/**
 * Passkey registration for the console: the browser sends `response.getPublicKey()` (SPKI DER,
 * base64url) and the credential id; the answer is the key object (`keyType: "webauthn-p256"`) the
 * owner then signs into an approvers document or pins as an owner key. Nothing is stored here: a
 * passkey becomes trusted only through an owner-signed document.
 */
import { z } from 'zod';
import { base64urlnopad } from '@scure/base';
import { p256PublicKeyFromSpki, type WebAuthnKey } from '../control/keys.ts';
import { parseOrThrow, webauthnKeySchema } from '../control/schemas.ts';

export const passkeyRegistrationSchema = z.strictObject({
  spki: z.string().min(1).max(512).regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding'),
  credentialId: webauthnKeySchema.shape.credentialId,
  rpId: webauthnKeySchema.shape.rpId,
  origin: webauthnKeySchema.shape.origin,
});

export function passkeyFromSpki(r: z.infer<typeof passkeyRegistrationSchema>): WebAuthnKey {
  let spki: Uint8Array;
  try {
    spki = base64urlnopad.decode(r.spki);
  } catch {
    spki = new Uint8Array(0);
  }
  const key = { keyType: 'webauthn-p256' as const, publicKey: p256PublicKeyFromSpki(spki), credentialId: r.credentialId, rpId: r.rpId, origin: r.origin };
  return parseOrThrow(webauthnKeySchema, key, 'key');
}
