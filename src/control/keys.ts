/**
 * Signature primitives of the control plane, on @noble/curves (the signer and the server verify
 * Ed25519 on libsodium instead; see `useEd25519Verifier` below): Ed25519 (owner, agents,
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
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
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
  /** The owner's creation or revocation of a console operator token (src/control/operators.ts): read by the server only. */
  operator: 'fleetkey/operator-token/v1',
  /** A passkey's console sign-in: a one-time server nonce, never a document (src/server/operators.ts). */
  session: 'fleetkey/console-session/v1',
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
  return withSecret(secret, () => bytesToHex(keyType === 'ed25519' ? ed25519Impl.publicKey(secret) : p256.getPublicKey(secret, true)));
}

export function signBytes(msg: Uint8Array, secret: Uint8Array, keyType: KeyType): string {
  return withSecret(secret, () =>
    bytesToHex(keyType === 'ed25519' ? ed25519Impl.sign(msg, secret) : p256.sign(msg, secret, { prehash: true, lowS: true, format: 'compact' })),
  );
}

/**
 * Ed25519 key derivation and signing behind `publicKeyOf` and `signBytes`: noble unless a process
 * installs another with `useEd25519Signer` (the signer and the server install libsodium's,
 * ./fast-verify.ts). RFC 8032 signing is deterministic, so a replacement must give the same bytes
 * for the same key and message (test/control/fast-verify.test.ts compares them).
 */
type Ed25519Signer = { sign(msg: Uint8Array, secret: Uint8Array): Uint8Array; publicKey(secret: Uint8Array): Uint8Array };
let ed25519Impl: Ed25519Signer = { sign: (msg, secret) => ed25519.sign(msg, secret), publicKey: (secret) => ed25519.getPublicKey(secret) };
export function useEd25519Signer(impl: Ed25519Signer): void {
  ed25519Impl = impl;
}

/**
 * The Ed25519 verifier behind `verifyBytes`: noble's strict RFC 8032 verifier (canonical encodings,
 * s < L) unless a process installs another with `useEd25519Verifier`. The signer and the server
 * install libsodium's (./fast-verify.ts, loaded by src/enforce/authorize.ts); the SDK and the
 * browser keep noble, so neither pulls WebAssembly or a top-level await. A replacement must accept
 * no signature noble's strict verifier refuses (./fast-verify.ts argues it for libsodium).
 */
