import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  signControlDoc, verifyControlDoc, controlDocDigest, signAgentRequest, verifyAgentRequest, requestDigest, checkGrantUsable,
  signApproval, verifyApprovals, publicKeyOf, type ControlDoc, type GrantDoc, type AgentRequest, type KeyType, type ApproversDoc,
} from '../../src/control/index.ts';
import { FleetkeyError } from '../../src/errors.ts';
import { codeOf } from '../helpers/errors.ts';

/** A test secret: 0x01 followed by 31 bytes n (a valid scalar on both curves). */
const key = (n: number) => {
  const k = new Uint8Array(32).fill(n);
  k[0] = 1;
  return k;
};
const OWNER = key(1);
const OWNER_PUB = publicKeyOf(OWNER, 'ed25519');
const NOW = 1_800_000_000_000;

const policyJson = { version: 3, name: 'p', rules: [{ type: 'allow', chainIds: ['8453'] }, { type: 'rate_limit', max: 10, window: '1h' }] };
const grant = (keyType: KeyType = 'ed25519', extra: Partial<GrantDoc> = {}): GrantDoc => ({
  kind: 'grant', id: 'grant-1', agent: { keyType, publicKey: publicKeyOf(key(9), keyType) }, wallets: ['wal_a', 'wal_b'],
  expiresAt: NOW + 3_600_000, maxUses: 5, policyVersion: 3, label: 'agent 7', issuedAt: NOW - 1000,
  permissions: [{ chainId: '0x2105', expiry: 1800003600, signer: { type: 'key', data: { id: 'x' } }, permission: { type: 'native-token-stream', data: { amountPerSecond: '0x1' } } }],
  ...extra,
});
const docs: ControlDoc[] = [
  { kind: 'policy', walletId: 'wal_a', version: 3, policy: policyJson, issuedAt: NOW },
  grant(),
  { kind: 'revocation', grantId: 'grant-1', issuedAt: NOW },
  { kind: 'approvers', version: 1, approvers: { alice: { keyType: 'ed25519', publicKey: publicKeyOf(key(20), 'ed25519') }, bob: { keyType: 'p256', publicKey: publicKeyOf(key(21), 'p256') } }, issuedAt: NOW },
];

const code = codeOf;

/** Every leaf path of a JSON value, with a value that differs from it. */
function leaves(v: unknown, path: (string | number)[] = []): { path: (string | number)[]; changed: unknown }[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  const changed = typeof v === 'number' ? v + 1 : typeof v === 'boolean' ? !v : typeof v === 'string' ? (v.length ? (v[0] === 'a' ? 'b' : 'a') + v.slice(1) : 'x') : 'x';
  return [{ path, changed }];
}
function setPath(o: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(o) as Record<string | number, unknown>;
  let cur = copy;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  cur[path[path.length - 1]] = value;
  return copy;
}

