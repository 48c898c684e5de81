/**
 * Issue 15, item 5: a consumed FROST nonce cannot come back through the database. A real SignerNode
 * (in this process, on SQLite and, with FLEETKEY_TEST_PG, PostgreSQL) holds a 2-of-3 Ed25519 share;
 * someone who can write its database but not read its KEK puts a used nonce row back and deletes its
 * consumed_nonces row between two signatures. The node must refuse the second use.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { decode } from '../../src/chains/index.ts';
import { signControlDoc } from '../../src/control/index.ts';
import { frostCommit, type CommitmentJson } from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import { schemeOf } from '../../src/crypto/schemes.ts';
import type { KeyGenResult } from '../../src/crypto/types.ts';
import { makeLogger } from '../../src/http/common.ts';
import { publicHash } from '../../src/signer/envelope.ts';
import { SignerNode, type SharePublic } from '../../src/signer/node.ts';
import { NonceLedger } from '../../src/signer/nonce-ledger.ts';
import { makeSealer } from '../../src/signer/seal.ts';
import type { Db, Row } from '../../src/store/db.ts';
import { SignerStore } from '../../src/store/signer-store.ts';
import { SOL_DEST, solTransfer } from '../helpers/agent.ts';
import { storageBackends } from '../helpers/backends.ts';

const { backends, fresh } = storageBackends('fk-nonce-rollback');

/** One signer node with the share of party 1 of a fresh 2-of-3 Ed25519 wallet, and party 2's share to make the co-signer's commitments. */
async function setUp(db: Db) {
  const dir = mkdtempSync(join(tmpdir(), 'fk-nonce-rollback-'));
  const kek = randomBytes(32);
  const owner = ed25519.utils.randomSecretKey();
  const store = new SignerStore(db);
  const open = async () => SignerNode.open(store, makeSealer(kek), join(dir, 'peers.json'), makeLogger('signer', true), [bytesToHex(ed25519.getPublicKey(owner))], await NonceLedger.open(join(dir, 'nonce-ledger.json'), kek));
  const node = await open();
  const scheme = schemeOf('ed25519');
  const keys = runInProcess(new Map([1, 2, 3].map((i) => [i, scheme.keygen({ self: i, parties: [1, 2, 3], threshold: 2, sessionId: 'ses_rollback_dkg' })])));
  const walletId = `wal_${bytesToHex(randomBytes(6))}`;
  const k1 = keys.get(1) as KeyGenResult;
  const pub: SharePublic = { scheme: 'ed25519', walletId, epoch: 0, threshold: 2, participants: [{ index: 1, nodeId: node.keys.nodeId }, { index: 2, nodeId: 'node_b' }, { index: 3, nodeId: 'node_c' }], group: k1.public };
  await store.putPendingShare({ walletId, epoch: 0, scheme: 'ed25519', sealed: makeSealer(kek).seal(utf8ToBytes(JSON.stringify(k1.share)), `share|${walletId}|0`), publicJson: JSON.stringify(pub), publicHash: publicHash(pub) });
  assert.equal(await store.activateShare(walletId, 0, publicHash(pub)), 'activated');
  const address = scheme.address(k1.public.publicKey);
  let n = 0;
  /** Asks `signer` for a signature share of a fresh owner-authorized Solana transfer with nonce `nonceId`. */
  const sign = (signer: SignerNode, nonceId: string, mine: CommitmentJson) => {
    const payload = { kind: 'solana_transaction' as const, data: solTransfer(address, 1000n + BigInt(++n), SOL_DEST, n) };
    const message = decode(payload.kind, payload.data, { from: address }).signingPayloads[0];
    const now = Date.now();
    const requestId = `req-rollback-${n}-${bytesToHex(randomBytes(4))}`;
    const auth = { owner: signControlDoc({ kind: 'sign', walletId, requestId, payload, issuedAt: now, expiresAt: now + 60_000 }, owner) };
    const other = frostCommit('ed25519', (keys.get(2) as KeyGenResult).share).commitment;
    return signer.sign({ requestId, walletId, auth, epoch: 0, message: bytesToHex(message), nonceId, commitments: { '1': { hiding: mine.hiding, binding: mine.binding }, '2': other } });
  };
  return { node, open, store, walletId, sign, dir };
}

