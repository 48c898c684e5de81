/**
 * `fleetkey signer backup` and `fleetkey signer restore` (issue 11): a signer's store, sealed under
 * its own KEK, carried to a new host — without ever letting a nonce be used twice.
 *
 * What a backup holds: the whole signer database (shares, sealed identity, consumed-nonce log,
 * used session ids, the owner's documents, counters, audit chain) and the data-dir files that make
 * the node the same node to its peers (join.json, tls.key, tls.crt, owner.pub, cluster-token). Not
 * the KEK (the new host brings the same one: DATA/kek.key, FLEETKEY_KEK or the same HSM key), and
 * deliberately not the nonce ledger (see below).
 *
 * Consistency while the signer runs: the database is copied with SQLite's online backup API
 * (better-sqlite3 `Database#backup`) from a second connection. The copy is done in one
 * `sqlite3_backup_step` over all pages, i.e. inside one read transaction of that connection, so it
 * is a snapshot at one commit (WAL mode lets the running signer keep committing meanwhile); SQLite
 * restarts a step that a concurrent writer invalidated. Every write the signer makes is one
 * transaction with its audit entry (src/store/signer-store.ts), so the snapshot never holds half an
 * event.
 *
 * The file: `{format, v, backupId, nodeId, takenAt, key, data}`. `key` is a fresh 32-byte data key
 * sealed by the node's KEK (file KEK or HSM, src/signer/seal.ts / pkcs11.ts) with the header as its
 * context; `data` is AES-256-GCM (@noble/ciphers) under that key, the header as associated data.
 * So the bulk never goes through the HSM, and a header edited or moved to another file does not open.
 *
 * A restored node never reuses a nonce. Why:
 * 1. Every FROST nonce that was pooled at backup time is erased by the restore, and its id written
 *    to `consumed_nonces` (so it is refused as `nonce_consumed`), in the transaction that logs the
 *    restore in the node's audit chain. Some of them were used after the backup; which ones is
 *    unknowable from the backup, so none may be used.
 * 2. Nonces made after the backup are not in it: their ids are `nonce_unknown` to the restored node.
 * 3. Defence in depth: the nonce ledger (src/signer/nonce-ledger.ts) is not restored. The restored
 *    node starts a new ledger (a new random ledger id), and every nonce is sealed with its ledger id
 *    in the associated data: a nonce row of the old ledger — from this backup, an older one, or put
 *    back by someone who can write the database — does not even open.
 * Fresh nonces are made under the new ledger; the server drops a pool a signer answers
 * `nonce_unknown` / `nonce_consumed` for, and refills it.
 * DKLs23 (ecdsa-secp256k1) has no preprocessed signing material: each signing is three fresh rounds,
 * and Alice's per-execution salt (src/crypto/dkls23/README.md, "Session ids") keeps a session id
 * used after the backup (so unknown to the restored `used_sessions`) from repeating her OT stream.
 *
 * What rolls back with the restore, and what that means:
 * - Spend counters: the node's own counters are those of the backup. Under strict counters a
 *   signature needs a receipt from every holder (src/enforce/receipts.ts), so the holders that were
 *   not restored still stop a request at the exact limit; a per-signer policy on a restored node can
 *   count less than was spent between the backup and the loss (say so to whoever restores).
 * - The audit chain continues from the backup's head. The entries written after the backup are lost
 *   with the old host; the restore entry names the backup and the head it continues from, so a
 *   verifier holding later checkpoints of the old chain sees exactly where the fork is.
 * - Revocations and policies the owner sent after the backup are missing: send them again
 *   (`fleetkey` control documents are idempotent to store).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gcm } from '@noble/ciphers/aes.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { ed25519CheckpointSigner } from '../audit/index.ts';
import { FleetkeyError } from '../errors.ts';
import { AuditLog } from '../store/audit-store.ts';
import { openDb } from '../store/db.ts';
import { SignerStore } from '../store/signer-store.ts';
import { SignerNode } from './node.ts';
import type { Sealer } from './seal.ts';

export const BACKUP_FORMAT = 'fleetkey-signer-backup';
const DB_FILE = 'signer.db';
/** The data-dir files that make the node itself to its peers. Never the KEK, the ledger or its key. */
const CARRIED_FILES = ['join.json', 'tls.key', 'tls.crt', 'owner.pub', 'cluster-token'] as const;
const MAX_BACKUP_BYTES = 1 << 30;

const headerSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  v: z.literal(1),
  backupId: z.string().regex(/^bak_[0-9a-f]{32}$/),
  nodeId: z.string().min(1).max(64),
  takenAt: z.number().int().min(0),
});
const fileSchema = headerSchema.extend({ key: z.string().min(1).max(200), data: z.string().min(1) });
const payloadSchema = z.strictObject({ db: z.string(), files: z.partialRecord(z.enum(CARRIED_FILES), z.string()) });
type Header = z.infer<typeof headerSchema>;

