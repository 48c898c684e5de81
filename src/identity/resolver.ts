/**
 * DID resolution for did:key and did:pkh, offline (both documents are pure functions of the DID).
 *
 *   import { Resolver } from 'did-resolver';
 *   const resolver = new Resolver(getResolver());          // { key, pkh }
 *
 * Errors are reported the did-resolver way (didResolutionMetadata.error = 'invalidDid' with a
 * message, didDocument null), never thrown, so did-jwt and did-jwt-vc report them as they expect.
 */
import { Resolver, type DIDResolutionResult, type DIDResolver, type ParsedDID, type ResolverRegistry } from 'did-resolver';
import { isFleetkeyError } from '../errors.ts';
import { didKeyDocument, type DidKeyDocumentOptions } from './did-key.ts';
import { didPkhDocument } from './did-pkh.ts';

const DID_JSON_LD = 'application/did+ld+json';

function result(build: () => DIDResolutionResult['didDocument']): DIDResolutionResult {
  try {
    return { didResolutionMetadata: { contentType: DID_JSON_LD }, didDocument: build(), didDocumentMetadata: {} };
  } catch (e) {
    const message = isFleetkeyError(e) ? e.message : 'could not build the DID document';
    return { didResolutionMetadata: { error: 'invalidDid', message }, didDocument: null, didDocumentMetadata: {} };
  }
}

/** The did:key resolver alone (for a registry of your own). */
export function keyDidResolver(opts: DidKeyDocumentOptions = {}): DIDResolver {
  return async (_did: string, parsed: ParsedDID) => result(() => didKeyDocument(parsed.did, opts));
}

/** The did:pkh resolver alone. */
export function pkhDidResolver(): DIDResolver {
  return async (_did: string, parsed: ParsedDID) => result(() => didPkhDocument(parsed.did));
}

/** Registry for `new Resolver(getResolver())`: resolves `did:key` and `did:pkh`. */
export function getResolver(opts: DidKeyDocumentOptions = {}): ResolverRegistry {
  return { key: keyDidResolver(opts), pkh: pkhDidResolver() };
}

/** Convenience: a did-resolver `Resolver` over `getResolver(opts)` (no cache: resolution is pure). */
export function createResolver(opts: DidKeyDocumentOptions = {}): Resolver {
  return new Resolver(getResolver(opts));
}
