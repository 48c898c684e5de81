/**
 * Public keys of the three curves the identity core speaks: Ed25519 and P-256 for device keys
 * (what secure elements and TPMs hold), Ed25519 and secp256k1 for fleet keys (what the threshold
 * cluster signs with). Everything here is pure and works on public values only.
 *
 * A `PublicKey` is always validated: the bytes decode to a point on the curve (Ed25519 also rejects
 * small-order points), and EC keys are kept in SEC1 compressed form (33 bytes), the form did:key uses.
 *
 * Signature conventions (also the contract for every `sign` callback in this folder):
 * - EdDSA (Ed25519): the signer signs the message bytes themselves; the signature is 64 bytes R||S.
 *   Verification is strict RFC 8032 (no ZIP-215 leniency), matching WebCrypto/OpenSSL verifiers.
 * - ES256 (P-256) and ES256K (secp256k1): the signer is handed SHA-256(message), a 32-byte digest,
 *   and returns the 64-byte JWS form r||s (big-endian, no DER). ES256K signatures must be low-S
 *   (s <= n/2) and are checked that way; ES256 accepts either S, as JWS and WebCrypto do.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64urlnopad } from '@scure/base';
import type { JsonWebKey } from 'did-resolver';
import { FleetkeyError } from '../errors.ts';

export type KeyType = 'Ed25519' | 'P-256' | 'secp256k1';
export type JwsAlg = 'EdDSA' | 'ES256' | 'ES256K';

export interface PublicKey {
  readonly type: KeyType;
  /** Ed25519: 32 bytes. P-256 / secp256k1: 33-byte SEC1 compressed point. */
  readonly bytes: Uint8Array;
}

/**
 * What a signer callback receives and returns; see the module comment for the per-alg contract.
 * `context` carries the full JWS signing input as well, so a policy-aware signer (the threshold
 * cluster) that is handed a digest can recompute it from `signingInput` and inspect what it signs
 * instead of signing blind. Simple signers ignore it.
 */
export type SignCallback = (input: Uint8Array, context?: SignContext) => Promise<Uint8Array>;

export interface SignContext {
  alg: JwsAlg;
  /** ASCII bytes of `b64url(header).b64url(payload)`; for ES256/ES256K, `input` = SHA-256 of these. */
  signingInput: Uint8Array;
}

export const KEY_TYPES: readonly KeyType[] = ['Ed25519', 'P-256', 'secp256k1'];

const ALG_OF: Record<KeyType, JwsAlg> = { Ed25519: 'EdDSA', 'P-256': 'ES256', secp256k1: 'ES256K' };
const JWK_CRV: Record<KeyType, string> = { Ed25519: 'Ed25519', 'P-256': 'P-256', secp256k1: 'secp256k1' };

export function algForKeyType(type: KeyType): JwsAlg {
  return ALG_OF[type];
}

export function isJwsAlg(v: unknown): v is JwsAlg {
  return v === 'EdDSA' || v === 'ES256' || v === 'ES256K';
}

function weierstrass(type: 'P-256' | 'secp256k1') {
  return type === 'P-256' ? p256 : secp256k1;
}

/**
 * Validates and normalises a public key. EC keys may be given compressed (33 bytes) or uncompressed
 * (65 bytes); they are returned compressed. Throws `validation_failed` for anything that is not a
 * valid point of the named curve.
 */
export function parsePublicKey(type: KeyType, bytes: Uint8Array): PublicKey {
  if (!(bytes instanceof Uint8Array)) throw new FleetkeyError('validation_failed', `${type} public key must be bytes`);
  try {
    if (type === 'Ed25519') {
      if (bytes.length !== 32) throw new Error(`expected 32 bytes, got ${bytes.length}`);
      const point = ed25519.Point.fromBytes(bytes);
      if (point.isSmallOrder()) throw new Error('small-order point');
      return { type, bytes: Uint8Array.from(bytes) };
    }
    if (type === 'P-256' || type === 'secp256k1') {
      if (bytes.length !== 33 && bytes.length !== 65) throw new Error(`expected 33 or 65 bytes, got ${bytes.length}`);
      const point = weierstrass(type).Point.fromBytes(bytes);
      point.assertValidity();
      return { type, bytes: point.toBytes(true) };
    }
  } catch (e) {
    throw new FleetkeyError('validation_failed', `invalid ${type} public key: ${(e as Error).message}`);
  }
  throw new FleetkeyError('validation_failed', `unsupported key type ${String(type)}`);
}

