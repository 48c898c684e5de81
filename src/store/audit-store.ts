/**
 * A process's audit chain, persisted: each entry hash-linked to the one before (src/audit), and
 * every CHECKPOINT_EVERY entries a checkpoint signed by the process's Ed25519 key. Appends can run
 * inside a caller's transaction (`appendIn`), so an event and its audit entry commit together:
 * nothing is told to have happened unless its entry is durable.
 *
 * One chain per checkpoint key. Several API servers share one PostgreSQL schema (README, "Several
 * API servers"); each keeps its own chain in the shared table, named by its checkpoint public key.
 * Why not one shared chain: a shared chain needs every append of every server serialized on one
 * head row (a global lock held across each audited write), and its checkpoints would be signed by
 * several keys, so an offline verifier would need to know which keys may sign it. A chain per key
 * appends without contention between servers, is exported and checked exactly like a single
 * process's (`fleetkey audit verify FILE --key HEX`, each checkpoint signed by that one key), and a
 * chain id that *is* its key cannot be claimed by another server. A server's chain survives it: any
 * server exports it (`GET /v1/audit?chain=KEY`), only its owner seals it with a new checkpoint.
 */
import { appendEntry, makeCheckpoint, exportJsonl, type AuditEntry, type AuditFields, type CheckpointSigner } from '../audit/index.ts';
import type { Db, Param, Queryable } from './db.ts';

export const AUDIT_MIGRATIONS = [
  `CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry TEXT NOT NULL)`,
  // Entries written before chains were named are this store's one chain: '' until its owner claims it (init).
  `CREATE TABLE audit_chain_log (chain TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (chain, seq));
   INSERT INTO audit_chain_log (chain, seq, hash, entry) SELECT '', seq, hash, entry FROM audit_log;
   DROP TABLE audit_log`,
];
export const CHECKPOINT_EVERY = 64;
/** Above every seq (the column is a 32-bit INTEGER on PostgreSQL). */
export const SEQ_MAX = 2 ** 31 - 1;
/** Rows per read when a whole chain is exported. */
const EXPORT_PAGE = 10_000;

