import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { Resolver } from 'did-resolver';
import { importJWK, jwtVerify } from 'jose';
import { isFleetkeyError } from '../../src/errors.ts';
import {
  MIN_STATUS_LIST_BITS,
  checkStatus,
  createStatusList,
  createVerificationCache,
  decodeStatusList,
  getResolver,
  issueDeviceCredential,
  issueStatusListCredential,
  publicKeyFromDidKey,
  publicKeyToJwk,
  statusListEntry,
  type StatusList,
} from '../../src/identity/index.ts';
import { FIRMWARE, makeKey, tamperPayload, didJwtVcVerify } from './fixtures.ts';

const resolver = new Resolver(getResolver());
const fleet = makeKey('Ed25519');
const device = makeKey('P-256');
const REV = 'https://fleet.example/status/rev/1';
const SUS = 'https://fleet.example/status/sus/1';
const issued = new Date('2026-01-01T00:00:00Z');
const now = new Date('2026-02-01T00:00:00Z');

function throwsCode(fn: () => unknown, code: string, re?: RegExp) {
  assert.throws(fn, (e: unknown) => isFleetkeyError(e) && e.code === code && (!re || re.test(e.message)));
}

function listJwt(id: string, statusPurpose: 'revocation' | 'suspension', list: StatusList, signer = fleet, extra: { validUntil?: Date } = {}) {
  return issueStatusListCredential({ issuerDid: signer.did, alg: 'EdDSA', id, statusPurpose, list, validFrom: issued, ttl: 300_000, ...extra }, signer.sign);
}

test('status list: size floor, bit order (index 0 = MSB of byte 0), set/clear, GZIP + multibase base64url', () => {
  const list = createStatusList();
  assert.equal(list.length, MIN_STATUS_LIST_BITS);
  throwsCode(() => createStatusList(MIN_STATUS_LIST_BITS - 8), 'validation_failed', /at least 131072/);
  throwsCode(() => createStatusList(MIN_STATUS_LIST_BITS + 1), 'validation_failed', /multiple of 8/);
  list.set(0).set(7).set(12345).set(MIN_STATUS_LIST_BITS - 1);
  const bytes = list.toBytes();
  assert.equal(bytes[0], 0x81);
  assert.equal(bytes[bytes.length - 1], 0x01);
  assert.equal(list.get(12345), true);
  assert.equal(list.get(12344), false);
  list.clear(7);
  assert.equal(list.get(7), false);
  throwsCode(() => list.get(MIN_STATUS_LIST_BITS), 'bad_request', /outside/);
  throwsCode(() => list.set(-1), 'bad_request', /outside/);

  const encoded = list.encode();
  assert.equal(encoded[0], 'u');
  assert.doesNotMatch(encoded, /[+/=]/);
  const gz = Buffer.from(encoded.slice(1), 'base64url');
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]); // GZIP magic
  const back = decodeStatusList(encoded);
  assert.deepEqual(back.toBytes(), list.toBytes());
  assert.ok(encoded.length < 200, `an almost empty 16 KiB list compresses well (${encoded.length} chars)`);
});

test('status list decoding refuses bad prefixes, short lists and zip bombs', () => {
  throwsCode(() => decodeStatusList('z' + createStatusList().encode().slice(1)), 'validation_failed', /start with "u"/);
  throwsCode(() => decodeStatusList('u' + Buffer.from(gzipSync(new Uint8Array(1024))).toString('base64url')), 'validation_failed', /at least 131072/);
  throwsCode(() => decodeStatusList('u' + Buffer.from('not gzip').toString('base64url')), 'validation_failed', /GZIP/);
  const bomb = 'u' + Buffer.from(gzipSync(new Uint8Array(32 * 1024 * 1024))).toString('base64url');
  throwsCode(() => decodeStatusList(bomb), 'validation_failed', /at most/);
  assert.equal(decodeStatusList(bomb, 64 * 1024 * 1024).length, 32 * 1024 * 1024 * 8);
});

test('BitstringStatusListCredential issued through the callback verifies with did-jwt-vc and jose', async () => {
  const jwt = await listJwt(REV, 'revocation', createStatusList().set(42));
  const v = await didJwtVcVerify(jwt, resolver);
  assert.equal(v.verified, true);
  assert.ok(v.verifiableCredential.type.includes('BitstringStatusListCredential'));
  const { payload } = await jwtVerify(jwt, await importJWK(publicKeyToJwk(publicKeyFromDidKey(fleet.did)) as any, 'EdDSA'));
  const vc = payload.vc as any;
  assert.deepEqual(vc['@context'], ['https://www.w3.org/2018/credentials/v1', 'https://www.w3.org/ns/credentials/status/v1']);
  assert.equal(vc.id, REV);
  assert.equal(payload.jti, REV);
  assert.equal(vc.credentialSubject.type, 'BitstringStatusList');
  assert.equal(vc.credentialSubject.statusPurpose, 'revocation');
  assert.equal(vc.credentialSubject.ttl, 300_000);
  assert.equal(decodeStatusList(vc.credentialSubject.encodedList).get(42), true);
});