/** The header in a fixed field order: the data key's seal context and the payload's associated data. */
function headerBytes(h: Header): Uint8Array {
  return utf8ToBytes(JSON.stringify({ format: h.format, v: h.v, backupId: h.backupId, nodeId: h.nodeId, takenAt: h.takenAt }));
}
const keyContext = (h: Header) => `backup|${h.backupId}|${h.nodeId}|${h.takenAt}`;

export interface BackupResult {
  backupId: string;
  nodeId: string;
  takenAt: number;
  bytes: number;
  /** FROST nonces pooled at backup time: every one is refused after a restore. */
  pooledNonces: number;
}

/**
 * Writes `out` (mode 0600, refused if it exists): the signer store in `dataDir` (SQLite), sealed
 * under `sealer` (the node's KEK). Safe while the signer runs.
 */
export async function backupSigner(o: { dataDir: string; out: string; sealer: Sealer; db?: string }): Promise<BackupResult> {
  if (o.db !== undefined && /^postgres(ql)?:\/\//.test(o.db))
    throw new FleetkeyError('unsupported', 'fleetkey signer backup copies a SQLite store; a signer on PostgreSQL is not supported by this command yet', { details: { field: '--db' } });
  const dbFile = o.db ?? join(o.dataDir, DB_FILE);
  if (!existsSync(dbFile)) throw new FleetkeyError('not_found', `no signer store at ${dbFile}`, { details: { field: '--data' } });
  if (existsSync(o.out)) throw new FleetkeyError('conflict', `${o.out} exists; a backup never overwrites a file`, { details: { field: '--out' } });
  // The snapshot goes beside the store (same protection as the store itself), and is removed below.
  const snap = join(o.dataDir, `backup-${bytesToHex(randomBytes(8))}.tmp`);
  const src = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    src.pragma('busy_timeout = 5000');
    // One step over every page: one read transaction, one commit's snapshot (see the header comment).
    await src.backup(snap, { progress: () => 0x7fffffff });
  } finally {
    src.close();
  }
  let dbBytes: Uint8Array;
  let identity: { nodeId: string; pooledNonces: number };
  try {
    dbBytes = new Uint8Array(readFileSync(snap));
    identity = await snapshotFacts(snap, o.sealer);
  } finally {
    rmSync(snap, { force: true });
  }
  const files: Record<string, string> = {};
  for (const f of CARRIED_FILES) if (existsSync(join(o.dataDir, f))) files[f] = base64.encode(new Uint8Array(readFileSync(join(o.dataDir, f))));
  const header: Header = { format: BACKUP_FORMAT, v: 1, backupId: `bak_${bytesToHex(randomBytes(16))}`, nodeId: identity.nodeId, takenAt: Date.now() };
  const dataKey = randomBytes(32);
  const iv = randomBytes(12);
  const payload = utf8ToBytes(JSON.stringify({ db: base64.encode(dbBytes), files }));
  const ct = gcm(dataKey, iv, headerBytes(header)).encrypt(payload);
  const text = JSON.stringify({ ...header, key: o.sealer.seal(dataKey, keyContext(header)), data: base64.encode(new Uint8Array([...iv, ...ct])) });
  dataKey.fill(0);
  writeFileSync(o.out, text + '\n', { mode: 0o600, flag: 'wx' });
  return { backupId: header.backupId, nodeId: header.nodeId, takenAt: header.takenAt, bytes: text.length, pooledNonces: identity.pooledNonces };
}

/** The node id (its sealed identity must open under this KEK: a backup no restore could open is refused now) and the pooled nonce count. */
async function snapshotFacts(file: string, sealer: Sealer): Promise<{ nodeId: string; pooledNonces: number }> {
  const db = await openDb({ kind: 'sqlite', path: file });
  try {
    const store = new SignerStore(db);
    const sealed = await store.getMeta('identity');
    if (!sealed) throw new FleetkeyError('not_found', 'the signer store has no identity yet (run `fleetkey signer init` first)');
    const id = JSON.parse(new TextDecoder().decode(sealer.open(sealed, 'identity'))) as { nodeId: string };
    const n = await db.all(`SELECT COUNT(*) AS n FROM nonces`);
    return { nodeId: id.nodeId, pooledNonces: Number(n[0].n) };
  } finally {
    await db.close();
  }
}

export interface RestoreResult {
  backupId: string;
  nodeId: string;
  takenAt: number;
  /** Nonces pooled at backup time, now erased and recorded as consumed. */
  erasedNonces: number;
  /** The audit chain's head the restored chain continues from (sequence number), and the restore entry's. */
  auditHead: number;
  restoreEntry: number;
}

/**
 * Restores `input` into `dataDir` (which must hold no signer store yet), opening it with `sealer`
 * (the same KEK the backup was sealed under), then applies the nonce rule and logs the restore.
 */
