/**
 * One suite, run against every storage backend: SQLite always, PostgreSQL when FLEETKEY_TEST_PG
 * is set (`npm run test:pg`, which .ci/run calls against the machine's local PostgreSQL).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { storageBackends } from '../helpers/backends.ts';
import { SignerStore } from '../../src/store/signer-store.ts';
import { ServerStore } from '../../src/store/server-store.ts';

const { backends, fresh } = storageBackends('fk-store');

for (const [name, cfg] of backends) {
  describe(`store (${name})`, () => {
    test('migrations apply once and are idempotent', async () => {
      const db = await fresh(cfg);
      const s = new SignerStore(db);
      await s.init();
      await s.init();
      assert.equal(await s.initMeta('node_id', 'a'), 'a');
      assert.equal(await s.initMeta('node_id', 'b'), 'a', 'initMeta never overwrites');
    });

    test('wallet job lock: one holder across servers on one store; a dead holder\'s lock is taken over after its lease', async () => {
      const db = await fresh(cfg);
      const a = new ServerStore(db);
      await a.init();
      const b = new ServerStore(db); // a second server on the same database
      const now = 1_000_000;
      const both = await Promise.all([a.lockWallet('w1', 'server-a', 'reshare', now + 60_000, now), b.lockWallet('w1', 'server-b', 'reshare', now + 60_000, now)]);
      assert.deepEqual(both.sort(), [false, true], 'exactly one of two racing servers gets the lock');
      const [holder, other] = both[0] ? ['server-a', b] : ['server-b', a];
      assert.equal(await other.lockWallet('w2', 'server-x', 'reshare', now + 60_000, now), true, 'another wallet is free');
      await other.unlockWallet('w1', 'not-the-holder');
      assert.equal(await other.lockWallet('w1', 'server-c', 'reshare', now + 60_000, now + 1), false, 'only the holder releases it');
      assert.equal(await other.lockWallet('w1', 'server-c', 'reshare', now + 200_000, now + 60_001), true, 'a lease that ran out is taken over');
      await a.unlockWallet('w1', holder);
      assert.equal(await a.lockWallet('w1', 'server-d', 'reshare', now + 300_000, now + 60_002), false, 'the old holder cannot release the new one');
      await a.unlockWallet('w1', 'server-c');
      assert.equal(await a.lockWallet('w1', 'server-d', 'reshare', now + 300_000, now + 60_002), true);
    });

    test('shares: pending until activated; activation erases other epochs and their nonces', async () => {
      const s = new SignerStore(await fresh(cfg));
      await s.init();
      const base = { walletId: 'w1', scheme: 'ed25519', sealed: 'x', publicJson: '{}', publicHash: 'h0' };
      await s.putPendingShare({ ...base, epoch: 0 });
      assert.equal(await s.getActiveShare('w1'), undefined);
      assert.equal(await s.activateShare('w1', 0, 'wrong'), 'mismatch');
      assert.equal(await s.activateShare('w1', 0, 'h0'), 'activated');
      assert.equal(await s.activateShare('w1', 0, 'h0'), 'already');
      assert.equal((await s.getActiveShare('w1'))!.epoch, 0);
      await assert.rejects(s.putPendingShare({ ...base, epoch: 0 }), /active share already exists/);
      await s.putNonces([{ id: 'n-old', walletId: 'w1', epoch: 0, sealed: 's', commitment: 'c' }]);
      await s.putPendingShare({ ...base, epoch: 1, publicHash: 'h1' });
      assert.equal((await s.getActiveShare('w1'))!.epoch, 0, 'refresh share is pending');
      assert.equal(await s.activateShare('w1', 1, 'h1'), 'activated');
      assert.equal((await s.getActiveShare('w1'))!.epoch, 1);
      assert.equal(await s.getShare('w1', 0), undefined, 'old epoch erased');
      assert.equal(await s.countNonces('w1'), 0, 'old epoch nonces erased');
      assert.equal(await s.activateShare('w1', 7, 'h'), 'missing');
    });

    test('a nonce is consumed exactly once, even under concurrent requests', async () => {
      const s = new SignerStore(await fresh(cfg));
      await s.init();
      await s.putNonces([{ id: 'n1', walletId: 'w', epoch: 0, sealed: 'sealed', commitment: 'c' }]);
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => s.consumeNonce('n1', 'w', `r${i}`)));
      assert.equal(results.filter((r) => r.ok).length, 1);
      assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'consumed'));
      assert.deepEqual(await s.consumeNonce('n1', 'w', 'again'), { ok: false, reason: 'consumed' });
      assert.deepEqual(await s.consumeNonce('nope', 'w', 'x'), { ok: false, reason: 'unknown' });
      await s.putNonces([{ id: 'n2', walletId: 'w', epoch: 0, sealed: 's', commitment: 'c' }]);
      assert.deepEqual(await s.consumeNonce('n2', 'other-wallet', 'x'), { ok: false, reason: 'unknown' }, 'a nonce is bound to its wallet');
      assert.equal(await s.consumedCount(), 1);
    });

    test('a session id is claimed once per kind, even under concurrent starts, and a rolled-back start frees it (issue 16)', async () => {
      const s = new SignerStore(await fresh(cfg));
      await s.init();
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => s.claimSession('sign', 'ses_x', 'w')));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'session_reused');
      await s.claimSession('dkg', 'ses_x', 'w'); // another kind: another protocol's sid
      await assert.rejects(s.claimSession('dkg', 'ses_x', 'w2'), (e: any) => e.code === 'session_reused');
      // In the starting transaction: if that transaction fails, the id is not used up.
      await assert.rejects(s.db.tx(async (q) => {
        await s.claimSessionHook('sign', 'ses_y', 'w')(q);
        throw new Error('the reservation was refused');
      }));
      await s.claimSession('sign', 'ses_y', 'w');
    });

    test('a failed transaction writes nothing', async () => {
      const db = await fresh(cfg);
      const s = new SignerStore(db);
      await s.init();
      await assert.rejects(
        s.putNonces([
          { id: 'dup', walletId: 'w', epoch: 0, sealed: 's', commitment: 'c' },
          { id: 'dup', walletId: 'w', epoch: 0, sealed: 's', commitment: 'c' },
        ]),
      );
      assert.equal(await s.countNonces('w'), 0);
    });

    test('wallets and epochs, with owed commits recorded atomically', async () => {
      const st = new ServerStore(await fresh(cfg));
      await st.init();
      const w = {
        id: 'wal_1', scheme: 'ed25519', label: 'l', threshold: 2, participants: [{ index: 1, nodeId: 'a' }, { index: 2, nodeId: 'b' }],
        publicKey: 'pk', address: 'addr', network: null, publicJson: '{}', epoch: 0, createdAt: 1, updatedAt: 1,
      };
      await st.createWallet(w);
      await assert.rejects(st.createWallet(w));
      assert.deepEqual((await st.getWallet('wal_1'))!.participants, w.participants);
      assert.equal(await st.getWallet('nope'), undefined);
      assert.equal(await st.advanceEpoch('wal_1', 0, '{"v":1}', [{ nodeId: 'a', evidence: 'e' }]), true);
      assert.equal(await st.advanceEpoch('wal_1', 0, '{"v":2}', []), false, 'stale epoch loses');
      assert.equal((await st.getWallet('wal_1'))!.epoch, 1);
      assert.deepEqual(await st.pendingCommits('wal_1'), [{ walletId: 'wal_1', epoch: 1, nodeId: 'a', evidence: 'e' }]);
      await st.commitDelivered('wal_1', 1, 'a');
      assert.deepEqual(await st.pendingCommits(), []);
      assert.equal((await st.listWallets()).length, 1);
    });
  });
}
