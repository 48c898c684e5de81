/**
 * Offline verifier for an exported audit log (JSON Lines, one entry a line, as `exportJsonl` writes).
 * Stops at the first problem and names it by line (1-based) and, when readable, seq.
 *
 * What it can and cannot see:
 * - a changed entry whose stored hash was left alone: `bad_hash` at that line;
 * - a changed entry whose hash was recomputed: `bad_prev` at the next line, or `bad_checkpoint` at the next
 *   checkpoint if the whole tail was re-chained (the signed head no longer matches);
 * - deleted / reordered / inserted entries: `bad_seq` or `bad_prev` at the first line out of place;
 * - garbled or cut-off JSON: `invalid_json`; wrong field types: `bad_shape`;
 * - forged checkpoints: `bad_signature`, or `untrusted_key` when `trustedKeys` is given;
 * - entries cut off the end: only against an `expectedHead` (from a checkpoint or a store you trust):
 *   `truncated`. Without one, the entries after the last checkpoint are reported as not sealed.
 */
import { AUDIT_TYPES, GENESIS_PREV, entryHash, verifyCheckpointSignature, type AuditEntry, type CheckpointData } from './chain.ts';

export type BrokenCode =
  | 'invalid_json'
  | 'bad_shape'
  | 'bad_seq'
  | 'bad_prev'
  | 'bad_hash'
  | 'bad_checkpoint'
  | 'bad_signature'
  | 'untrusted_key'
  | 'truncated';

export interface BrokenAt {
  /** 1-based line of the exported text. For `truncated`, the line where the missing entry should be. */
  line: number;
  /** seq of the offending entry, when it could be read. */
  seq?: number;
  code: BrokenCode;
  reason: string;
}

export interface VerifyOptions {
  /** Ed25519 public keys (hex) allowed to sign checkpoints. When given, any other key fails the log. */
  trustedKeys?: readonly string[];
  /** The head the log must reach (seq and hash), e.g. from the last checkpoint you hold; detects truncation. */
  expectedHead?: { seq: number; hash: string };
  /** To verify a segment (a rotated file): the seq and hash of the entry just before its first line. */
  anchor?: { seq: number; hash: string };
}

