/**
 * Compact JWS / JWT with an external signer, and the strict decoder the verifiers share.
 *
 * Signing: the JWS signing input is ASCII(b64url(header) '.' b64url(payload)). The callback is
 * handed `signerInputFor(alg, signingInput)` (keys.ts): the signing input itself for EdDSA, its
 * SHA-256 digest for ES256 / ES256K, because threshold-ECDSA clusters and secure elements sign
 * digests while Ed25519 (and FROST-Ed25519) must see the whole message. It returns 64 bytes
 * (R||S, or r||s big-endian with no DER); ES256K high-S is folded to low-S. When the issuer key is
 * known the returned signature is checked before the token is released, so a faulty or cheating
 * cluster cannot hand out tokens that fail later.
 *
 * Verification methods are either key-bearing (JWK, Multikey, Ed25519 base58) or, for did:pkh
 * eip155 issuers, an Ethereum account (`EcdsaSecp256k1RecoveryMethod2020` + `blockchainAccountId`):
 * an ES256K signature is then accepted when the key recovered from it (either recovery id) hashes
 * to that address, which lets a threshold-ECDSA fleet use its on-chain account as its DID.
 *
 * Decoding is strict on purpose: three base64url segments without padding, a JSON-object header
 * with a known `alg` and no `crit`, a JSON-object payload, a 64-byte signature, and a size cap.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base58, base64urlnopad, hex, utf8 } from '@scure/base';
import type { DIDDocument, Resolvable, VerificationMethod } from 'did-resolver';
import { publicKeyToAddress } from 'viem/accounts';
import { FleetkeyError } from '../errors.ts';
import { multibaseToPublicKey } from './did-key.ts';
import { isJwsAlg, jwkToPublicKey, normalizeSignature, parsePublicKey, signerInputFor, verifySignature, type JwsAlg, type PublicKey, type SignCallback } from './keys.ts';

export interface JwsHeader {
  alg: JwsAlg;
  kid?: string;
  typ?: string;
  [k: string]: unknown;
}

export interface DecodedJws<P = Record<string, unknown>> {
  header: JwsHeader;
  payload: P;
  /** ASCII bytes of `header.payload`, what the signature covers. */
  signingInput: Uint8Array;
  signature: Uint8Array;
}

/** Default cap on a compact JWS we are willing to parse (status lists of 131072+ bits fit easily). */
export const MAX_JWS_LENGTH = 1 << 20;

function b64json(value: unknown): string {
  return base64urlnopad.encode(utf8.decode(JSON.stringify(value)));
}

/**
 * Signs `payload` under `header` through the external `sign` callback and returns the compact JWS.
 * With `issuer` (a key or an eip155 account) the signature is verified before it is returned
 * (throws `bad_signature`).
 */
export async function signJws(header: JwsHeader, payload: Record<string, unknown>, sign: SignCallback, issuer?: PublicKey | AssertionVerifier): Promise<string> {
  if (!isJwsAlg(header.alg)) throw new FleetkeyError('validation_failed', `unsupported JWS alg ${String(header.alg)}`);
  if (typeof sign !== 'function') throw new FleetkeyError('bad_request', 'sign must be a function (input: Uint8Array) => Promise<Uint8Array>');
  const signingInput = `${b64json(header)}.${b64json(payload)}`;
  const inputBytes = utf8.decode(signingInput);
  const signature = normalizeSignature(header.alg, await sign(signerInputFor(header.alg, inputBytes), { alg: header.alg, signingInput: inputBytes }));
  const verifier: AssertionVerifier | undefined = issuer === undefined ? undefined : 'bytes' in issuer ? { key: issuer } : issuer;
  if (verifier && !verifyWith(verifier, header.alg, inputBytes, signature)) {
    throw new FleetkeyError('bad_signature', `signer returned a ${header.alg} signature that does not verify under the issuer key`);
  }
  return `${signingInput}.${base64urlnopad.encode(signature)}`;
}

/** Parses a compact JWS. Throws `FleetkeyError('bad_request')` describing the first defect. */
export function decodeJws<P = Record<string, unknown>>(jws: string, maxLength = MAX_JWS_LENGTH): DecodedJws<P> {
  const bad = (msg: string): never => {
    throw new FleetkeyError('bad_request', `malformed JWS: ${msg}`);
  };
  if (typeof jws !== 'string') bad('not a string');
  if (jws.length > maxLength) bad(`longer than ${maxLength} characters`);
  const parts = jws.split('.');
  if (parts.length !== 3) bad('expected three dot-separated segments');
  const [h, p, s] = parts as [string, string, string];
  const seg = (v: string, what: string): Uint8Array => {
    try {
      return base64urlnopad.decode(v);
    } catch {
      return bad(`${what} is not unpadded base64url`);
    }
  };
  const obj = (bytes: Uint8Array, what: string): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(utf8.encode(bytes));
    } catch {
      return bad(`${what} is not JSON`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(`${what} is not a JSON object`);
    return v as Record<string, unknown>;
  };
  const header = obj(seg(h, 'header'), 'header');
  if (!isJwsAlg(header.alg)) bad(`unsupported alg ${JSON.stringify(header.alg)}`);
  if ('crit' in header) bad('crit header parameters are not supported');
  if (header.kid !== undefined && typeof header.kid !== 'string') bad('kid must be a string');
  const payload = obj(seg(p, 'payload'), 'payload');
  const signature = seg(s, 'signature');
  if (signature.length !== 64) bad(`signature must be 64 bytes, got ${signature.length}`);
  return { header: header as JwsHeader, payload: payload as P, signingInput: utf8.decode(`${h}.${p}`), signature };
}

