/**
 * Owner-signed control documents: policies, grants, revocations and the approver registry.
 * The owner's Ed25519 key is the trust root: every signer node pins its public key(s) and accepts a
 * document only with a valid signature by one of them. The server merely forwards documents.
 */
import { FleetkeyError } from '../errors.ts';
import { DOMAINS, digestOf, publicKeyOf, sameOwnerKey, signBytes, signingInput, verifySignature, type OwnerKey } from './keys.ts';
import { controlDocSchema, parseOrThrow, signedControlDocSchema, type ControlDoc, type SignedControlDoc } from './schemas.ts';

/** sha256 hex over "fleetkey/control-doc/v1\n" + canonicalJson(doc): the document's id in audit entries. */
export function controlDocDigest(doc: ControlDoc): string {
  return digestOf(DOMAINS.control, doc);
}

/** Validates `doc` and signs it with the owner's 32-byte Ed25519 secret (the CLI does this offline). */
export function signControlDoc<D extends ControlDoc>(doc: D, ownerSecret: Uint8Array): SignedControlDoc<D> & { sig: string; signer: string } {
  const valid = parseOrThrow(controlDocSchema, doc, 'doc') as D;
  return { doc: valid, sig: signBytes(signingInput(DOMAINS.control, valid), ownerSecret, 'ed25519'), signer: publicKeyOf(ownerSecret, 'ed25519') };
}

/**
 * Checks the envelope and the document's shape, then the signature against the pinned owner keys
 * (hex Ed25519, or passkeys: then `signer` is the passkey object and `sig` a WebAuthn assertion
 * whose challenge is the document's digest). Returns the document. Throws `validation_failed` (with the field path, e.g.
 * `doc.wallets[1]`) or `bad_signature` (signer not pinned, or signature invalid).
 */
export function verifyControlDoc(signed: unknown, pinnedOwnerPubs: readonly OwnerKey[]): ControlDoc {
  const env = parseOrThrow(signedControlDocSchema, signed, 'signed');
  const doc = parseOrThrow(controlDocSchema, env.doc, 'doc');
  const signer = env.signer;
  if (!pinnedOwnerPubs.some((k) => sameOwnerKey(k, signer))) throw new FleetkeyError('bad_signature', 'control document is not signed by a pinned owner key');
  const key = typeof signer === 'string' ? { keyType: 'ed25519' as const, publicKey: signer } : signer;
  if (!verifySignature(env.sig, DOMAINS.control, doc, key)) throw new FleetkeyError('bad_signature', 'control document signature is invalid');
  return doc;
}