/** The public JWK (RFC 7517 / RFC 8037) of a key: OKP for Ed25519, EC with x and y otherwise. */
export function publicKeyToJwk(pk: PublicKey): JsonWebKey {
  if (pk.type === 'Ed25519') {
    return { kty: 'OKP', crv: 'Ed25519', x: base64urlnopad.encode(pk.bytes) };
  }
  const uncompressed = weierstrass(pk.type).Point.fromBytes(pk.bytes).toBytes(false);
  return {
    kty: 'EC',
    crv: JWK_CRV[pk.type],
    x: base64urlnopad.encode(uncompressed.subarray(1, 33)),
    y: base64urlnopad.encode(uncompressed.subarray(33, 65)),
  };
}

/** Reads a public JWK back into a validated key. Private members (`d`) are refused, never read. */
export function jwkToPublicKey(jwk: JsonWebKey): PublicKey {
  if (!jwk || typeof jwk !== 'object') throw new FleetkeyError('validation_failed', 'JWK must be an object');
  if ('d' in jwk) throw new FleetkeyError('validation_failed', 'JWK contains private key material; pass the public JWK only');
  const b64 = (v: unknown, what: string): Uint8Array => {
    if (typeof v !== 'string') throw new FleetkeyError('validation_failed', `JWK ${what} is missing`);
    try {
      return base64urlnopad.decode(v);
    } catch {
      throw new FleetkeyError('validation_failed', `JWK ${what} is not base64url`);
    }
  };
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return parsePublicKey('Ed25519', b64(jwk.x, 'x'));
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'secp256k1')) {
    const x = b64(jwk.x, 'x');
    const y = b64(jwk.y, 'y');
    if (x.length !== 32 || y.length !== 32) throw new FleetkeyError('validation_failed', 'JWK x and y must be 32 bytes each');
    const sec1 = new Uint8Array(65);
    sec1[0] = 0x04;
    sec1.set(x, 1);
    sec1.set(y, 33);
    return parsePublicKey(jwk.crv, sec1);
  }
  throw new FleetkeyError('validation_failed', `unsupported JWK kty=${String(jwk.kty)} crv=${String(jwk.crv)}`);
}

/** The bytes a signer callback is handed for `message` under `alg` (see the module comment). */
export function signerInputFor(alg: JwsAlg, message: Uint8Array): Uint8Array {
  return alg === 'EdDSA' ? message : sha256(message);
}

/**
 * Verifies a JWS-form signature (64 bytes) over `message`. Never throws: any malformed key,
 * signature or alg/key mismatch is simply `false`.
 */
export function verifySignature(pk: PublicKey, alg: JwsAlg, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (signature.length !== 64 || alg !== ALG_OF[pk.type]) return false;
    if (pk.type === 'Ed25519') return ed25519.verify(signature, message, pk.bytes, { zip215: false });
    const digest = sha256(message);
    if (pk.type === 'secp256k1') return secp256k1.verify(signature, digest, pk.bytes, { prehash: false, lowS: true });
    return p256.verify(signature, digest, pk.bytes, { prehash: false, lowS: false });
  } catch {
    return false;
  }
}

/**
 * Puts an ECDSA signature from a signer into the form we emit: 64-byte r||s, low-S for ES256K
 * (a high-S signature from a threshold signer is the same signature mirrored, so it is folded,
 * not refused). Ed25519 signatures are only length-checked.
 */
export function normalizeSignature(alg: JwsAlg, signature: Uint8Array): Uint8Array {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new FleetkeyError('bad_signature', `signer returned ${signature instanceof Uint8Array ? signature.length : typeof signature} bytes; ${alg} needs a 64-byte signature (r||s or R||S, no DER)`);
  }
  if (alg !== 'ES256K') return signature;
  try {
    const sig = secp256k1.Signature.fromBytes(signature, 'compact');
    if (!sig.hasHighS()) return signature;
    return new secp256k1.Signature(sig.r, secp256k1.Point.CURVE().n - sig.s).toBytes('compact');
  } catch (e) {
    throw new FleetkeyError('bad_signature', `signer returned an invalid ES256K signature: ${(e as Error).message}`);
  }
}

/**
 * A `SignCallback` over a secret key held in memory, following the contract above: for software
 * devices, tests and tools. Production fleet keys never take this path (the cluster signs), and
 * devices with a secure element pass a callback into it instead. The key is copied and kept in the
 * closure only.
 */
export function localSigner(type: KeyType, secretKey: Uint8Array): SignCallback {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new FleetkeyError('validation_failed', `${type} secret key must be 32 bytes`);
  const sk = Uint8Array.from(secretKey);
  if (type === 'Ed25519') return async (message) => ed25519.sign(message, sk);
  const curve = weierstrass(type);
  if (!curve.utils.isValidSecretKey(sk)) throw new FleetkeyError('validation_failed', `invalid ${type} secret key`);
  return async (digest) => {
    if (digest.length !== 32) throw new FleetkeyError('bad_request', `${type} signer expects a 32-byte SHA-256 digest`);
    return curve.sign(digest, sk, { prehash: false, lowS: true });
  };
}
