import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import * as btc from '@scure/btc-signer';
import {
  deriveChildPublic,
  deriveChildPublicPath,
  deriveChildShare,
  deriveSecpChildKeys,
  frostChainCode,
  frostDkgTranscript,
  secpFixedBase,
  secpNodeOf,
  type DerivableScheme,
} from '../../src/crypto/derive.ts';
import { frostAggregate, frostCommit, frostDkg, frostRefresh, frostSignShare, frostSignSingle, type CommitmentJson } from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import { ProtocolError, type GroupPublic, type KeyGenResult, type PartyProtocol, type SecretShare } from '../../src/crypto/types.ts';

const SCHEMES: DerivableScheme[] = ['ed25519', 'secp256k1-schnorr'];
const RUNS = 6; // fast-check runs per property: each run is a FROST signature per child

interface Group {
  pub: GroupPublic;
  shares: Map<number, SecretShare>;
  transcript: Uint8Array;
}

/** A DKG run in process; the round-1 broadcasts are read off the wire (not changed) to build the transcript and chain code. */
function dkg(scheme: DerivableScheme, t: number, n: number): Group {
  const parties = Array.from({ length: n }, (_, i) => i + 1);
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(scheme, { self: p, parties, threshold: t })]));
  const round1 = new Map<number, Uint8Array[]>();
  const out = runInProcess(protos, (m) => {
    if (m.round === 1 && m.kind === 'broadcast') round1.set(m.from, (m.body as { commitment: string[] }).commitment.map(hexToBytes));
    return m.body;
  });
  const transcript = frostDkgTranscript(scheme, round1);
  const chainCode = bytesToHex(frostChainCode(transcript));
  const base = out.get(1)!.public;
  for (const r of out.values()) assert.deepEqual(r.public, base);
  const pub = { ...base, extra: { ...base.extra, chainCode } };
  return { pub, shares: new Map([...out].map(([p, r]) => [p, r.share])), transcript };
}

function dkg1of1(scheme: DerivableScheme): Group {
  const out = runInProcess(new Map([[1, frostDkg(scheme, { self: 1, parties: [1], threshold: 1 })]]));
  const r = out.get(1)!;
  const chainCode = bytesToHex(randomBytes(32));
  return { pub: { ...r.public, extra: { ...r.public.extra, chainCode } }, shares: new Map([[1, r.share]]), transcript: new Uint8Array(0) };
}

/** Signs `msg` with the given signers' child shares (derived locally by each) and returns the signature. */
function signChild(scheme: DerivableScheme, g: Group, signers: number[], index: number, msg: Uint8Array): { sig: Uint8Array; pub: GroupPublic } {
  const derived = new Map(signers.map((s) => [s, deriveChildShare(scheme, g.pub, g.shares.get(s)!, index)]));
  const pub = derived.get(signers[0])!.public;
  for (const d of derived.values()) assert.deepEqual(d.public, pub, 'every signer derives the same child record');
  assert.deepEqual(deriveChildPublic(scheme, g.pub, index), pub, 'server derives the same child record');
  if (pub.threshold === 1) return { sig: frostSignSingle(scheme, derived.get(signers[0])!.share, msg), pub };
  const nonces = new Map(signers.map((s) => [s, frostCommit(scheme, derived.get(s)!.share)]));
  const commitments: Record<number, CommitmentJson> = {};
  for (const [s, n] of nonces) commitments[s] = n.commitment;
  const shares: Record<number, string> = {};
  for (const s of signers) shares[s] = frostSignShare(scheme, derived.get(s)!.share, pub, nonces.get(s)!.nonces, commitments, msg);
  return { sig: frostAggregate(scheme, pub, commitments, msg, shares), pub };
}

function verify(scheme: DerivableScheme, pk: string, msg: Uint8Array, sig: Uint8Array): boolean {
  return scheme === 'ed25519' ? ed25519.verify(sig, msg, hexToBytes(pk), { zip215: false }) : schnorr.verify(sig, msg, hexToBytes(pk));
}

