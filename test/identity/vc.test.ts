import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hex } from '@scure/base';
import { Resolver } from 'did-resolver';
import { publicKeyToAddress } from 'viem/accounts';
import { importJWK, jwtVerify } from 'jose';
import { isFleetkeyError } from '../../src/errors.ts';
import {
  getResolver,
  issueCredential,
  issueDeviceCredential,
  localSigner,
  publicKeyFromDidKey,
  publicKeyToJwk,
  verifyCredentialJwt,
  createVerificationCache,
} from '../../src/identity/index.ts';
import { FIRMWARE, makeKey, tamperPayload, tamperSignature, didJwtVcVerify } from './fixtures.ts';

const resolver = new Resolver(getResolver());
const jwkResolver = new Resolver(getResolver({ format: 'JsonWebKey2020' }));
const fleetEd = makeKey('Ed25519');
const fleetK1 = makeKey('secp256k1');
const device = makeKey('Ed25519');
const issued = new Date('2026-01-01T00:00:00Z');
const now = new Date('2026-02-01T00:00:00Z');

async function joseKey(did: string, alg: string) {
  return importJWK(publicKeyToJwk(publicKeyFromDidKey(did)) as Parameters<typeof importJWK>[0], alg);
}

function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp) {
  return assert.rejects(p, (e: unknown) => isFleetkeyError(e) && e.code === code && (!re || re.test(e.message)));
}

test('EdDSA fleet: device credential issued through the callback verifies with did-jwt-vc (both VM formats) and jose', async () => {
  let seen: Uint8Array | undefined;
  const jwt = await issueDeviceCredential(
    { issuerDid: fleetEd.did, alg: 'EdDSA', deviceDid: device.did, fleet: 'fleet-7', firmwareHash: FIRMWARE, enrolledAt: issued, id: 'urn:uuid:4f7d1a62-1b0e-4c2c-9a55-0d7b8c1e2f30' },
    async (input) => {
      seen = input;
      return fleetEd.sign(input);
    },
  );
  // EdDSA: the callback is handed the JWS signing input itself
  assert.equal(new TextDecoder().decode(seen), jwt.split('.').slice(0, 2).join('.'));

  for (const r of [resolver, jwkResolver]) {
    const v = await didJwtVcVerify(jwt, r);
    assert.equal(v.verified, true);
    assert.equal(v.issuer, fleetEd.did);
    assert.equal(v.verifiableCredential.credentialSubject.id, device.did);
    assert.equal(v.verifiableCredential.credentialSubject.fleet, 'fleet-7');
    assert.equal(v.verifiableCredential.credentialSubject.firmwareHash, FIRMWARE);
    assert.deepEqual(v.verifiableCredential.type, ['VerifiableCredential', 'FleetDeviceCredential']);
  }

  const { payload, protectedHeader } = await jwtVerify(jwt, await joseKey(fleetEd.did, 'EdDSA'), { issuer: fleetEd.did, subject: device.did, currentDate: now });
  assert.equal(protectedHeader.kid, `${fleetEd.did}#${fleetEd.did.slice(8)}`);
  assert.equal(payload.jti, 'urn:uuid:4f7d1a62-1b0e-4c2c-9a55-0d7b8c1e2f30');
  assert.equal(payload.nbf, issued.getTime() / 1000);
  assert.equal((payload.vc as any).credentialSubject.enrolledAt, issued.toISOString());

  const ours = await verifyCredentialJwt(jwt, resolver, { now, expectedIssuer: fleetEd.did });
  assert.ok(ours.valid);
  assert.equal(ours.subject, device.did);
  assert.equal(ours.claims.fleet, 'fleet-7');
});

test('ES256K fleet: the callback signs sha256(signing input), low-S r||s; did-jwt-vc and our verifier accept it', async () => {
  let digest: Uint8Array | undefined;
  const jwt = await issueCredential(
    { issuerDid: fleetK1.did, alg: 'ES256K', subject: device.did, types: ['FleetDeviceCredential'], claims: { fleet: 'f', firmwareHash: FIRMWARE }, issuanceDate: issued.toISOString() },
    async (input, ctx) => {
      digest = input;
      // the context lets a policy-aware cluster see (and re-hash) what it is asked to sign
      assert.equal(ctx!.alg, 'ES256K');
      assert.deepEqual(sha256(ctx!.signingInput), input);
      assert.equal(JSON.parse(Buffer.from(new TextDecoder().decode(ctx!.signingInput).split('.')[1]!, 'base64url').toString()).sub, device.did);
      return fleetK1.sign(input);
    },
  );
  const [h, p, s] = jwt.split('.');
  assert.deepEqual(digest, sha256(new TextEncoder().encode(`${h}.${p}`)));
  const sig = Buffer.from(s!, 'base64url');
  assert.equal(sig.length, 64);
  assert.equal(secp256k1.Signature.fromBytes(sig, 'compact').hasHighS(), false);

  for (const r of [resolver, jwkResolver]) assert.equal((await didJwtVcVerify(jwt, r)).verified, true);
  assert.ok((await verifyCredentialJwt(jwt, resolver, { now })).valid);
  // jose (WebCrypto) has no secp256k1; the independent check here is noble's verify of the same bytes
  assert.ok(secp256k1.verify(sig, sha256(new TextEncoder().encode(`${h}.${p}`)), publicKeyFromDidKey(fleetK1.did).bytes, { prehash: false }));
});

