/**
 * Redistribution to a new committee (src/crypto/reshare.ts): 2-of-3 -> 3-of-5 -> 2-of-3 for every
 * scheme, same public key and address, every signature checked by an independent verifier; the
 * Wong–Wang–Wing checks each refuse a tampered message and name the dealer.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { frostAggregate, frostCommit, frostDkg, frostRefresh, frostSignShare, type CommitmentJson, type FrostSchemeName } from '../../src/crypto/frost.ts';
import { dkg as dklsDkg, pairSetup, sign as dklsSign } from '../../src/crypto/dkls23/index.ts';
import { runInProcess, type Tamper } from '../../src/crypto/run.ts';
import { reshare, type ReshareResult, type ReshareScheme } from '../../src/crypto/reshare.ts';
import { schemeOf } from '../../src/crypto/schemes.ts';
import { ProtocolError, type GroupPublic, type KeyGenResult, type PartyProtocol, type SecretShare } from '../../src/crypto/types.ts';

/** A committee as nodes would hold it: node name -> (Shamir index, key). */
type Committee = Map<string, KeyGenResult>;

function keygen(scheme: ReshareScheme, t: number, n: number): Committee {
  const parties = Array.from({ length: n }, (_, i) => i + 1);
  const sessionId = 'dkg-' + bytesToHex(randomBytes(6));
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(
    parties.map((p) => [p, scheme === 'ecdsa-secp256k1' ? dklsDkg({ self: p, parties, threshold: t, sessionId }) : frostDkg(scheme, { self: p, parties, threshold: t })]),
  );
  const out = runInProcess(protos);
  return new Map(parties.map((p) => [`node${p}`, out.get(p)!]));
}

/**
 * Reshares `from` (the first t holders deal) to the nodes `to` (new indexes 1..n' in that order),
 * as the signer nodes run it: session party = new index for receivers, 100+k for dealers only.
 */
function redistribute(scheme: ReshareScheme, from: Committee, to: string[], t2: number, opts: { tamper?: Tamper; dealers?: string[] } = {}): Committee {
  const old = [...from.values()][0].public;
  const dealerNodes = opts.dealers ?? [...from.keys()].slice(0, old.threshold);
  const partyOf = new Map<string, number>(to.map((n, i) => [n, i + 1]));
  dealerNodes.forEach((n, k) => partyOf.has(n) || partyOf.set(n, 100 + k));
  const plan = {
    dealers: dealerNodes.map((n) => ({ party: partyOf.get(n)!, index: from.get(n)!.share.index })),
    receivers: to.map((n, i) => ({ party: i + 1, index: i + 1 })),
    threshold: t2,
  };
  const sessionId = 'reshare-' + bytesToHex(randomBytes(6));
  const protos = new Map<number, PartyProtocol<ReshareResult>>();
  for (const [n, party] of partyOf) protos.set(party, reshare({ scheme, self: party, plan, old, share: from.get(n)?.share, sessionId }));
  const res = runInProcess(protos, opts.tamper);
  // Every party, dealers included, ends with the same public package.
  const pubs = [...res.values()].map((r) => JSON.stringify(r.public));
  assert.equal(new Set(pubs).size, 1, 'every party derives the same public package');
  let out = new Map(to.map((n, i) => [n, { public: res.get(i + 1)!.public, share: res.get(i + 1)!.share! }]));
  if (scheme === 'ecdsa-secp256k1') {
    // DKLs23 pairwise OT and zero-sharing set-up among the new committee.
    const sid = 'pairs-' + bytesToHex(randomBytes(6));
    const set = runInProcess(new Map(to.map((n, i) => [i + 1, pairSetup({ share: out.get(n)!.share, public: out.get(n)!.public, sessionId: sid })])));
    out = new Map(to.map((n, i) => [n, set.get(i + 1)!]));
  }
  return out;
}

