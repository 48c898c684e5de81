/**
 * The nonce ledger: why a consumed FROST nonce cannot come back, even to someone who can write the
 * signer's database (a shared PostgreSQL) but cannot read its KEK (issue 15, item 5).
 *
 * The threat. Sealing binds a nonce record to its identity (id, wallet, epoch), not to its
 * freshness: the database writer saves a sealed nonce row, lets it be used once, then puts the row
 * back and deletes its `consumed_nonces` row. The node would use the nonce again for another
 * message, and two shares under one nonce give the share away. Nothing kept only in the database
 * can stop this (the writer can roll the whole database back), so the trusted state has to include
 * something the writer cannot touch: the node's data dir, beside the KEK.
 *
 * The scheme (chosen over a MAC'd consumed log, see below):
 * - Every nonce gets a sequence number `seq` from a per-node counter that only grows, and is sealed
 *   with `(ledger id, seq)` in its associated data, next to its id, wallet and epoch. The ledger id
 *   is 16 random bytes made with the ledger file: a lost or recreated file gives a new id, under
 *   which no earlier sealed nonce opens.
 * - The file `DATA/nonce-ledger.json` holds the ledger id, the next `seq`, and the set of `seq`s
 *   still *live* (issued, not yet spent), as ranges, with an HMAC-SHA256 under a key derived from
 *   the KEK (HKDF, its own label). It is replaced atomically (write a temporary file, fsync, rename,
 *   fsync the directory).
 * - To sign, the node takes the nonce row out of the database as before (the durable, crash-safe
 *   consumption), opens it (the row's `seq` must be the one it was sealed with), then removes `seq`
 *   from the live set and waits until the file saying so is on disk before the signature share
 *   leaves the node (the share is computed while the file is written: nothing computed from the
 *   nonce is returned, logged or stored before the write completes, and a failed write discards
 *   it). A `seq` not live is `nonce_consumed`, whatever the database says.
 *
 * Why a nonce yields at most one share, ever: a share from nonce (L, s) leaves the node only after a
 * file without s in ledger L's live set is durable; the set only loses members after that (s is
 * never issued again: `next` only grows, and a new file is a new L). The database cannot add s
 * back: it never holds the file, and a row whose `seq` it changes does not open.
 *
 * Crash-safety (the order is: database commit, then file, then the share leaves):
 * - crash after the database consumed the nonce, before the file was written: the file still lists s
 *   as live, but no share left the node (one computed meanwhile died with the process), so at most
 *   one share can ever leave from it (even if the row is restored later). The node starts normally; `retain` drops live seqs whose
 *   rows are gone (removing is always safe).
 * - crash inside the file write: the rename is atomic, so the old file (s live, no share out yet) or
 *   the new one is there.
 * - crash after the file write: s is spent for good; the nonce row is already gone.
 * - lost or corrupt file: a lost file is replaced by a new ledger (every pooled nonce stops being
 *   usable: the server makes fresh ones); a corrupt one (bad MAC) stops the node from starting,
 *   and deleting it is always safe.
 * Issuing is the same in reverse: the fresh seqs are live in the file before the nonces'
 * commitments leave the node; a crash before that leaves rows that never open as live (refused).
 *
 * Why not a MAC'd consumed log with a head record (a consecutive, KEK-MAC'd row per consumption,
 * a count in the file): proving that a given nonce is *not* in that log needs every row's MAC
 * checked on every signature (an attacker can replace a deleted row with a forged one at the same
 * position), so the cost grows with the history. Here the check is one in-memory lookup and the
 * cost per signature is one small file write (measured in bench/nonce-ledger.bench.ts).
 *
 * What it does not cover: someone who can write the data dir itself can put an older ledger file
 * back (the MAC stops edits, not replays): the data dir is trusted like the KEK file beside it.
 * The live set is kept in memory and on disk in full; it holds only nonces issued and not yet
 * used (ranges: batches are consecutive), pruned of rows the database no longer holds at start.
 */
import { readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { secretEquals } from '../http/common.ts';

const fileSchema = z.strictObject({
  v: z.literal(1),
  ledger: z.string().regex(/^[0-9a-f]{32}$/),
  next: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  live: z.array(z.tuple([z.number().int().min(0), z.number().int().min(1)])),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});

/** Half-open ranges [start, end), sorted, disjoint, non-adjacent. */
type Ranges = [number, number][];

export class NonceLedger {
  private writing: Promise<void> = Promise.resolve();
  /** A write queued but not started: a change made now is in it (its snapshot is taken when it starts). */
  private queued?: Promise<void>;

  private constructor(
    private readonly file: string,
    private readonly macKey: Uint8Array,
    readonly id: string,
    private next: number,
    private live: Ranges,
  ) {}

  /** Opens the ledger file, or starts a new ledger (new id: no earlier sealed nonce opens under it). */
  static async open(file: string, kek: Uint8Array): Promise<NonceLedger> {
    const macKey = hkdf(sha256, kek, undefined, utf8ToBytes('fleetkey nonce-ledger v1'), 32);
    let raw: string | undefined;
    try {
      raw = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (raw === undefined) {
      const fresh = new NonceLedger(file, macKey, bytesToHex(randomBytes(16)), 0, []);
      await fresh.persist();
      return fresh;
    }
    let parsed: z.infer<typeof fileSchema>;
    try {
      parsed = fileSchema.parse(JSON.parse(raw));
    } catch {
      throw new FleetkeyError('bad_request', `nonce ledger ${file} is malformed (deleting it is safe: pooled nonces are then refused and made afresh)`);
    }
    const { mac, ...body } = parsed;
    if (!secretEquals(mac, macOf(macKey, body))) throw new FleetkeyError('bad_request', `nonce ledger ${file} does not verify under this KEK (deleting it is safe: pooled nonces are then refused and made afresh)`);
    return new NonceLedger(file, macKey, body.ledger, body.next, body.live);
  }

  /** The associated data a nonce is sealed with: its identity and its place in this ledger. */
  context(nonceId: string, walletId: string, epoch: number, seq: number): string {
    return `nonce|${nonceId}|${walletId}|${epoch}|${this.id}|${seq}`;
  }

  /** `count` fresh sequence numbers, live from now on; `persist()` before their commitments leave the node. Returns the first. */
  allocate(count: number): number {
    const first = this.next;
    this.next += count;
    const last = this.live.at(-1);
    if (last && last[1] === first) last[1] = this.next;
    else this.live.push([first, this.next]);
    return first;
  }

  isLive(seq: number): boolean {
    return this.find(seq) >= 0;
  }

  /** Takes `seq` out of the live set; false if it was not live (spent, never issued here, or of a lost ledger). Synchronous: two callers cannot both get true. */
  spend(seq: number): boolean {
    const i = this.find(seq);
    if (i < 0) return false;
    const [a, b] = this.live[i];
    const parts: Ranges = [];
    if (a < seq) parts.push([a, seq]);
    if (seq + 1 < b) parts.push([seq + 1, b]);
    this.live.splice(i, 1, ...parts);
    return true;
  }

  /** The seq the next `allocate` starts at: pass it to `retain` as read before the database was. */
  get nextSeq(): number {
    return this.next;
  }

  /**
   * Keeps, of the live seqs below `below`, only those in `present` (the nonce rows the database held
   * when read; seqs allocated since are left alone). Only ever removes: safe whatever the database says.
   */
  retain(present: Iterable<number>, below: number): void {
    const keep = [...new Set(present)].filter((s) => s < below && this.isLive(s));
    for (const [a, b] of this.live) for (let s = Math.max(a, below); s < b; s++) keep.push(s);
    keep.sort((x, y) => x - y);
    const out: Ranges = [];
    for (const s of keep) {
      const last = out.at(-1);
      if (last && last[1] === s) last[1] = s + 1;
      else out.push([s, s + 1]);
    }
    this.live = out;
  }

  /**
   * Resolves once a file holding every change made before this call is on disk. The file is
   * written on libuv's thread pool (node:fs/promises), so the caller may compute while the fsyncs
   * run; what it computes from a spent nonce must not leave the node before this resolves.
   */
  persist(): Promise<void> {
    if (this.queued) return this.queued;
    const p = this.writing.then(() => {
      this.queued = undefined;
      return this.write();
    });
    this.queued = p;
    this.writing = p.catch(() => undefined);
    return p;
  }

  /** Live seqs (for tests and diagnostics). */
  liveCount(): number {
    return this.live.reduce((n, [a, b]) => n + b - a, 0);
  }

  private find(seq: number): number {
    let lo = 0;
    let hi = this.live.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.live[mid];
      if (seq < a) hi = mid - 1;
      else if (seq >= b) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /**
   * Atomic replace: temporary file, fsync, rename, fsync of the directory, off the event loop. The
   * snapshot is taken before the first await.
   */
  private async write(): Promise<void> {
    const body = { v: 1 as const, ledger: this.id, next: this.next, live: this.live.map(([a, b]) => [a, b] as [number, number]) };
    const text = JSON.stringify({ ...body, mac: macOf(this.macKey, body) });
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const dir = await open(dirname(this.file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

function macOf(key: Uint8Array, body: { v: 1; ledger: string; next: number; live: Ranges }): string {
  // Fixed field order (JSON.stringify of this literal), every field a number or lowercase hex.
  return bytesToHex(hmac(sha256, key, utf8ToBytes(JSON.stringify({ v: body.v, ledger: body.ledger, next: body.next, live: body.live }))));
}
