/**
 * The fleet repository on every storage backend (SQLite; PostgreSQL with FLEETKEY_TEST_PG), and the
 * enrolment derivation against the scheme's own `deriveChildPublic` and @scure/bip32.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { frostDkg } from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import { schemeOf } from '../../src/crypto/schemes.ts';
import type { GroupPublic, KeyGenResult, PartyProtocol } from '../../src/crypto/types.ts';
import { DerivePool, JOB_SIZE, deriveChildrenInline, type ChildKey } from '../../src/server/fleet-derive.ts';
import { FleetStore } from '../../src/store/fleet-store.ts';
import { storageBackends } from '../helpers/backends.ts';
import { makeKey } from '../identity/fixtures.ts';

const { backends, fresh } = storageBackends('fk-fleet');

for (const [name, cfg] of backends) {
  describe(`fleet store (${name})`, () => {
    const open = async () => {
      const s = new FleetStore(await fresh(cfg));
      await s.init();
      await s.init(); // migrations are idempotent
      return s;
    };
    const fleetRow = (id: string) => ({ id, scheme: 'ed25519', label: null, issuerDid: 'did:key:z6Mk', statusBase: 'https://x.example/s', createdAt: 1 });

    test('fleets get distinct numbers; indexes are handed out once; device rows round-trip', async () => {
      const s = await open();
      const a = await s.createFleet(fleetRow('wal_' + 'a'.repeat(24)));
      const b = await s.createFleet(fleetRow('wal_' + 'b'.repeat(24)));
      assert.notEqual(a.num, b.num);
      // Concurrent reservations get disjoint, back-to-back ranges in whichever order they run (PostgreSQL
      // may run the second first); another fleet's indexes are its own.
      const [ten, five, other] = await Promise.all([s.reserveIndexes(a.id, 10), s.reserveIndexes(a.id, 5), s.reserveIndexes(b.id, 1)]);
      assert.ok((ten === 0 && five === 10) || (five === 0 && ten === 5), `ranges [${ten}, +10) and [${five}, +5)`);
      assert.equal(other, 0);
      const dev = makeKey('P-256');
      const keys = Array.from({ length: 1200 }, (_, i) => ({ index: i, publicKey: randomBytes(33), deviceDid: i === 7 ? dev.did : null }));
      await s.insertDevices(a, keys, 1234);
      const d7 = await s.getDevice(a, 7);
      assert.deepEqual(d7, { fleet: a.id, index: 7, publicKey: bytesToHex(keys[7].publicKey), deviceDid: dev.did, status: 'active', statusSeq: 0, enrolledAt: 1234 });
      assert.equal((await s.deviceByDid(dev.did))?.device.index, 7);
      assert.equal((await s.deviceByDid(dev.did))?.fleet.id, a.id);
      assert.equal(await s.deviceByDid(makeKey('Ed25519').did), undefined);
      assert.equal(await s.getDevice(b, 7), undefined, 'fleets do not see each other');
      const page = await s.listDevices(a, 500, 999);
      assert.deepEqual(page.map((d) => d.index), Array.from({ length: 200 }, (_, i) => 1000 + i));
      // A device key enrolled twice fails the whole insert.
      await assert.rejects(s.insertDevices(b, [{ index: 0, publicKey: randomBytes(33), deviceDid: null }, { index: 1, publicKey: randomBytes(33), deviceDid: dev.did }], 1));
      assert.equal(await s.getDevice(b, 0), undefined, 'nothing half-written');
    });

    test('status: sequence numbers grow, revocation is final, list indexes by status', async () => {
      const s = await open();
      const f = await s.createFleet(fleetRow('wal_' + 'c'.repeat(24)));
      await s.insertDevices(f, Array.from({ length: 10 }, (_, i) => ({ index: i, publicKey: randomBytes(32), deviceDid: null })), 1);
      assert.equal((await s.setStatus(f, 3, 'suspended'))?.statusSeq, 1);
      assert.equal((await s.setStatus(f, 3, 'active'))?.statusSeq, 2);
      assert.deepEqual(await s.setStatus(f, 4, 'revoked').then((d) => [d?.status, d?.statusSeq]), ['revoked', 1]);
      assert.deepEqual(await s.setStatus(f, 4, 'active').then((d) => [d?.status, d?.statusSeq]), ['revoked', 1], 'revoked stays revoked');
      await s.setStatus(f, 8, 'suspended');
      assert.deepEqual(await s.indexesWithStatus(f, 'revoked', 0, 10), [4]);
      assert.deepEqual(await s.indexesWithStatus(f, 'suspended', 0, 8), []);
      assert.deepEqual(await s.indexesWithStatus(f, 'suspended', 0, 10), [8]);
      assert.deepEqual(await s.countDevices(f), { active: 8, suspended: 1, revoked: 1 });
      assert.equal(await s.setStatus(f, 99, 'revoked'), undefined);
    });

    test('status lists: a later version wins; replay log: once until it expires', async () => {
      const s = await open();
      await s.putStatusList('f', 'revocation', 0, 2, 'jwt-2', 20);
      await s.putStatusList('f', 'revocation', 0, 1, 'jwt-1', 10);
      assert.deepEqual(await s.getStatusList('f', 'revocation', 0), { version: 2, jwt: 'jwt-2', issuedAt: 20 });
      await s.putStatusList('f', 'revocation', 0, 3, 'jwt-3', 30);
      assert.equal((await s.getStatusList('f', 'revocation', 0))?.jwt, 'jwt-3');
      assert.equal(await s.getStatusList('f', 'suspension', 0), undefined);
      assert.equal(await s.checkAndRemember('k', 1000, 0), false);
      assert.equal(await s.checkAndRemember('k', 1000, 999), true, 'replayed');
      assert.equal(await s.checkAndRemember('k', 3000, 1000), false, 'expired entries may be reused');
      assert.equal(await s.checkAndRemember('k', 3000, 2000), true);
      await s.sweepSeen(5000);
      assert.equal(await s.checkAndRemember('k', 9000, 5000), false);
    });
  });
}

/** A 2-of-3 FROST root from an in-process DKG (with its chain code). */
function frostRoot(scheme: 'ed25519' | 'secp256k1-schnorr'): GroupPublic {
  const parties = [1, 2, 3];
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(scheme, { self: p, parties, threshold: 2 })]));
  return runInProcess(protos, (m) => m.body).get(1)!.public;
}

