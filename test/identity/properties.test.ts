import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Resolver } from 'did-resolver';
import {
  MemoryReplayStore,
  createStatusList,
  decodeStatusList,
  didKeyFromPublicKey,
  getResolver,
  issueDeviceCredential,
  publicKeyFromDidKey,
  signDeviceData,
  verifyDeviceData,
} from '../../src/identity/index.ts';
import { FIRMWARE, makeKey } from './fixtures.ts';

test('did:key round-trips for random keys of every curve', () => {
  fc.assert(
    fc.property(fc.constantFrom('Ed25519' as const, 'P-256' as const, 'secp256k1' as const), fc.uint8Array({ minLength: 32, maxLength: 32 }), (type, seed) => {
      let key;
      try {
        key = makeKey(type, seed);
      } catch {
        return; // not a valid secret scalar for that curve
      }
      const pk = publicKeyFromDidKey(key.did);
      assert.equal(pk.type, type);
      assert.equal(didKeyFromPublicKey(pk), key.did);
    }),
    { numRuns: 60 },
  );
});

test('status list: any set of indices survives encode/decode, and only those bits are set', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 131_071 }), { maxLength: 40 }), (indices) => {
      const list = createStatusList();
      for (const i of indices) list.set(i);
      const back = decodeStatusList(list.encode());
      for (const i of indices) assert.equal(back.get(i), true);
      const set = new Set(indices);
      for (let probe = 0; probe < 64; probe++) {
        const i = (probe * 2053) % 131_072;
        assert.equal(back.get(i), set.has(i));
      }
    }),
    { numRuns: 40 },
  );
});

test('no single-character change to a signed reading is ever trusted', async () => {
  const resolver = new Resolver(getResolver());
  const fleet = makeKey('Ed25519');
  const device = makeKey('Ed25519');
  const now = Date.parse('2026-03-01T00:00:00Z');
  const credentialJwt = await issueDeviceCredential({ issuerDid: fleet.did, alg: 'EdDSA', deviceDid: device.did, fleet: 'f', firmwareHash: FIRMWARE, enrolledAt: new Date('2026-01-01T00:00:00Z') }, fleet.sign);
  const msg = await signDeviceData({ deviceDid: device.did, fleet: 'f', ts: now, data: { v: 1 } }, device.sign);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: msg.length - 1 }), fc.constantFrom(...alphabet), async (pos, ch) => {
      if (msg[pos] === ch) return;
      const mutated = msg.slice(0, pos) + ch + msg.slice(pos + 1);
      const v = await verifyDeviceData(mutated, { credentialJwt, resolver, fleetIssuerDid: fleet.did, seen: new MemoryReplayStore(), now });
      // @scure/base refuses non-canonical base64url (non-zero padding bits), so no re-encoding of the
      // same bytes slips through either
      assert.equal(v.trusted, false, `${pos}:${ch} -> ${v.reason}`);
    }),
    { numRuns: 150 },
  );
});