export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly signer: CheckpointSigner,
    private readonly actor: string,
  ) {}

  async init(): Promise<void> {
    await this.db.migrate('audit', AUDIT_MIGRATIONS);
    // A store upgraded from one unnamed chain: that chain was this process's (one process per store then).
    if ((await this.db.all(`SELECT 1 FROM audit_chain_log WHERE chain = '' LIMIT 1`)).length)
      await this.db.run(`UPDATE audit_chain_log SET chain = $1 WHERE chain = ''`, [this.chain]);
  }

  /** This process's chain id: its checkpoint public key (lowercase hex). */
  get chain(): string {
    return this.signer.publicKey.toLowerCase();
  }

  /** Every chain in the store (one per server that shares it), with its last sequence number. */
  async chains(): Promise<{ chain: string; head: number }[]> {
    const r = await this.db.all(`SELECT chain, MAX(seq) AS head FROM audit_chain_log GROUP BY chain ORDER BY chain`);
    return r.map((x) => ({ chain: x.chain as string, head: Number(x.head) }));
  }

  get publicKey(): string {
    return this.signer.publicKey;
  }

  private async head(q: Queryable): Promise<AuditEntry | null> {
    const r = await q.all(`SELECT entry FROM audit_chain_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, [this.chain]);
    return r[0] ? (JSON.parse(r[0].entry as string) as AuditEntry) : null;
  }

  /** PostgreSQL: holds this chain's append lock until the transaction ends (see appendIn). */
  private async lockChain(q: Queryable): Promise<void> {
    if (this.db.kind === 'postgres') await q.all(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/audit/' || $1))`, [this.chain]);
  }

  private async insert(q: Queryable, e: AuditEntry): Promise<void> {
    await q.run(`INSERT INTO audit_chain_log (chain, seq, hash, entry) VALUES ($1, $2, $3, $4)`, [this.chain, e.seq, e.hash, JSON.stringify(e)]);
  }

  /**
   * Appends inside an open transaction (the caller's), with a checkpoint when one is due. On
   * PostgreSQL (READ COMMITTED) two transactions could read the same head and the later insert
   * would fail on the (chain, seq) key, failing the caller's whole transaction (a signer's share,
   * say); so appends to one chain take a transaction-scoped advisory lock first and queue instead.
   * SQLite's single writer already serializes them.
   */
  async appendIn(q: Queryable, fields: Omit<AuditFields, 'time' | 'actor'> & { actor?: string }): Promise<AuditEntry> {
    await this.lockChain(q);
    const prev = await this.head(q);
    const e = appendEntry(prev, { time: new Date().toISOString(), actor: this.actor, ...fields });
    await this.insert(q, e);
    if (e.seq % CHECKPOINT_EVERY === 0) await this.insert(q, makeCheckpoint(e, this.signer, { time: e.time, actor: this.actor }));
    return e;
  }

  /**
   * Appends in a transaction of its own (a seq clash, which the lock above rules out on one store, is
   * retried). `also`: another repository's write that commits with the entry or not at all (one
   * fsync for both; it may run again on a retry, in a fresh transaction).
   */
  async append(fields: Omit<AuditFields, 'time' | 'actor'> & { actor?: string }, also?: (q: Queryable) => Promise<unknown>): Promise<AuditEntry> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.tx(async (q) => {
          const e = await this.appendIn(q, fields);
          await also?.(q);
          return e;
        });
      } catch (e) {
        if (attempt < 8 && /duplicate key|UNIQUE constraint/i.test((e as Error).message)) continue;
        throw e;
      }
    }
  }

  /** Seals the current head with a signed checkpoint (e.g. before an export). */
  async checkpoint(): Promise<AuditEntry | null> {
    return this.db.tx(async (q) => {
      await this.lockChain(q);
      const h = await this.head(q);
      if (!h || h.type === 'checkpoint') return h;
      const cp = makeCheckpoint(h, this.signer, { time: new Date().toISOString(), actor: this.actor });
      await this.insert(q, cp);
      return cp;
    });
  }

  /** Entries of this process's chain, or of `chain` (another server's, in a shared store). */
  async entries(afterSeq = 0, limit = 100_000, chain = this.chain): Promise<AuditEntry[]> {
    const r = await this.db.all(`SELECT entry FROM audit_chain_log WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [chain, afterSeq, limit]);
    return r.map((x) => JSON.parse(x.entry as string) as AuditEntry);
  }

  /**
   * The whole chain as JSON lines, read in pages. (It used to read the first 100,000 entries only: a
   * longer chain was exported cut short, and then failed its own verification.)
   */
  async exportJsonl(chain = this.chain): Promise<string> {
    const parts: string[] = [];
    for (let after = 0; ; ) {
      const page = await this.entries(after, EXPORT_PAGE, chain);
      parts.push(exportJsonl(page));
      if (page.length < EXPORT_PAGE) return parts.join('');
      after = page[page.length - 1].seq;
    }
  }

  /**
   * Entries of a chain newest first, before `before` (a seq; none: from the head), at most `limit`
   * of them, each containing every string of `contains` somewhere in its stored JSON: a cheap
   * pre-filter for the console's search (the strings are restricted by the route to characters JSON
   * never escapes, so a field that holds one always matches; the route then checks the field).
   */
  async newestFirst(o: { before?: number; limit: number; contains: readonly string[]; chain?: string }): Promise<AuditEntry[]> {
    const args: Param[] = [o.chain ?? this.chain, o.before ?? SEQ_MAX];
    // Placeholders numbered in order: SQLite binds them by position.
    const like = o.contains.map((x) => (args.push(`%${x.replace(/[\\%_]/g, (m) => `\\${m}`)}%`), `AND entry LIKE $${args.length} ESCAPE '\\'`)).join(' ');
    args.push(o.limit);
    const r = await this.db.all(`SELECT entry FROM audit_chain_log WHERE chain = $1 AND seq < $2 ${like} ORDER BY seq DESC LIMIT $${args.length}`, args);
    return r.map((x) => JSON.parse(x.entry as string) as AuditEntry);
  }
}
