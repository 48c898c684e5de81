/**
 * The cluster manifest: the public join records of every process (signer nodes and API servers),
 * assembled by the operator and copied to every host. It is the only membership list: a process
 * takes its peers' URLs, identity keys and pinned TLS certificates from it, and refuses to start
 * on one that does not name it, names a node twice, or has a field that does not check out.
 *
 * The cluster id is the SHA-256 of the canonical JSON of the records sorted by node id, so two
 * hosts holding the same manifest agree on it, and any edit to a record changes it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../audit/canonical.ts';
import { FleetkeyError } from '../errors.ts';
import type { PeerInfo } from '../signer/envelope.ts';
import { fingerprintOf } from './cert.ts';

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes of lower-case hex');

const pemCertificate = z
  .string()
  .max(16_384)
  .refine(
    (s) => {
      try {
        return /^-----BEGIN CERTIFICATE-----/.test(s.trim()) && new X509Certificate(s).publicKey !== undefined;
      } catch {
        return false;
      }
    },
    { message: 'must be one PEM X.509 certificate' },
  );

/** Where peers reach a process: https://HOST[:PORT], nothing after the authority. */
export const advertiseUrlSchema = z
  .string()
  .max(2048)
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return u.protocol === 'https:' && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
      } catch {
        return false;
      }
    },
    { message: 'must be https://HOST:PORT (no path, query or credentials)' },
  );

export const nodeNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, dot, dash or underscore');

/** What `fleetkey signer init` / `fleetkey server init` print: public, safe to paste anywhere. */
export const joinRecordSchema = z
  .object({
    name: nodeNameSchema,
    nodeId: z.string().regex(/^(node|server)_[0-9a-f]{12}$/, 'must be node_ or server_ and 12 hex digits'),
    role: z.enum(['signer', 'server']),
    /** Required for a signer (the servers call it there); a server's public API URL, if given. */
    url: advertiseUrlSchema.optional(),
    /** Ed25519: a signer's envelope and package signing key, a server's audit checkpoint key. */
    identityPublicKey: hex32,
    /** X25519, signers only: what peers seal direct protocol messages to. */
    encryptionPublicKey: hex32.optional(),
    tlsCertificate: pemCertificate,
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.role === 'signer' && !r.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'a signer needs the https URL the servers reach it at' });
    if (r.role === 'signer' && !r.encryptionPublicKey) ctx.addIssue({ code: 'custom', path: ['encryptionPublicKey'], message: 'a signer needs its X25519 encryption public key' });
    if (r.role === 'server' && r.encryptionPublicKey) ctx.addIssue({ code: 'custom', path: ['encryptionPublicKey'], message: 'only signers have one' });
    if (!r.nodeId.startsWith(r.role === 'signer' ? 'node_' : 'server_')) ctx.addIssue({ code: 'custom', path: ['nodeId'], message: `a ${r.role}'s id starts with ${r.role === 'signer' ? 'node_' : 'server_'}` });
  });

export type JoinRecord = z.infer<typeof joinRecordSchema>;

export const manifestSchema = z
  .object({
    version: z.literal(1),
    clusterId: hex32,
    nodes: z.array(joinRecordSchema).min(1).max(256),
  })
  .strict()
  .superRefine((m, ctx) => {
    // The same node twice, under any of the names a peer could know it by, is refused.
    const seen = new Map<string, number>();
    m.nodes.forEach((n, i) => {
      const keys: [string, string][] = [
        ['nodeId', n.nodeId],
        ['name', n.name],
        ...(n.url ? [['url', new URL(n.url).origin] as [string, string]] : []),
        ['identityPublicKey', n.identityPublicKey],
        ['tlsCertificate', safeFingerprint(n.tlsCertificate)],
      ];
      for (const [field, v] of keys) {
        const k = `${field}\0${v}`;
        const j = seen.get(k);
        if (j !== undefined) ctx.addIssue({ code: 'custom', path: ['nodes', i, field], message: `same ${field} as nodes[${j}]: a node may be listed once` });
        else seen.set(k, i);
      }
    });
    if (!m.nodes.some((n) => n.role === 'signer')) ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'needs at least one signer' });
    if (!m.nodes.some((n) => n.role === 'server')) ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'needs at least one server' });
    if (m.clusterId !== clusterIdOf(m.nodes)) ctx.addIssue({ code: 'custom', path: ['clusterId'], message: 'does not match the records (edited after `fleetkey cluster manifest`?)' });
  });

export type Manifest = z.infer<typeof manifestSchema>;

function safeFingerprint(pem: string): string {
  try {
    return fingerprintOf(pem);
  } catch {
    return pem;
  }
}

export function clusterIdOf(nodes: readonly JoinRecord[]): string {
  const sorted = [...nodes].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return bytesToHex(sha256(concatBytes(utf8ToBytes('fleetkey/v1/cluster\0'), utf8ToBytes(canonicalJson(sorted as never)))));
}

/** `manifest.nodes[2].url: …`: the path a person finds in the file. */
function fieldPath(path: readonly PropertyKey[], root: string): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${String(p)}`), root);
}

function check<T>(schema: z.ZodType<T>, value: unknown, root: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = fieldPath(issue.path, root);
  throw new FleetkeyError('validation_failed', `${field}: ${issue.message}`, { details: { field } });
}

/** Validates join records (each as printed by `init`) and assembles them into a manifest. */
export function assembleManifest(records: unknown[]): Manifest {
  const nodes = records.map((r, i) => check(joinRecordSchema, r, `records[${i}]`));
  const m = { version: 1 as const, clusterId: clusterIdOf(nodes), nodes };
  return check(manifestSchema, m, 'manifest');
}

/** Reads and validates a manifest file; every error names the field. */
export function readManifest(file: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FleetkeyError('validation_failed', `manifest ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not valid JSON'}`, { details: { field: 'manifest' } });
  }
  return check(manifestSchema, raw, 'manifest');
}

/**
 * The record of the process whose own join record is `self`, after checking the manifest lists
 * exactly that record (same role, keys and certificate): a process never starts under a
 * membership that does not name it, or names it with another key.
 */
export function selfIn(m: Manifest, self: JoinRecord): JoinRecord {
  const i = m.nodes.findIndex((n) => n.nodeId === self.nodeId);
  if (i < 0) throw new FleetkeyError('validation_failed', `manifest.nodes: does not name this ${self.role} (${self.nodeId}, ${self.name}): add its join record and assemble the manifest again`, { details: { field: 'manifest.nodes' } });
  const n = m.nodes[i];
  for (const f of ['role', 'identityPublicKey', 'encryptionPublicKey'] as const)
    if (n[f] !== self[f]) throw new FleetkeyError('validation_failed', `manifest.nodes[${i}].${f}: differs from this node's own (${self.nodeId})`, { details: { field: `manifest.nodes[${i}].${f}` } });
  if (fingerprintOf(n.tlsCertificate) !== fingerprintOf(self.tlsCertificate))
    throw new FleetkeyError('validation_failed', `manifest.nodes[${i}].tlsCertificate: is not this node's certificate (${self.nodeId})`, { details: { field: `manifest.nodes[${i}].tlsCertificate` } });
  return n;
}

/** The signer nodes as the protocol code knows them (peers.json's shape). */
export function peersOf(m: Manifest): PeerInfo[] {
  return m.nodes.filter((n) => n.role === 'signer').map((n) => ({ nodeId: n.nodeId, url: new URL(n.url!).origin, signPub: n.identityPublicKey, encPub: n.encryptionPublicKey! }));
}
