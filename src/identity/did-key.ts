/**
 * did:key (W3C CCG did:key method, v0.7) for Ed25519, P-256 and secp256k1 public keys.
 *
 *   did:key:z<base58btc(multicodec-varint || public key)>
 *
 * with the multicodec codes ed25519-pub 0xed, p256-pub 0x1200, secp256k1-pub 0xe7 (EC keys in SEC1
 * compressed form, 33 bytes, as the method requires; an uncompressed key inside a did:key is refused
 * so one key has exactly one DID). The codes are fixed constants, so their unsigned-varint encodings
 * are written out below rather than computed.
 *
 * DID documents are produced in either of two verification-method shapes, both understood by
 * did-jwt and by anything that speaks JWK:
 * - `Multikey` (the did:key spec's current default): `publicKeyMultibase` = the method-specific id;
 * - `JsonWebKey2020`: `publicKeyJwk`.
 * For Ed25519 the spec's default key derivation is applied: an X25519 key-agreement key derived
 * from the Ed25519 key (birational map, via @noble/curves) is listed under `keyAgreement`.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { base58, base64urlnopad } from '@scure/base';
import type { DIDDocument, VerificationMethod } from 'did-resolver';
import { FleetkeyError } from '../errors.ts';
import { parsePublicKey, publicKeyToJwk, type KeyType, type PublicKey } from './keys.ts';

export type VerificationMethodFormat = 'Multikey' | 'JsonWebKey2020';

export interface DidKeyDocumentOptions {
  /** Verification-method shape; default `Multikey`. */
  format?: VerificationMethodFormat;
  /** Ed25519 only: list the derived X25519 key under keyAgreement (default true, as the spec). */
  enableEncryptionKeyDerivation?: boolean;
}

/** unsigned-varint(multicodec code) for each supported key, plus x25519-pub for keyAgreement. */
const PREFIX: Record<KeyType | 'X25519', Uint8Array> = {
  Ed25519: Uint8Array.of(0xed, 0x01), // 0xed
  'P-256': Uint8Array.of(0x80, 0x24), // 0x1200
  secp256k1: Uint8Array.of(0xe7, 0x01), // 0xe7
  X25519: Uint8Array.of(0xec, 0x01), // 0xec
};
const KEY_LENGTH: Record<KeyType, number> = { Ed25519: 32, 'P-256': 33, secp256k1: 33 };

const DID_CONTEXT = 'https://www.w3.org/ns/did/v1';
const MULTIKEY_CONTEXT = 'https://w3id.org/security/multikey/v1';
const JWS2020_CONTEXT = 'https://w3id.org/security/suites/jws-2020/v1';

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function multibase(prefix: Uint8Array, key: Uint8Array): string {
  const buf = new Uint8Array(prefix.length + key.length);
  buf.set(prefix, 0);
  buf.set(key, prefix.length);
  return 'z' + base58.encode(buf);
}

/** Multibase (base58btc, 'z') multicodec encoding of a public key: the did:key method-specific id. */
export function publicKeyToMultibase(pk: PublicKey): string {
  return multibase(PREFIX[pk.type], pk.bytes);
}

/** Decodes a Multikey `publicKeyMultibase` value (or a did:key method-specific id) into a validated key. */
export function multibaseToPublicKey(value: string): PublicKey {
  if (typeof value !== 'string' || value.length < 2 || value[0] !== 'z') {
    throw new FleetkeyError('validation_failed', 'multibase key must be a base58btc string starting with "z"');
  }
  let raw: Uint8Array;
  try {
    raw = base58.decode(value.slice(1));
  } catch {
    throw new FleetkeyError('validation_failed', 'multibase key is not valid base58btc');
  }
  for (const type of ['Ed25519', 'P-256', 'secp256k1'] as const) {
    if (!startsWith(raw, PREFIX[type])) continue;
    const key = raw.subarray(PREFIX[type].length);
    if (key.length !== KEY_LENGTH[type]) {
      throw new FleetkeyError('validation_failed', `${type} did:key must carry a ${KEY_LENGTH[type]}-byte${type === 'Ed25519' ? '' : ' compressed'} key, got ${key.length} bytes`);
    }
    return parsePublicKey(type, key);
  }
  throw new FleetkeyError('validation_failed', 'unsupported multicodec key type (supported: ed25519-pub, p256-pub, secp256k1-pub)');
}

