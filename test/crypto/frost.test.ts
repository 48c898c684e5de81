import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import * as btc from '@scure/btc-signer';
import {
  ed25519Frost,
  frostAddress,
  frostAggregate,
  frostCommit,
  frostDkg,
  frostRefresh,
  frostSignShare,
  frostSignSingle,
  frostVerify,
  frostVerifyShare,
  type CommitmentJson,
  type FrostSchemeName,
  type FrostSuiteName,
} from '../../src/crypto/frost.ts';
import { runInProcess } from '../../src/crypto/run.ts';
import { ProtocolError, type GroupPublic, type KeyGenResult, type PartyProtocol, type SecretShare } from '../../src/crypto/types.ts';

const SCHEMES: FrostSchemeName[] = ['ed25519', 'secp256k1-schnorr'];

function dkg(name: FrostSchemeName, t: number, n: number) {
  const parties = Array.from({ length: n }, (_, i) => i + 1);
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(name, { self: p, parties, threshold: t })]));
  return runInProcess(protos);
}

function sign(name: FrostSchemeName, keys: Map<number, KeyGenResult>, signers: number[], msg: Uint8Array) {
  const pub = keys.get(signers[0])!.public;
  if (pub.threshold === 1) return { sig: frostSignSingle(name, keys.get(signers[0])!.share, msg) };
  const nonces = new Map<number, ReturnType<typeof frostCommit>>();
  for (const s of signers) nonces.set(s, frostCommit(name, keys.get(s)!.share));
  const commitments: Record<number, CommitmentJson> = {};
  for (const [s, n] of nonces) commitments[s] = n.commitment;
  const shares: Record<number, string> = {};
  for (const s of signers) shares[s] = frostSignShare(name, keys.get(s)!.share, keys.get(s)!.public, nonces.get(s)!.nonces, commitments, msg);
  return { sig: frostAggregate(name, pub, commitments, msg, shares), pub, commitments, shares };
}

describe('RFC 9591 Appendix E vectors through the scheme interface', () => {
  for (const [file, suite, keyLen] of [
    ['frost-ed25519-sha512.json', 'ed25519', 32],
    ['frost-secp256k1-sha256.json', 'secp256k1', 33],
  ] as const) {
    test(file, () => {
      const v = JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), 'utf8'));
      const Point = (suite === 'ed25519' ? ed25519.Point : secp256k1.Point) as unknown as {
        BASE: { multiply(n: bigint): { toBytes(c?: boolean): Uint8Array } };
        Fn: { fromBytes(b: Uint8Array): bigint };
      };
      const ids = Object.keys(v.inputs.participant_shares).map(Number);
      const verifyingShares: Record<string, string> = {};
      const vs: Record<number, string> = {};
      for (const i of ids) {
        const y = bytesToHex(Point.BASE.multiply(Point.Fn.fromBytes(hexToBytes(v.inputs.participant_shares[i]))).toBytes(true));
        verifyingShares[idHex(suite, i)] = y;
        vs[i] = y;
      }
      const pub: GroupPublic = {
        publicKey: v.inputs.group_public_key,
        threshold: v.config.MIN_PARTICIPANTS,
        parties: ids,
        verifyingShares: vs,
        extra: { frost: { commitments: [v.inputs.group_public_key], verifyingShares } },
      };
      assert.equal(hexToBytes(v.inputs.group_public_key).length, keyLen);
      const signers: number[] = v.inputs.participant_list;
      const commitments: Record<number, CommitmentJson> = {};
      for (const s of signers) {
        const r = v.round_one_outputs[s];
        commitments[s] = { hiding: r.hiding_nonce_commitment, binding: r.binding_nonce_commitment };
      }
      const msg = hexToBytes(v.inputs.message);
      const shares: Record<number, string> = {};
      for (const s of signers) {
        const r = v.round_one_outputs[s];
        const share: SecretShare = { index: s, secret: { signingShare: v.inputs.participant_shares[s] } };
        shares[s] = frostSignShare(suite as FrostSuiteName, share, pub, { hiding: r.hiding_nonce, binding: r.binding_nonce }, commitments, msg);
        assert.equal(shares[s], v.round_two_outputs[s].sig_share, `sig share of ${s}`);
        assert.ok(frostVerifyShare(suite as FrostSuiteName, pub, commitments, msg, s, shares[s]));
      }
      const sig = frostAggregate(suite as FrostSuiteName, pub, commitments, msg, shares);
      assert.equal(bytesToHex(sig), v.final_output.sig);
      assert.ok(frostVerify(suite as FrostSuiteName, hexToBytes(v.inputs.group_public_key), msg, sig));
      if (suite === 'ed25519') assert.ok(ed25519.verify(sig, msg, hexToBytes(v.inputs.group_public_key)), 'plain RFC 8032 verify');
    });
  }
});