describe('enrolment derivation', () => {
  for (const scheme of ['ed25519', 'secp256k1-schnorr'] as const) {
    test(`${scheme}: batch children equal the scheme's deriveChildPublic`, () => {
      const group = frostRoot(scheme);
      const from = 2 ** 31 - 40; // up to the last non-hardened index
      const got = deriveChildrenInline({ scheme, group }, from, 40);
      assert.equal(got.length, 40);
      for (const k of got) assert.equal(bytesToHex(k.publicKey), schemeOf(scheme).deriveChildPublic(group, k.index).publicKey, `index ${k.index}`);
    });
  }

  test('ecdsa-secp256k1: the worker pool and the main thread agree with @scure/bip32, chunk by chunk', async () => {
    const group: GroupPublic = { publicKey: bytesToHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)), threshold: 2, parties: [1, 2, 3], verifyingShares: {}, extra: { chainCode: bytesToHex(randomBytes(32)) } };
    const root = { scheme: 'ecdsa-secp256k1', group };
    const pool = new DerivePool(2);
    const chunks: ChildKey[][] = [];
    try {
      await pool.derive(root, 1000, JOB_SIZE + 300, async (keys) => void chunks.push(keys));
    } finally {
      await pool.close();
    }
    const all = chunks.flat().sort((a, b) => a.index - b.index);
    assert.equal(chunks.length, 2, 'two jobs');
    assert.deepEqual(all.map((k) => k.index), Array.from({ length: JOB_SIZE + 300 }, (_, i) => 1000 + i));
    const hd = new HDKey({ publicKey: hexToBytes(group.publicKey), chainCode: hexToBytes(String(group.extra!.chainCode)) });
    for (const k of [all[0], all[JOB_SIZE - 1], all[JOB_SIZE], all[all.length - 1]]) assert.equal(bytesToHex(k.publicKey), bytesToHex(hd.deriveChild(k.index).publicKey!));
    const inline = deriveChildrenInline(root, 1000 + JOB_SIZE, 300);
    assert.deepEqual(inline.map((k) => bytesToHex(k.publicKey)), all.slice(JOB_SIZE).map((k) => bytesToHex(k.publicKey)));
  });
});
