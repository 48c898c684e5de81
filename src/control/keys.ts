/**
 * Signature primitives of the control plane, on @noble/curves only: Ed25519 (owner, agents,
 * approvers) and P-256 ECDSA over SHA-256, low-s, 64-byte compact r‖s (agents and approvers whose
 * keys live in WebCrypto / secure enclaves; WebCrypto does not normalise s, so callers must).
 *
 * Every signed object is signed over `signingInput(domain, value)` = UTF-8(domain + "\n" +
 * canonicalJson(value)); its id is sha256 of those same bytes. Ed25519 signs the bytes (pure EdDSA);
 * ECDSA signs their SHA-256, which is exactly WebCrypto's `{ name: 'ECDSA', hash: 'SHA-256' }`.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../audit/canonical.ts';
import { FleetkeyError } from '../errors.ts';

export type KeyType = 'ed25519' | 'p256';
export const KEY_TYPES = ['ed25519', 'p256'] as const;

/** Domain separators: a signature for one kind of object never verifies as another. */
export const DOMAINS = {
  control: 'fleetkey/control-doc/v1',
  request: 'fleetkey/agent-request/v1',
  approval: 'fleetkey/approval/v1',
  /** A signer node's statement that it has counted a request against its rolling limits (src/enforce/receipts.ts). */
  receipt: 'fleetkey/reservation-receipt/v1',
  /** An agent asking about its own grant (its wallets, limits): read-only, never a signature (src/control/queries.ts). */
  query: 'fleetkey/agent-query/v1',
} as const;
export type Domain = (typeof DOMAINS)[keyof typeof DOMAINS];

export function signingInput(domain: Domain, value: unknown): Uint8Array {
  return utf8ToBytes(`${domain}\n${canonicalJson(value)}`);
}

/** sha256 hex of the signing input: the stable id of a document, request or approval. */
export function digestOf(domain: Domain, value: unknown): string {
  return bytesToHex(sha256(signingInput(domain, value)));
}

/** Public key (hex) of a 32-byte secret; P-256 keys are given compressed (33 bytes). */
export function publicKeyOf(secret: Uint8Array, keyType: KeyType): string {
  return withSecret(secret, () => bytesToHex(keyType === 'ed25519' ? ed25519.getPublicKey(secret) : p256.getPublicKey(secret, true)));
}

export function signBytes(msg: Uint8Array, secret: Uint8Array, keyType: KeyType): string {
  return withSecret(secret, () =>
    bytesToHex(keyType === 'ed25519' ? ed25519.sign(msg, secret) : p256.sign(msg, secret, { prehash: true, lowS: true, format: 'compact' })),
  );
}

/** True only for a valid signature; never throws (malformed keys or signatures are simply invalid). */
export function verifyBytes(sigHex: string, msg: Uint8Array, publicKeyHex: string, keyType: KeyType): boolean {
  try {
    if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
    const sig = hexToBytes(sigHex);
    const pub = hexToBytes(publicKeyHex);
    if (keyType === 'ed25519') return pub.length === 32 && ed25519.verify(sig, msg, pub, { zip215: false });
    return p256.verify(sig, msg, pub, { prehash: true, lowS: true, format: 'compact' });
  } catch {
    return false;
  }
}

/** Runs fn on a secret key; any failure becomes one fixed message with no cause attached: errors never carry key material. */
function withSecret<T>(secret: Uint8Array, fn: () => T): T {
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new FleetkeyError('bad_request', 'secret key must be 32 bytes');
  try {
    return fn();
  } catch {
    throw new FleetkeyError('bad_request', 'invalid secret key');
  }
}