/** What a database writer without the KEK can do: put a saved nonce row back, every column as it was, and delete its consumed row. */
async function restoreRow(db: Db, row: Row): Promise<void> {
  const cols = Object.keys(row);
  await db.run(`DELETE FROM consumed_nonces WHERE id = $1`, [row.id as string]);
  await db.run(`INSERT INTO nonces (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((k) => row[k]) as never);
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'signed',
    (e: { code?: string }) => e.code ?? String(e),
  );

for (const [name, cfg] of backends) {
  describe(`nonce rollback through the database (${name})`, () => {
    test('a used nonce row put back (and its consumed row deleted) is refused; fresh nonces still sign, also after a restart', async () => {
      const db = await fresh(cfg);
      const { node, open, walletId, sign } = await setUp(db);
      const { commitments } = await node.makeNonces({ walletId, epoch: 0, count: 3 });
      const [n1, n2, n3] = commitments;
      const saved = (await db.all(`SELECT * FROM nonces WHERE id = $1`, [n1.id]))[0];
      assert.ok((await sign(node, n1.id, n1)).share, 'the first use signs');
      // The attack: the row comes back, the evidence goes.
      const restore = (row: Row, override: Record<string, unknown> = {}) => restoreRow(db, { ...row, ...override });
      await restore(saved);
      assert.equal(await code(sign(node, n1.id, n1)), 'nonce_consumed', 'a restored nonce is never used a second time');
      // Relabelled with a seq still live (n3's): it does not open under that seq, and nothing is computed.
      await restore(saved, { seq: (await db.all(`SELECT seq FROM nonces WHERE id = $1`, [n3.id]))[0].seq });
      assert.equal(await code(sign(node, n1.id, n1)), 'decrypt_failed');
      // The node stays usable, and a restart keeps the ledger.
      assert.ok((await sign(node, n2.id, n2)).share);
      const again = await open();
      await restore(saved);
      assert.equal(await code(sign(again, n1.id, n1)), 'nonce_consumed', 'after a restart too');
      // The relabelled attempt failed to open before it could spend n3's seq: n3 still signs.
      assert.ok((await sign(again, n3.id, n3)).share);
    });

    test('a crash between the database commit and the ledger write leaves the nonce unused: a later restore gets at most that one share', async () => {
      const db = await fresh(cfg);
      const { node, open, store, walletId, sign } = await setUp(db);
      const { commitments } = await node.makeNonces({ walletId, epoch: 0, count: 1 });
      const [n1] = commitments;
      const saved = (await db.all(`SELECT * FROM nonces WHERE id = $1`, [n1.id]))[0];
      // The database consumed it; the process died before the ledger write (so before any share).
      assert.ok((await store.consumeNonce(n1.id, walletId, 'req-crashed-1')).ok);
      const restarted = await open();
      // On start the ledger drops live entries without rows, so the nonce is gone for good…
      await restoreRow(db, saved);
      // …and even restored it is refused (no share was ever computed from it either way).
      assert.equal(await code(sign(restarted, n1.id, n1)), 'nonce_consumed');
      // Fresh nonces still sign after that restart.
      const { commitments: more } = await restarted.makeNonces({ walletId, epoch: 0, count: 1 });
      assert.ok((await sign(restarted, more[0].id, more[0])).share);
    });
    test('a ledger write that fails lets no share out (the share is computed during the write), and the nonce stays used', async () => {
      const db = await fresh(cfg);
      const { node, walletId, sign, dir } = await setUp(db);
      const { commitments } = await node.makeNonces({ walletId, epoch: 0, count: 2 });
      const [n1, n2] = commitments;
      // The ledger's temporary file cannot be created: the write that spends n1 fails.
      const tmp = join(dir, 'nonce-ledger.json.tmp');
      mkdirSync(tmp);
      const failed = await sign(node, n1.id, n1).then(
        (r) => ({ share: (r as { share?: string }).share }),
        (e: NodeJS.ErrnoException) => ({ error: e.code }),
      );
      assert.deepEqual(failed, { error: 'EISDIR' }, 'the write error, and no share');
      rmdirSync(tmp);
      assert.equal(await code(sign(node, n1.id, n1)), 'nonce_consumed', 'the nonce is not offered again');
      assert.ok((await sign(node, n2.id, n2)).share, 'the next nonce signs once the disk works');
    });
    test('the ledger file: an edited one stops the node from starting; a lost one starts a new ledger under which no earlier nonce opens', async () => {
      const db = await fresh(cfg);
      const { node, open, walletId, sign, dir } = await setUp(db);
      const { commitments } = await node.makeNonces({ walletId, epoch: 0, count: 2 });
      const file = join(dir, 'nonce-ledger.json');
      const good = readFileSync(file, 'utf8');
      const edited = JSON.parse(good);
      edited.next += 1000;
      edited.live.push([edited.next - 1000, edited.next]);
      writeFileSync(file, JSON.stringify(edited));
      await assert.rejects(open(), /does not verify under this KEK/);
      writeFileSync(file, good);
      assert.ok((await sign(await open(), commitments[0].id, commitments[0])).share);
      rmSync(file);
      const restarted = await open();
      assert.equal(await code(sign(restarted, commitments[1].id, commitments[1])), 'decrypt_failed', 'a nonce of the lost ledger is never used');
      const { commitments: more } = await restarted.makeNonces({ walletId, epoch: 0, count: 1 });
      assert.ok((await sign(restarted, more[0].id, more[0])).share);
    });
  });
}
