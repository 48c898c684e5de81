import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import {
  appendEntry,
  canonicalJson,
  ed25519CheckpointSigner,
  entryHash,
  exportJsonl,
  GENESIS_PREV,
  makeCheckpoint,
  verifyLog,
  type AuditEntry,
  type AuditFields,
} from '../../src/audit/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const SK = new Uint8Array(32).fill(7);
const SIGNER = ed25519CheckpointSigner(SK);
const T0 = Date.parse('2026-01-01T00:00:00Z');

function field(i: number, extra: Partial<AuditFields> = {}): AuditFields {
  return {
    time: new Date(T0 + i * 1000).toISOString(),
    actor: `node-${i % 3}`,
    type: (['request', 'decision', 'signature', 'grant', 'policy', 'approval'] as const)[i % 6],
    requestDigest: i % 2 ? 'ab'.repeat(32) : undefined,
    data: { i, amount: BigInt(i) * 10n ** 18n, note: `entry ${i}` },
    ...extra,
  };
}

function buildLog(n: number, checkpointEvery = 0): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(appendEntry(out[out.length - 1] ?? null, field(i)));
    if (checkpointEvery && out.length % checkpointEvery === 0) {
      out.push(makeCheckpoint(out[out.length - 1], SIGNER, { time: field(i).time, actor: 'node-0' }));
    }
  }
  return out;
}

