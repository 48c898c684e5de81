/** Test harness: a real local cluster (separate signer and server processes over HTTP) in a temp dir. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../../src/cli/cluster.ts';

/** The independent verifiers: noble's plain RFC 8032 Ed25519 (strict) and BIP340. */
export function verifySig(scheme: string, publicKeyHex: string, msg: Uint8Array, sigHex: string): boolean {
  return scheme === 'ed25519'
    ? ed25519.verify(hexToBytes(sigHex), msg, hexToBytes(publicKeyHex), { zip215: false })
    : schnorr.verify(hexToBytes(sigHex), msg, hexToBytes(publicKeyHex));
}

export async function startCluster(signers = 3, postgres?: string, schemaPrefix?: string): Promise<LocalCluster> {
  return LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-cluster-')), signers, quiet: true, postgres, schemaPrefix });
}

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

/**
 * fetch, except that a signer of a cluster this test started is reached over mutual TLS with the
 * server's certificate, as the server (or a compromised one) reaches it.
 */
export const fetchAny: typeof fetch = LocalCluster.fetch;

/** Calls the public API (or, with `base`/`token`, a signer node directly, as a compromised server would). */
export async function call<T = any>(base: string, token: string | undefined, method: string, path: string, body?: unknown, raw?: string): Promise<ApiResult<T>> {
  const res = await fetchAny(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  }).catch((e: Error & { cause?: { code?: string; message?: string } }) => {
    // undici says only "fetch failed"; the cause (ECONNRESET, UND_ERR_SOCKET, ...) is what tells us why.
    throw new Error(`${method} ${path}: ${e.message} (${e.cause?.code ?? ''} ${e.cause?.message ?? ''})`, { cause: e });
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export function api(c: LocalCluster) {
  return <T = any>(method: string, path: string, body?: unknown, raw?: string) => call<T>(c.info.url, c.info.token, method, path, body, raw);
}
