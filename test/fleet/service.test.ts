/**
 * FleetService against a stand-in coordinator (the fleet key is a local Ed25519 key, control
 * documents are recorded): status lists are sharded by 131,072 devices, and a device's credential,
 * its list entries and its revocation all land in the right list and bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Resolver } from 'did-resolver';
import { frostDkg } from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import type { KeyGenResult, PartyProtocol } from '../../src/crypto/types.ts';
import { checkStatus, getResolver, verifyCredentialJwt } from '../../src/identity/index.ts';
import type { Coordinator } from '../../src/server/coordinator.ts';
import { FleetService, LIST_BITS } from '../../src/server/fleets.ts';
import { openDb } from '../../src/store/db.ts';
import { FleetStore } from '../../src/store/fleet-store.ts';
import { FIRMWARE, makeKey } from '../identity/fixtures.ts';

test('status lists are sharded by 131,072 devices: entries, list URLs and revocation bits of a device past the first list', async () => {
  const parties = [1, 2, 3];
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg('ed25519', { self: p, parties, threshold: 2 })]));
  const group = runInProcess(protos, (m) => m.body).get(1)!.public;
  const issuer = makeKey('Ed25519'); // stands in for the cluster's fleet key
  const docs: Record<string, unknown>[] = [];
  const id = 'wal_' + 'd'.repeat(24);
  const coord = {
    wallet: async () => ({ id, scheme: 'ed25519', publicJson: JSON.stringify({ group }), network: null, threshold: 2, participants: [], address: '' }),
    sign: async (_: string, input: Uint8Array) => ({ signature: bytesToHex(await issuer.sign(input)), signers: [] }),
    holdsOwnerKey: true,
    ownerSign: (doc: Record<string, unknown>) => ({ doc }),
    submitControl: async (signed: { doc: Record<string, unknown> }) => (docs.push(signed.doc), { delivered: ['n1'], pending: [] }),
  } as unknown as Coordinator;
  const db = await openDb({ kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'fk-fleet-svc-')), 'db.sqlite') });
  try {
    const store = new FleetStore(db);
    await store.init();
    const svc = new FleetService(coord, store, { info() {}, error() {} });
    const fleet = await store.createFleet({ id, scheme: 'ed25519', label: null, issuerDid: issuer.did, statusBase: 'https://fleet.example/fleets/x/status', createdAt: Date.now() });
    const near = makeKey('Ed25519');
    await store.reserveIndexes(id, LIST_BITS - 1);
    const last0 = await svc.enroll(fleet, near.did); // the last bit of list 0
    const far = makeKey('P-256');
    await store.reserveIndexes(id, 4);
    const d = await svc.enroll(fleet, far.did);
    assert.deepEqual([last0.index, d.index], [LIST_BITS - 1, LIST_BITS + 4]);

    const resolver = new Resolver(getResolver());
    const cred = async (index: number) => {
      const { credential } = await svc.issueCredential(fleet, index, { firmwareHash: FIRMWARE });
      const vc = await verifyCredentialJwt(credential, resolver, { expectedIssuer: issuer.did });
      assert.ok(vc.valid);
      return vc;
    };
    const vcFar = await cred(d.index);
    assert.deepEqual(
      vcFar.credentialStatus.map((e) => [e.statusPurpose, e.statusListIndex, e.statusListCredential]),
      [
        ['revocation', '4', 'https://fleet.example/fleets/x/status/revocation/1'],
        ['suspension', '4', 'https://fleet.example/fleets/x/status/suspension/1'],
      ],
    );
    const vcNear = await cred(last0.index);
    assert.equal(vcNear.credentialStatus[0].statusListIndex, String(LIST_BITS - 1));
    assert.equal(vcNear.credentialStatus[0].statusListCredential, 'https://fleet.example/fleets/x/status/revocation/0');

    const status = async (vc: typeof vcFar) => {
      const lists = await Promise.all(vc.credentialStatus.map((e) => svc.statusList(fleet, e.statusPurpose, Number(e.statusListCredential.split('/').pop()))));
      const st = await checkStatus(vc, lists, resolver);
      assert.ok(st.ok, JSON.stringify(st));
      return [st.revoked, st.suspended];
    };
    assert.deepEqual(await status(vcFar), [false, false]);
    const r = await svc.setStatus(fleet, d.index, 'revoked');
    assert.deepEqual(r.signers, { delivered: ['n1'], pending: [] });
    assert.deepEqual(docs.at(-1), { kind: 'wallet_status', walletId: `${id}.${d.index}`, status: 'revoked', seq: 1, issuedAt: docs.at(-1)!.issuedAt });
    assert.deepEqual(await status(vcFar), [true, false]);
    assert.deepEqual(await status(vcNear), [false, false], 'list 0 is untouched');
    await svc.setStatus(fleet, last0.index, 'suspended');
    assert.deepEqual(await status(vcNear), [false, true]);
    assert.deepEqual(docs.at(-1)?.walletId, `${id}.${LIST_BITS - 1}`);
    await svc.close();
  } finally {
    await db.close();
  }
});