const index = fc.integer({ min: 0, max: 0x7fffffff });
const GROUPS: [number, number][] = [
  [2, 3],
  [3, 5],
];

for (const scheme of SCHEMES) {
  describe(`${scheme}: child keys`, () => {
    for (const [t, n] of GROUPS) {
      test(`${t}-of-${n}: derived shares sign under the child key (random indexes, random signer sets)`, () => {
        const g = dkg(scheme, t, n);
        fc.assert(
          fc.property(index, fc.shuffledSubarray([...g.shares.keys()], { minLength: t, maxLength: t }), fc.uint8Array({ maxLength: 64 }), (i, signers, msg) => {
            const { sig, pub } = signChild(scheme, g, signers.sort((a, b) => a - b), i, msg);
            assert.ok(verify(scheme, pub.publicKey, msg, sig), 'signature verifies under the child key');
            assert.notEqual(pub.publicKey, g.pub.publicKey);
            assert.ok(!verify(scheme, g.pub.publicKey, msg, sig), 'and not under the root key');
          }),
          { numRuns: RUNS },
        );
      });
    }

    test('1-of-1: the child share signs with the plain algorithm', () => {
      const g = dkg1of1(scheme);
      fc.assert(
        fc.property(index, (i) => {
          const msg = randomBytes(32);
          const { sig, pub } = signChild(scheme, g, [1], i, msg);
          assert.ok(verify(scheme, pub.publicKey, msg, sig));
        }),
        { numRuns: RUNS },
      );
    });

    test('children survive a share refresh (same child keys, refreshed shares still sign)', () => {
      const g = dkg(scheme, 2, 3);
      const protos = new Map([...g.shares].map(([p, share]) => [p, frostRefresh(scheme, { share, public: g.pub })]));
      const out = runInProcess(protos);
      const fresh: Group = { pub: out.get(1)!.public, shares: new Map([...out].map(([p, r]) => [p, r.share])), transcript: g.transcript };
      assert.equal(fresh.pub.extra!.chainCode, g.pub.extra!.chainCode, 'refresh keeps extra.chainCode');
      const i = 12345;
      assert.equal(deriveChildPublic(scheme, fresh.pub, i).publicKey, deriveChildPublic(scheme, g.pub, i).publicKey);
      const msg = randomBytes(32);
      const { sig, pub } = signChild(scheme, fresh, [1, 3], i, msg);
      assert.ok(verify(scheme, pub.publicKey, msg, sig));
    });

    test('tampering: a different chain code or index gives a different key; hardened and malformed indexes are rejected', () => {
      const g = dkg(scheme, 2, 3);
      const other = { ...g.pub, extra: { ...g.pub.extra, chainCode: bytesToHex(randomBytes(32)) } };
      fc.assert(
        fc.property(index, index, (i, j) => {
          const k = deriveChildPublic(scheme, g.pub, i).publicKey;
          assert.notEqual(deriveChildPublic(scheme, other, i).publicKey, k);
          if (i !== j) assert.notEqual(deriveChildPublic(scheme, g.pub, j).publicKey, k);
        }),
        { numRuns: 20 },
      );
      for (const bad of [0x80000000, 0xffffffff, -1, 1.5, Number.NaN, 2 ** 53])
        assert.throws(() => deriveChildPublic(scheme, g.pub, bad), ProtocolError, String(bad));
      assert.throws(() => deriveChildShare(scheme, g.pub, g.shares.get(1)!, 0x80000000), ProtocolError);
      const noCode = { ...g.pub, extra: { ...g.pub.extra, chainCode: undefined as never } };
      assert.throws(() => deriveChildPublic(scheme, noCode, 1), /chainCode/);
      const shortCode = { ...g.pub, extra: { ...g.pub.extra, chainCode: 'abcd' } };
      assert.throws(() => deriveChildPublic(scheme, shortCode, 1), /chainCode/);
    });

    test('tampering: an inconsistent record or a foreign share is refused', () => {
      const g = dkg(scheme, 2, 3);
      const h = dkg(scheme, 2, 3);
      // A share from another group does not match this group's commitment.
      assert.throws(() => deriveChildShare(scheme, g.pub, h.shares.get(1)!, 7), /does not match/);
      // A record whose published key is not its package's key.
      const swapped = { ...g.pub, publicKey: h.pub.publicKey };
      assert.throws(() => deriveChildPublic(scheme, swapped, 7), ProtocolError);
      // A verifying share that differs between the two copies in the record.
      const vs = { ...g.pub.verifyingShares, 2: h.pub.verifyingShares[2] };
      assert.throws(() => deriveChildPublic(scheme, { ...g.pub, verifyingShares: vs }, 7), /party 2/);
      if (scheme === 'secp256k1-schnorr') {
        const wrongInternal = { ...g.pub, extra: { ...g.pub.extra, internalKey: h.pub.extra!.internalKey } };
        assert.throws(() => deriveChildPublic(scheme, wrongInternal, 7), /TapTweak/);
      }
    });

    test('two levels: a grandchild is derived from the child record and its shares sign', () => {
      const g = dkg(scheme, 2, 3);
      const child: Group = {
        pub: deriveChildPublic(scheme, g.pub, 5),
        shares: new Map([...g.shares].map(([p, s]) => [p, deriveChildShare(scheme, g.pub, s, 5).share])),
        transcript: g.transcript,
      };
      assert.deepEqual(deriveChildPublicPath(scheme, g.pub, [5, 9]), deriveChildPublic(scheme, child.pub, 9));
      const msg = randomBytes(32);
      const { sig, pub } = signChild(scheme, child, [2, 3], 9, msg);
      assert.ok(verify(scheme, pub.publicKey, msg, sig));
    });
  });
}