describe('control documents', () => {
  test('every kind signs and verifies against the pinned owner key', () => {
    for (const d of docs) {
      const s = signControlDoc(d, OWNER);
      assert.equal(s.signer, OWNER_PUB);
      assert.deepEqual(verifyControlDoc(JSON.parse(JSON.stringify(s)), ['ff'.repeat(32), OWNER_PUB]), d);
      assert.match(controlDocDigest(d), /^[0-9a-f]{64}$/);
    }
  });

  test('every single-field tamper fails (doc leaves, sig, signer)', () => {
    let n = 0;
    for (const d of docs) {
      const s = signControlDoc(d, OWNER);
      for (const { path, changed } of leaves(s)) {
        const c = code(() => verifyControlDoc(setPath(s, path, changed), [OWNER_PUB]));
        assert.ok(c === 'bad_signature' || c === 'validation_failed', `${path.join('.')}: ${c}`);
        n++;
      }
    }
    assert.ok(n > 40);
  });

  test('adding or removing an optional field breaks the signature', () => {
    const s = signControlDoc(docs[1] as GrantDoc, OWNER);
    for (const k of ['maxUses', 'policyVersion', 'label', 'permissions'] as const) {
      const { [k]: _, ...rest } = s.doc;
      assert.equal(code(() => verifyControlDoc({ ...s, doc: rest }, [OWNER_PUB])), 'bad_signature', k);
    }
    const p = signControlDoc({ kind: 'revocation', grantId: 'g', issuedAt: NOW }, OWNER);
    assert.equal(code(() => verifyControlDoc({ ...p, doc: { ...p.doc, kind: 'grant' } }, [OWNER_PUB])), 'validation_failed');
  });

  test('an invalid secret key fails with a fixed message (no key material, no cause)', () => {
    for (const bad of [new Uint8Array(32).fill(255), new Uint8Array(32), new Uint8Array(31)]) {
      try {
        signAgentRequest(request(), bad, 'p256');
        assert.fail('signed with an invalid key');
      } catch (e) {
        assert.ok(e instanceof FleetkeyError && e.code === 'bad_request' && e.cause === undefined);
        assert.doesNotMatch(e.message, /ff|00/);
      }
    }
  });

  test('P-256 agent keys may be given uncompressed', async () => {
    const { p256 } = await import('@noble/curves/nist.js');
    const g = grant('p256', { agent: { keyType: 'p256', publicKey: Buffer.from(p256.getPublicKey(key(9), false)).toString('hex') } });
    assert.equal(verifyControlDoc(signControlDoc(g, OWNER), [OWNER_PUB]).kind, 'grant');
    assert.equal(verifyAgentRequest(signAgentRequest(request(), key(9), 'p256'), g, opts).requestId, request().requestId);
  });

  test('wrong owner key, unpinned signer, owner key of another kind of object', () => {
    const s = signControlDoc(docs[1], OWNER);
    assert.equal(code(() => verifyControlDoc(s, [publicKeyOf(key(2), 'ed25519')])), 'bad_signature');
    const other = signControlDoc(docs[1], key(2));
    assert.equal(code(() => verifyControlDoc(other, [OWNER_PUB])), 'bad_signature');
    assert.equal(code(() => verifyControlDoc({ ...other, signer: OWNER_PUB }, [OWNER_PUB])), 'bad_signature');
    // an agent request signature by the owner key does not make a control doc (domain separation)
    const req = signAgentRequest(request(), OWNER, 'ed25519');
    assert.equal(code(() => verifyControlDoc({ doc: docs[1], sig: req.sig, signer: OWNER_PUB }, [OWNER_PUB])), 'bad_signature');
  });

  test('unknown fields and bad values are rejected with their path', () => {
    const s = signControlDoc(docs[1] as GrantDoc, OWNER);
    const err = (v: unknown) => {
      try {
        verifyControlDoc(v, [OWNER_PUB]);
      } catch (e) {
        return (e as FleetkeyError).details?.path;
      }
    };
    assert.equal(err({ ...s, doc: { ...s.doc, extra: 1 } }), 'doc.extra');
    assert.equal(err({ ...s, doc: { ...s.doc, agent: { ...s.doc.agent, curve: 'x' } } }), 'doc.agent.curve');
    assert.equal(err({ ...s, doc: { ...s.doc, wallets: ['ok', 'no spaces'] } }), 'doc.wallets[1]');
    assert.equal(err({ ...s, doc: { ...s.doc, expiresAt: 1.5 } }), 'doc.expiresAt');
    assert.equal(err({ ...s, extra: 1 }), 'signed.extra');
    assert.equal(err({ doc: { ...docs[0], policy: { ...policyJson, rules: [{ type: 'allow', widnow: 1 }] } }, sig: s.sig, signer: s.signer }), 'doc.policy.rules[0].widnow');
    assert.equal(err({ doc: { ...docs[0], version: 4 }, sig: s.sig, signer: s.signer }), 'doc.version');
    assert.throws(() => signControlDoc({ ...docs[1], wallets: [] } as GrantDoc, OWNER), /doc\.wallets/);
  });

  test('property: random grants round-trip; flipping any signature byte fails', () => {
    const arbGrant = fc.record({
      id: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/),
      wallets: fc.uniqueArray(fc.stringMatching(/^wal_[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 5 }),
      issuedAt: fc.integer({ min: 0, max: 2 ** 42 }),
      ttl: fc.integer({ min: 1, max: 2 ** 32 }),
      maxUses: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
      label: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
      keyType: fc.constantFrom<KeyType>('ed25519', 'p256'),
      seed: fc.integer({ min: 1, max: 255 }),
      flip: fc.nat(63),
    });
    fc.assert(
      fc.property(arbGrant, (g) => {
        const doc: GrantDoc = { kind: 'grant', id: g.id, agent: { keyType: g.keyType, publicKey: publicKeyOf(key(g.seed), g.keyType) }, wallets: g.wallets, expiresAt: g.issuedAt + g.ttl, issuedAt: g.issuedAt, maxUses: g.maxUses, label: g.label };
        const s = signControlDoc(doc, OWNER);
        assert.equal(verifyControlDoc(JSON.parse(JSON.stringify(s)), [OWNER_PUB]).kind, 'grant');
        const sig = s.sig.split('');
        sig[g.flip * 2] = sig[g.flip * 2] === '0' ? '1' : '0';
        assert.equal(code(() => verifyControlDoc({ ...s, sig: sig.join('') }, [OWNER_PUB])), 'bad_signature');
      }),
      { numRuns: 60 },
    );
  });
});

