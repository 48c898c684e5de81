/**
 * Fleets end to end: real signer and server processes, real HTTP, real SQLite, the local
 * Mosquitto broker. Derived keys are checked against an independent derivation (@scure/bip32),
 * signatures by noble's plain verifiers, credentials by did-jwt-vc and jose.
 */
import { test, describe, before, after } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { Resolver, type DIDResolutionResult } from 'did-resolver';
import { importJWK, jwtVerify } from 'jose';
import mqtt from 'mqtt';
import { publicKeyToAddress } from 'viem/accounts';
import { hashTypedData, parseTransaction, recoverAddress, recoverTransactionAddress } from 'viem';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { schemeOf } from '../../src/crypto/schemes.ts';
import { checkStatus, decodeJws, multibaseToPublicKey, publicKeyToJwk, signDeviceData, signerInputFor, verifyCredentialJwt } from '../../src/identity/index.ts';
import { getResolver, intentTypedData, verifyDeviceData, type PaymentIntent } from '../../src/sdk/index.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { FIRMWARE, didJwtVcVerify, makeKey, tamperPayload, type TestKey } from '../identity/fixtures.ts';

const run = promisify(execFile);
const MQTT_URL = process.env.FLEETKEY_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
// A topic prefix of this run alone: other suites may share the broker.
const PREFIX = `fk-test-${bytesToHex(randomBytes(6))}`;

/** did-resolver over the server's public resolver endpoint (the Universal Resolver path). */
function httpResolver(base: string): Resolver {
  const viaHttp = async (did: string) => (await (await fetch(`${base}/1.0/identifiers/${encodeURIComponent(did)}`)).json()) as DIDResolutionResult;
  return new Resolver({ key: viaHttp, pkh: viaHttp });
}

/** The JWK of the key the JWS `kid` names in the issuer's DID document (as served by the server), for jose. */
async function joseKeyFromDocument(base: string, jwt: string) {
  const { header, payload } = decodeJws(jwt);
  const doc = ((await (await fetch(`${base}/1.0/identifiers/${encodeURIComponent(String(payload.iss))}`)).json()) as DIDResolutionResult).didDocument!;
  const vm = doc.verificationMethod!.find((m) => m.id === header.kid)!;
  assert.ok(doc.assertionMethod!.includes(vm.id), 'kid is an assertion method of the issuer');
  return importJWK(publicKeyToJwk(multibaseToPublicKey(vm.publicKeyMultibase!)) as Parameters<typeof importJWK>[0], header.alg);
}

async function publicList(url: string): Promise<string> {
  const r = await fetch(url); // no token: status lists are public
  assert.equal(r.status, 200, url);
  return r.text();
}

