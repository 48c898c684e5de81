// The WebAuthn challenge of a document: digestOf(domain, value) of src/control/keys.ts, here with
// WebCrypto's SHA-256 over the bytes of canonical.js, which is src/audit/canonical.ts itself (the
// server strips its types; there is no second copy to drift).
import { canonicalJson } from './canonical.js';

/** The domains of src/control/keys.ts: a signature for one kind of object never verifies as another. */
export const DOMAINS = { control: 'fleetkey/control-doc/v1', approval: 'fleetkey/approval/v1', request: 'fleetkey/agent-request/v1' };

/** SHA-256 of UTF-8(domain + "\n" + canonicalJson(value)): 32 bytes. */
export async function digestOf(domain, value) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${domain}\n${canonicalJson(value)}`)));
}

export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