function request(extra: Partial<AgentRequest> = {}): AgentRequest {
  return {
    grantId: 'grant-1', walletId: 'wal_a', requestId: 'req_0001abcd',
    payload: { kind: 'evm_message', data: 'hello', opts: { chainId: 8453 } },
    expiresAt: NOW + 60_000, issuedAt: NOW - 1000, ...extra,
  };
}
const opts = { now: NOW, maxTtlMs: 300_000 };

describe('agent requests', () => {
  for (const keyType of ['ed25519', 'p256'] as const) {
    test(`${keyType}: a valid request verifies; each failure has its code`, () => {
      const g = grant(keyType);
      const s = signAgentRequest(request(), key(9), keyType);
      assert.equal(s.sig.length, 128);
      assert.deepEqual(verifyAgentRequest(JSON.parse(JSON.stringify(s)), g, opts), request());
      // wrong key
      assert.equal(code(() => verifyAgentRequest(signAgentRequest(request(), key(10), keyType), g, opts)), 'bad_signature');
      // tampered request
      assert.equal(code(() => verifyAgentRequest({ ...s, request: { ...s.request, walletId: 'wal_b' } }, g, opts)), 'bad_signature');
      assert.equal(code(() => verifyAgentRequest({ ...s, request: { ...s.request, payload: { ...s.request.payload, data: 'hellO' } } }, g, opts)), 'bad_signature');
      // expired request, too long a lifetime, issued in the future
      assert.equal(code(() => verifyAgentRequest(s, g, { ...opts, now: NOW + 60_000 })), 'request_expired');
      assert.equal(code(() => verifyAgentRequest(signAgentRequest(request({ expiresAt: NOW + 3_000_000 }), key(9), keyType), g, opts)), 'validation_failed');
      assert.equal(code(() => verifyAgentRequest(signAgentRequest(request({ issuedAt: NOW + 120_000, expiresAt: NOW + 200_000 }), key(9), keyType), g, opts)), 'validation_failed');
      // grant expired, wallet outside grant, other grant
      assert.equal(code(() => verifyAgentRequest(s, { ...g, expiresAt: NOW }, opts)), 'grant_expired');
      assert.equal(code(() => verifyAgentRequest(signAgentRequest(request({ walletId: 'wal_c' }), key(9), keyType), g, opts)), 'wallet_not_in_grant');
      assert.equal(code(() => verifyAgentRequest(s, { ...g, id: 'grant-2' }, opts)), 'forbidden');
      // bad requestId
      assert.equal(code(() => signAgentRequest(request({ requestId: 'short' }), key(9), keyType)), 'validation_failed');
      assert.equal(code(() => verifyAgentRequest({ ...s, request: { ...s.request, requestId: 'has space 123' } }, g, opts)), 'validation_failed');
    });
  }

  test('P-256: a high-s signature is refused (low-s only)', async () => {
    const { p256 } = await import('@noble/curves/nist.js');
    const s = signAgentRequest(request(), key(9), 'p256');
    const sig = p256.Signature.fromBytes(Buffer.from(s.sig, 'hex'), 'compact');
    const high = new p256.Signature(sig.r, p256.Point.CURVE().n - sig.s).toBytes('compact');
    assert.equal(code(() => verifyAgentRequest({ ...s, sig: Buffer.from(high).toString('hex') }, grant('p256'), opts)), 'bad_signature');
  });

  test('checkGrantUsable: revoked, expired, exhausted, policy too old', () => {
    const g = grant();
    assert.equal(code(() => checkGrantUsable(g, { now: NOW, revoked: false, usesSoFar: 4, policyVersion: 3 })), 'ok');
    assert.equal(code(() => checkGrantUsable(g, { now: NOW, revoked: true, usesSoFar: 0 })), 'grant_revoked');
    assert.equal(code(() => checkGrantUsable(g, { now: g.expiresAt, revoked: false, usesSoFar: 0 })), 'grant_expired');
    assert.equal(code(() => checkGrantUsable(g, { now: NOW, revoked: false, usesSoFar: 5 })), 'grant_exhausted');
    assert.equal(code(() => checkGrantUsable(g, { now: NOW, revoked: false, usesSoFar: 0, policyVersion: 2 })), 'conflict');
    assert.equal(code(() => checkGrantUsable(g, { now: NOW, revoked: false, usesSoFar: 0, policyVersion: null })), 'conflict');
    assert.equal(code(() => checkGrantUsable({ ...g, maxUses: undefined }, { now: NOW, revoked: false, usesSoFar: 1e9 })), 'ok');
  });

  test('requestDigest is stable under key order and JSON round trips, and changes with any field', () => {
    const s = signAgentRequest(request(), key(9), 'ed25519');
    const d = requestDigest(s);
    const reordered = { sig: s.sig, request: Object.fromEntries(Object.entries(s.request).reverse()) };
    assert.equal(requestDigest(reordered), d);
    assert.equal(requestDigest(JSON.parse(JSON.stringify(s))), d);
    assert.equal(requestDigest(signAgentRequest(request(), key(9), 'p256')), d, 'independent of the signature');
    for (const { path, changed } of leaves(s.request)) {
      if (String(path[path.length - 1]) === 'chainId') continue; // 8453 → 8454 still valid, checked below
      let other: string | undefined;
      try {
        other = requestDigest({ request: setPath(s.request, path, changed) });
      } catch {
        continue; // invalid requests have no digest
      }
      assert.notEqual(other, d, path.join('.'));
    }
    assert.notEqual(requestDigest({ request: request({ payload: { kind: 'evm_message', data: 'hello', opts: { chainId: '8453' } } }) }), d);
  });

  test('property: any valid request round-trips with either key type; any other key fails', () => {
    fc.assert(
      fc.property(
        fc.record({
          requestId: fc.stringMatching(/^[A-Za-z0-9_-]{8,40}$/),
          data: fc.jsonValue().filter((v) => v !== null),
          ttl: fc.integer({ min: 1, max: 300_000 }),
          keyType: fc.constantFrom<KeyType>('ed25519', 'p256'),
          other: fc.integer({ min: 10, max: 255 }),
        }),
        (r) => {
          const req = request({ requestId: r.requestId, payload: { kind: 'raw_message', data: r.data }, expiresAt: NOW + r.ttl });
          const g = grant(r.keyType);
          const s = signAgentRequest(req, key(9), r.keyType);
          assert.equal(verifyAgentRequest(JSON.parse(JSON.stringify(s)), g, opts).requestId, r.requestId);
          assert.equal(code(() => verifyAgentRequest(signAgentRequest(req, key(r.other), r.keyType), g, opts)), 'bad_signature');
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('approvals', () => {
  const approvers = docs[3] as ApproversDoc;
  const digest = requestDigest({ request: request() });
  const approval = (approver: string, decision: 'approve' | 'reject' = 'approve', d = digest) => ({ kind: 'approval' as const, requestDigest: d, decision, approver, issuedAt: NOW });
  const alice = signApproval(approval('alice'), key(20), 'ed25519');
  const bob = signApproval(approval('bob'), key(21), 'p256');
  const req = { required: 2, approvers: ['alice', 'bob', 'carol'] };

  test('M of N distinct approvers; duplicates count once', () => {
    assert.deepEqual(verifyApprovals(digest, [alice, alice, bob], approvers, req), { approved: ['alice', 'bob'], rejected: [], satisfied: true, ignored: [] });
    const one = verifyApprovals(digest, [alice, alice, JSON.parse(JSON.stringify(alice))], approvers, req);
    assert.deepEqual([one.approved, one.satisfied], [['alice'], false]);
  });

  test('unknown, ineligible, forged, other-request and malformed approvals are ignored and reported', () => {
    const mallory = signApproval(approval('mallory'), key(22), 'ed25519');
    const forgedBob = signApproval(approval('bob'), key(22), 'p256');
    const other = signApproval(approval('alice', 'approve', 'ab'.repeat(32)), key(20), 'ed25519');
    const t = verifyApprovals(digest, [mallory, forgedBob, other, { nope: 1 }, alice], approvers, { required: 1, approvers: ['alice', 'carol'] });
    assert.deepEqual(t.approved, ['alice']);
    assert.equal(t.satisfied, true);
    assert.deepEqual(t.ignored.map((i) => [i.index, i.reason]), [[0, 'unknown_approver'], [1, 'not_eligible'], [2, 'wrong_request'], [3, 'malformed']]);
    const t2 = verifyApprovals(digest, [forgedBob], approvers, req);
    assert.deepEqual(t2.ignored.map((i) => i.reason), ['bad_signature']);
  });

  test('a reject is reported and outweighs the same approver\'s approve', () => {
    const bobNo = signApproval(approval('bob', 'reject'), key(21), 'p256');
    const t = verifyApprovals(digest, [alice, bob, bobNo], approvers, req);
    assert.deepEqual(t, { approved: ['alice'], rejected: ['bob'], satisfied: false, ignored: [] });
  });
});
