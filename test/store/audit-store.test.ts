/**
 * The audit store: a chain longer than one read page exports whole (it used to stop at 100,000
 * entries, so a long-lived server's export failed its own verification), and the console's
 * newest-first search reads pages below a cursor, matching terms anywhere in an entry, with `_`
 * and `%` taken literally.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519CheckpointSigner, verifyLog } from '../../src/audit/index.ts';
import { AuditLog, CHECKPOINT_EVERY } from '../../src/store/audit-store.ts';
import { storageBackends } from '../helpers/backends.ts';

const { backends, fresh } = storageBackends('fk-audit');

for (const [name, cfg] of backends)
  describe(`audit store (${name})`, () => {
    test('a chain of more rows than one export page exports whole and verifies; newest-first pages and terms', async () => {
      const db = await fresh(cfg);
      const secret = ed25519.utils.randomSecretKey();
      const log = new AuditLog(db, ed25519CheckpointSigner(secret), 'server');
      await log.init();
      const N = 10_050;
      await db.tx(async (q) => {
        for (let i = 1; i <= N; i++) await log.appendIn(q, { type: 'admin', outcome: i % 1000 === 0 ? 'wallet_created' : 'signed', data: { walletId: i % 2 ? 'wal_odd' : 'wal_even_1', n: i } });
      });
      const jsonl = await log.exportJsonl();
      const lines = jsonl.trim().split('\n');
      const kinds = lines.map((l) => JSON.parse(l).type as string);
      assert.equal(kinds.filter((t) => t !== 'checkpoint').length, N, 'every entry, past the 10,000-row page');
      assert.ok(kinds.filter((t) => t === 'checkpoint').length >= Math.floor(N / CHECKPOINT_EVERY), 'and the checkpoints among them');
      const v = verifyLog(jsonl, { trustedKeys: [log.publicKey] });
      assert.equal(v.ok, true, JSON.stringify(v.firstBroken));

      const top = await log.newestFirst({ limit: 3, contains: [] });
      assert.deepEqual(top.map((e) => e.seq), [lines.length, lines.length - 1, lines.length - 2]);
      const below = await log.newestFirst({ before: top[2].seq, limit: 2, contains: [] });
      assert.deepEqual(below.map((e) => e.seq), [top[2].seq - 1, top[2].seq - 2]);
      const created = await log.newestFirst({ limit: 100, contains: ['wallet_created'] });
      assert.deepEqual(created.map((e) => (e as { data?: { n?: number } }).data?.n), [10_000, 9000, 8000, 7000, 6000, 5000, 4000, 3000, 2000, 1000]);
      // `_` is a LIKE wildcard unless escaped: as one, 'walle_Id' would match every entry's "walletId".
      assert.equal((await log.newestFirst({ limit: 10, contains: ['walle_Id'] })).length, 0);
      assert.equal((await log.newestFirst({ limit: 10, contains: ['wal_even_1'] })).length, 10);
    });
  });