/** The did:key of a public key. EC keys may be passed compressed or uncompressed. */
export function didKeyFromPublicKey(type: KeyType, bytes: Uint8Array): string;
export function didKeyFromPublicKey(pk: PublicKey): string;
export function didKeyFromPublicKey(a: KeyType | PublicKey, bytes?: Uint8Array): string {
  const pk = typeof a === 'string' ? parsePublicKey(a, bytes as Uint8Array) : parsePublicKey(a.type, a.bytes);
  return 'did:key:' + publicKeyToMultibase(pk);
}

/** The validated public key a did:key names. Accepts a bare DID only (no path, query or fragment). */
export function publicKeyFromDidKey(did: string): PublicKey {
  if (typeof did !== 'string' || !did.startsWith('did:key:')) {
    throw new FleetkeyError('validation_failed', `not a did:key: ${String(did).slice(0, 80)}`);
  }
  const id = did.slice('did:key:'.length);
  if (!/^z[1-9A-HJ-NP-Za-km-z]+$/.test(id)) {
    throw new FleetkeyError('validation_failed', 'did:key method-specific id must be base58btc multibase ("z...") with no path, query or fragment');
  }
  return multibaseToPublicKey(id);
}

/** `did#<method-specific-id>`: the id of a did:key's one verification method (and the JWS `kid`). */
export function didKeyVerificationMethodId(did: string): string {
  publicKeyFromDidKey(did);
  return `${did}#${did.slice('did:key:'.length)}`;
}

/**
 * Splits a did:key DID URL (a JWS `kid`) into its DID and key, checking the fragment names the
 * key's own verification method. A bare did:key (no fragment) is accepted too.
 */
export function parseDidKeyUrl(didUrl: string): { did: string; publicKey: PublicKey } {
  if (typeof didUrl !== 'string') throw new FleetkeyError('validation_failed', 'DID URL must be a string');
  const hash = didUrl.indexOf('#');
  const did = hash === -1 ? didUrl : didUrl.slice(0, hash);
  const publicKey = publicKeyFromDidKey(did);
  if (hash !== -1 && didUrl.slice(hash + 1) !== did.slice('did:key:'.length)) {
    throw new FleetkeyError('validation_failed', 'did:key URL fragment does not name the key of that DID');
  }
  return { did, publicKey };
}

function verificationMethod(id: string, controller: string, pk: PublicKey | { type: 'X25519'; bytes: Uint8Array }, format: VerificationMethodFormat): VerificationMethod {
  if (format === 'Multikey') {
    return { id, type: 'Multikey', controller, publicKeyMultibase: multibase(PREFIX[pk.type], pk.bytes) };
  }
  const publicKeyJwk = pk.type === 'X25519' ? { kty: 'OKP', crv: 'X25519', x: base64urlnopad.encode(pk.bytes) } : publicKeyToJwk(pk);
  return { id, type: 'JsonWebKey2020', controller, publicKeyJwk };
}

/** The DID document of a did:key (deterministic: a pure function of the DID and the options). */
export function didKeyDocument(did: string, opts: DidKeyDocumentOptions = {}): DIDDocument {
  const format = opts.format ?? 'Multikey';
  if (format !== 'Multikey' && format !== 'JsonWebKey2020') {
    throw new FleetkeyError('validation_failed', `unknown verification method format ${String(format)}`);
  }
  const pk = publicKeyFromDidKey(did);
  const vmId = didKeyVerificationMethodId(did);
  const doc: DIDDocument = {
    '@context': [DID_CONTEXT, format === 'Multikey' ? MULTIKEY_CONTEXT : JWS2020_CONTEXT],
    id: did,
    verificationMethod: [verificationMethod(vmId, did, pk, format)],
    authentication: [vmId],
    assertionMethod: [vmId],
    capabilityInvocation: [vmId],
    capabilityDelegation: [vmId],
  };
  if (pk.type === 'Ed25519' && opts.enableEncryptionKeyDerivation !== false) {
    const x = { type: 'X25519' as const, bytes: ed25519.utils.toMontgomery(pk.bytes) };
    const xId = `${did}#${multibase(PREFIX.X25519, x.bytes)}`;
    doc.verificationMethod!.push(verificationMethod(xId, did, x, format));
    doc.keyAgreement = [xId];
  }
  return doc;
}
