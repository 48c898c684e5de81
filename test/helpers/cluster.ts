/** Test harness: a real local cluster (separate signer and server processes over HTTP) in a temp dir. */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { freePort, LocalCluster } from '../../src/cli/cluster.ts';
import { fleetkey } from './cli.ts';

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

/**
 * Issue 11's join, as an operator runs it with the CLI: `fleetkey signer init` on the new host (a new
 * folder; its join record), `fleetkey node add RECORD --manifest …` (the new manifest), that manifest
 * copied over the one every process reads (DATA/cluster-manifest.json), the new signer started, then
 * every process that runs restarted one at a time with SIGTERM, the API servers last. `down(name)`
 * runs while a signer is stopped, `up(name)` after each process is back (tests show the cluster
 * keeps signing through it). Returns the new node's id.
 */
export async function joinSigner(c: LocalCluster, name: string, hooks: { down?: (proc: string) => Promise<void>; up?: (proc: string) => Promise<void> } = {}): Promise<string> {
  const dir = join(c.dataDir, name);
  const port = await freePort();
  const record = await fleetkey(['signer', 'init', '--data', dir, '--name', name, '--advertise', `https://127.0.0.1:${port}`]);
  if (!record.ok) throw new Error(`signer init: ${record.code}`);
  const recordFile = join(c.dataDir, `${name}.join.json`);
  writeFileSync(recordFile, JSON.stringify(record.out));
  const manifestFile = join(c.dataDir, 'cluster-manifest.json');
  const added = await fleetkey(['node', 'add', recordFile, '--manifest', manifestFile]);
  if (!added.ok) throw new Error(`node add: ${added.code}`);
  // The owner's public key, pinned on the new host as on the others.
  copyFileSync(join(c.dataDir, 'server', 'owner.pub'), join(dir, 'owner.pub'));
  writeFileSync(manifestFile, JSON.stringify(added.out, null, 2) + '\n');
  await c.startJoined(name);
  const running = c.running().filter((p) => p !== name);
  for (const proc of [...running.filter((p) => p.startsWith('signer-')), ...running.filter((p) => !p.startsWith('signer-'))]) {
    await c.terminate(proc);
    if (proc.startsWith('signer-')) await hooks.down?.(proc);
    await c.restart(proc, 'SIGTERM');
    await hooks.up?.(proc);
  }
  return record.out.nodeId;
}
