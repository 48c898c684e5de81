/**
 * Console operator tokens (issue 12): the owner creates a token with a role and may revoke it, each
 * by a document signed with an owner key (Ed25519 file or passkey) under its own domain, so that an
 * operator-token document never verifies as a control document and the reverse. The token itself is
 * generated where the owner signs (the CLI) and only its SHA-256 is in the document: the server
 * stores and compares hashes and never sees a token until one is presented as a bearer.
 *
 * Why SHA-256 and not a slow KDF: a token is 32 random bytes (256 bits), so its hash cannot be
 * inverted by guessing; a slow KDF only helps low-entropy secrets such as passwords, and would cost
 * CPU on every request that presents a token (an easy way to load the server with junk tokens).
 *
 * Roles: `viewer` reads; `operator` reads, enrols devices and creates wallets. Neither replaces a
 * signature: policies, grants, revocations, approvals and exports still need the owner's or an
 * approver's signature, checked by the server and by every signer.
 */
import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import { FleetkeyError } from '../errors.ts';
import { DOMAINS, publicKeyOf, sameOwnerKey, signBytes, signingInput, verifySignature, type OwnerKey } from './keys.ts';
import { msSchema, parseOrThrow, signedControlDocSchema, type WebAuthnAssertion, type WebAuthnKeyShape } from './schemas.ts';

export const OPERATOR_ROLES = ['viewer', 'operator'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/** `opt_` and 16 lowercase hex characters: the token's public name (list, revoke, audit). */
export const operatorTokenIdSchema = z.string().regex(/^opt_[0-9a-f]{16}$/, 'operator token id: opt_ followed by 16 lowercase hex characters');
/** What a bearer token of this kind looks like: `fko_` and 43 base64url characters (32 random bytes). */
export const OPERATOR_TOKEN_RE = /^fko_[A-Za-z0-9_-]{43}$/;

export const operatorTokenDocSchema = z.strictObject({
  kind: z.literal('operator_token'),
  id: operatorTokenIdSchema,
  role: z.enum(OPERATOR_ROLES),
  label: z.string().max(200).optional(),
  /** SHA-256 (hex) of the UTF-8 token. */
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/, 'tokenHash: 64 lowercase hex characters'),
  issuedAt: msSchema,
});
export const operatorRevocationDocSchema = z.strictObject({ kind: z.literal('operator_token_revocation'), id: operatorTokenIdSchema, issuedAt: msSchema });
export const operatorDocSchema = z.discriminatedUnion('kind', [operatorTokenDocSchema, operatorRevocationDocSchema]);
export type OperatorTokenDoc = z.infer<typeof operatorTokenDocSchema>;
export type OperatorRevocationDoc = z.infer<typeof operatorRevocationDocSchema>;
export type OperatorDoc = z.infer<typeof operatorDocSchema>;
export interface SignedOperatorDoc<D extends OperatorDoc = OperatorDoc> {
  doc: D;
  sig: string | WebAuthnAssertion;
  signer: string | WebAuthnKeyShape;
}

export function operatorTokenHash(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}

/** A new token and its id: the token is shown once and never stored anywhere by fleetkey. */
export function newOperatorToken(): { id: string; token: string; tokenHash: string } {
  const token = `fko_${base64urlnopad.encode(randomBytes(32))}`;
  return { id: `opt_${bytesToHex(randomBytes(8))}`, token, tokenHash: operatorTokenHash(token) };
}

/** Validates and signs with the owner's Ed25519 secret (the CLI, offline). */
export function signOperatorDoc<D extends OperatorDoc>(doc: D, ownerSecret: Uint8Array): SignedOperatorDoc<D> & { sig: string; signer: string } {
  const valid = parseOrThrow(operatorDocSchema, doc, 'doc') as D;
  return { doc: valid, sig: signBytes(signingInput(DOMAINS.operator, valid), ownerSecret, 'ed25519'), signer: publicKeyOf(ownerSecret, 'ed25519') };
}

/** As verifyControlDoc, under the operator-token domain: shape, pinned signer, signature. */
export function verifyOperatorDoc(signed: unknown, pinnedOwnerPubs: readonly OwnerKey[]): OperatorDoc {
  const env = parseOrThrow(signedControlDocSchema, signed, 'signed');
  const doc = parseOrThrow(operatorDocSchema, env.doc, 'doc');
  const signer = env.signer;
  if (!pinnedOwnerPubs.some((k) => sameOwnerKey(k, signer))) throw new FleetkeyError('bad_signature', 'operator token document is not signed by a pinned owner key');
  const key = typeof signer === 'string' ? { keyType: 'ed25519' as const, publicKey: signer } : signer;
  if (!verifySignature(env.sig, DOMAINS.operator, doc, key)) throw new FleetkeyError('bad_signature', 'operator token document signature is invalid');
  return doc;
}