/** Signs with the given nodes and checks the signature with noble's plain single-key verifier. */
function signAndVerify(scheme: ReshareScheme, c: Committee, nodes: string[], publicKey: string): void {
  const msg = randomBytes(32);
  const keys = nodes.map((n) => c.get(n)!);
  const pub = keys[0].public;
  if (scheme === 'ecdsa-secp256k1') {
    const signers = keys.map((k) => k.share.index);
    const sid = 'sign-' + bytesToHex(randomBytes(6));
    const r = runInProcess(new Map(keys.map((k) => [k.share.index, dklsSign({ share: k.share, public: k.public, signers, messageHash: msg, sessionId: sid })])));
    const sig = [...r.values()][0].signature;
    assert.ok(secp256k1.verify(hexToBytes(sig), msg, hexToBytes(publicKey), { prehash: false }), 'noble ECDSA verify');
    return;
  }
  const name = scheme as FrostSchemeName;
  const nonces = keys.map((k) => frostCommit(name, k.share));
  const commitments: Record<number, CommitmentJson> = {};
  keys.forEach((k, i) => (commitments[k.share.index] = nonces[i].commitment));
  const shares: Record<number, string> = {};
  keys.forEach((k, i) => (shares[k.share.index] = frostSignShare(name, k.share, k.public, nonces[i].nonces, commitments, msg)));
  const sig = frostAggregate(name, pub, commitments, msg, shares);
  const ok = name === 'ed25519' ? ed25519.verify(sig, msg, hexToBytes(publicKey), { zip215: false }) : schnorr.verify(sig, msg, hexToBytes(publicKey));
  assert.ok(ok, `${name}: independent verify`);
}

const ALL: ReshareScheme[] = ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'];

for (const scheme of ALL) {
  describe(`reshare ${scheme}`, () => {
    test('2-of-3 -> 3-of-5 -> 2-of-3: same key and address, each committee signs', () => {
      const c0 = keygen(scheme, 2, 3);
      const pub0 = [...c0.values()][0].public;
      const address = schemeOf(scheme).address(pub0.publicKey);
      signAndVerify(scheme, c0, ['node1', 'node3'], pub0.publicKey);

      // Grow: the old holders keep their nodes, two new nodes join.
      const c1 = redistribute(scheme, c0, ['node1', 'node2', 'node3', 'node4', 'node5'], 3);
      const pub1 = c1.get('node1')!.public;
      assert.equal(pub1.publicKey, pub0.publicKey);
      assert.equal(pub1.threshold, 3);
      assert.deepEqual(pub1.parties, [1, 2, 3, 4, 5]);
      assert.equal(schemeOf(scheme).address(pub1.publicKey), address);
      if (pub0.extra?.chainCode !== undefined) assert.equal(pub1.extra?.chainCode, pub0.extra.chainCode, 'chain code kept: derived children keep their addresses');
      if (pub0.extra?.internalKey !== undefined) assert.equal(pub1.extra?.internalKey, pub0.extra.internalKey);
      signAndVerify(scheme, c1, ['node2', 'node4', 'node5'], pub0.publicKey);
      signAndVerify(scheme, c1, ['node1', 'node3', 'node5'], pub0.publicKey);

      // Shrink to other machines: node1 and node2 leave; new indexes differ from the old ones.
      const c2 = redistribute(scheme, c1, ['node3', 'node4', 'node6'], 2, { dealers: ['node5', 'node4', 'node1'] });
      const pub2 = c2.get('node6')!.public;
      assert.equal(pub2.publicKey, pub0.publicKey);
      assert.equal(pub2.threshold, 2);
      signAndVerify(scheme, c2, ['node4', 'node6'], pub0.publicKey);
      signAndVerify(scheme, c2, ['node3', 'node6'], pub0.publicKey);

      // The children of a fleet root follow: the same child key before and after.
      const s = schemeOf(scheme);
      assert.equal(s.deriveChildPublic(pub2, 7).publicKey, s.deriveChildPublic(pub0, 7).publicKey);
    });

    test('an old share does not combine with the new committee', () => {
      const c0 = keygen(scheme, 2, 3);
      const c1 = redistribute(scheme, c0, ['node1', 'node2', 'node3'], 2);
      const old1 = c0.get('node1')!;
      const new2 = c1.get('node2')!;
      if (scheme === 'ecdsa-secp256k1') {
        // The stale share fails the check against the new verifying share before anything is sent.
        assert.throws(() => dklsSign({ share: old1.share, public: new2.public, signers: [1, 2], messageHash: randomBytes(32), sessionId: 'x' }), ProtocolError);
        return;
      }
      const mixed: Committee = new Map([['node1', { public: new2.public, share: old1.share }], ['node2', new2]]);
      assert.throws(() => signAndVerify(scheme, mixed, ['node1', 'node2'], new2.public.publicKey));
    });

    if (scheme !== 'ecdsa-secp256k1')
    test('a dealer with a stale share (before a refresh) is refused before it deals', () => {
      const c0 = keygen(scheme, 2, 3);
      const refreshed = runInProcess(new Map([1, 2, 3].map((i) => [i, frostRefresh(scheme as FrostSchemeName, { share: c0.get(`node${i}`)!.share, public: c0.get(`node${i}`)!.public })])));
      const pub = refreshed.get(1)!.public;
      const stale = c0.get('node1')!.share;
      const plan = { dealers: [{ party: 1, index: 1 }, { party: 2, index: 2 }], receivers: [{ party: 1, index: 1 }, { party: 2, index: 2 }, { party: 3, index: 3 }], threshold: 2 };
      const p = reshare({ scheme, self: 1, plan, old: pub, share: stale, sessionId: 's' });
      assert.throws(() => p.round(1, { broadcast: {}, direct: {} }), /does not match its verifying share/);
    });

    const tampers: [string, Tamper, RegExp][] = [
      ['a constant term other than λ·Y (dealer dealt something else)', (m) => (m.kind === 'broadcast' && m.from === 2 ? { ...(m.body as object), C: [(m.body as { C: string[] }).C[1], ...(m.body as { C: string[] }).C.slice(1)] } : m.body), /committed to something other than its share/],
      ['a sub-share off the committed polynomial', (m) => (m.kind === 'direct' && m.from === 2 && m.to === 3 ? { ...(m.body as object), sub: bytesToHex(ed25519.Point.Fn.toBytes(1n)) } : m.body), /does not match its commitment/],
      ['a commitment for another session or plan', (m) => (m.kind === 'broadcast' && m.from === 1 ? { ...(m.body as object), sid: '00'.repeat(32) } : m.body), /another session or plan/],
      ['too few commitments', (m) => (m.kind === 'broadcast' && m.from === 1 ? { ...(m.body as object), C: (m.body as { C: string[] }).C.slice(1) } : m.body), /must commit to/],
    ];
    // The checks are scheme-independent code; ECDSA has its own sub-share case below (its DKG is slow).
    if (scheme !== 'ecdsa-secp256k1')
      for (const [what, tamper, re] of tampers)
      test(`tamper: ${what} is refused and the dealer named`, () => {
        const c0 = keygen(scheme, 2, 3);
        let err: unknown;
        try {
          redistribute(scheme, c0, ['node1', 'node2', 'node3', 'node4'], 3, { tamper });
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof ProtocolError, `refused: ${String(err)}`);
        assert.match((err as Error).message, re);
        assert.ok((err as ProtocolError).culprit === 1 || (err as ProtocolError).culprit === 2, 'names the dealer');
      });
  });
}

