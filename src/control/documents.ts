/**
 * Owner-signed control documents: policies, grants, revocations and the approver registry.
 * The owner's Ed25519 key is the trust root: every signer node pins its public key(s) and accepts a
 * document only with a valid signature by one of them. The server merely forwards documents.
 */
import { FleetkeyError } from '../errors.ts';
import { DOMAINS, digestOf, publicKeyOf, signBytes, signingInput, verifyBytes } from './keys.ts';
import { controlDocSchema, parseOrThrow, signedControlDocSchema, type ControlDoc, type SignedControlDoc } from './schemas.ts';

/** sha256 hex over "fleetkey/control-doc/v1\n" + canonicalJson(doc): the document's id in audit entries. */
export function controlDocDigest(doc: ControlDoc): string {
  return digestOf(DOMAINS.control, doc);
}

/** Validates `doc` and signs it with the owner's 32-byte Ed25519 secret (the CLI does this offline). */
export function signControlDoc<D extends ControlDoc>(doc: D, ownerSecret: Uint8Array): SignedControlDoc<D> {
  const valid = parseOrThrow(controlDocSchema, doc, 'doc') as D;
  return { doc: valid, sig: signBytes(signingInput(DOMAINS.control, valid), ownerSecret, 'ed25519'), signer: publicKeyOf(ownerSecret, 'ed25519') };
}

/**
 * Checks the envelope and the document's shape, then the signature against the pinned owner keys
 * (hex Ed25519). Returns the document. Throws `validation_failed` (with the field path, e.g.
 * `doc.wallets[1]`) or `bad_signature` (signer not pinned, or signature invalid).
 */
export function verifyControlDoc(signed: unknown, pinnedOwnerPubs: readonly string[]): ControlDoc {
  const env = parseOrThrow(signedControlDocSchema, signed, 'signed');
  const doc = parseOrThrow(controlDocSchema, env.doc, 'doc');
  if (!pinnedOwnerPubs.some((k) => k.toLowerCase() === env.signer)) throw new FleetkeyError('bad_signature', 'control document is not signed by a pinned owner key');
  if (!verifyBytes(env.sig, signingInput(DOMAINS.control, doc), env.signer, 'ed25519')) throw new FleetkeyError('bad_signature', 'control document signature is invalid');
  return doc;
}
