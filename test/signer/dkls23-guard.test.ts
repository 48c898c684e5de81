/**
 * The signer's DKLs23 session rules (src/signer/dkls23-guard.ts, issue 16 item 2) on a real SQLite
 * store: one signing per peer pair and wallet root, a ban in memory at once that revokes the open
 * sessions involving the culprit, and fail-closed when the ban cannot be written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/store/db.ts';
import { SignerStore } from '../../src/store/signer-store.ts';
import { Dkls23Guard } from '../../src/signer/dkls23-guard.ts';

const code = (f: () => unknown, c: string, detail?: [string, string]) =>
  assert.throws(f, (e: any) => e.code === c && (!detail || e.details?.[detail[0]] === detail[1]), c);

test('one signing per peer pair and root; a ban revokes the open sessions with the culprit; a refresh (new epoch) starts clean', () => {
  const g = new Dkls23Guard();
  g.claim('s1', 'wal_a', 0, ['n1', 'n3'], []);
  code(() => g.claim('s2', 'wal_a', 0, ['n1'], []), 'session_busy', ['busyPeer', 'n1']);
  code(() => g.claim('s3', 'wal_a', 0, ['n3'], []), 'session_busy', ['busyPeer', 'n3']);
  g.claim('s4', 'wal_b', 0, ['n1'], []); // another wallet root: another Δ, not the same pair state
  g.claim('s5', 'wal_a', 0, ['n2'], []);
  // s1 involves the culprit: revoked; s4 (other root) and s5 (other peer) are not.
  assert.deepEqual(g.ban('wal_a', 0, 'n1'), ['s1']);
  code(() => g.assertLive('s1'), 'protocol_state', ['bannedPeer', 'n1']);
  g.assertLive('s4');
  g.assertLive('s5');
  g.release('s1');
  code(() => g.claim('s6', 'wal_a', 0, ['n1'], []), 'protocol_state', ['bannedPeer', 'n1']);
  code(() => g.claim('s7', 'wal_a', 0, ['n4'], ['n4']), 'protocol_state', ['bannedPeer', 'n4']); // a durable ban read from the store
  g.claim('s8', 'wal_a', 1, ['n1'], []); // epoch 1: after the refresh
  g.release('s8');
  g.release('s4');
  g.claim('s9', 'wal_b', 0, ['n1'], []);
});

test('a ban that cannot be written durably stops all threshold ECDSA signing until it is written', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'fk-guard-')), 'signer.db');
  const broken = await openDb({ kind: 'sqlite', path });
  await new SignerStore(broken).init();
  await broken.close(); // every write now fails
  const g = new Dkls23Guard();
  g.claim('s1', 'wal_a', 0, ['n1'], []);
  assert.deepEqual(g.ban('wal_a', 0, 'n1'), ['s1']);
  assert.equal(await g.record(new SignerStore(broken), 'wal_a', 0, 'n1', 'KOS check failed'), false);
  code(() => g.claim('s2', 'wal_z', 0, ['n9'], []), 'ban_unrecorded');
  await assert.rejects(g.flush(new SignerStore(broken)), (e: any) => e.code === 'ban_unrecorded');
  const db = await openDb({ kind: 'sqlite', path });
  const store = new SignerStore(db);
  await g.flush(store);
  assert.deepEqual(await store.bannedPeers('wal_a', 0), ['n1']);
  g.claim('s2', 'wal_z', 0, ['n9'], []);
  await db.close();
});