test('ES256K: a high-S signature from the cluster is folded to low-S; a wrong one is refused before release', async () => {
  const n = secp256k1.Point.CURVE().n;
  const highS = async (d: Uint8Array) => {
    const sig = secp256k1.Signature.fromBytes(await fleetK1.sign(d), 'compact');
    return new secp256k1.Signature(sig.r, n - sig.s).toBytes('compact');
  };
  const opts = { issuerDid: fleetK1.did, alg: 'ES256K' as const, subject: device.did, types: [], claims: { fleet: 'f' }, issuanceDate: issued };
  const jwt = await issueCredential(opts, highS);
  assert.equal((await didJwtVcVerify(jwt, resolver)).verified, true);
  assert.ok((await verifyCredentialJwt(jwt, resolver, { now })).valid);

  const other = makeKey('secp256k1');
  await rejectsWith(issueCredential(opts, other.sign), 'bad_signature', /does not verify under the issuer key/);
  await rejectsWith(issueCredential(opts, async () => new Uint8Array(70)), 'bad_signature', /64-byte/);
  // EdDSA callback given to an ES256K issuer: caught by the issuer-key check
  await rejectsWith(issueCredential({ ...opts, alg: 'EdDSA' }, fleetEd.sign), 'validation_failed', /signs ES256K/);
});

test('tampered credentials fail everywhere: did-jwt-vc, jose and our verifier', async () => {
  const jwt = await issueDeviceCredential({ issuerDid: fleetEd.did, alg: 'EdDSA', deviceDid: device.did, fleet: 'fleet-7', firmwareHash: FIRMWARE, enrolledAt: issued }, fleetEd.sign);
  const forged = tamperPayload(jwt, (p) => {
    p.vc.credentialSubject.fleet = 'fleet-8';
  });
  const badSig = tamperSignature(jwt);
  const key = await joseKey(fleetEd.did, 'EdDSA');
  for (const t of [forged, badSig]) {
    await assert.rejects(didJwtVcVerify(t, resolver), /invalid_signature/);
    await assert.rejects(jwtVerify(t, key), /signature verification failed/);
    const v = await verifyCredentialJwt(t, resolver, { now });
    assert.equal(v.valid, false);
    assert.equal(!v.valid && v.reason, 'bad_signature');
  }
  // re-signed by another key but still claiming the fleet as issuer
  const impostor = makeKey('Ed25519');
  const wrongKey = await issueCredential({ issuerDid: impostor.did, alg: 'EdDSA', subject: device.did, types: [], claims: { fleet: 'x' }, issuanceDate: issued }, impostor.sign);
  const v = await verifyCredentialJwt(wrongKey, resolver, { now, expectedIssuer: fleetEd.did });
  assert.equal(!v.valid && v.reason, 'wrong_issuer');
  const swapped = tamperPayload(wrongKey, (p) => {
    p.iss = fleetEd.did;
  });
  const v2 = await verifyCredentialJwt(swapped, resolver, { now });
  assert.equal(!v2.valid && v2.reason, 'unknown_key'); // the kid names the impostor's key, which is not a key of iss
  assert.equal(!(await verifyCredentialJwt('not.a.jwt', resolver)).valid, true);
  const m = await verifyCredentialJwt('e30.e30.AA', resolver);
  assert.equal(!m.valid && m.reason, 'malformed');
});

test('validity window: expired and not-yet-valid credentials are reported as such', async () => {
  const jwt = await issueCredential(
    { issuerDid: fleetEd.did, alg: 'EdDSA', subject: device.did, types: [], claims: { fleet: 'f' }, issuanceDate: issued, expirationDate: '2026-01-15T00:00:00Z' },
    fleetEd.sign,
  );
  const exp = await verifyCredentialJwt(jwt, resolver, { now });
  assert.equal(!exp.valid && exp.reason, 'expired');
  await assert.rejects(didJwtVcVerify(jwt, resolver), /expired/);
  assert.ok((await verifyCredentialJwt(jwt, resolver, { now: new Date('2026-01-10T00:00:00Z') })).valid);
  await assert.rejects(verifyCredentialJwt(jwt, resolver, { now: new Date(NaN) }), (e: unknown) => isFleetkeyError(e) && e.code === 'bad_request');
  const early = await verifyCredentialJwt(jwt, resolver, { now: new Date('2025-12-31T00:00:00Z') });
  assert.equal(!early.valid && early.reason, 'not_yet_valid');
  // the cache keeps the signature outcome only; time is checked on every call
  const cache = createVerificationCache(4);
  assert.ok((await verifyCredentialJwt(jwt, resolver, { now: new Date('2026-01-10T00:00:00Z'), cache })).valid);
  assert.equal((await verifyCredentialJwt(jwt, resolver, { now, cache })).valid, false);
});