function idHex(suite: string, i: number): string {
  // RFC 9591 identifiers are scalars serialized like the suite's scalars (LE for Ed25519, BE for secp256k1).
  const b = new Uint8Array(32);
  if (suite === 'ed25519') b[0] = i;
  else b[31] = i;
  return bytesToHex(b);
}

describe('DKG and signing, every result checked by an independent verifier', () => {
  for (const name of SCHEMES) {
    for (const [t, n] of [[1, 1], [2, 3], [3, 5], [5, 9]] as const) {
      test(`${name} ${t}-of-${n}`, () => {
        const keys = dkg(name, t, n);
        const pubs = new Set([...keys.values()].map((k) => JSON.stringify(k.public)));
        assert.equal(pubs.size, 1, 'all parties agree on the public package');
        assert.match(keys.get(1)!.public.extra!.chainCode as string, /^[0-9a-f]{64}$/);
        const pk = hexToBytes(keys.get(1)!.public.publicKey);
        assert.equal(pk.length, 32);
        // Two different signer subsets of size t.
        const all = [...keys.keys()];
        for (const subset of [all.slice(0, t), all.slice(n - t)]) {
          const msg = randomBytes(1 + (subset[0] * 7) % 64);
          const { sig } = sign(name, keys, subset, msg);
          if (name === 'ed25519') assert.ok(ed25519.verify(sig, msg, pk, { zip215: false }));
          else assert.ok(schnorr.verify(sig, msg, pk));
          // A different message does not verify.
          const other = Uint8Array.from(msg);
          other[0] ^= 1;
          assert.ok(!frostVerify(name, pk, other, sig));
        }
      });
    }
  }

  test('threshold 1 with several nodes is refused (the whole key would sit on every node)', () => {
    assert.throws(() => dkg('ed25519', 1, 3), ProtocolError);
  });

  for (const [t, n] of [[1, 1], [2, 3]] as const) test(`secp256k1-schnorr ${t}-of-${n}: group key is the taproot output key of the internal key`, () => {
    const keys = dkg('secp256k1-schnorr', t, n);
    const pub = keys.get(1)!.public;
    const internal = hexToBytes(pub.extra!.internalKey as string);
    const p2tr = btc.p2tr(internal, undefined, btc.NETWORK);
    assert.equal(bytesToHex(p2tr.tweakedPubkey), pub.publicKey);
    assert.equal(frostAddress('secp256k1-schnorr', pub.publicKey, 'mainnet'), p2tr.address);
    assert.match(frostAddress('secp256k1-schnorr', pub.publicKey, 'regtest'), /^bcrt1p/);
    assert.match(frostAddress('secp256k1-schnorr', pub.publicKey, 'testnet'), /^tb1p/);
  });
});