describe('secp256k1-schnorr: BIP32 and BIP341 cross-checks', () => {
  /** The xpub of the group: key 02‖x(P) (even y, see derive.README.md) and the chain code. */
  function xpub(pub: GroupPublic): HDKey {
    const { bip32Key, chainCode } = secpNodeOf(pub);
    return new HDKey({ publicKey: bip32Key, chainCode });
  }

  for (const [t, n] of GROUPS) {
    test(`${t}-of-${n}: child key = @scure/bip32 deriveChild(i), output key = @scure/btc-signer p2tr(child).tweakedPubkey`, () => {
      const g = dkg('secp256k1-schnorr', t, n);
      const hd = xpub(g.pub);
      fc.assert(
        fc.property(index, (i) => {
          const c = deriveChildPublic('secp256k1-schnorr', g.pub, i);
          const ref = hd.deriveChild(i);
          assert.equal(c.extra!.bip32Key, bytesToHex(ref.publicKey!));
          assert.equal(c.extra!.chainCode, bytesToHex(ref.chainCode!));
          assert.equal(c.extra!.internalKey, bytesToHex(ref.publicKey!.subarray(1)));
          const p2tr = btc.p2tr(hexToBytes(c.extra!.internalKey as string));
          assert.equal(bytesToHex(p2tr.tweakedPubkey), c.publicKey);
        }),
        { numRuns: 50 },
      );
    });
  }

  test('paths: m/a/b matches @scure/bip32 derive("m/a/b") (child parity carried in extra.bip32Key)', () => {
    const g = dkg('secp256k1-schnorr', 2, 3);
    const hd = xpub(g.pub);
    fc.assert(
      fc.property(index, index, (a, b) => {
        const c = deriveChildPublicPath('secp256k1-schnorr', g.pub, [a, b]);
        const ref = hd.derive(`m/${a}/${b}`);
        assert.equal(c.extra!.bip32Key, bytesToHex(ref.publicKey!));
        assert.equal(c.publicKey, bytesToHex(btc.p2tr(ref.publicKey!.subarray(1)).tweakedPubkey));
      }),
      { numRuns: 20 },
    );
  });

  test('batch enrolment (deriveSecpChildKeys) equals the one-at-a-time derivation, with and without a private wider table', () => {
    const g = dkg('secp256k1-schnorr', 2, 3);
    const { bip32Key, chainCode } = secpNodeOf(g.pub);
    const from = 0x7fffffff - 40;
    for (const base of [undefined, secpFixedBase(8)]) {
      const batch = deriveSecpChildKeys(bip32Key, chainCode, from, 41, { taproot: true, base });
      assert.deepEqual(batch.invalid, []);
      for (let j = 0; j < 41; j += 4) {
        const c = deriveChildPublic('secp256k1-schnorr', g.pub, from + j);
        assert.equal(bytesToHex(batch.keys.subarray(j * 33, j * 33 + 33)), c.extra!.bip32Key);
        assert.equal(bytesToHex(batch.outputKeys!.subarray(j * 32, j * 32 + 32)), c.publicKey);
      }
    }
    assert.throws(() => deriveSecpChildKeys(bip32Key, chainCode, 0x7fffffff, 2), ProtocolError);
    assert.throws(() => deriveSecpChildKeys(bip32Key, chainCode.subarray(1), 0, 1), ProtocolError);
  });
});