test('canonical JSON: sorted keys, bigints as strings, undefined keys dropped, refuses odd values', () => {
  assert.equal(canonicalJson({ b: 1, a: [2n, 'x'], c: undefined }), '{"a":["2","x"],"b":1}');
  assert.equal(canonicalJson({ z: { y: 1, x: 2 } }), '{"z":{"x":2,"y":1}}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), /non-finite/);
  assert.throws(() => canonicalJson({ a: new Date(0) }), /unsupported object/);
  assert.throws(() => canonicalJson([undefined]), /undefined array element/);
});

test('appendEntry links to the previous entry and hashes every field but hash', () => {
  const a = appendEntry(null, field(0));
  assert.equal(a.seq, 1);
  assert.equal(a.prev, GENESIS_PREV);
  assert.equal(a.hash, entryHash(a));
  assert.deepEqual(a.data, { i: 0, amount: '0', note: 'entry 0' });
  const b = appendEntry(a, field(1));
  assert.equal(b.seq, 2);
  assert.equal(b.prev, a.hash);
  assert.notEqual(entryHash({ ...b, actor: 'someone-else' }), b.hash);
});

test('appendEntry refuses secrets, bad time and unknown types', () => {
  assert.throws(() => appendEntry(null, field(0, { data: { nested: { privateKey: 'x' } } })), (e: unknown) => {
    return e instanceof FleetkeyError && e.code === 'validation_failed' && e.details?.path === 'data.nested.privateKey';
  });
  assert.throws(() => appendEntry(null, field(0, { time: 'yesterday' })), /ISO-8601/);
  assert.throws(() => appendEntry(null, field(0, { type: 'nope' as never })), /unknown audit entry type/);
});

test('a valid log verifies, with checkpoints and trusted keys', () => {
  const log = buildLog(25, 10);
  const r = verifyLog(exportJsonl(log), { trustedKeys: [SIGNER.publicKey] });
  assert.equal(r.ok, true, JSON.stringify(r.firstBroken));
  assert.equal(r.entries.length, log.length);
  assert.equal(r.checkpoints.length, 2);
  assert.equal(r.sealedThrough, 20);
  assert.deepEqual(r.head, { seq: log.at(-1)!.seq, hash: log.at(-1)!.hash });
  assert.deepEqual(r.entries, JSON.parse(JSON.stringify(log)));
  assert.equal(verifyLog('').ok, true);
});

test('cut-off last line is reported as invalid JSON at that line', () => {
  const text = exportJsonl(buildLog(5));
  const cut = text.slice(0, text.length - 20);
  const r = verifyLog(cut);
  assert.equal(r.ok, false);
  assert.deepEqual([r.firstBroken!.line, r.firstBroken!.code], [5, 'invalid_json']);
  assert.equal(r.entries.length, 4);
});

test('dropping whole entries at the end is caught only against an expected head', () => {
  const log = buildLog(6);
  const text = exportJsonl(log.slice(0, 4));
  assert.equal(verifyLog(text).ok, true);
  const r = verifyLog(text, { expectedHead: { seq: 6, hash: log[5].hash } });
  assert.deepEqual([r.firstBroken!.code, r.firstBroken!.line, r.firstBroken!.seq], ['truncated', 5, 5]);
});

test('a segment verifies against an anchor (the entry before it), and not without', () => {
  const log = buildLog(12, 5);
  const seg = log.slice(6);
  const anchor = { seq: log[5].seq, hash: log[5].hash };
  const r = verifyLog(exportJsonl(seg), { anchor, trustedKeys: [SIGNER.publicKey] });
  assert.equal(r.ok, true, JSON.stringify(r.firstBroken));
  assert.equal(r.entries[0].seq, 7);
  assert.deepEqual(verifyLog(exportJsonl(seg)).firstBroken?.code, 'bad_seq');
  assert.deepEqual(verifyLog(exportJsonl(seg), { anchor: { ...anchor, hash: log[4].hash } }).firstBroken?.code, 'bad_prev');
  // a segment that opens with a checkpoint over the anchor
  assert.equal(log[5].type, 'checkpoint');
  const r2 = verifyLog(exportJsonl(log.slice(5)), { anchor: { seq: log[4].seq, hash: log[4].hash }, trustedKeys: [SIGNER.publicKey] });
  assert.equal(r2.ok, true, JSON.stringify(r2.firstBroken));
  assert.equal(r2.sealedThrough, 10);
});

test('re-chaining the whole tail after a change is caught by the next checkpoint', () => {
  const log = buildLog(12, 6); // checkpoints at positions 6 and 13
  const tampered: AuditEntry[] = [];
  for (const [i, e] of log.entries()) {
    const { hash: _h, seq: _s, prev: _p, ...fields } = e;
    const f = i === 2 ? { ...fields, actor: 'mallory' } : fields;
    tampered.push(appendEntry(tampered[i - 1] ?? null, f as AuditFields));
  }
  const r = verifyLog(exportJsonl(tampered));
  assert.deepEqual([r.firstBroken!.code, r.firstBroken!.line], ['bad_checkpoint', 7]);
});

test('checkpoint forgery: re-signing with another key fails trustedKeys; a bad signature always fails', () => {
  const log = buildLog(4);
  const mallory = ed25519CheckpointSigner(new Uint8Array(32).fill(9));
  const forged = [...log, makeCheckpoint(log[3], mallory, { time: field(4).time, actor: 'node-0' })];
  assert.equal(verifyLog(exportJsonl(forged)).ok, true, 'self-consistent without a trust list');
  const r = verifyLog(exportJsonl(forged), { trustedKeys: [SIGNER.publicKey] });
  assert.deepEqual([r.firstBroken!.code, r.firstBroken!.line], ['untrusted_key', 5]);

  // claim the trusted key but keep mallory's signature, and re-hash the entry so only the signature is wrong
  const good = makeCheckpoint(log[3], SIGNER, { time: field(4).time, actor: 'node-0' });
  const badSig = bytesToHex(ed25519.sign(new Uint8Array([1, 2, 3]), new Uint8Array(32).fill(9)));
  const { hash: _h, ...body } = { ...good, data: { ...(good.data as object), signature: badSig } };
  const rehashed = { ...body, hash: entryHash(body) } as AuditEntry;
  const r2 = verifyLog(exportJsonl([...log, rehashed]), { trustedKeys: [SIGNER.publicKey] });
  assert.deepEqual([r2.firstBroken!.code, r2.firstBroken!.line], ['bad_signature', 5]);
});

// ---- property test: random logs, random tamperings, the verifier names the right line ----

type Tamper =
  | { kind: 'change'; at: number; field: 'actor' | 'time' | 'data' | 'type' | 'outcome' }
  | { kind: 'delete'; at: number }
  | { kind: 'swap'; at: number; other: number }
  | { kind: 'insert'; at: number }
  | { kind: 'copy'; at: number; from: number }
  | { kind: 'garble'; at: number }
  | { kind: 'rehash'; at: number };

test('property: any change / delete / reorder / insert / garble is reported at the first affected line', () => {
  const tamperArb = (n: number): fc.Arbitrary<Tamper> => {
    const at = fc.nat({ max: n - 1 });
    return fc.oneof(
      fc.record({ kind: fc.constant('change' as const), at, field: fc.constantFrom('actor', 'time', 'data', 'type', 'outcome') as fc.Arbitrary<'actor'> }),
      // deleting the very last entry needs an expected head; covered below
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat({ max: Math.max(0, n - 2) }) }),
      fc.record({ kind: fc.constant('swap' as const), at, other: at }).filter((t) => t.at !== t.other),
      // a perfectly forged entry inserted after the real head is an append: indistinguishable, so not generated
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat({ max: n - 1 }) }),
      fc.record({ kind: fc.constant('copy' as const), at: fc.nat({ max: n }), from: at }),
      fc.record({ kind: fc.constant('garble' as const), at }),
      fc.record({ kind: fc.constant('rehash' as const), at }),
    );
  };
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 30 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: 7 }), tamperArb(n))),
      ([n, cpEvery, t]) => {
        const log = buildLog(n, cpEvery >= 2 ? cpEvery : 0).slice(0, n);
        const lines = exportJsonl(log).split('\n').slice(0, -1);
        let expectedLine: number;
        switch (t.kind) {
          case 'change': {
            const e = JSON.parse(lines[t.at]);
            if (t.field === 'data') e.data = { ...e.data, evil: true };
            else if (t.field === 'time') e.time = new Date(Date.parse(e.time) + 1).toISOString();
            else if (t.field === 'type') e.type = e.type === 'grant' ? 'approval' : 'grant';
            else if (t.field === 'outcome') e.outcome = 'allow';
            else e.actor = e.actor + 'x';
            lines[t.at] = JSON.stringify(e);
            expectedLine = t.at + 1;
            break;
          }
          case 'delete':
            lines.splice(t.at, 1);
            expectedLine = t.at + 1;
            break;
          case 'swap': {
            const [a, b] = [Math.min(t.at, t.other), Math.max(t.at, t.other)];
            [lines[a], lines[b]] = [lines[b], lines[a]];
            expectedLine = a + 1;
            break;
          }
          case 'insert': {
            // a well-formed entry that claims the seq and prev of the slot it is put in
            const before = log[t.at - 1] ?? null;
            const forged = appendEntry(before, field(1000, { actor: 'mallory' }));
            lines.splice(t.at, 0, JSON.stringify(forged));
            // the forged line itself chains; the genuine entry after it no longer does
            expectedLine = t.at + 2;
            break;
          }
          case 'copy': {
            // a replayed (duplicated) line: wrong seq where it lands, unless it lands right after itself
            lines.splice(t.at, 0, lines[t.from]);
            expectedLine = t.from === t.at ? t.at + 2 : t.at + 1;
            break;
          }
          case 'rehash': {
            // changed and re-hashed: the entry itself is consistent, the next one no longer links to it;
            // for the last entry only the expected head shows it
            const e = JSON.parse(lines[t.at]);
            e.actor = 'mallory';
            const { hash: _h, ...body } = e;
            lines[t.at] = JSON.stringify({ ...body, hash: entryHash(body) });
            expectedLine = t.at === n - 1 ? t.at + 1 : t.at + 2;
            break;
          }
          case 'garble':
            lines[t.at] = lines[t.at].slice(0, Math.floor(lines[t.at].length / 2));
            expectedLine = t.at + 1;
            break;
        }
        const head = log[log.length - 1];
        const r = verifyLog(lines.join('\n') + '\n', { expectedHead: { seq: head.seq, hash: head.hash } });
        assert.equal(r.ok, false, `${JSON.stringify(t)} went unnoticed`);
        assert.equal(r.firstBroken!.line, expectedLine, `${JSON.stringify(t)} -> ${JSON.stringify(r.firstBroken)}`);
        if (t.kind !== 'rehash' || t.at !== n - 1) assert.equal(r.entries.length, expectedLine - 1);
      },
    ),
    { numRuns: 300 },
  );
});

test('a policy decision with bigints can be recorded and verified', async () => {
  const { evaluate, validatePolicy, NO_USAGE } = await import('../../src/policy/index.ts');
  const p = validatePolicy({ version: 4, rules: [{ type: 'allow', chainIds: ['1'] }, { type: 'window_cap', asset: { chainId: '1', asset: 'native' }, max: '1000', window: '1h' }] });
  const d = evaluate(p, { chain: 'ethereum', chainId: '1', kind: 'native_transfer', to: '0x1111111111111111111111111111111111111111', effects: [{ type: 'transfer', asset: 'native', to: '0x1111111111111111111111111111111111111111', amount: 5n }] }, { now: T0, usage: NO_USAGE });
  const e = appendEntry(null, { time: new Date(T0).toISOString(), actor: 'node-1', type: 'decision', requestDigest: 'cd'.repeat(32), decision: d, policyVersion: d.policyVersion, outcome: d.outcome });
  assert.equal((e.decision as { reservations: { amount: string }[] }).reservations[0].amount, '5');
  const r = verifyLog(exportJsonl([e]));
  assert.equal(r.ok, true);
  assert.equal(r.entries[0].outcome, 'allow');
});
