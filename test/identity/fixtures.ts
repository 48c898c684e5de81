// Local keys standing in for the fleet's threshold cluster and for device secure elements.
// The callbacks follow the identity core's contract: EdDSA signs the bytes it is given; ES256 and
// ES256K are given the SHA-256 digest and return r||s (64 bytes).
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { verifyCredential } from 'did-jwt-vc';
import type { Resolvable } from 'did-resolver';
import { didKeyFromPublicKey } from '../../src/identity/did-key.ts';
import { localSigner, type KeyType, type SignCallback } from '../../src/identity/keys.ts';

export interface TestKey {
  type: KeyType;
  did: string;
  secretKey: Uint8Array;
  sign: SignCallback;
}

export function makeKey(type: KeyType, secretKey?: Uint8Array): TestKey {
  const curve = type === 'Ed25519' ? ed25519 : type === 'secp256k1' ? secp256k1 : p256;
  const sk = secretKey ?? curve.utils.randomSecretKey();
  return { type, secretKey: sk, did: didKeyFromPublicKey(type, curve.getPublicKey(sk)), sign: localSigner(type, sk) };
}

/** Re-encodes a JWT/JWS payload with `edit` applied, keeping the original header and signature. */
export function tamperPayload(jws: string, edit: (p: Record<string, any>) => void): string {
  const [h, p, s] = jws.split('.');
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
  edit(payload);
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

/** Flips one bit of the signature segment. */
export function tamperSignature(jws: string): string {
  const [h, p, s] = jws.split('.');
  const sig = Buffer.from(s!, 'base64url');
  sig[5] = sig[5]! ^ 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

export const FIRMWARE = 'a3f1c2d4e5b6a7980123456789abcdef0123456789abcdef0123456789abcdef';

/**
 * did-jwt-vc's verifyCredential with a did-resolver v6 Resolver. did-jwt-vc 4 bundles did-resolver 4,
 * whose DIDResolutionResult types '@context' more narrowly; the objects are the same at run time.
 */
export function didJwtVcVerify(jwt: string, resolver: Resolvable) {
  return verifyCredential(jwt, resolver as unknown as Parameters<typeof verifyCredential>[1]);
}