let ed25519Verify = (sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean => ed25519.verify(sig, msg, pub, { zip215: false });
export function useEd25519Verifier(verify: (sig: Uint8Array, msg: Uint8Array, pub: Uint8Array) => boolean): void {
  ed25519Verify = verify;
}
/** Strict RFC 8032 verification with the installed verifier (for callers that hold bytes, e.g. envelopes); may throw on malformed input. */
export function verifyEd25519(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  return ed25519Verify(sig, msg, pub);
}

/** True only for a valid signature; never throws (malformed keys or signatures are simply invalid). */
export function verifyBytes(sigHex: string, msg: Uint8Array, publicKeyHex: string, keyType: KeyType): boolean {
  try {
    if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
    const sig = hexToBytes(sigHex);
    const pub = hexToBytes(publicKeyHex);
    if (keyType === 'ed25519') return pub.length === 32 && ed25519Verify(sig, msg, pub);
    return p256.verify(sig, msg, pub, { prehash: true, lowS: true, format: 'compact' });
  } catch {
    return false;
  }
}

/**
 * A WebAuthn (passkey) P-256 credential, usable as an approver key and as a pinned owner key.
 * `publicKey` is SEC1 (33 or 65 bytes, hex); `credentialId` is what the browser passes as
 * `allowCredentials[].id` (base64url); `rpId` and `origin` are the relying party the assertion must name.
 */
export interface WebAuthnKey {
  keyType: 'webauthn-p256';
  publicKey: string;
  credentialId: string;
  rpId: string;
  origin: string;
}

/** What `navigator.credentials.get` returns in `response`, each field base64url (no padding): it takes the place of a hex `sig`. */
export interface WebAuthnAssertion {
  authenticatorData: string;
  clientDataJSON: string;
  /** ASN.1 DER ECDSA signature, as authenticators return it (high or low s). */
  signature: string;
}

/** A signature is a hex string (Ed25519, P-256 compact) or, for a WebAuthn key, an assertion. */
export type Signature = string | WebAuthnAssertion;
/** Any key that signs control-plane objects: hex Ed25519 / P-256 with its type, or a passkey. */
export type SigningKey = { keyType: KeyType; publicKey: string } | WebAuthnKey;

/** A pinned owner key: hex Ed25519 (the CLI's key file) or a passkey. */
export type OwnerKey = string | WebAuthnKey;

/** True when a document's `signer` is this pinned owner key (hex case-insensitively; a passkey field by field). */
export function sameOwnerKey(pinned: OwnerKey, signer: OwnerKey): boolean {
  if (typeof pinned === 'string' || typeof signer === 'string') return typeof pinned === 'string' && typeof signer === 'string' && pinned.toLowerCase() === signer.toLowerCase();
  return canonicalJson(pinned) === canonicalJson(signer);
}

/** authenticatorData flags (WebAuthn §6.1): user present, user verified. */
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;

/**
 * The WebAuthn challenge for an object: the 32 raw bytes of its digest (digestOf(domain, value)),
 * base64url without padding, exactly as it appears in clientDataJSON.challenge.
 */
export function webauthnChallenge(domain: Domain, value: unknown): string {
  return base64urlnopad.encode(sha256(signingInput(domain, value)));
}

/** base64url without padding, strictly (no padding, no other alphabet); undefined if malformed. */
function b64u(s: unknown): Uint8Array | undefined {
  if (typeof s !== 'string') return undefined;
  try {
    return base64urlnopad.decode(s);
  } catch {
    return undefined;
  }
}

/**
 * Verifies a WebAuthn assertion by `key` over the object (domain, value), per WebAuthn L3 §7.2
 * steps 11-21 that apply to a stateless verifier: clientDataJSON.type is "webauthn.get", its
 * challenge is the object's digest and its origin the key's origin; authenticatorData's rpIdHash is
 * SHA-256(rpId) and its flags have UP and UV; the P-256 ECDSA signature (DER, either s) verifies over
 * authenticatorData ‖ SHA-256(clientDataJSON). signCount is not checked (synced passkeys report 0):
 * an assertion is bound to one digest, so replaying it for any other object fails the challenge.
 * Never throws.
 */
export function verifyWebAuthn(assertion: unknown, domain: Domain, value: unknown, key: WebAuthnKey): boolean {
  try {
    if (typeof assertion !== 'object' || assertion === null) return false;
    const a = assertion as Record<string, unknown>;
    const authData = b64u(a.authenticatorData);
    const clientData = b64u(a.clientDataJSON);
    const der = b64u(a.signature);
    if (!authData || !clientData || !der || authData.length < 37) return false;
    const client: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(clientData));
    if (typeof client !== 'object' || client === null) return false;
    const c = client as Record<string, unknown>;
    if (c.type !== 'webauthn.get' || c.origin !== key.origin || c.challenge !== webauthnChallenge(domain, value)) return false;
    if (!equalBytes(authData.subarray(0, 32), sha256(utf8ToBytes(key.rpId)))) return false;
    const flags = authData[32];
    if ((flags & FLAG_UP) === 0 || (flags & FLAG_UV) === 0) return false;
    const msg = concatBytes(authData, sha256(clientData));
    return p256.verify(der, msg, hexToBytes(key.publicKey), { prehash: true, lowS: false, format: 'der' });
  } catch {
    return false;
  }
}

/** Verifies `sig` by `key` over (domain, value), whatever the key type. Never throws. */
export function verifySignature(sig: unknown, domain: Domain, value: unknown, key: SigningKey): boolean {
  if (key.keyType === 'webauthn-p256') return verifyWebAuthn(sig, domain, value, key);
  return typeof sig === 'string' && verifyBytes(sig, signingInput(domain, value), key.publicKey, key.keyType);
}

/** DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480): id-ecPublicKey, prime256v1, BIT STRING. */
const P256_SPKI_PREFIX = hexToBytes('3059301306072a8648ce3d020106082a8648ce3d030107034200');

/**
 * The SEC1 public key (hex, 65 bytes) inside a P-256 SPKI, as the browser's
 * `AuthenticatorAttestationResponse.getPublicKey()` returns it (no CBOR to parse). Only this one
 * fixed encoding is accepted; the point must be on the curve.
 */
export function p256PublicKeyFromSpki(spki: Uint8Array): string {
  const ok = spki.length === P256_SPKI_PREFIX.length + 65 && equalBytes(spki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX);
  const point = spki.subarray(P256_SPKI_PREFIX.length);
  try {
    if (ok) return bytesToHex(p256.Point.fromBytes(point).toBytes(false));
  } catch {
    /* not on the curve */
  }
  throw new FleetkeyError('validation_failed', 'publicKey is not a P-256 SubjectPublicKeyInfo (ES256 credential)', { details: { path: 'spki' } });
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
