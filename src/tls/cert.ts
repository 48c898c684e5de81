/**
 * A node's TLS key and self-signed certificate. There is no CA: every peer pins the exact
 * certificate (its SHA-256 fingerprint) that the cluster manifest lists for the node, so the
 * certificate only has to carry the key, a validity window and the extended key usages.
 *
 * The key pair comes from node:crypto (ECDSA P-256); the X.509 structure is built and signed by
 * @peculiar/x509 over WebCrypto. Nothing here is home-made ASN.1 or signing.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TlsIdentity {
  /** PKCS#8 PEM: stays on the host (file mode 0600). */
  keyPem: string;
  certPem: string;
}

export interface CertOptions {
  /** Subject common name (informational: peers pin the fingerprint, never the name). */
  commonName: string;
  /** Host names and IP addresses put in the subjectAltName, so ordinary clients can check the name too. */
  hosts?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * Generates a P-256 key and a self-signed certificate for it, valid from one hour ago (clock
 * skew between hosts) for ten years unless told otherwise: rotation is an explicit re-init plus a
 * new manifest, never a silent expiry in the middle of the night.
 */
export async function generateTlsIdentity(o: CertOptions): Promise<TlsIdentity> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, ALG, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, ALG, true, ['verify']),
  };
  const now = Date.now();
  const hosts = o.hosts ?? [];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // RFC 5280 4.1.2.2: positive, at most 20 octets. The leading 0x01 keeps it positive.
    serialNumber: '01' + bytesToHex(randomBytes(15)),
    name: [{ CN: [o.commonName] }],
    notBefore: o.notBefore ?? new Date(now - 3_600_000),
    notAfter: o.notAfter ?? new Date(now + 3650 * DAY),
    signingAlgorithm: ALG,
    keys: keys as CryptoKeyPair,
    extensions: [
      // A pinned self-signed leaf is its own trust anchor: OpenSSL needs keyCertSign on it to accept
      // it as the issuer of itself. It signs nothing else (pathLength 0, and peers pin the leaf).
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      ...(hosts.length ? [new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: /^[\d.]+$|:/.test(h) ? ('ip' as const) : ('dns' as const), value: h })))] : []),
    ],
  });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: cert.toString('pem') + '\n' };
}

/** SHA-256 fingerprint of a PEM certificate, lower-case hex without separators. */
export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

/** Colon-separated upper-case fingerprint (the form `getPeerCertificate().fingerprint256` gives) to ours. */
export function normalizeFingerprint(f: string): string {
  return f.replace(/:/g, '').toLowerCase();
}
