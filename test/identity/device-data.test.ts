import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';
import { Resolver } from 'did-resolver';
import { publicKeyToAddress } from 'viem/accounts';
import { compactVerify, importJWK } from 'jose';
import { isFleetkeyError } from '../../src/errors.ts';
import {
  DEVICE_DATA_TYP,
  MemoryReplayStore,
  createStatusList,
  createVerificationCache,
  getResolver,
  issueDeviceCredential,
  issueStatusListCredential,
  publicKeyFromDidKey,
  publicKeyToJwk,
  signDeviceData,
  statusListEntry,
  verifyDeviceData,
  type DeviceDataReason,
  type StatusList,
  type VerifyDeviceDataOptions,
} from '../../src/identity/index.ts';
import { FIRMWARE, makeKey, tamperPayload, tamperSignature, type TestKey } from './fixtures.ts';

const resolver = new Resolver(getResolver());
const REV = 'https://fleet.example/status/rev/1';
const SUS = 'https://fleet.example/status/sus/1';
const NOW = Date.parse('2026-03-01T12:00:00Z');
const enrolled = new Date('2026-01-01T00:00:00Z');

interface Fleet {
  key: TestKey;
  alg: 'EdDSA' | 'ES256K';
  rev: StatusList;
  sus: StatusList;
  lists(): Promise<string[]>;
  enroll(device: TestKey, index: number, opts?: { fleet?: string; expirationDate?: Date }): Promise<string>;
}

function makeFleet(type: 'Ed25519' | 'secp256k1'): Fleet {
  const key = makeKey(type);
  const alg = type === 'Ed25519' ? 'EdDSA' : 'ES256K';
  const rev = createStatusList();
  const sus = createStatusList();
  return {
    key,
    alg,
    rev,
    sus,
    lists: async () => [
      await issueStatusListCredential({ issuerDid: key.did, alg, id: REV, statusPurpose: 'revocation', list: rev, validFrom: enrolled }, key.sign),
      await issueStatusListCredential({ issuerDid: key.did, alg, id: SUS, statusPurpose: 'suspension', list: sus, validFrom: enrolled }, key.sign),
    ],
    enroll: (device, index, opts = {}) =>
      issueDeviceCredential(
        {
          issuerDid: key.did,
          alg,
          deviceDid: device.did,
          fleet: opts.fleet ?? 'fleet-7',
          firmwareHash: FIRMWARE,
          enrolledAt: enrolled,
          expirationDate: opts.expirationDate,
          credentialStatus: [
            statusListEntry({ statusListCredential: REV, statusListIndex: index, statusPurpose: 'revocation' }),
            statusListEntry({ statusListCredential: SUS, statusListIndex: index, statusPurpose: 'suspension' }),
          ],
        },
        key.sign,
      ),
  };
}

function reading(device: TestKey, extra: { ts?: number; nonce?: string; fleet?: string; seq?: number } = {}) {
  return signDeviceData({ deviceDid: device.did, fleet: extra.fleet ?? 'fleet-7', ts: extra.ts ?? NOW - 1_000, seq: extra.seq, nonce: extra.nonce, data: { tempC: 21.5, humidity: 0.41 } }, device.sign);
}

async function verify(message: string, fleet: Fleet, credentialJwt: string, over: Partial<VerifyDeviceDataOptions> = {}) {
  return verifyDeviceData(message, {
    credentialJwt,
    statusListJwt: await fleet.lists(),
    resolver,
    fleetIssuerDid: fleet.key.did,
    seen: new MemoryReplayStore(),
    now: NOW,
    ...over,
  });
}

async function reason(message: string, fleet: Fleet, credentialJwt: string, over: Partial<VerifyDeviceDataOptions> = {}): Promise<DeviceDataReason> {
  return (await verify(message, fleet, credentialJwt, over)).reason;
}

for (const fleetType of ['Ed25519', 'secp256k1'] as const) {
  for (const deviceType of ['Ed25519', 'P-256'] as const) {
    test(`device data (${fleetType} fleet, ${deviceType} device): valid reading is trusted, and the JWS is plain enough for jose`, async () => {
      const fleet = makeFleet(fleetType);
      const device = makeKey(deviceType);
      const cred = await fleet.enroll(device, 10);
      const msg = await reading(device, { seq: 7 });
      const v = await verify(msg, fleet, cred);
      assert.deepEqual({ trusted: v.trusted, reason: v.reason, device: v.device, fleet: v.fleet }, { trusted: true, reason: 'ok', device: device.did, fleet: 'fleet-7' });
      assert.equal(v.reading!.seq, 7);
      assert.deepEqual(v.reading!.data, { tempC: 21.5, humidity: 0.41 });

      const alg = deviceType === 'Ed25519' ? 'EdDSA' : 'ES256';
      const { protectedHeader, payload } = await compactVerify(msg, await importJWK(publicKeyToJwk(publicKeyFromDidKey(device.did)) as any, alg));
      assert.deepEqual(protectedHeader, { alg, typ: DEVICE_DATA_TYP, kid: `${device.did}#${device.did.slice(8)}` });
      assert.equal(JSON.parse(new TextDecoder().decode(payload)).deviceDid, device.did);
    });
  }
}

