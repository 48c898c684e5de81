/**
 * `fleetkey signer init` and `fleetkey server init`: make a process's identity and TLS key on its
 * own host, and return the public join record the operator collects into the manifest. Secrets
 * (KEK, sealed identity, audit key, TLS key) stay in the data folder with mode 0600; the record
 * holds public keys and the certificate only. Running init again changes no key: it prints the
 * same identity, with the name and URL given this time.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { FleetkeyError } from '../errors.ts';
import { publicOf } from '../signer/envelope.ts';
import { SignerNode } from '../signer/node.ts';
import { keyFile, loadKek, makeSealer, type Sealer } from '../signer/seal.ts';
import type { Pkcs11Config } from '../signer/pkcs11.ts';
import { dbConfigFrom, openDb } from '../store/db.ts';
import { SignerStore } from '../store/signer-store.ts';
import { generateTlsIdentity } from './cert.ts';
import { advertiseUrlSchema, joinRecordSchema, nodeNameSchema, type JoinRecord } from './manifest.ts';
import { TLS_CERT_FILE, TLS_KEY_FILE } from './mtls.ts';

/** The join record as init printed it, kept beside the keys (public). */
export const JOIN_FILE = 'join.json';

export interface InitOptions {
  dataDir: string;
  name: string;
  /** https://HOST:PORT peers reach this process at (a server's is informational). */
  advertise?: string;
  db?: string;
  dbSchema?: string;
  /** The signer's KEK in an HSM (`--kek pkcs11:…`): the identity is sealed there, as the running signer will open it. */
  pkcs11?: Pkcs11Config;
}

/** The record init is about to print must pass the manifest's own check. */
function validated(r: JoinRecord): JoinRecord {
  return joinRecordSchema.parse(r);
}

/** Creates the TLS key (0600) and certificate once; later runs keep them. */
async function ensureTls(dataDir: string, name: string, advertise: string | undefined): Promise<string> {
  const keyPath = join(dataDir, TLS_KEY_FILE);
  const certPath = join(dataDir, TLS_CERT_FILE);
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    const host = advertise ? new URL(advertise).hostname.replace(/^\[|\]$/g, '') : undefined;
    const t = await generateTlsIdentity({ commonName: name, hosts: host ? [host] : [] });
    writeFileSync(keyPath, t.keyPem, { mode: 0o600 });
    writeFileSync(certPath, t.certPem, { mode: 0o644 });
  }
  chmodSync(keyPath, 0o600);
  return readFileSync(certPath, 'utf8');
}

function previous(dataDir: string): Partial<JoinRecord> {
  const f = join(dataDir, JOIN_FILE);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Partial<JoinRecord>) : {};
}

function save(dataDir: string, r: JoinRecord): JoinRecord {
  writeFileSync(join(dataDir, JOIN_FILE), JSON.stringify(r, null, 2) + '\n', { mode: 0o644 });
  return r;
}

/** Checks what the operator typed before any key is made, so a typo leaves no half-made node. */
function checkFlags(name: string, advertise: string | undefined): void {
  for (const [flag, schema, v] of [['--name', nodeNameSchema, name], ['--advertise', advertiseUrlSchema, advertise]] as const) {
    if (v === undefined) continue;
    const r = schema.safeParse(v);
    if (!r.success) throw new FleetkeyError('validation_failed', `${flag}: ${r.error.issues[0].message}`, { details: { field: flag } });
  }
}

export async function initSigner(o: InitOptions): Promise<JoinRecord> {
  if (!o.advertise) throw new FleetkeyError('validation_failed', '--advertise: required (https://HOST:PORT the API servers reach this signer at)', { details: { field: '--advertise' } });
  checkFlags(o.name, o.advertise);
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  // The HSM binding (a native addon) loads only when an HSM is named, as in the signer itself.
  const hsm = o.pkcs11 ? await (await import('../signer/pkcs11.ts')).HsmKek.open(o.pkcs11) : undefined;
  const sealer: Sealer = hsm ? hsm.sealer : makeSealer(loadKek(join(o.dataDir, 'kek.key')));
  const db = await openDb(dbConfigFrom(o.db ?? join(o.dataDir, 'signer.db'), o.dbSchema));
  let id: ReturnType<typeof publicOf>;
  try {
    const keys = await SignerNode.identity(new SignerStore(db), sealer);
    id = publicOf(keys);
    keys.signSecret.fill(0);
    keys.encSecret.fill(0);
  } finally {
    await db.close();
    hsm?.close();
  }
  const tlsCertificate = await ensureTls(o.dataDir, o.name, o.advertise);
  return save(o.dataDir, validated({ name: o.name, nodeId: id.nodeId, role: 'signer', url: new URL(o.advertise).origin, identityPublicKey: id.signPub, encryptionPublicKey: id.encPub, tlsCertificate }));
}

export async function initServer(o: InitOptions): Promise<JoinRecord> {
  checkFlags(o.name, o.advertise);
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const before = previous(o.dataDir);
  const nodeId = before.role === 'server' && before.nodeId ? before.nodeId : `server_${bytesToHex(randomBytes(6))}`;
  // The server's identity key is the one that signs its audit checkpoints.
  const secret = keyFile(join(o.dataDir, 'audit.key'));
  const identityPublicKey = bytesToHex(ed25519.getPublicKey(secret));
  secret.fill(0);
  const tlsCertificate = await ensureTls(o.dataDir, o.name, o.advertise);
  return save(o.dataDir, validated({ name: o.name, nodeId, role: 'server', ...(o.advertise ? { url: new URL(o.advertise).origin } : {}), identityPublicKey, tlsCertificate }));
}

/** The join record `init` left in `dataDir`, or a clear error telling the operator to run it. */
export function readJoin(dataDir: string, role: JoinRecord['role']): JoinRecord {
  const r = previous(dataDir);
  if (r.role !== role || !r.nodeId) throw new FleetkeyError('bad_request', `${dataDir} has no ${role} identity: run \`fleetkey ${role} init --data ${dataDir} --name NAME${role === 'signer' ? ' --advertise https://HOST:PORT' : ''}\` first`);
  return r as JoinRecord;
}