test('issuance input is validated with clear messages', async () => {
  const base = { issuerDid: fleetEd.did, alg: 'EdDSA' as const, subject: device.did, types: [], claims: { fleet: 'f' }, issuanceDate: issued };
  await rejectsWith(issueCredential({ ...base, claims: { id: 'x' } }, fleetEd.sign), 'validation_failed', /must not contain id/);
  await rejectsWith(issueCredential({ ...base, claims: {} }, fleetEd.sign), 'validation_failed', /must not be empty/);
  await rejectsWith(issueCredential({ ...base, issuanceDate: 'yesterday' }, fleetEd.sign), 'validation_failed', /ISO-8601/);
  await rejectsWith(issueCredential({ ...base, expirationDate: '2025-01-01T00:00:00Z' }, fleetEd.sign), 'validation_failed', /after issuanceDate/);
  await rejectsWith(issueCredential({ ...base, subject: 'nope' }, fleetEd.sign), 'validation_failed', /subject/);
  await rejectsWith(issueCredential({ ...base, alg: 'RS256' as any }, fleetEd.sign), 'validation_failed', /EdDSA or ES256K/);
  await rejectsWith(issueCredential({ ...base, kid: `${fleetK1.did}#${fleetK1.did.slice(8)}` }, fleetEd.sign), 'validation_failed', /kid must be/);
  await rejectsWith(issueCredential({ ...base, issuerDid: 'did:web:fleet.example' }, fleetEd.sign), 'validation_failed', /kid is required/);
  await rejectsWith(issueCredential(base, 'nope' as any), 'bad_request', /sign must be a function/);
  assert.throws(() => localSigner('Ed25519', new Uint8Array(31)), (e: unknown) => isFleetkeyError(e) && /32 bytes/.test(e.message));
  assert.throws(() => localSigner('secp256k1', new Uint8Array(32)), (e: unknown) => isFleetkeyError(e) && /invalid secp256k1 secret key/.test(e.message));
  await rejectsWith(localSigner('P-256', makeKey('P-256').secretKey)(new Uint8Array(33)), 'bad_request', /32-byte SHA-256 digest/);
  await rejectsWith(
    issueDeviceCredential({ issuerDid: fleetEd.did, alg: 'EdDSA', deviceDid: device.did, fleet: 'f', firmwareHash: 'XYZ', enrolledAt: issued }, fleetEd.sign),
    'validation_failed',
    /firmwareHash/,
  );
});

test('did:pkh eip155 fleet: a threshold-ECDSA account issues ES256K credentials; did-jwt-vc and our verifier recover the address', async () => {
  const account = makeKey('secp256k1');
  const address = publicKeyToAddress(`0x${hex.encode(secp256k1.getPublicKey(account.secretKey, false))}`);
  const issuerDid = `did:pkh:eip155:1:${address}`;
  const jwt = await issueCredential({ issuerDid, alg: 'ES256K', subject: device.did, types: ['FleetDeviceCredential'], claims: { fleet: 'f' }, issuanceDate: issued }, account.sign);
  assert.equal(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid, `${issuerDid}#blockchainAccountId`);
  assert.equal((await didJwtVcVerify(jwt, resolver)).verified, true);
  const v = await verifyCredentialJwt(jwt, resolver, { now, expectedIssuer: issuerDid });
  assert.ok(v.valid);
  // another key cannot sign for the account, at issuance or at verification
  await rejectsWith(issueCredential({ issuerDid, alg: 'ES256K', subject: device.did, types: [], claims: { fleet: 'f' }, issuanceDate: issued }, fleetK1.sign), 'bad_signature');
  const forged = tamperPayload(jwt, (p) => (p.vc.credentialSubject.fleet = 'g'));
  const f = await verifyCredentialJwt(forged, resolver, { now });
  assert.equal(!f.valid && f.reason, 'bad_signature');
  await rejectsWith(issueCredential({ issuerDid, alg: 'EdDSA', subject: device.did, types: [], claims: { fleet: 'f' }, issuanceDate: issued }, fleetEd.sign), 'validation_failed', /signs ES256K/);
});