test('device data verdicts: tampered, wrong device, revoked, suspended/resumed, replayed, expired credential, stale, malformed', async () => {
  const fleet = makeFleet('Ed25519');
  const deviceA = makeKey('Ed25519');
  const deviceB = makeKey('P-256');
  const credA = await fleet.enroll(deviceA, 1);
  const credB = await fleet.enroll(deviceB, 2);
  const msgA = await reading(deviceA);

  assert.equal(await reason(msgA, fleet, credA), 'ok');

  // tampered reading / signature
  assert.equal(await reason(tamperPayload(msgA, (p) => (p.data.tempC = 99)), fleet, credA), 'bad_signature');
  assert.equal(await reason(tamperSignature(msgA), fleet, credA), 'bad_signature');

  // wrong device: B presents A's credential, and a reading for another fleet than the credential's
  assert.equal(await reason(await reading(deviceB), fleet, credA), 'wrong_device');
  assert.equal(await reason(await reading(deviceA, { fleet: 'fleet-8' }), fleet, credA), 'wrong_device');
  // a reading whose payload names A but is signed (kid) by B is malformed, not trusted
  const forgedKid = await signDeviceData({ deviceDid: deviceB.did, fleet: 'fleet-7', ts: NOW, data: 1 }, deviceB.sign);
  assert.equal(await reason(tamperPayload(forgedKid, (p) => (p.deviceDid = deviceA.did)), fleet, credA), 'malformed');

  // revoked, suspended, resumed
  fleet.rev.set(1);
  assert.equal(await reason(msgA, fleet, credA), 'revoked');
  assert.equal(await reason(await reading(deviceB), fleet, credB), 'ok'); // neighbour unaffected
  fleet.rev.clear(1);
  fleet.sus.set(1);
  assert.equal(await reason(msgA, fleet, credA), 'suspended');
  fleet.sus.set(1, false);
  assert.equal(await reason(msgA, fleet, credA), 'ok');
  fleet.rev.set(1);
  fleet.sus.set(1);
  assert.equal(await reason(msgA, fleet, credA), 'revoked'); // revocation outranks suspension
  fleet.rev.clear(1);
  fleet.sus.clear(1);

  // replayed: the second delivery of the same reading to the same store
  const seen = new MemoryReplayStore();
  assert.equal(await reason(msgA, fleet, credA, { seen }), 'ok');
  assert.equal(await reason(msgA, fleet, credA, { seen }), 'replayed');
  assert.equal(await reason(await reading(deviceA), fleet, credA, { seen }), 'ok'); // fresh nonce
  // a forged copy does not burn the nonce of a real reading that has not arrived yet
  const next = await reading(deviceA, { nonce: 'nonce-0000000001' });
  assert.equal(await reason(tamperSignature(next), fleet, credA, { seen }), 'bad_signature');
  assert.equal(await reason(next, fleet, credA, { seen }), 'ok');

  // expired credential, credential from another issuer, status list missing
  const expired = await fleet.enroll(deviceA, 1, { expirationDate: new Date('2026-02-01T00:00:00Z') });
  assert.equal(await reason(msgA, fleet, expired), 'credential_expired');
  const rogue = makeFleet('Ed25519');
  assert.equal(await reason(msgA, fleet, await rogue.enroll(deviceA, 1)), 'credential_invalid');
  assert.equal(await reason(msgA, fleet, credA, { statusListJwt: [] }), 'credential_invalid');
  assert.equal(await reason(msgA, fleet, tamperSignature(credA)), 'credential_invalid');
  assert.equal(await reason(msgA, fleet, credA, { statusListJwt: await rogue.lists() }), 'credential_invalid');
  assert.equal(await reason(msgA, fleet, credA, { maxStatusListAgeSeconds: 7 * 86400 }), 'credential_invalid'); // lists are two months old

  // stale: too old, or too far in the future for the device clock
  assert.equal(await reason(await reading(deviceA, { ts: NOW - 6 * 60_000 }), fleet, credA), 'stale');
  assert.equal(await reason(await reading(deviceA, { ts: NOW + 60_000 }), fleet, credA), 'stale');
  assert.equal(await reason(await reading(deviceA, { ts: NOW - 6 * 60_000 }), fleet, credA, { maxAgeMs: 10 * 60_000 }), 'ok');

  // malformed
  for (const bad of ['', 'x', 'a.b.c', msgA + '.x', credA, 'e30.e30.' + 'A'.repeat(86), 'x'.repeat(70_000)]) {
    const v = await verify(bad, fleet, credA);
    assert.equal(v.reason, 'malformed', bad.slice(0, 30));
    assert.equal(v.trusted, false);
  }
  const v = await verify(tamperPayload(msgA, (p) => delete p.nonce), fleet, credA);
  assert.deepEqual([v.reason, v.device], ['malformed', deviceA.did]);
});

