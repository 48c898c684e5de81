/**
 * A did-resolver registry for `did:key` and `did:pkh`, offline:
 * `new Resolver(getResolver())` (did-resolver), as did-jwt and did-jwt-vc expect.
 */
export { getResolver } from '../identity/resolver.ts';