/** How an assertion is checked: with a public key, or (did:pkh eip155) by recovering an Ethereum address. */
export type AssertionVerifier = { key: PublicKey } | { eip155Address: string };

function verifyWith(v: AssertionVerifier, alg: JwsAlg, message: Uint8Array, signature: Uint8Array): boolean {
  if ('key' in v) return verifySignature(v.key, alg, message, signature);
  if (alg !== 'ES256K' || signature.length !== 64) return false;
  try {
    const sig = secp256k1.Signature.fromBytes(signature, 'compact');
    if (sig.hasHighS()) return false;
    const digest = sha256(message);
    const want = v.eip155Address.toLowerCase();
    for (const rec of [0, 1]) {
      let point;
      try {
        point = sig.addRecoveryBit(rec).recoverPublicKey(digest);
      } catch {
        continue;
      }
      if (publicKeyToAddress(`0x${hex.encode(point.toBytes(false))}`).toLowerCase() === want) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/** Verifies a decoded JWS under a key or an account verifier. Never throws. */
export function verifyDecodedJws(decoded: DecodedJws<unknown>, verifier: PublicKey | AssertionVerifier): boolean {
  return verifyWith('bytes' in verifier ? { key: verifier } : verifier, decoded.header.alg, decoded.signingInput, decoded.signature);
}

/** How to check signatures of a verification method: its key, its eip155 account, or null (unusable). */
export function verifierOfVerificationMethod(vm: VerificationMethod): AssertionVerifier | null {
  const key = publicKeyOfVerificationMethod(vm);
  if (key) return { key };
  const account = vm.type === 'EcdsaSecp256k1RecoveryMethod2020' ? /^eip155:[1-9][0-9]*:(0x[0-9a-fA-F]{40})$/.exec(vm.blockchainAccountId ?? '') : null;
  return account ? { eip155Address: account[1]! } : null;
}

/** The validated public key a key-bearing verification method carries, or null (e.g. account-only methods). */
export function publicKeyOfVerificationMethod(vm: VerificationMethod): PublicKey | null {
  try {
    if (vm.publicKeyJwk) return jwkToPublicKey(vm.publicKeyJwk);
    if (vm.publicKeyMultibase) return multibaseToPublicKey(vm.publicKeyMultibase);
    if (vm.publicKeyBase58 && (vm.type === 'Ed25519VerificationKey2018' || vm.type === 'Ed25519VerificationKey2020')) {
      return parsePublicKey('Ed25519', base58.decode(vm.publicKeyBase58));
    }
  } catch {
    return null;
  }
  return null;
}

function absolute(id: string, did: string): string {
  return id.startsWith('#') ? did + id : id;
}

/**
 * Resolves `issuer` and returns verifiers for what it lists under `assertionMethod` (narrowed to
 * `kid` when given; the kid must then be listed there). Throws `FleetkeyError('validation_failed')`
 * when the DID does not resolve or offers nothing usable.
 */
export async function assertionVerifiers(resolver: Resolvable, issuer: string, kid?: string): Promise<AssertionVerifier[]> {
  const res = await resolver.resolve(issuer, { accept: 'application/did+ld+json' });
  const doc: DIDDocument | null = res.didDocument;
  if (res.didResolutionMetadata?.error || !doc) {
    throw new FleetkeyError('validation_failed', `cannot resolve ${issuer}: ${res.didResolutionMetadata?.error ?? 'no document'} ${String(res.didResolutionMetadata?.message ?? '')}`.trim());
  }
  const methods = new Map<string, VerificationMethod>();
  for (const vm of doc.verificationMethod ?? []) methods.set(absolute(vm.id, doc.id), vm);
  const wanted = kid === undefined ? undefined : absolute(kid, issuer);
  const verifiers: AssertionVerifier[] = [];
  for (const ref of doc.assertionMethod ?? []) {
    const vm = typeof ref === 'string' ? methods.get(absolute(ref, doc.id)) : ref;
    if (!vm || (wanted !== undefined && absolute(vm.id, doc.id) !== wanted)) continue;
    const v = verifierOfVerificationMethod(vm);
    if (v) verifiers.push(v);
  }
  if (!verifiers.length) {
    throw new FleetkeyError('validation_failed', wanted ? `${wanted} is not a usable assertionMethod of ${issuer}` : `${issuer} lists no usable assertionMethod`);
  }
  return verifiers;
}