describe('ed25519: the tweak as specified, recomputed independently', () => {
  test('A_i = A + (int_LE(HMAC-SHA512(c, A ‖ ser32(i))) mod L)·B, c_i = I[32..64] (node:crypto HMAC, BigInt reduction)', () => {
    const g = dkg('ed25519', 2, 3);
    const c = Buffer.from(g.pub.extra!.chainCode as string, 'hex');
    const A = ed25519.Point.fromHex(g.pub.publicKey);
    const L = ed25519.Point.Fn.ORDER;
    fc.assert(
      fc.property(index, (i) => {
        const data = Buffer.alloc(36);
        Buffer.from(g.pub.publicKey, 'hex').copy(data);
        data.writeUInt32BE(i, 32);
        const I = createHmac('sha512', c).update(data).digest();
        const t = BigInt('0x' + Buffer.from(I.subarray(0, 64)).reverse().toString('hex')) % L;
        const child = deriveChildPublic('ed25519', g.pub, i);
        assert.equal(child.publicKey, A.add(ed25519.Point.BASE.multiply(t)).toHex());
        assert.equal(child.extra!.chainCode, I.subarray(32).toString('hex'));
      }),
      { numRuns: 30 },
    );
  });
});

describe('chain code from the DKG transcript', () => {
  test('every party’s view gives the same code; any change to a commitment or party changes it', () => {
    const a = new Map([
      [1, [randomBytes(33), randomBytes(33)]],
      [2, [randomBytes(33), randomBytes(33)]],
    ]);
    const reordered = new Map([...a].reverse());
    const c = frostChainCode(frostDkgTranscript('secp256k1-schnorr', a));
    assert.equal(c.length, 32);
    assert.deepEqual(frostChainCode(frostDkgTranscript('secp256k1-schnorr', reordered)), c);
    assert.notDeepEqual(frostChainCode(frostDkgTranscript('ed25519', a)), c);
    const flipped = new Map(a);
    const x = Uint8Array.from(a.get(2)![1]);
    x[5] ^= 1;
    flipped.set(2, [a.get(2)![0], x]);
    assert.notDeepEqual(frostChainCode(frostDkgTranscript('secp256k1-schnorr', flipped)), c);
    const renumbered = new Map([
      [1, a.get(1)!],
      [3, a.get(2)!],
    ]);
    assert.notDeepEqual(frostChainCode(frostDkgTranscript('secp256k1-schnorr', renumbered)), c);
    assert.throws(() => frostDkgTranscript('secp256k1-schnorr', new Map([[1, [randomBytes(33)]], [2, [randomBytes(33), randomBytes(33)]]])), ProtocolError);
    assert.throws(() => frostDkgTranscript('secp256k1' as never, a), ProtocolError);
    assert.throws(() => frostChainCode(new Uint8Array(0)), ProtocolError);
  });
});