describe('refresh', () => {
  for (const name of SCHEMES) {
    test(`${name}: same public key, new shares, old and new do not combine`, () => {
      const keys = dkg(name, 2, 3);
      const protos = new Map<number, PartyProtocol<KeyGenResult>>([...keys].map(([i, k]) => [i, frostRefresh(name, { share: k.share, public: k.public })]));
      const fresh = runInProcess(protos);
      const pk = keys.get(1)!.public.publicKey;
      for (const [i, k] of fresh) {
        assert.equal(k.public.publicKey, pk);
        assert.notEqual(JSON.stringify(k.share.secret), JSON.stringify(keys.get(i)!.share.secret));
      }
      assert.equal(new Set([...fresh.values()].map((k) => JSON.stringify(k.public))).size, 1);
      const msg = randomBytes(32);
      const { sig } = sign(name, fresh, [1, 3], msg);
      assert.ok(frostVerify(name, hexToBytes(pk), msg, sig));
      // Mix an old share (party 1) with a new one (party 3): aggregation must fail and blame.
      const mixed = new Map([[1, keys.get(1)!], [3, fresh.get(3)!]]);
      const mixedWithNewPub = new Map([...mixed].map(([i, k]) => [i, { ...k, public: fresh.get(3)!.public }]));
      assert.throws(() => sign(name, mixedWithNewPub, [1, 3], msg), (e: unknown) => e instanceof ProtocolError && e.culprit === 1);
    });
  }

  test('a tampered refresh share is caught and blamed', () => {
    const keys = dkg('ed25519', 2, 3);
    const protos = new Map<number, PartyProtocol<KeyGenResult>>([...keys].map(([i, k]) => [i, frostRefresh('ed25519', { share: k.share, public: k.public })]));
    assert.throws(
      () =>
        runInProcess(protos, (m) => {
          if (m.kind === 'direct' && m.from === 2 && m.to === 3) return { delta: bytesToHex(new Uint8Array(32).fill(7)) };
          return m.body;
        }),
      (e: unknown) => e instanceof ProtocolError && e.culprit === 2,
    );
  });
});

