/**
 * The one SQL seam under every repository: SQLite (default, zero set-up, better-sqlite3) and
 * PostgreSQL (`pg`). Repositories write portable SQL with `$1, $2…` placeholders, TEXT / BIGINT
 * columns and `RETURNING`; this layer maps placeholders for SQLite and runs transactions.
 *
 * Durability: SQLite runs in WAL mode with `synchronous = FULL`, so a committed transaction has
 * been fsync'ed before `tx()` resolves; PostgreSQL commits are durable by default. Callers rely on
 * this for "consume the nonce before anything derived from it leaves the node".
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export type Row = Record<string, unknown>;
export type Param = string | number | bigint | null;

export interface Queryable {
  all(sql: string, params?: Param[]): Promise<Row[]>;
  run(sql: string, params?: Param[]): Promise<number>;
}

export interface Db extends Queryable {
  readonly kind: 'sqlite' | 'postgres';
  /** Runs `fn` in one transaction (READ COMMITTED on PostgreSQL: repositories use single atomic statements such as DELETE … RETURNING for races); commits only if it resolves. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Applies `migrations[i]` for every i not yet applied, each in its own transaction. */
  migrate(name: string, migrations: string[]): Promise<void>;
  close(): Promise<void>;
}

/** `poolMax`: the most PostgreSQL connections this handle opens at once (default 10). */
export type DbConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema?: string; poolMax?: number };

export async function openDb(cfg: DbConfig): Promise<Db> {
  return cfg.kind === 'sqlite' ? openSqlite(cfg.path) : openPostgres(cfg.url, cfg.schema, cfg.poolMax);
}

/** `postgres://…` → PostgreSQL; anything else is a SQLite file path. */
export function dbConfigFrom(urlOrPath: string, schema?: string): DbConfig {
  return /^postgres(ql)?:\/\//.test(urlOrPath) ? { kind: 'postgres', url: urlOrPath, schema } : { kind: 'sqlite', path: urlOrPath };
}

const toSqlite = (sql: string) => sql.replace(/\$\d+/g, '?');
const sqliteParams = (p: Param[] = []) => p.map((v) => (typeof v === 'bigint' ? v.toString() : v));

/** One connection, so transactions are serialized with a promise chain (an async mutex). */
function openSqlite(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const stmts = new Map<string, Database.Statement>();
  const prep = (sql: string) => {
    let s = stmts.get(sql);
    if (!s) stmts.set(sql, (s = db.prepare(toSqlite(sql))));
    return s;
  };
  const q: Queryable = {
    async all(sql, params) {
      const s = prep(sql);
      return s.reader ? (s.all(...sqliteParams(params)) as Row[]) : (s.run(...sqliteParams(params)), []);
    },
    async run(sql, params) {
      return prep(sql).run(...sqliteParams(params)).changes;
    },
  };
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };
  const self: Db = {
    kind: 'sqlite',
    // Outside a transaction, statements still queue behind any open transaction.
    all: (sql, params) => serial(() => q.all(sql, params)),
    run: (sql, params) => serial(() => q.run(sql, params)),
    tx: (fn) =>
      serial(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const r = await fn(q);
          db.exec('COMMIT');
          return r;
        } catch (e) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw e;
        }
      }),
    migrate: (name, migrations) => migrateWith(self, name, migrations),
    async close() {
      await chain;
      db.close();
    },
  };
  return self;
}

async function openPostgres(url: string, schema?: string, poolMax = 10): Promise<Db> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('invalid schema name');
  if (schema) {
    const boot = new pg.Client({ connectionString: url });
    await boot.connect();
    // Several servers may start at once on one schema: IF NOT EXISTS still races in the catalog.
    await boot.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`).catch(ignoreCreateRace);
    await boot.end();
  }
  // search_path as a connection option, so every pooled connection has it before its first query.
  const pool = new pg.Pool({ connectionString: url, max: poolMax, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  // pg returns BIGINT as string; repositories convert explicitly.
  const wrap = (c: pg.Pool | pg.PoolClient): Queryable => ({
    async all(sql, params) {
      return (await c.query(sql, params as unknown[])).rows as Row[];
    },
    async run(sql, params) {
      return (await c.query(sql, params as unknown[])).rowCount ?? 0;
    },
  });
  const base = wrap(pool);
  const self: Db = {
    kind: 'postgres',
    all: base.all,
    run: base.run,
    async tx(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await fn(wrap(c));
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    migrate: (name, migrations) => migrateWith(self, name, migrations),
    close: () => pool.end(),
  };
  return self;
}

/**
 * PostgreSQL's `CREATE … IF NOT EXISTS` checks, then inserts into the catalog: two processes doing it
 * at once can both pass the check, and the loser gets a unique violation (23505) or "already
 * exists" (42P06 schema, 42P07 relation). The object exists either way, which is all the caller wanted.
 */
function ignoreCreateRace(e: unknown): void {
  const code = (e as { code?: string }).code;
  if (code !== '23505' && code !== '42P06' && code !== '42P07') throw e;
}

/**
 * Several API servers share one PostgreSQL schema and may start together, so on PostgreSQL each
 * migration runs under a transaction-scoped advisory lock (one key per schema and repository) and
 * re-reads whether it is done once it holds it: exactly one process applies each version.
 */
async function migrateWith(db: Db, name: string, migrations: string[]): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, version))`).catch(ignoreCreateRace);
  const done = new Set((await db.all(`SELECT version FROM schema_migrations WHERE name = $1`, [name])).map((r) => Number(r.version)));
  for (let v = 0; v < migrations.length; v++) {
    if (done.has(v + 1)) continue;
    await db.tx(async (q) => {
      if (db.kind === 'postgres') {
        await q.all(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/migrate/' || $1))`, [name]);
        if ((await q.all(`SELECT 1 FROM schema_migrations WHERE name = $1 AND version = $2`, [name, v + 1])).length) return;
      }
      for (const stmt of migrations[v].split(';').map((s) => s.trim()).filter(Boolean)) await q.run(stmt);
      await q.run(`INSERT INTO schema_migrations (name, version) VALUES ($1, $2)`, [name, v + 1]);
    });
  }
}

/**
 * Readiness: proves the store takes a write now, with a real committed write (one row, overwritten
 * each time) rather than a read that a read-only or full database would still answer. The table
 * is created on the first call; call it once at start-up so a failure later is the store's.
 */
const probed = new WeakSet<Db>();
export async function probeWritable(db: Db): Promise<void> {
  if (!probed.has(db)) {
    await db.run(`CREATE TABLE IF NOT EXISTS fleetkey_liveness (id INTEGER PRIMARY KEY, at BIGINT NOT NULL)`).catch(ignoreCreateRace);
    probed.add(db);
  }
  await db.tx((q) => q.run(`INSERT INTO fleetkey_liveness (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, [Date.now()]));
}