test('ecdsa-secp256k1: a tampered sub-share is refused and the dealer named', () => {
  const c0 = keygen('ecdsa-secp256k1', 2, 3);
  assert.throws(
    () => redistribute('ecdsa-secp256k1', c0, ['node1', 'node2', 'node3', 'node4'], 3, { tamper: (m) => (m.kind === 'direct' && m.from === 1 && m.to === 4 ? { ...(m.body as object), sub: bytesToHex(secp256k1.Point.Fn.toBytes(5n)) } : m.body) }),
    (e: unknown) => e instanceof ProtocolError && e.culprit === 1 && /does not match its commitment/.test(e.message),
  );
});

test('bad plans are refused before anything is dealt', () => {
  const c0 = keygen('ed25519', 2, 3);
  const old: GroupPublic = c0.get('node1')!.public;
  const share: SecretShare = c0.get('node1')!.share;
  const base = { scheme: 'ed25519' as const, self: 1, old, share, sessionId: 's' };
  const r3 = [1, 2, 3].map((i) => ({ party: i, index: i }));
  assert.throws(() => reshare({ ...base, plan: { dealers: [{ party: 1, index: 1 }, { party: 2, index: 2 }], receivers: r3, threshold: 4 } }), /new threshold 4/);
  assert.throws(() => reshare({ ...base, plan: { dealers: [{ party: 1, index: 1 }], receivers: r3, threshold: 2 } }), /exactly 2 dealers/);
  assert.throws(() => reshare({ ...base, plan: { dealers: [{ party: 1, index: 1 }, { party: 2, index: 9 }], receivers: r3, threshold: 2 } }), /not an old holder/);
  assert.throws(() => reshare({ ...base, plan: { dealers: [{ party: 1, index: 1 }, { party: 2, index: 2 }], receivers: [...r3, { party: 4, index: 3 }], threshold: 2 } }), /duplicate receiver index/);
  assert.throws(() => reshare({ ...base, self: 9, plan: { dealers: [{ party: 1, index: 1 }, { party: 2, index: 2 }], receivers: r3, threshold: 2 } }), /neither a dealer nor a receiver/);
});