test('checkStatus: revoke, suspend and resume are reported right', async () => {
  const revIdx = 1717;
  const susIdx = 99_000;
  const cred = await issueDeviceCredential(
    {
      issuerDid: fleet.did,
      alg: 'EdDSA',
      deviceDid: device.did,
      fleet: 'f',
      firmwareHash: FIRMWARE,
      enrolledAt: issued,
      credentialStatus: [
        statusListEntry({ statusListCredential: REV, statusListIndex: revIdx, statusPurpose: 'revocation' }),
        statusListEntry({ statusListCredential: SUS, statusListIndex: susIdx, statusPurpose: 'suspension' }),
      ],
    },
    fleet.sign,
  );
  // the credential with its status entries is still a valid VC for did-jwt-vc
  const dv = await didJwtVcVerify(cred, resolver);
  const status = (dv.verifiableCredential as any).credentialStatus;
  assert.ok(Array.isArray(status) && status.length === 2);
  assert.equal(status[0].id, `${REV}#${revIdx}`);

  const rev = createStatusList();
  const sus = createStatusList();
  const check = async () => checkStatus(cred, [await listJwt(REV, 'revocation', rev), await listJwt(SUS, 'suspension', sus)], resolver, { now });

  let s = await check();
  assert.ok(s.ok);
  assert.deepEqual([s.revoked, s.suspended], [false, false]);
  assert.deepEqual(s.statuses.map((x) => [x.purpose, x.index, x.set]), [['revocation', revIdx, false], ['suspension', susIdx, false]]);

  sus.set(susIdx);
  s = await check();
  assert.ok(s.ok && !s.revoked && s.suspended);

  sus.clear(susIdx); // resume
  s = await check();
  assert.ok(s.ok && !s.revoked && !s.suspended);

  rev.set(revIdx + 1); // a neighbour's revocation does not touch this device
  s = await check();
  assert.ok(s.ok && !s.revoked);

  rev.set(revIdx);
  s = await check();
  assert.ok(s.ok && s.revoked && !s.suspended);

  // the same through a cache: signatures checked once, the list inflated once per token
  const cache = createVerificationCache();
  const lists = [await listJwt(REV, 'revocation', rev), await listJwt(SUS, 'suspension', sus)];
  for (let i = 0; i < 3; i++) {
    const c = await checkStatus(cred, lists, resolver, { now, cache });
    assert.ok(c.ok && c.revoked);
  }
});

test('checkStatus fails closed: missing, foreign, mismatched, tampered or expired lists', async () => {
  const cred = await issueDeviceCredential(
    {
      issuerDid: fleet.did,
      alg: 'EdDSA',
      deviceDid: device.did,
      fleet: 'f',
      firmwareHash: FIRMWARE,
      enrolledAt: issued,
      credentialStatus: statusListEntry({ statusListCredential: REV, statusListIndex: 5, statusPurpose: 'revocation' }),
    },
    fleet.sign,
  );
  const list = createStatusList();
  const reason = async (jwts: string | string[]) => {
    const r = await checkStatus(cred, jwts, resolver, { now });
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(await reason(await listJwt(REV, 'revocation', list)), 'ok');
  assert.equal(await reason([]), 'status_list_missing');
  assert.equal(await reason(await listJwt(SUS, 'revocation', list)), 'status_list_missing');
  assert.equal(await reason(await listJwt(REV, 'suspension', list)), 'status_list_invalid');
  const other = makeKey('Ed25519');
  assert.equal(await reason(await listJwt(REV, 'revocation', list, other)), 'status_list_invalid'); // issued by someone else
  const cleared = tamperPayload(await listJwt(REV, 'revocation', createStatusList().set(5)), (p) => {
    p.vc.credentialSubject.encodedList = createStatusList().encode();
  });
  assert.equal(await reason(cleared), 'status_list_invalid'); // "un-revoking" by editing the list breaks its signature
  assert.equal(await reason(await listJwt(REV, 'revocation', list, fleet, { validUntil: new Date('2026-01-20T00:00:00Z') })), 'status_list_expired');
  const fresh = await listJwt(REV, 'revocation', list);
  const aged = await checkStatus(cred, fresh, resolver, { now, maxListAgeSeconds: 24 * 3600 });
  assert.equal(!aged.ok && aged.reason, 'status_list_expired'); // issued a month before `now`
  assert.ok((await checkStatus(cred, fresh, resolver, { now: new Date('2026-01-01T12:00:00Z'), maxListAgeSeconds: 24 * 3600 })).ok);
  const r = await checkStatus(tamperPayload(cred, (p) => (p.sub = 'did:example:x')), await listJwt(REV, 'revocation', list), resolver, { now });
  assert.equal(!r.ok && r.reason, 'credential_invalid');
  throwsCode(() => statusListEntry({ statusListCredential: `${REV}#x`, statusListIndex: 1, statusPurpose: 'revocation' }), 'validation_failed', /fragment/);
  throwsCode(() => statusListEntry({ statusListCredential: REV, statusListIndex: -1, statusPurpose: 'revocation' }), 'validation_failed', /non-negative/);
  throwsCode(() => statusListEntry({ statusListCredential: REV, statusListIndex: 1, statusPurpose: 'message' as any }), 'validation_failed', /revocation or suspension/);
});
