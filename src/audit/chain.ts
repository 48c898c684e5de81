/**
 * Append-only, tamper-evident audit chain. Pure: no clock, no storage, no randomness. The caller
 * passes the time in and stores what comes out.
 *
 *   hash_n = sha256( "fleetkey/audit/entry/v1\n" || canonicalJson(entry_n without `hash`) )
 *   entry_n.prev = hash_{n-1}  (genesis: 64 zero hex digits);  entry_n.seq = entry_{n-1}.seq + 1, first seq = 1
 *
 * A checkpoint is an ordinary entry of type 'checkpoint' whose data carries the seq and hash of the
 * entry before it, the node's Ed25519 public key and its signature over
 *   "fleetkey/audit/checkpoint/v1\n" || canonicalJson({ head, seq })
 * so a log can be anchored to a node key and checked offline.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { FleetkeyError } from '../errors.ts';
import { canonicalJson, CanonicalJsonError, toPlainJson } from './canonical.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export const AUDIT_TYPES = ['request', 'decision', 'signature', 'grant', 'policy', 'approval', 'checkpoint', 'admin'] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

export const GENESIS_PREV = '0'.repeat(64);
export const ENTRY_DOMAIN = 'fleetkey/audit/entry/v1\n';
export const CHECKPOINT_DOMAIN = 'fleetkey/audit/checkpoint/v1\n';

export interface AuditEntry {
  /** 1 for the first entry, then +1 each entry. */
  seq: number;
  /** Hash (hex) of the previous entry; GENESIS_PREV for seq 1. */
  prev: string;
  /** ISO-8601 time, supplied by the caller. */
  time: string;
  /** Who caused the entry: node id, agent id, admin user... */
  actor: string;
  type: AuditType;
  /** Hex digest of the signing request this entry is about. */
  requestDigest?: string;
  /** Summary of a policy decision (never secrets). */
  decision?: Json;
  policyVersion?: string | number;
  outcome?: string;
  /** Free JSON detail; bigints are stored as decimal strings. Never secrets. */
  data: Json;
  /** sha256 hex over the domain-separated canonical encoding of every other field. */
  hash: string;
}

/** What the caller supplies; seq, prev and hash are derived. `data` may hold bigints (stored as strings). */
export interface AuditFields {
  time: string;
  actor: string;
  type: AuditType;
  requestDigest?: string;
  decision?: unknown;
  policyVersion?: string | number;
  outcome?: string;
  data?: unknown;
}

export interface CheckpointData {
  seq: number;
  head: string;
  publicKey: string;
  signature: string;
}

/** Signs checkpoint messages with the node's Ed25519 key; the key itself stays with the caller. */
export interface CheckpointSigner {
  /** Ed25519 public key, 32 bytes hex. */
  publicKey: string;
  sign(message: Uint8Array): Uint8Array;
}

const SECRET_KEY_NAMES = /^(secret|secretkey|secret_key|privatekey|private_key|privkey|mnemonic|seed|seedphrase|seed_phrase|password|passphrase|share_secret|sharesecret)$/i;
const HEX64 = /^[0-9a-f]{64}$/;

/** sha256 of the canonical encoding of `entry` minus its `hash` field. */
export function entryHash(entry: Omit<AuditEntry, 'hash'> | AuditEntry): string {
  const { hash: _ignored, ...rest } = entry as AuditEntry;
  return bytesToHex(sha256(utf8ToBytes(ENTRY_DOMAIN + canonicalJson(rest))));
}

/** Build the next entry after `prev` (null for the first entry of a log). Pure. */
export function appendEntry(prev: AuditEntry | null, fields: AuditFields): AuditEntry {
  if (typeof fields.time !== 'string' || Number.isNaN(Date.parse(fields.time))) {
    throw new FleetkeyError('validation_failed', 'audit entry time must be an ISO-8601 string', { details: { path: 'time' } });
  }
  if (typeof fields.actor !== 'string' || !fields.actor) {
    throw new FleetkeyError('validation_failed', 'audit entry actor is required', { details: { path: 'actor' } });
  }
  if (!(AUDIT_TYPES as readonly string[]).includes(fields.type)) {
    throw new FleetkeyError('validation_failed', `unknown audit entry type ${String(fields.type)}`, { details: { path: 'type' } });
  }
  refuseSecrets(fields.data, 'data');
  refuseSecrets(fields.decision, 'decision');
  let data: Json;
  let decision: Json | undefined;
  try {
    data = toPlainJson<Json>(fields.data ?? {});
    decision = fields.decision === undefined ? undefined : toPlainJson<Json>(fields.decision);
  } catch (e) {
    if (e instanceof CanonicalJsonError) {
      throw new FleetkeyError('validation_failed', `audit entry is not canonical JSON: ${e.message}`, { details: { path: e.path } });
    }
    throw e;
  }
  const body: Omit<AuditEntry, 'hash'> = {
    seq: prev ? prev.seq + 1 : 1,
    prev: prev ? prev.hash : GENESIS_PREV,
    time: fields.time,
    actor: fields.actor,
    type: fields.type,
    ...(fields.requestDigest !== undefined ? { requestDigest: fields.requestDigest } : {}),
    ...(decision !== undefined ? { decision } : {}),
    ...(fields.policyVersion !== undefined ? { policyVersion: fields.policyVersion } : {}),
    ...(fields.outcome !== undefined ? { outcome: fields.outcome } : {}),
    data,
  };
  return { ...body, hash: entryHash(body) };
}

/** The exact bytes a checkpoint signature covers. */
export function checkpointMessage(seq: number, head: string): Uint8Array {
  return utf8ToBytes(CHECKPOINT_DOMAIN + canonicalJson({ head, seq }));
}

/** Append a signed checkpoint over `head` (the current last entry). Pure apart from `signer.sign`. */
export function makeCheckpoint(
  head: AuditEntry,
  signer: CheckpointSigner,
  fields: { time: string; actor: string },
): AuditEntry {
  const signature = bytesToHex(signer.sign(checkpointMessage(head.seq, head.hash)));
  const data: CheckpointData = { seq: head.seq, head: head.hash, publicKey: signer.publicKey.toLowerCase(), signature };
  return appendEntry(head, { ...fields, type: 'checkpoint', data: data as unknown as Json });
}

/** Convenience signer over a raw 32-byte Ed25519 secret key (tests, single-node dev). */
export function ed25519CheckpointSigner(secretKey: Uint8Array): CheckpointSigner {
  return {
    publicKey: bytesToHex(ed25519.getPublicKey(secretKey)),
    sign: (m) => ed25519.sign(m, secretKey),
  };
}

/** Check a checkpoint's Ed25519 signature (does not check that its key is trusted). */
export function verifyCheckpointSignature(data: CheckpointData): boolean {
  try {
    if (!HEX64.test(data.publicKey) || !/^[0-9a-f]{128}$/.test(data.signature)) return false;
    return ed25519.verify(hexToBytes(data.signature), checkpointMessage(data.seq, data.head), hexToBytes(data.publicKey));
  } catch {
    return false;
  }
}

/** One canonical JSON line per entry, '\n'-terminated. */
export function exportJsonl(entries: readonly AuditEntry[]): string {
  return entries.map((e) => canonicalJson(e) + '\n').join('');
}

function refuseSecrets(v: unknown, path: string): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => refuseSecrets(x, `${path}[${i}]`));
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (SECRET_KEY_NAMES.test(k)) {
      throw new FleetkeyError('validation_failed', `audit data must not carry secrets (field ${path}.${k})`, {
        details: { path: `${path}.${k}` },
      });
    }
    refuseSecrets(x, `${path}.${k}`);
  }
}