export async function restoreSigner(o: { input: string; dataDir: string; sealer: Sealer }): Promise<RestoreResult> {
  const dbFile = join(o.dataDir, DB_FILE);
  if (existsSync(dbFile)) throw new FleetkeyError('conflict', `${dbFile} exists: restore into a data dir without a signer store (a running or old node's store is never overwritten)`, { details: { field: '--data' } });
  if (existsSync(join(o.dataDir, 'nonce-ledger.json')))
    throw new FleetkeyError('conflict', `${o.dataDir} holds a nonce ledger; restore into a fresh data dir (the restored node starts a new ledger)`, { details: { field: '--data' } });
  const size = statSync(o.input).size;
  if (size > MAX_BACKUP_BYTES) throw new FleetkeyError('payload_too_large', `${o.input} is larger than a backup can be`, { details: { field: '--in' } });
  let file: z.infer<typeof fileSchema>;
  try {
    file = fileSchema.parse(JSON.parse(readFileSync(o.input, 'utf8')));
  } catch {
    throw new FleetkeyError('validation_failed', `${o.input} is not a fleetkey signer backup`, { details: { field: '--in' } });
  }
  const header: Header = { format: file.format, v: file.v, backupId: file.backupId, nodeId: file.nodeId, takenAt: file.takenAt };
  const dataKey = o.sealer.open(file.key, keyContext(header));
  let plain: Uint8Array;
  try {
    const raw = base64.decode(file.data);
    plain = gcm(dataKey, raw.subarray(0, 12), headerBytes(header)).decrypt(raw.subarray(12));
  } catch {
    throw new FleetkeyError('decrypt_failed', `${o.input} does not open under this KEK (or was altered)`, { details: { field: '--in' } });
  } finally {
    dataKey.fill(0);
  }
  // Authenticated, so written by a node holding this KEK; still checked before use.
  const parsed = payloadSchema.safeParse(JSON.parse(new TextDecoder().decode(plain)));
  if (!parsed.success) throw new FleetkeyError('validation_failed', `${o.input} opens but does not hold a signer store`, { details: { field: '--in' } });
  const payload = parsed.data;
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  // The store is written under a temporary name and renamed last: a failure leaves no half-restored store.
  const tmp = `${dbFile}.restoring`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, base64.decode(payload.db), { mode: 0o600 });
  try {
    const facts = await applyRestore(tmp, o.sealer, header);
    for (const [name, b64] of Object.entries(payload.files)) writeFileSync(join(o.dataDir, name), base64.decode(b64), { mode: 0o600 });
    renameSync(tmp, dbFile);
    return { backupId: header.backupId, nodeId: header.nodeId, takenAt: header.takenAt, ...facts };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * The nonce rule and the audit entry, in one transaction on the restored store: every pooled nonce
 * is erased and recorded as consumed (item 1 of the header comment), and the node's chain records
 * the restore, the backup it came from and the head it continues from.
 */
async function applyRestore(file: string, sealer: Sealer, h: Header): Promise<{ erasedNonces: number; auditHead: number; restoreEntry: number }> {
  const db = await openDb({ kind: 'sqlite', path: file });
  try {
    const store = new SignerStore(db);
    const keys = await SignerNode.identity(store, sealer);
    if (keys.nodeId !== h.nodeId) throw new FleetkeyError('validation_failed', `the backup's header names ${h.nodeId}, its store is ${keys.nodeId}`, { details: { field: '--in' } });
    const audit = new AuditLog(db, ed25519CheckpointSigner(keys.signSecret), keys.nodeId);
    await audit.init();
    const now = Date.now();
    return await db.tx(async (q) => {
      const head = await q.all(`SELECT MAX(seq) AS head FROM audit_chain_log WHERE chain = $1`, [audit.chain]);
      const auditHead = head[0]?.head === null || head[0]?.head === undefined ? 0 : Number(head[0].head);
      // (`WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.)
      await q.run(`INSERT INTO consumed_nonces (id, wallet_id, request_id, consumed_at) SELECT id, wallet_id, $1, $2 FROM nonces WHERE true ON CONFLICT (id) DO NOTHING`, [`restore:${h.backupId}`, now]);
      const erasedNonces = await q.run(`DELETE FROM nonces`);
      await q.run(`INSERT INTO meta (key, value) VALUES ('restored_from', $1) ON CONFLICT (key) DO UPDATE SET value = $2`, [
        JSON.stringify({ backupId: h.backupId, takenAt: h.takenAt, restoredAt: now }),
        JSON.stringify({ backupId: h.backupId, takenAt: h.takenAt, restoredAt: now }),
      ]);
      const entry = await audit.appendIn(q, {
        type: 'admin',
        outcome: 'signer_restored',
        data: { backupId: h.backupId, backupTakenAt: h.takenAt, continuesFromSeq: auditHead, erasedNonces, note: 'entries after the backup were lost with the old host; every nonce pooled at backup time is refused' },
      });
      return { erasedNonces, auditHead, restoreEntry: entry.seq };
    });
  } finally {
    await db.close();
  }
}