export interface VerifyResult {
  ok: boolean;
  /** The entries read and verified, in order, up to (not including) the first broken one. */
  entries: AuditEntry[];
  head?: { seq: number; hash: string };
  checkpoints: { seq: number; covers: number; publicKey: string }[];
  /** seq of the last entry a verified checkpoint covers (0: none). Later entries are chained but not signed. */
  sealedThrough: number;
  firstBroken?: BrokenAt;
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEYS = new Set(['seq', 'prev', 'time', 'actor', 'type', 'requestDigest', 'decision', 'policyVersion', 'outcome', 'data', 'hash']);
const TYPES = new Set<string>(AUDIT_TYPES);

export function verifyLog(jsonlText: string, opts: VerifyOptions = {}): VerifyResult {
  const trusted = opts.trustedKeys ? new Set(opts.trustedKeys.map((k) => k.toLowerCase())) : undefined;
  const entries: AuditEntry[] = [];
  const checkpoints: VerifyResult['checkpoints'] = [];
  let sealedThrough = 0;
  const lines = jsonlText.split('\n');
  // One final '\n' is the normal terminator; anything else empty is a garbled line.
  if (lines.length && lines[lines.length - 1] === '') lines.pop();

  const done = (firstBroken?: BrokenAt): VerifyResult => {
    const last = entries[entries.length - 1];
    return {
      ok: !firstBroken,
      entries,
      head: last ? { seq: last.seq, hash: last.hash } : undefined,
      checkpoints,
      sealedThrough,
      ...(firstBroken ? { firstBroken } : {}),
    };
  };

  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(lines[i]);
    } catch {
      return done({ line, code: 'invalid_json', reason: 'line is not valid JSON (garbled or cut off)' });
    }
    const shapeErr = checkShape(parsed);
    const seq = isRecord(parsed) && Number.isSafeInteger(parsed.seq) ? (parsed.seq as number) : undefined;
    if (shapeErr) return done({ line, seq, code: 'bad_shape', reason: shapeErr });
    const e = parsed as AuditEntry;
    const before = entries[entries.length - 1];
    const wantSeq = before ? before.seq + 1 : opts.anchor ? opts.anchor.seq + 1 : 1;
    if (e.seq !== wantSeq) {
      return done({ line, seq: e.seq, code: 'bad_seq', reason: `expected seq ${wantSeq}, found ${e.seq} (entry deleted, inserted or moved)` });
    }
    const wantPrev = before ? before.hash : opts.anchor ? opts.anchor.hash.toLowerCase() : GENESIS_PREV;
    if (e.prev !== wantPrev) {
      return done({ line, seq: e.seq, code: 'bad_prev', reason: 'prev does not match the hash of the entry before it' });
    }
    if (entryHash(e) !== e.hash) {
      return done({ line, seq: e.seq, code: 'bad_hash', reason: 'entry content does not match its hash (entry changed)' });
    }
    if (e.type === 'checkpoint') {
      const cp = e.data as unknown as CheckpointData;
      if (!isCheckpointData(cp)) {
        return done({ line, seq: e.seq, code: 'bad_checkpoint', reason: 'checkpoint data must be {seq, head, publicKey, signature}' });
      }
      const signed = before ?? (opts.anchor ? { seq: opts.anchor.seq, hash: opts.anchor.hash.toLowerCase() } : undefined);
      if (!signed || cp.seq !== signed.seq || cp.head !== signed.hash) {
        return done({ line, seq: e.seq, code: 'bad_checkpoint', reason: 'checkpoint does not sign the entry before it (log rewritten?)' });
      }
      if (!verifyCheckpointSignature(cp)) {
        return done({ line, seq: e.seq, code: 'bad_signature', reason: 'checkpoint signature does not verify' });
      }
      if (trusted && !trusted.has(cp.publicKey)) {
        return done({ line, seq: e.seq, code: 'untrusted_key', reason: `checkpoint signed by a key not in trustedKeys (${cp.publicKey})` });
      }
      checkpoints.push({ seq: e.seq, covers: cp.seq, publicKey: cp.publicKey });
      sealedThrough = cp.seq;
    }
    entries.push(e);
  }

  if (opts.expectedHead) {
    const { seq, hash } = opts.expectedHead;
    const reached = entries.find((x) => x.seq === seq);
    if (!reached) {
      const lastSeq = entries[entries.length - 1]?.seq ?? opts.anchor?.seq ?? 0;
      return done({ line: lines.length + 1, seq: lastSeq + 1, code: 'truncated', reason: `log ends before expected head seq ${seq}` });
    }
    if (reached.hash !== hash.toLowerCase()) {
      return done({ line: entries.indexOf(reached) + 1, seq, code: 'bad_hash', reason: 'entry at expected head seq has a different hash (history rewritten)' });
    }
  }
  return done();
}

/** A plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkShape(v: unknown): string | undefined {
  if (!isRecord(v)) return 'entry must be a JSON object';
  for (const k of Object.keys(v)) if (!KEYS.has(k)) return `unexpected field ${k}`;
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) return 'seq must be a positive integer';
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev)) return 'prev must be 64 lowercase hex digits';
  if (typeof v.hash !== 'string' || !HEX64.test(v.hash)) return 'hash must be 64 lowercase hex digits';
  if (typeof v.time !== 'string' || Number.isNaN(Date.parse(v.time))) return 'time must be an ISO-8601 string';
  if (typeof v.actor !== 'string' || !v.actor) return 'actor must be a non-empty string';
  if (typeof v.type !== 'string' || !TYPES.has(v.type)) return 'type is not a known audit entry type';
  if (v.requestDigest !== undefined && typeof v.requestDigest !== 'string') return 'requestDigest must be a string';
  if (v.outcome !== undefined && typeof v.outcome !== 'string') return 'outcome must be a string';
  if (v.policyVersion !== undefined && typeof v.policyVersion !== 'string' && typeof v.policyVersion !== 'number') {
    return 'policyVersion must be a string or number';
  }
  if (!('data' in v)) return 'data is required';
  return undefined;
}

function isCheckpointData(d: unknown): d is CheckpointData {
  return (
    isRecord(d) &&
    Number.isSafeInteger(d.seq) &&
    typeof d.head === 'string' &&
    typeof d.publicKey === 'string' &&
    typeof d.signature === 'string'
  );
}