test('verification cache gives the same verdicts and the replay store sweeps expired nonces', async () => {
  const fleet = makeFleet('secp256k1');
  const device = makeKey('P-256');
  const cred = await fleet.enroll(device, 3);
  const lists = await fleet.lists();
  const cache = createVerificationCache();
  const seen = new MemoryReplayStore();
  for (let i = 0; i < 5; i++) {
    assert.equal(await reason(await reading(device), fleet, cred, { cache, seen, statusListJwt: lists }), 'ok');
  }
  fleet.rev.set(3);
  assert.equal(await reason(await reading(device), fleet, cred, { cache, seen, statusListJwt: await fleet.lists() }), 'revoked');
  assert.equal(await reason(await reading(device), fleet, cred, { cache, seen, statusListJwt: lists }), 'ok'); // the old list still says ok

  const store = new MemoryReplayStore();
  for (let i = 0; i < 3000; i++) store.checkAndRemember(`k${i}`, 1000 + i, 0);
  assert.equal(store.checkAndRemember('k5', 2000, 500), true);
  store.checkAndRemember('late', 10_000, 5000); // everything else expired by now
  for (let i = 0; i < 1100; i++) store.checkAndRemember(`m${i}`, 10_000, 5000);
  assert.ok(store.size < 3000, `expired entries are swept (${store.size} left)`);
  assert.equal(store.checkAndRemember('k5', 20_000, 5000), false); // expired key can be seen again
});

test('signDeviceData / verifyDeviceData input errors', async () => {
  const device = makeKey('Ed25519');
  const k1 = makeKey('secp256k1');
  const rejects = (p: Promise<unknown>, code: string, re: RegExp) => assert.rejects(p, (e: unknown) => isFleetkeyError(e) && e.code === code && re.test(e.message));
  await rejects(signDeviceData({ deviceDid: k1.did, fleet: 'f', data: 1 }, k1.sign), 'validation_failed', /Ed25519 or P-256/);
  await rejects(signDeviceData({ deviceDid: device.did, fleet: '', data: 1 }, device.sign), 'validation_failed', /fleet/);
  await rejects(signDeviceData({ deviceDid: device.did, fleet: 'f', data: 1, nonce: 'short' }, device.sign), 'validation_failed', /nonce/);
  await rejects(signDeviceData({ deviceDid: device.did, fleet: 'f', data: undefined }, device.sign), 'validation_failed', /data/);
  await rejects(signDeviceData({ deviceDid: device.did, fleet: 'f', data: 1, ts: 1.5 }, device.sign), 'validation_failed', /ts/);
  await rejects(signDeviceData({ deviceDid: device.did, fleet: 'f', data: 1 }, makeKey('Ed25519').sign), 'bad_signature', /does not verify/);
  const msg = await signDeviceData({ deviceDid: device.did, fleet: 'f', data: 1 }, device.sign);
  const base = { credentialJwt: 'x', resolver, fleetIssuerDid: device.did, seen: new MemoryReplayStore() };
  await rejects(verifyDeviceData(msg, { ...base, resolver: undefined as any }), 'bad_request', /resolver/);
  await rejects(verifyDeviceData(msg, { ...base, seen: {} as any }), 'bad_request', /replay store/);
  await rejects(verifyDeviceData(msg, { ...base, fleetIssuerDid: 'fleet' }), 'bad_request', /fleetIssuerDid/);
  await rejects(verifyDeviceData(msg, { ...base, now: new Date('not a date') }), 'bad_request', /now must be/);
  await rejects(verifyDeviceData(msg, { ...base, maxAgeMs: -1 }), 'bad_request', /maxAgeMs/);
});

test('device data under a did:pkh eip155 fleet (the cluster signs as its Ethereum account)', async () => {
  const account = makeKey('secp256k1');
  const issuerDid = `did:pkh:eip155:1:${publicKeyToAddress(`0x${hex.encode(secp256k1.getPublicKey(account.secretKey, false))}`)}`;
  const device = makeKey('P-256');
  const rev = createStatusList();
  const listJwt = () => issueStatusListCredential({ issuerDid, alg: 'ES256K', id: REV, statusPurpose: 'revocation', list: rev, validFrom: enrolled }, account.sign);
  const credentialJwt = await issueDeviceCredential(
    {
      issuerDid,
      alg: 'ES256K',
      deviceDid: device.did,
      fleet: 'fleet-7',
      firmwareHash: FIRMWARE,
      enrolledAt: enrolled,
      credentialStatus: statusListEntry({ statusListCredential: REV, statusListIndex: 77, statusPurpose: 'revocation' }),
    },
    account.sign,
  );
  const msg = await reading(device);
  const opts = { credentialJwt, resolver, fleetIssuerDid: issuerDid, now: NOW };
  assert.equal((await verifyDeviceData(msg, { ...opts, statusListJwt: await listJwt(), seen: new MemoryReplayStore() })).reason, 'ok');
  rev.set(77);
  assert.equal((await verifyDeviceData(msg, { ...opts, statusListJwt: await listJwt(), seen: new MemoryReplayStore() })).reason, 'revoked');
});
