/**
 * Mutual TLS 1.3 between the API servers and the signer nodes, pinned to the manifest.
 *
 * Signer side: the listener asks every client for a certificate and, once the handshake is done
 * and before the HTTP parser reads a byte, drops any socket whose leaf certificate is not one of
 * the manifest's server certificates (SHA-256 fingerprint), is outside its validity window, or
 * did not verify (OpenSSL checks the signature and dates against the pinned certificates, given as
 * the only trust anchors). No route ever runs for such a peer.
 *
 * Server side: one keep-alive agent per signer, presenting the server's own certificate, trusting
 * only that signer's pinned certificate, and checking the leaf's fingerprint in
 * `checkServerIdentity` (the name in the URL is not what is trusted; the pin is). Idle connections
 * are reused and TLS sessions resumed, and `TlsStats` counts how many handshakes that saved.
 */
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError } from '../errors.ts';
import { fingerprintOf, normalizeFingerprint } from './cert.ts';

/** This process's TLS key and certificate, as `init` left them in the data folder. */
export interface OwnTls {
  keyPem: string;
  certPem: string;
}

export const TLS_KEY_FILE = 'tls.key';
export const TLS_CERT_FILE = 'tls.crt';

export function loadOwnTls(dataDir: string): OwnTls {
  const key = join(dataDir, TLS_KEY_FILE);
  const cert = join(dataDir, TLS_CERT_FILE);
  if (!existsSync(key) || !existsSync(cert)) throw new FleetkeyError('bad_request', `no TLS key in ${dataDir}: run \`fleetkey signer init\` / \`fleetkey server init\` there first`);
  return { keyPem: readFileSync(key, 'utf8'), certPem: readFileSync(cert, 'utf8') };
}

/**
 * Why `socket`'s peer is refused (undefined: accepted). `pins`: fingerprints the manifest lists
 * for the peers allowed on this link.
 */
export function refusal(socket: TLSSocket, pins: ReadonlySet<string>, now = Date.now()): string | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.raw) return 'no client certificate';
  if (!pins.has(normalizeFingerprint(cert.fingerprint256))) return 'certificate not in the manifest';
  if (!(Date.parse(cert.valid_from) <= now && now <= Date.parse(cert.valid_to))) return 'certificate expired or not yet valid';
  if (!socket.authorized) return `certificate did not verify (${String(socket.authorizationError)})`;
  if (socket.getProtocol() !== 'TLSv1.3') return 'not TLS 1.3';
  return undefined;
}

export interface MtlsServer {
  options: https.ServerOptions;
  pins: ReadonlySet<string>;
}

/** Listener options for a signer node: its own certificate, client certificates required, TLS 1.3 only. */
export function mtlsServer(own: OwnTls, peerCerts: readonly string[]): MtlsServer {
  return {
    pins: new Set(peerCerts.map(fingerprintOf)),
    options: {
      key: own.keyPem,
      cert: own.certPem,
      ca: [...peerCerts],
      requestCert: true,
      // Refusal is ours (refusal() above, on 'secureConnection'), so that it also pins the leaf and logs why.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      // A client that opens a socket and never finishes the handshake is dropped after this.
      handshakeTimeout: 10_000,
    },
  };
}

/** Handshakes done and avoided by one client, since it started. */
export class TlsStats {
  /** New TCP connections, each with a TLS handshake. */
  connections = 0;
  /** Of those, handshakes that resumed a cached session (no certificate exchange). */
  resumed = 0;
  /** Requests sent; `requests - connections` of them reused an open connection. */
  requests = 0;
}

/**
 * A keep-alive client for one pinned peer: presents `own`, trusts only `peerCert`, and checks
 * the leaf's fingerprint on every full handshake (a resumed session was pinned when first made).
 */
export function pinnedAgent(own: OwnTls, peerCert: string): https.Agent {
  const pin = fingerprintOf(peerCert);
  return new https.Agent({
    keepAlive: true,
    keepAliveMsecs: 10_000,
    maxCachedSessions: 16,
    key: own.keyPem,
    cert: own.certPem,
    ca: [peerCert],
    minVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => (normalizeFingerprint(cert.fingerprint256) === pin ? undefined : new Error(`peer certificate ${cert.fingerprint256} is not the one the manifest pins`)),
  });
}

/** Largest answer read from a peer: a misbehaving peer cannot make this process buffer without bound. */
const MAX_ANSWER = 64 << 20;

/**
 * A `fetch` over node:https with the agent `agentFor(url)` gives (undefined: global fetch), so
 * code written against fetch (SignerPool, the tests' direct calls) runs over pinned mutual TLS.
 */
export function fetchWith(agentFor: (url: URL) => https.Agent | undefined, stats?: TlsStats): typeof fetch {
  const seen = new WeakSet<object>();
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const agent = url.protocol === 'https:' ? agentFor(url) : undefined;
    if (!agent) return fetch(input, init);
    const body = init.body == null ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : Buffer.from(await new Response(init.body).arrayBuffer());
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    if (body) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, { method: init.method ?? 'GET', headers, agent, signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_ANSWER) req.destroy(new Error(`answer over ${MAX_ANSWER} bytes`));
          else chunks.push(d);
        });
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: h }));
        });
      });
      if (stats) stats.requests++;
      req.on('socket', (s) => {
        if (!stats || seen.has(s)) return;
        seen.add(s);
        stats.connections++;
        (s as TLSSocket).once('secureConnect', () => {
          if ((s as TLSSocket).isSessionReused()) stats.resumed++;
        });
      });
      req.on('error', (e) => {
        // The same name global fetch uses for AbortSignal.timeout(), so callers tell a timeout apart.
        if (init.signal?.aborted) reject(init.signal.reason ?? e);
        else reject(e);
      });
      req.end(body);
    });
  }) as typeof fetch;
}