describe('tampering adversary', () => {
  const flip = (hex: string, at = 5) => {
    const b = hexToBytes(hex);
    b[at % b.length] ^= 0x01;
    return bytesToHex(b);
  };
  for (const name of SCHEMES) {
    test(`${name}: a bad proof of knowledge names its sender`, () => {
      for (const t of [2, 3]) {
        const parties = [1, 2, 3];
        const protos = new Map(parties.map((p) => [p, frostDkg(name, { self: p, parties, threshold: t })]));
        assert.throws(
          () =>
            runInProcess(protos, (m) => {
              if (m.round === 1 && m.from === 2) return { ...(m.body as object), proofOfKnowledge: flip((m.body as { proofOfKnowledge: string }).proofOfKnowledge, 40) };
              return m.body;
            }),
          (e: unknown) => e instanceof ProtocolError && e.culprit === 2,
        );
      }
    });

    if (name === 'ed25519') {
      test('ed25519: key generation\'s FROST instance refuses small- and mixed-order points as noble\'s ed25519_FROST does', () => {
        // A point of order 8 generates the torsion subgroup; adding it to a valid key keeps the point
        // on the curve but takes it out of the prime-order subgroup (RFC 9591 §3.1 refuses both).
        const T8 = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa');
        assert.equal(T8.isTorsionFree(), false);
        const sk = ed25519Frost.utils.randomScalar();
        const msg = randomBytes(16);
        const sig = ed25519Frost.sign(msg, sk);
        const pk = ed25519.Point.BASE.multiply(ed25519.Point.Fn.fromBytes(sk));
        assert.equal(ed25519Frost.verify(sig, msg, pk.toBytes()), true);
        for (const bad of [pk.add(T8), T8, T8.multiply(4n)]) {
          for (const f of [ed25519Frost, ed25519_FROST]) assert.throws(() => f.verify(sig, msg, bad.toBytes()), /prime-order|torsion/);
        }
        // Its prime-order check runs on libsodium: on keys with each of the 8 torsion components
        // (k = 0: none), it accepts and refuses exactly where noble's own ed25519_FROST does.
        for (let i = 0; i < 12; i++) {
          const key = ed25519.Point.BASE.multiply(ed25519.Point.Fn.fromBytes(ed25519Frost.utils.randomScalar()));
          for (let k = 0n; k < 8n; k++) {
            const point = k === 0n ? key : key.add(T8.multiply(k));
            const answer = (f: typeof ed25519Frost) => {
              try {
                return f.verify(sig, msg, point.toBytes());
              } catch (e) {
                return (e as Error).message;
              }
            };
            assert.equal(answer(ed25519Frost), answer(ed25519_FROST), `torsion component ${k}`);
            assert.equal(typeof answer(ed25519Frost) === 'string', k !== 0n, `refused exactly when k != 0 (k = ${k})`);
          }
        }
      });
    }

    test(`${name}: a bad DKG share names its sender`, () => {
      const parties = [1, 2, 3];
      const protos = new Map(parties.map((p) => [p, frostDkg(name, { self: p, parties, threshold: 2 })]));
      assert.throws(
        () =>
          runInProcess(protos, (m) => {
            if (m.kind === 'direct' && m.from === 3 && m.to === 1) return { signingShare: flip((m.body as { signingShare: string }).signingShare, 31) };
            return m.body;
          }),
        (e: unknown) => e instanceof ProtocolError && e.culprit === 3,
      );
    });

    test(`${name}: missing, malformed and unexpected messages are rejected`, () => {
      const parties = [1, 2, 3];
      for (const evil of [() => undefined, () => 'zz', () => ({ commitment: ['00'], proofOfKnowledge: '00' })]) {
        const protos = new Map(parties.map((p) => [p, frostDkg(name, { self: p, parties, threshold: 2 })]));
        assert.throws(
          () => runInProcess(protos, (m) => (m.round === 1 && m.from === 1 ? (evil() as never) : m.body)),
          (e: unknown) => e instanceof ProtocolError && e.culprit === 1,
        );
      }
      const p = frostDkg(name, { self: 1, parties, threshold: 2 });
      assert.throws(() => p.round(2, { broadcast: {}, direct: {} }), ProtocolError, 'rounds must run in order');
    });

    test(`${name}: a bad signature share is named by aggregate`, () => {
      const keys = dkg(name, 2, 3);
      const msg = randomBytes(32);
      const pub = keys.get(1)!.public;
      const n1 = frostCommit(name, keys.get(1)!.share);
      const n2 = frostCommit(name, keys.get(2)!.share);
      const commitments = { 1: n1.commitment, 2: n2.commitment };
      const s1 = frostSignShare(name, keys.get(1)!.share, pub, n1.nonces, commitments, msg);
      const s2 = frostSignShare(name, keys.get(2)!.share, pub, n2.nonces, commitments, msg);
      assert.ok(frostVerifyShare(name, pub, commitments, msg, 2, s2));
      assert.ok(!frostVerifyShare(name, pub, commitments, msg, 2, flip(s2, 3)));
      assert.throws(() => frostAggregate(name, pub, commitments, msg, { 1: s1, 2: flip(s2, 3) }), (e: unknown) => e instanceof ProtocolError && e.culprit === 2);
    });

    test(`${name}: a signer refuses a commitment list that misstates its own commitment`, () => {
      const keys = dkg(name, 2, 3);
      const pub = keys.get(1)!.public;
      const n1 = frostCommit(name, keys.get(1)!.share);
      const n2 = frostCommit(name, keys.get(2)!.share);
      const other = frostCommit(name, keys.get(1)!.share);
      assert.throws(() => frostSignShare(name, keys.get(1)!.share, pub, n1.nonces, { 1: other.commitment, 2: n2.commitment }, randomBytes(8)));
    });
  }
});
