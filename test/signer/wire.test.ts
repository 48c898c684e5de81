/**
 * The compact plaintext of sealed direct messages (src/signer/wire.ts) and the sealed box around it:
 * any JSON body comes back exactly (hex of any case and length, strings that look like the codec's
 * own tags), a real DKLs23 signing message shrinks, and every malformed packing or tampered box is
 * refused with an error, never a different body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { packBody, unpackBody, MIN_BLOB_BYTES } from '../../src/signer/wire.ts';
import { newNodeKeys, openDirect, publicOf, sealDirect, signEnvelope, type Envelope } from '../../src/signer/envelope.ts';
import { FleetkeyError } from '../../src/errors.ts';
import type { Json } from '../../src/crypto/types.ts';
import { dkg, runInProcess, sign } from '../../src/crypto/dkls23/index.ts';

const hexish = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 80 }).map(bytesToHex),
  fc.uint8Array({ minLength: MIN_BLOB_BYTES, maxLength: 80 }).map((b) => bytesToHex(b).toUpperCase()),
  fc.uint8Array({ minLength: MIN_BLOB_BYTES, maxLength: 40 }).map((b) => bytesToHex(b) + 'a'), // odd length
  fc.constantFrom("'", '#', '#0', "'#1", '', '\u2603', '#00'),
  fc.string(),
);
const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    hexish,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string(), hexish), tie('v'), { maxKeys: 5 }),
  ),
})).v;

test('packBody / unpackBody: every JSON body comes back exactly', () => {
  fc.assert(
    fc.property(json, (body) => {
      // fast-check's dictionaries have a null prototype; what travels is the JSON of the body.
      assert.deepEqual(unpackBody(packBody(body)), JSON.parse(JSON.stringify(body)));
    }),
    { numRuns: 300 },
  );
});

test('malformed packings are refused', () => {
  const good = packBody({ a: bytesToHex(randomBytes(32)), b: 'x', c: [bytesToHex(randomBytes(20))] });
  assert.deepEqual(Object.keys(unpackBody(good) as object), ['a', 'b', 'c']);
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    'other format': Uint8Array.of(2, ...good.subarray(1)),
    truncated: good.subarray(0, good.length - 1),
    trailing: Uint8Array.of(...good, 0),
    'huge count': Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff),
  };
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const raw = (skeleton: string, blobs: Uint8Array[]) => {
    const s = new TextEncoder().encode(skeleton);
    return Uint8Array.of(1, ...u32(blobs.length), ...blobs.flatMap((b) => u32(b.length)), ...u32(s.length), ...s, ...blobs.flatMap((b) => [...b]));
  };
  const blob = randomBytes(MIN_BLOB_BYTES);
  assert.deepEqual(unpackBody(raw(`{"a":"#0"}`, [blob])), { a: bytesToHex(blob) }, 'the hand-built packing is valid');
  cases['untagged string'] = raw(`{"a":"#0","b":"x"}`, [blob]);
  cases['blob used twice'] = raw(`{"a":"#0","b":"#0"}`, [blob]);
  cases['blob unused'] = raw(`{"a":"'x"}`, [blob]);
  cases['index out of range'] = raw(`{"a":"#1"}`, [blob]);
  cases['non-canonical index'] = raw(`{"a":"#00"}`, [blob]);
  cases['short blob'] = raw(`{"a":"#0"}`, [blob.subarray(1)]);
  cases['overwritten key hides a blob'] = raw(`{"a":"#0","a":"'y"}`, [blob]);
  cases['skeleton not JSON'] = raw(`{"a":`, []);
  cases['skeleton not UTF-8'] = Uint8Array.of(1, ...u32(0), ...u32(1), 0xff);
  for (const [name, b] of Object.entries(cases)) assert.throws(() => unpackBody(b), Error, name);
});

test('sealed direct messages: round trip, smaller than hex JSON, tampering refused', () => {
  // A real DKLs23 2-of-3 signing: the round-2 direct message carries the RVOLE (ã: 416 × 3 scalars).
  const parties = [1, 2, 3];
  const keys = runInProcess(Object.fromEntries(parties.map((i) => [i, dkg({ self: i, parties, threshold: 2, sessionId: 'wire-dkg' })])));
  const directs: Json[] = [];
  const h = randomBytes(32);
  runInProcess(
    Object.fromEntries([1, 2].map((i) => [i, sign({ share: keys[i].share, public: keys[i].public, signers: [1, 2], messageHash: h, sessionId: 'wire-sign' })])),
    {
      intercept: (_r, _from, out) => {
        directs.push(...Object.values(out.direct ?? {}));
        return out;
      },
    },
  );
  assert.ok(directs.length >= 4, `saw ${directs.length} direct messages`);
  const a = newNodeKeys('node-a');
  const b = newNodeKeys('node-b');
  const peerOf = (k: typeof a) => ({ ...publicOf(k), url: 'https://127.0.0.1:1' });
  const hdr = { session: 's1', kind: 'sign' as const, round: 2, to: 'node-b' };
  for (const body of directs) {
    const sealed = sealDirect(body, hdr, a, peerOf(b));
    const env = signEnvelope({ v: 1, session: 's1', kind: 'sign', round: 2, from: 'node-a', to: 'node-b', body: sealed }, a);
    assert.deepEqual(openDirect(env, b, peerOf(a)), body);
    const before = 2 * JSON.stringify(body).length; // the old form: hex of the JSON's UTF-8 bytes
    const after = (sealed as { ct: string }).ct.length;
    assert.ok(after < before / 2.5, `sealed ${after} chars, hex JSON ${before}`);
  }
  const body = directs[directs.length - 1];
  const env = signEnvelope({ v: 1, session: 's1', kind: 'sign', round: 2, from: 'node-a', to: 'node-b', body: sealDirect(body, hdr, a, peerOf(b)) }, a);
  const ct = base64.decode((env.body as { ct: string }).ct);
  ct[ct.length >> 1] ^= 1;
  const refuse = (e: Envelope, why: string) =>
    assert.throws(() => openDirect(e, b, peerOf(a)), (err: unknown) => err instanceof FleetkeyError && err.code === 'decrypt_failed', why);
  refuse({ ...env, body: { ...(env.body as object), ct: base64.encode(ct) } }, 'flipped ciphertext bit');
  refuse({ ...env, body: { ...(env.body as object), ct: bytesToHex(randomBytes(64)) + '!' } }, 'not base64');
  refuse({ ...env, round: 3 }, 'another round (associated data)');
});
