import type { DIDResolutionResult } from 'did-resolver';
import type { FleetkeyRequest } from '../types.ts';

/** Resolves a did:key or did:pkh through the server (`GET /v1/dids/:did`); `getResolver()` does the same offline. */
export function resolveDid(request: FleetkeyRequest, { did }: { did: string }): Promise<DIDResolutionResult> {
  return request('GET', `/v1/dids/${encodeURIComponent(did)}`);
}
