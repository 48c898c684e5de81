/**
 * A software WebAuthn authenticator for tests (a fixture, not product code): it builds
 * authenticatorData and clientDataJSON as a platform authenticator would and signs with @noble/curves
 * P-256, so the verifiers in src/control/keys.ts can be driven to every refusal the spec names.
 */
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import { webauthnChallenge, type Domain, type WebAuthnAssertion, type WebAuthnKey } from '../../src/control/keys.ts';

export interface AssertOptions {
  /** clientDataJSON.origin (default: the key's). */
  origin?: string;
  /** The RP id whose hash goes into authenticatorData (default: the key's). */
  rpId?: string;
  /** authenticatorData flags (default UP | UV = 0x05). */
  flags?: number;
  /** clientDataJSON.type (default "webauthn.get"). */
  type?: string;
  /** Emit s > n/2, as some authenticators do. */
  highS?: boolean;
}

export class SoftAuthenticator {
  readonly key: WebAuthnKey;
  private readonly secret = p256.utils.randomSecretKey();
  private signCount = 0;

  constructor(origin = 'http://127.0.0.1:8080', rpId = '127.0.0.1') {
    this.key = { keyType: 'webauthn-p256', publicKey: bytesToHex(p256.getPublicKey(this.secret, false)), credentialId: base64urlnopad.encode(randomBytes(16)), rpId, origin };
  }

  /** The assertion `navigator.credentials.get({ publicKey: { challenge } })` would return for this raw challenge (base64url). */
  assertChallenge(challenge: string, o: AssertOptions = {}): WebAuthnAssertion {
    const clientDataJSON = utf8ToBytes(JSON.stringify({ type: o.type ?? 'webauthn.get', challenge, origin: o.origin ?? this.key.origin, crossOrigin: false }));
    const count = new Uint8Array(4);
    new DataView(count.buffer).setUint32(0, ++this.signCount);
    const authenticatorData = concatBytes(sha256(utf8ToBytes(o.rpId ?? this.key.rpId)), Uint8Array.of(o.flags ?? 0x05), count);
    let sig = p256.Signature.fromBytes(p256.sign(concatBytes(authenticatorData, sha256(clientDataJSON)), this.secret, { prehash: true, lowS: true, format: 'compact' }), 'compact');
    if (o.highS) sig = new p256.Signature(sig.r, p256.Point.CURVE().n - sig.s);
    return { authenticatorData: base64urlnopad.encode(authenticatorData), clientDataJSON: base64urlnopad.encode(clientDataJSON), signature: base64urlnopad.encode(sig.toBytes('der')) };
  }

  /** An assertion over the object (domain, value): its challenge is the object's digest. */
  sign(domain: Domain, value: unknown, o: AssertOptions = {}): WebAuthnAssertion {
    return this.assertChallenge(webauthnChallenge(domain, value), o);
  }
}