describe('fleets: one DKG, derived device wallets, credentials, status lists, device data', () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  const saved = { url: process.env.FLEETKEY_MQTT_URL, prefix: process.env.FLEETKEY_MQTT_PREFIX };
  before(async () => {
    process.env.FLEETKEY_MQTT_URL = MQTT_URL;
    process.env.FLEETKEY_MQTT_PREFIX = PREFIX;
    c = await startCluster(3);
    A = api(c);
  });
  after(async () => {
    await c?.stop();
    for (const [k, v] of [['FLEETKEY_MQTT_URL', saved.url], ['FLEETKEY_MQTT_PREFIX', saved.prefix]] as const) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  /** An ed25519 fleet with `n` devices whose keys were made "on the device", and their credentials. */
  let edFleet: any;
  const edDevices: { key: TestKey; walletId: string; index: number; credential: string }[] = [];
  async function edSetup() {
    if (edFleet) return;
    edFleet = (await A('POST', '/v1/fleets', { scheme: 'ed25519', label: 'sensors' })).body;
    for (let i = 0; i < 4; i++) {
      const key = makeKey(i % 2 ? 'P-256' : 'Ed25519');
      const d = await A('POST', `/v1/fleets/${edFleet.id}/devices`, { deviceDid: key.did });
      assert.equal(d.status, 201, JSON.stringify(d.body));
      const cr = await A('POST', `/v1/fleets/${edFleet.id}/devices/${d.body.index}/credential`, { firmwareHash: FIRMWARE });
      assert.equal(cr.status, 201, JSON.stringify(cr.body));
      edDevices.push({ key, walletId: d.body.walletId, index: d.body.index, credential: cr.body.credential });
    }
  }

  test('ecdsa-secp256k1 fleet: 10,000 device wallets in one batch, every address equals @scure/bip32, a random sample signs through the cluster', async () => {
    const f = await A('POST', '/v1/fleets', { scheme: 'ecdsa-secp256k1', label: 'meters' });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    const xpub = HDKey.fromExtendedKey(f.body.xpub);
    assert.equal(bytesToHex(xpub.publicKey!), f.body.publicKey, 'the xpub is the root key');
    assert.equal(bytesToHex(xpub.chainCode!), f.body.chainCode);
    const N = 10_000;
    const b = await A('POST', `/v1/fleets/${f.body.id}/devices/batch`, { count: N });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    assert.deepEqual(b.body, { fleet: f.body.id, from: 0, count: N, enrolled: N, invalid: [] });

    const seen: any[] = [];
    for (let after: number | null = -1; after !== null; ) {
      const page: any = await A('GET', `/v1/fleets/${f.body.id}/devices?limit=5000${after >= 0 ? `&after=${after}` : ''}`);
      assert.equal(page.status, 200);
      seen.push(...page.body.devices);
      after = page.body.next;
    }
    assert.equal(seen.length, N);
    for (const [i, d] of seen.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.walletId, `${f.body.id}.${i}`);
      const child = xpub.deriveChild(i);
      assert.equal(d.publicKey, bytesToHex(child.publicKey!), `device ${i}: key`);
      const address = publicKeyToAddress(`0x${bytesToHex(secp256k1.Point.fromBytes(child.publicKey!).toBytes(false))}`);
      assert.equal(d.address, address, `device ${i}: address`);
      assert.equal(d.did, `did:pkh:eip155:1:${address}`);
      assert.equal(d.status, 'active');
    }
    assert.deepEqual((await A('GET', `/v1/fleets/${f.body.id}`)).body.devices, { active: N, suspended: 0, revoked: 0 });

    // Each signer derives its child share locally: signatures verify under the derived key alone.
    for (const i of [0, 1 + Math.floor(Math.random() * (N - 2)), N - 1]) {
      const hash = randomBytes(32);
      const r = await A('POST', `/v1/wallets/${f.body.id}.${i}/sign`, { hash: bytesToHex(hash) });
      assert.equal(r.status, 200, `sign for device ${i}: ${JSON.stringify(r.body)}`);
      const sig = hexToBytes(r.body.signature);
      assert.ok(secp256k1.verify(sig.subarray(0, 64), hash, hexToBytes(seen[i].publicKey), { prehash: false }), `device ${i}: signature verifies`);
      assert.ok(!secp256k1.verify(sig.subarray(0, 64), hash, hexToBytes(f.body.publicKey), { prehash: false }), 'not the root key');
      assert.equal(await recoverAddress({ hash: `0x${bytesToHex(hash)}`, signature: `0x${r.body.signature}` }), seen[i].address);
    }
  });

  test('ecdsa-secp256k1 fleet: ES256K device credentials signed by the cluster verify with did-jwt-vc against the served DID document', async () => {
    const f = (await A('POST', '/v1/fleets', { scheme: 'ecdsa-secp256k1' })).body;
    assert.match(f.issuerDid, /^did:key:zQ3s/, 'a secp256k1 did:key');
    const key = makeKey('Ed25519');
    const d = (await A('POST', `/v1/fleets/${f.id}/devices`, { deviceDid: key.did })).body;
    const cr = await A('POST', `/v1/fleets/${f.id}/devices/${d.index}/credential`, { firmwareHash: FIRMWARE });
    assert.equal(cr.status, 201, JSON.stringify(cr.body));
    const jwt = cr.body.credential;
    assert.equal(decodeJws(jwt).header.alg, 'ES256K');
    const v = await didJwtVcVerify(jwt, httpResolver(c.info.url));
    assert.equal(v.verified, true);
    assert.equal(v.payload.sub, key.did);
    assert.equal(v.payload.vc.credentialSubject.fleet, f.id);
    await assert.rejects(didJwtVcVerify(tamperPayload(jwt, (p) => (p.vc.credentialSubject.firmwareHash = 'ff'.repeat(32))), httpResolver(c.info.url)), /invalid_signature/);
    // The status lists it names are fleet-signed ES256K credentials too.
    for (const s of v.payload.vc.credentialStatus) assert.equal((await didJwtVcVerify(await publicList(s.statusListCredential), httpResolver(c.info.url))).verified, true);
  });

  test('ed25519 fleet: EdDSA credentials verify with did-jwt-vc and jose; tampered fails; revoked and suspended show in the public status lists; a revoked wallet cannot sign', async () => {
    await edSetup();
    const [dev, other] = edDevices;
    const resolver = httpResolver(c.info.url);
    const v = await didJwtVcVerify(dev.credential, resolver);
    assert.equal(v.verified, true);
    assert.equal(v.issuer, edFleet.issuerDid);
    assert.deepEqual(
      { fleet: v.payload.vc.credentialSubject.fleet, firmwareHash: v.payload.vc.credentialSubject.firmwareHash },
      { fleet: edFleet.id, firmwareHash: FIRMWARE },
    );
    const { payload } = await jwtVerify(dev.credential, await joseKeyFromDocument(c.info.url, dev.credential), { issuer: edFleet.issuerDid, subject: dev.key.did });
    assert.equal((payload.vc as any).type[1], 'FleetDeviceCredential');
    const forged = tamperPayload(dev.credential, (p) => (p.sub = other.key.did));
    await assert.rejects(didJwtVcVerify(forged, resolver), /invalid_signature/);
    await assert.rejects(jwtVerify(forged, await joseKeyFromDocument(c.info.url, dev.credential)), /signature verification failed/);
    // The served document equals the SDK's offline one.
    const served = await (await fetch(`${c.info.url}/1.0/identifiers/${encodeURIComponent(edFleet.issuerDid)}`)).json();
    assert.deepEqual(served.didDocument, (await new Resolver(getResolver()).resolve(edFleet.issuerDid)).didDocument);

    const status = async (jwt: string) => {
      const vc = await verifyCredentialJwt(jwt, resolver);
      assert.ok(vc.valid);
      const lists = await Promise.all(vc.credentialStatus.map((s) => publicList(s.statusListCredential)));
      const st = await checkStatus(vc, lists, resolver);
      assert.ok(st.ok, JSON.stringify(st));
      return { revoked: st.revoked, suspended: st.suspended };
    };
    assert.deepEqual(await status(dev.credential), { revoked: false, suspended: false });

    // Before: the device wallet signs (FROST, the signers' locally derived child shares).
    const msg = randomBytes(40);
    const ok = await A('POST', `/v1/wallets/${dev.walletId}/sign`, { message: bytesToHex(msg) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const walletKey = (await A('GET', `/v1/fleets/${edFleet.id}/devices/${dev.index}`)).body.publicKey;
    assert.ok(ed25519.verify(hexToBytes(ok.body.signature), msg, hexToBytes(walletKey), { zip215: false }));

    const s = await A('POST', `/v1/fleets/${edFleet.id}/devices/${other.index}/suspend`);
    assert.equal(s.body.status, 'suspended');
    assert.deepEqual(await status(other.credential), { revoked: false, suspended: true });
    assert.equal((await A('POST', `/v1/fleets/${edFleet.id}/devices/${other.index}/resume`)).body.status, 'active');
    assert.deepEqual(await status(other.credential), { revoked: false, suspended: false });

    const r = await A('POST', `/v1/fleets/${edFleet.id}/devices/${dev.index}/revoke`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'revoked');
    assert.deepEqual(await status(dev.credential), { revoked: true, suspended: false });
    assert.deepEqual(await status(other.credential), { revoked: false, suspended: false }, 'only its own bit');
    const again = await A('POST', `/v1/fleets/${edFleet.id}/devices/${dev.index}/resume`);
    assert.equal(again.status, 409, 'revocation is final');
    assert.equal(again.body.error.code, 'conflict');

    // From the next request on, the signers refuse the revoked device's wallet.
    const refused = await A('POST', `/v1/wallets/${dev.walletId}/sign`, { message: bytesToHex(randomBytes(40)) });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'wallet_inactive');
    // ...and only that one.
    const still = await A('POST', `/v1/wallets/${other.walletId}/sign`, { message: '00' });
    assert.equal(still.status, 200, JSON.stringify(still.body));
  });

  test('device data: valid, tampered, wrong device, unknown fleet, suspended, revoked, replayed and stale readings get their verdicts (server and offline SDK agree)', async () => {
    await edSetup();
    const [, a, b, p] = edDevices; // edDevices[0] is the one the test above revokes
    const reading = (dev: typeof a, data: unknown = { t: 21.5 }, extra: object = {}) =>
      signDeviceData({ deviceDid: dev.key.did, fleet: edFleet.id, data, ...extra }, dev.key.sign);
    const verify = (r: string, credential: string) => A('POST', '/v1/verify/data', { reading: r, credential });
    const lists = (credential: string): Promise<string[]> => Promise.all((decodeJws(credential).payload as any).vc.credentialStatus.map((s: any) => publicList(s.statusListCredential)));

    const good = await reading(a, { t: 21.5 }, { seq: 1 });
    const offline = await verifyDeviceData(good, { credential: a.credential, statusLists: await lists(a.credential), fleetIssuerDid: edFleet.issuerDid });
    assert.equal(offline.trusted, true, JSON.stringify(offline));
    const v = await verify(good, a.credential);
    assert.equal(v.status, 200);
    assert.equal(v.body.trusted, true, JSON.stringify(v.body));
    assert.equal(v.body.reason, 'ok');
    assert.equal(v.body.device, a.key.did);
    assert.deepEqual(v.body.reading.data, { t: 21.5 });
    assert.equal(v.body.wallet.id, a.walletId);

    const expect = async (r: string, credential: string, reason: string) => {
      const got = await verify(r, credential);
      assert.equal(got.status, 200);
      assert.equal(got.body.trusted, false, `${reason}: ${JSON.stringify(got.body)}`);
      assert.equal(got.body.reason, reason, JSON.stringify(got.body));
    };
    await expect(good, a.credential, 'replayed');
    await expect(tamperPayload(await reading(a), (x) => (x.data = { t: 99 })), a.credential, 'bad_signature');
    const offlineTampered = await verifyDeviceData(tamperPayload(await reading(p), (x) => (x.data = 1)), { credential: p.credential, statusLists: await lists(p.credential), fleetIssuerDid: edFleet.issuerDid });
    assert.equal(offlineTampered.reason, 'bad_signature');
    await expect(await reading(b), a.credential, 'wrong_device'); // b's reading with a's credential
    const stranger = makeKey('Ed25519');
    await expect(await signDeviceData({ deviceDid: stranger.did, fleet: edFleet.id, data: 1 }, stranger.sign), a.credential, 'wrong_device');
    await expect(await signDeviceData({ deviceDid: a.key.did, fleet: 'wal_000000000000000000000000', data: 1 }, a.key.sign), a.credential, 'wrong_device');
    await expect(await reading(a, 1, { ts: Date.now() - 3_600_000 }), a.credential, 'stale');
    await expect('not-a-jws', a.credential, 'malformed');
    // P-256 device keys work the same way.
    const pv = await verify(await reading(p, { rpm: 1200 }), p.credential);
    assert.equal(pv.body.trusted, true, JSON.stringify(pv.body));

    await A('POST', `/v1/fleets/${edFleet.id}/devices/${b.index}/suspend`);
    await expect(await reading(b), b.credential, 'suspended');
    await A('POST', `/v1/fleets/${edFleet.id}/devices/${b.index}/resume`);
    const back = await verify(await reading(b), b.credential);
    assert.equal(back.body.trusted, true, JSON.stringify(back.body));
    await A('POST', `/v1/fleets/${edFleet.id}/devices/${b.index}/revoke`);
    const revokedReading = await reading(b);
    await expect(revokedReading, b.credential, 'revoked');
    const offlineRevoked = await verifyDeviceData(revokedReading, { credential: b.credential, statusLists: await lists(b.credential), fleetIssuerDid: edFleet.issuerDid });
    assert.equal(offlineRevoked.reason, 'revoked', 'the public status list says so too');
  });

  test('MQTT: readings published by a real client are verified and recorded; bad ones are rejected and counted', async () => {
    await edSetup();
    const dev = edDevices[3];
    const ingest = async () => (await A('GET', `/v1/fleets/${edFleet.id}/ingest`)).body;
    const start = await ingest();
    assert.equal(start.topic, `${PREFIX}/${edFleet.id}/readings`);
    assert.equal(start.connected, true);
    const client = await mqtt.connectAsync(MQTT_URL, { clientId: `fk-test-device-${bytesToHex(randomBytes(4))}` });
    try {
      const send = (reading: string, credential = dev.credential) => client.publishAsync(start.topic, JSON.stringify({ reading, credential }), { qos: 1 });
      const good = [];
      for (let i = 0; i < 3; i++) good.push(await signDeviceData({ deviceDid: dev.key.did, fleet: edFleet.id, data: { n: i, v: 100 + i }, seq: i }, dev.key.sign));
      for (const g of good) await send(g);
      await send(good[0]); // replayed
      await send(tamperPayload(good[1], (x) => (x.data = { n: 1, v: 0 }))); // tampered
      await send(good[2], edDevices[1].credential); // someone else's credential
      await client.publishAsync(start.topic, '{"not":"a reading"}', { qos: 1 });
      await client.publishAsync(start.topic, Buffer.from([0xff, 0x00]), { qos: 1 });
      let now = start;
      for (let i = 0; i < 200 && now.received < start.received + 8; i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = await ingest();
      }
      assert.equal(now.received - start.received, 8, JSON.stringify(now));
      assert.equal(now.accepted - start.accepted, 3, JSON.stringify(now));
      assert.equal(now.rejected - start.rejected, 5);
      for (const [reason, n] of [['replayed', 1], ['bad_signature', 1], ['wrong_device', 1], ['malformed', 2]] as const)
        assert.equal((now.reasons[reason] ?? 0) - (start.reasons[reason] ?? 0), n, reason);
      const rec = (await A('GET', `/v1/fleets/${edFleet.id}/readings?limit=50`)).body.readings.filter((r: any) => r.source === 'mqtt' && r.device === dev.key.did);
      assert.deepEqual(rec.map((r: any) => r.data).sort((x: any, y: any) => x.n - y.n), [{ n: 0, v: 100 }, { n: 1, v: 101 }, { n: 2, v: 102 }]);
      assert.ok(rec.every((r: any) => r.index === dev.index && r.fleet === edFleet.id));
    } finally {
      await client.endAsync();
    }
  });

  test('secp256k1-schnorr fleet: taproot device wallets derive as the scheme does and sign; credentials are refused (no JOSE algorithm for BIP340)', async () => {
    const f = (await A('POST', '/v1/fleets', { scheme: 'secp256k1-schnorr', network: 'regtest' })).body;
    assert.match(f.issuerDid, /^did:pkh:bip122:0f9188f13cb7b2c71f2a335e3a4fc328:bcrt1p/);
    const b = await A('POST', `/v1/fleets/${f.id}/devices/batch`, { count: 20 });
    assert.equal(b.body.enrolled, 20);
    const devices = (await A('GET', `/v1/fleets/${f.id}/devices`)).body.devices;
    const xpub = HDKey.fromExtendedKey(f.xpub);
    for (const d of devices) {
      // The BIP32 child of the internal key, then the BIP341 tweak: the x-only output key.
      const K = xpub.deriveChild(d.index).publicKey!;
      const t = BigInt(`0x${bytesToHex(schnorr.utils.taggedHash('TapTweak', K.subarray(1)))}`);
      const P = secp256k1.Point.fromBytes(K);
      const Q = (K[0] === 3 ? P.negate() : P).add(secp256k1.Point.BASE.multiply(t));
      assert.equal(d.publicKey, bytesToHex(Q.toBytes(true).subarray(1)), `device ${d.index}`);
      assert.equal(d.address, schemeOf('secp256k1-schnorr').address(d.publicKey, 'regtest'));
      assert.match(d.address, /^bcrt1p/);
    }
    const msg = randomBytes(32);
    const sig = await A('POST', `/v1/wallets/${devices[7].walletId}/sign`, { message: bytesToHex(msg) });
    assert.equal(sig.status, 200, JSON.stringify(sig.body));
    assert.ok(schnorr.verify(hexToBytes(sig.body.signature), msg, hexToBytes(devices[7].publicKey)));
    assert.notEqual(f.publicKey, devices[7].publicKey);
    const key = makeKey('Ed25519');
    const d = (await A('POST', `/v1/fleets/${f.id}/devices`, { deviceDid: key.did })).body;
    const cr = await A('POST', `/v1/fleets/${f.id}/devices/${d.index}/credential`, { firmwareHash: FIRMWARE });
    assert.equal(cr.status, 400);
    assert.equal(cr.body.error.code, 'unsupported');
    assert.match(cr.body.error.message, /JOSE has no BIP340 algorithm/);
  });

  test('bad input gets a clear 4xx with a stable code; a conflicting batch writes nothing', async () => {
    await edSetup();
    const F = edFleet.id;
    const taken = edDevices[2].key.did;
    const k1 = makeKey('secp256k1');
    const before = (await A('GET', `/v1/fleets/${F}`)).body;
    const fleetsBefore = (await A('GET', '/v1/fleets')).body.fleets.length;
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/fleets', { scheme: 'rsa' }, 400, 'validation_failed'],
      ['POST', '/v1/fleets', { scheme: 'ed25519', policy: 1 }, 400, 'validation_failed'],
      ['POST', '/v1/fleets', { scheme: 'ed25519', policy: { version: 1, rules: [{ type: 'allow', widnow: 1 }] } }, 400, 'validation_failed'],
      ['POST', '/v1/fleets', { scheme: 'ed25519', extra: 1 }, 400, 'validation_failed'],
      ['GET', '/v1/fleets/nope', undefined, 400, 'validation_failed'],
      ['GET', '/v1/fleets/wal_000000000000000000000000', undefined, 404, 'not_found'],
      ['GET', `/v1/fleets/${F}/devices/99999`, undefined, 404, 'not_found'],
      ['GET', `/v1/fleets/${F}/devices/-1`, undefined, 400, 'validation_failed'],
      ['GET', `/v1/fleets/${F}/devices/2147483648`, undefined, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices`, { deviceDid: 'did:key:zNope' }, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices`, { deviceDid: k1.did }, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices`, { deviceDid: taken }, 409, 'conflict'],
      ['POST', `/v1/fleets/${F}/devices/batch`, { count: 0 }, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices/batch`, { count: 100_001 }, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices/batch`, { count: 2, deviceDids: [taken, taken] }, 400, 'validation_failed'],
      ['POST', `/v1/fleets/${F}/devices/batch`, { count: 2, deviceDids: [makeKey('Ed25519').did, taken] }, 409, 'conflict'],
      ['POST', `/v1/fleets/${F}/devices/0/credential`, { firmwareHash: 'xyz' }, 400, 'validation_failed'],
      ['POST', '/v1/verify/data', { reading: 1 }, 400, 'validation_failed'],
      ['GET', '/v1/dids/did:key:z123', undefined, 400, 'validation_failed'],
    ];
    for (const [m, p, b, status, code] of cases) {
      const r = await A(m, p, b);
      assert.equal(r.status, status, `${m} ${p} ${JSON.stringify(b)} -> ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, `${m} ${p}`);
    }
    const after = (await A('GET', `/v1/fleets/${F}`)).body;
    assert.deepEqual(after.devices, before.devices, 'no half-written batch');
    assert.equal((await A('GET', '/v1/fleets')).body.fleets.length, fleetsBefore, 'no fleet from a refused request');
    const agent = (await A('POST', `/v1/fleets/${F}/devices`, {})).body;
    const noKey = await A('POST', `/v1/fleets/${F}/devices/${agent.index}/credential`, { firmwareHash: FIRMWARE });
    assert.equal(noKey.status, 400);
    assert.match(noKey.body.error.message, /no device key/);
    // The fleet routes sit behind the bearer token; status lists and DID documents do not.
    assert.equal((await call(c.info.url, 'wrong', 'GET', `/v1/fleets/${F}`)).status, 401);
    assert.equal((await fetch(`${c.info.url}/fleets/${F}/status/revocation/0`)).status, 200);
    assert.equal((await fetch(`${c.info.url}/fleets/${F}/status/other/0`)).status, 400);
  });

  test('intents: a device-signed EIP-712 intent becomes a transaction under the fleet policy; over-policy, tampered, replayed, expired, too-large and suspended ones are refused', async () => {
    const policy = { version: 1, name: 'fleet', rules: [{ type: 'allow', chainIds: ['8453'] }] };
    const f = await A('POST', '/v1/fleets', { scheme: 'ecdsa-secp256k1', policy });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    const key = makeKey('P-256');
    const d = (await A('POST', `/v1/fleets/${f.body.id}/devices`, { deviceDid: key.did })).body;
    const SHOP = '0x2222222222222222222222222222222222222222' as const;
    let n = 1;
    const intent = (over: Record<string, unknown> = {}) => ({ to: SHOP, maxValue: '10000000000000000', service: 'charging bay 4', deadline: Math.floor(Date.now() / 1000) + 600, nonce: String(n++), chainId: 8453, ...over }) as PaymentIntent;
    // The device signs the EIP-712 digest with its own key (P-256: ECDSA with SHA-256 over it).
    const sign = async (i: PaymentIntent) => bytesToHex(await key.sign(signerInputFor('ES256', hexToBytes(hashTypedData(intentTypedData(d.address, i)).slice(2)))));
    const transaction = { nonce: 0, gas: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1000000', value: '5000000000000000' };
    const send = (i: PaymentIntent, signature: string, tx: object = transaction) => call(c.info.url, undefined, 'POST', `/fleets/${f.body.id}/devices/${d.index}/intents`, { intent: i, signature, transaction: tx });

    const good = intent();
    const goodSig = await sign(good);
    const r = await send(good, goodSig);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'signed');
    const tx = parseTransaction(r.body.serializedTransaction);
    assert.deepEqual([tx.to, tx.value, tx.chainId], [SHOP, 5_000_000_000_000_000n, 8453]);
    assert.equal(await recoverTransactionAddress({ serializedTransaction: r.body.serializedTransaction }), d.address, 'signed by the device wallet');

    const refused = async (i: PaymentIntent, signature: string, status: number, code: string, tx?: object) => {
      const x = await send(i, signature, tx);
      assert.equal(x.status, status, JSON.stringify(x.body));
      assert.equal(x.body.error.code, code);
    };
    await refused(good, goodSig, 409, 'replayed_message');
    const l1 = intent({ chainId: 1 });
    await refused(l1, await sign(l1), 403, 'policy_denied');
    const t = intent();
    await refused({ ...t, maxValue: '99000000000000000000' }, await sign(t), 400, 'bad_signature');
    const old = intent({ deadline: Math.floor(Date.now() / 1000) - 1 });
    await refused(old, await sign(old), 401, 'request_expired');
    const small = intent({ maxValue: '1000' });
    await refused(small, await sign(small), 400, 'validation_failed');
    await A('POST', `/v1/fleets/${f.body.id}/devices/${d.index}/suspend`);
    const late = intent();
    await refused(late, await sign(late), 403, 'wallet_inactive');
  });

  test('CLI: fleet create with a policy, device enroll (one and --count), list, suspend/revoke (--yes), credential issue, did resolve, data verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk-fleet-cli-'));
    const env = { ...process.env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_NODE_KEYS: join(c.dataDir, 'server', 'peers.json') };
    const cli = async (...args: string[]) => {
      const r = await run(process.execPath, [BIN, ...args, '--json'], { env, cwd: dir }).catch((e) => e);
      return { code: r.code ?? 0, out: r.stdout ? JSON.parse(r.stdout) : undefined };
    };
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ version: 1, name: 'fleet', rules: [{ type: 'allow', chainIds: ['8453'] }, { type: 'rate_limit', max: 10, window: '1h' }] }));
    const f = await cli('fleet', 'create', '--scheme', 'ed25519', '--label', 'cli', '--policy', policyFile);
    assert.equal(f.code, 0, JSON.stringify(f.out));
    const pol = await A('GET', `/v1/wallets/${f.out.id}/policy`);
    assert.equal(pol.status, 200, 'the fleet policy is the root wallet policy, held by the signers');
    assert.equal(pol.body.version, 1);
    const key = makeKey('Ed25519');
    const one = await cli('device', 'enroll', '--fleet', f.out.id, '--device-did', key.did);
    assert.equal(one.out.walletId, `${f.out.id}.0`);
    const many = await cli('device', 'enroll', '--fleet', f.out.id, '--count', '300');
    assert.deepEqual(many.out, { fleet: f.out.id, from: 1, count: 300, enrolled: 300, invalid: [] });
    const list = await cli('device', 'list', '--fleet', f.out.id, '--after', '290');
    assert.deepEqual(list.out.devices.map((d: any) => d.index), [291, 292, 293, 294, 295, 296, 297, 298, 299, 300]);
    assert.equal((await cli('device', 'suspend', `${f.out.id}.5`)).out.status, 'suspended');
    const noYes = await cli('device', 'revoke', `${f.out.id}.5`);
    assert.equal(noYes.code, 1, 'revocation asks for --yes');
    assert.equal((await A('GET', `/v1/fleets/${f.out.id}/devices/5`)).body.status, 'suspended');
    assert.equal((await cli('device', 'revoke', `${f.out.id}.5`, '--yes')).out.status, 'revoked');
    const bad = await cli('device', 'resume', `${f.out.id}.5`);
    assert.equal(bad.code, 2, 'a server error exits 2');
    assert.equal(bad.out.error.code, 'conflict');
    const cred = await cli('credential', 'issue', `${f.out.id}.0`, '--firmware', FIRMWARE);
    assert.equal((await didJwtVcVerify(cred.out.credential, new Resolver(getResolver()))).verified, true);
    const doc = await cli('did', 'resolve', f.out.issuerDid);
    assert.equal(doc.out.didDocument.id, f.out.issuerDid);
    const readingFile = join(dir, 'reading.jws');
    writeFileSync(readingFile, await signDeviceData({ deviceDid: key.did, fleet: f.out.id, data: { ok: 1 } }, key.sign));
    writeFileSync(join(dir, 'cred.jwt'), cred.out.credential);
    const v = await cli('data', 'verify', '--reading', `@${readingFile}`, '--credential', `@${join(dir, 'cred.jwt')}`);
    assert.equal(v.code, 0);
    assert.equal(v.out.trusted, true, JSON.stringify(v.out));
    const again = await cli('data', 'verify', '--reading', `@${readingFile}`, '--credential', `@${join(dir, 'cred.jwt')}`);
    assert.equal(again.code, 1, 'an untrusted reading exits 1');
    assert.equal(again.out.reason, 'replayed');
  });
});
