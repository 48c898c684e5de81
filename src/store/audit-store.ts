/**
 * A process's audit chain, persisted: each entry hash-linked to the one before (src/audit), and
 * every CHECKPOINT_EVERY entries a checkpoint signed by the process's Ed25519 key. Appends can run
 * inside a caller's transaction (`appendIn`), so an event and its audit entry commit together:
 * nothing is told to have happened unless its entry is durable.
 */
import { appendEntry, makeCheckpoint, exportJsonl, type AuditEntry, type AuditFields, type CheckpointSigner } from '../audit/index.ts';
import type { Db, Queryable } from './db.ts';

export const AUDIT_MIGRATIONS = [`CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry TEXT NOT NULL)`];
export const CHECKPOINT_EVERY = 64;

export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly signer: CheckpointSigner,
    private readonly actor: string,
  ) {}

  async init(): Promise<void> {
    await this.db.migrate('audit', AUDIT_MIGRATIONS);
  }

  get publicKey(): string {
    return this.signer.publicKey;
  }

  private async head(q: Queryable): Promise<AuditEntry | null> {
    const r = await q.all(`SELECT entry FROM audit_log ORDER BY seq DESC LIMIT 1`);
    return r[0] ? (JSON.parse(r[0].entry as string) as AuditEntry) : null;
  }

  private async insert(q: Queryable, e: AuditEntry): Promise<void> {
    await q.run(`INSERT INTO audit_log (seq, hash, entry) VALUES ($1, $2, $3)`, [e.seq, e.hash, JSON.stringify(e)]);
  }

  /** Appends inside an open transaction (the caller's), with a checkpoint when one is due. */
  async appendIn(q: Queryable, fields: Omit<AuditFields, 'time' | 'actor'> & { actor?: string }): Promise<AuditEntry> {
    const prev = await this.head(q);
    const e = appendEntry(prev, { time: new Date().toISOString(), actor: this.actor, ...fields });
    await this.insert(q, e);
    if (e.seq % CHECKPOINT_EVERY === 0) await this.insert(q, makeCheckpoint(e, this.signer, { time: e.time, actor: this.actor }));
    return e;
  }

  /** Appends in a transaction of its own; concurrent appends on PostgreSQL retry on a seq clash. */
  async append(fields: Omit<AuditFields, 'time' | 'actor'> & { actor?: string }): Promise<AuditEntry> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.tx((q) => this.appendIn(q, fields));
      } catch (e) {
        if (attempt < 8 && /duplicate key|UNIQUE constraint/i.test((e as Error).message)) continue;
        throw e;
      }
    }
  }

  /** Seals the current head with a signed checkpoint (e.g. before an export). */
  async checkpoint(): Promise<AuditEntry | null> {
    return this.db.tx(async (q) => {
      const h = await this.head(q);
      if (!h || h.type === 'checkpoint') return h;
      const cp = makeCheckpoint(h, this.signer, { time: new Date().toISOString(), actor: this.actor });
      await this.insert(q, cp);
      return cp;
    });
  }

  async entries(afterSeq = 0, limit = 100_000): Promise<AuditEntry[]> {
    const r = await this.db.all(`SELECT entry FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit]);
    return r.map((x) => JSON.parse(x.entry as string) as AuditEntry);
  }

  async exportJsonl(): Promise<string> {
    return exportJsonl(await this.entries());
  }
}
