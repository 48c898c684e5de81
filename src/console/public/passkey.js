// Passkeys (WebAuthn, P-256) as approver and owner keys. The challenge of every assertion is the
// 32-byte digest of the document it approves, computed here from the document the console shows,
// so the authenticator signs exactly what the person saw. The server and every signer check the
// assertion (flags UP and UV, clientDataJSON type, origin and challenge, the P-256 signature).
import { digestOf, DOMAINS, toHex } from './digest.js';

const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
const fromB64url = (s) => Uint8Array.from(atob(s.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0));

const STORE = 'fleetkey.passkeys';
/** Passkeys registered in this browser: public key objects only (the private key stays in the authenticator). */
export const savedPasskeys = () => JSON.parse(localStorage.getItem(STORE) ?? '[]');

/** Creates a P-256 passkey with user verification and answers its key object (the pinned `webauthn-p256` form). */
export async function registerPasskey(name) {
  const cred = await navigator.credentials.create({
    publicKey: {
      rp: { id: location.hostname, name: 'fleetkey' },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name, displayName: name },
      // Registration proves nothing to the server: the owner pins the key by signing it into a document.
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
      authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' },
      attestation: 'none',
    },
  });
  // SPKI from the authenticator, to the SEC1 point by WebCrypto (no parsing of our own).
  const key = await crypto.subtle.importKey('spki', cred.response.getPublicKey(), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  const publicKey = toHex(new Uint8Array(await crypto.subtle.exportKey('raw', key)));
  const entry = { name, key: { keyType: 'webauthn-p256', publicKey, credentialId: b64url(cred.rawId), rpId: location.hostname, origin: location.origin } };
  localStorage.setItem(STORE, JSON.stringify([...savedPasskeys().filter((p) => p.name !== name), entry]));
  return entry;
}

/** An assertion over `digest` by the passkey `entry`: the signature object that stands in place of a hex sig. */
async function assert(entry, digest) {
  const a = await navigator.credentials.get({
    publicKey: { challenge: digest, rpId: entry.key.rpId, allowCredentials: [{ type: 'public-key', id: fromB64url(entry.key.credentialId) }], userVerification: 'required' },
  });
  return { authenticatorData: b64url(a.response.authenticatorData), clientDataJSON: b64url(a.response.clientDataJSON), signature: b64url(a.response.signature) };
}

/** An approver's signed decision on a request digest: `{ approval, sig }` for POST /v1/approvals/:id. */
export async function signApproval(entry, requestDigest, decision) {
  const approval = { kind: 'approval', requestDigest, decision, approver: entry.name, issuedAt: Date.now() };
  return { approval, sig: await assert(entry, await digestOf(DOMAINS.approval, approval)) };
}

/** An owner's signed control document: `{ doc, sig, signer }` for POST /v1/control. */
export async function signControlDoc(entry, doc) {
  return { doc, sig: await assert(entry, await digestOf(DOMAINS.control, doc)), signer: entry.key };
}

/**
 * A console session for a registered passkey (owner or approver): the server's one-time nonce is the
 * challenge, so the assertion signs in once, here, and nothing else. Answers the session token.
 */
export async function passkeySession(entry, post) {
  const { nonce, challenge } = await post('/v1/console/session/challenge', {});
  return post('/v1/console/session', { nonce, credentialId: entry.key.credentialId, assertion: await assert(entry, fromB64url(challenge)) });
}
