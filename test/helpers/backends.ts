/**
 * The storage backends every repository suite runs against: SQLite always, PostgreSQL when
 * FLEETKEY_TEST_PG is set (each opened database in a fresh schema, dropped after the suite).
 */
import { after } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db, type DbConfig } from '../../src/store/db.ts';

export function storageBackends(prefix: string): { backends: [string, () => DbConfig][]; fresh: (cfg: () => DbConfig) => Promise<Db> } {
  const backends: [string, () => DbConfig][] = [['sqlite', () => ({ kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), `${prefix}-`)), 'db.sqlite') })]];
  if (process.env.FLEETKEY_TEST_PG) {
    const url = process.env.FLEETKEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    // Four connections a handle: enough for transactions to contend, and a file's handles (closed after
    // its last test) stay well inside the server's max_connections while the other suites run beside it.
    backends.push(['postgres', () => ({ kind: 'postgres', url, schema: `fk_test_${process.pid}_${Math.floor(Math.random() * 1e9)}`, poolMax: 4 })]);
  }
  const opened: Db[] = [];
  after(async () => {
    for (const db of opened) {
      if (db.kind === 'postgres') {
        const schema = (await db.all('SELECT current_schema() AS s'))[0].s as string;
        if (schema.startsWith('fk_test_')) await db.run(`DROP SCHEMA ${schema} CASCADE`);
      }
      await db.close();
    }
  });
  const fresh = async (cfg: () => DbConfig) => {
    const db = await openDb(cfg());
    opened.push(db);
    return db;
  };
  return { backends, fresh };
}
