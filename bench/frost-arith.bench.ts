/**
 * FROST 2-of-3 signing in one process on the WebAssembly groups (libsodium / libsecp256k1) against
 * the same RFC 9591 steps on noble's points and against noble's own FROST module, with a
 * single-key signature as the baseline, all in the same run (interleaved, so machine load hits
 * every variant alike). Also the group operations alone.
 *
 *   npm run bench -- frost-arith
 *   node --import tsx bench/frost-arith.bench.ts [--n 200]
 */
import { parseArgs } from 'node:util';
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST } from '@noble/curves/secp256k1.js';
import { hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { GROUPS } from '../src/crypto/frost-group.ts';
import type { Backend } from '../src/crypto/frost-group.ts';
import { frostAggregate, frostCommit, frostDkg, frostSignShare, frostVerify, type CommitmentJson, type FrostSchemeName } from '../src/crypto/frost.ts';
import { runInProcess } from '../src/crypto/run.ts';
import type { KeyGenResult, PartyProtocol } from '../src/crypto/types.ts';
import { report, stats } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' } } });
const N = Number(values.n ?? 200);

function dkg(scheme: FrostSchemeName) {
  const parties = [1, 2, 3];
  return runInProcess(new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(scheme, { self: p, parties, threshold: 2 })])));
}

/** Commit, two shares, aggregate, plain verify: what the cluster does for one signature. */
function sign(scheme: FrostSchemeName, keys: Map<number, KeyGenResult>, msg: Uint8Array, backend: Backend) {
  const signers = [1, 2];
  const n = signers.map((s) => frostCommit(scheme, keys.get(s)!.share, backend));
  const commitments: Record<number, CommitmentJson> = { 1: n[0].commitment, 2: n[1].commitment };
  const shares: Record<number, string> = {};
  signers.forEach((s, i) => (shares[s] = frostSignShare(scheme, keys.get(s)!.share, keys.get(s)!.public, n[i].nonces, commitments, msg, backend)));
  const sig = frostAggregate(scheme, keys.get(1)!.public, commitments, msg, shares, backend);
  if (!frostVerify(scheme, hexToBytes(keys.get(1)!.public.publicKey), msg, sig)) throw new Error('bad signature');
}

/** The same signature through noble's createFROST module (what frost.ts used before). */
function signNobleModule(scheme: FrostSchemeName, keys: Map<number, KeyGenResult>, msg: Uint8Array) {
  const frost = scheme === 'ed25519' ? ed25519_FROST : schnorr_FROST;
  const fp = keys.get(1)!.public.extra!.frost as { commitments: string[]; verifyingShares: Record<string, string> };
  const pub = { signers: { min: 2, max: 3 }, commitments: fp.commitments.map(hexToBytes), verifyingShares: Object.fromEntries(Object.entries(fp.verifyingShares).map(([k, v]) => [k, hexToBytes(v)])) };
  const secrets = [1, 2].map((s) => ({ identifier: frost.Identifier.fromNumber(s), signingShare: hexToBytes((keys.get(s)!.share.secret as { signingShare: string }).signingShare) }));
  const g = secrets.map((s) => frost.commit(s as never));
  const list = g.map((x) => x.commitments);
  const shares = Object.fromEntries(secrets.map((s, i) => [s.identifier, frost.signShare(s as never, pub as never, g[i].nonces, list, msg)]));
  const sig = frost.aggregate(pub as never, list, msg, shares);
  if (!frostVerify(scheme, hexToBytes(keys.get(1)!.public.publicKey), msg, sig)) throw new Error('bad signature');
}

function interleaved(n: number, variants: Record<string, () => unknown>): Record<string, ReturnType<typeof stats>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < n; i++) {
    for (const [k, f] of Object.entries(variants)) {
      const t = performance.now();
      f();
      samples[k].push(performance.now() - t);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
}

for (const scheme of ['ed25519', 'secp256k1-schnorr'] as const) {
  const keys = dkg(scheme);
  const sk = randomBytes(32);
  const msg = randomBytes(32);
  const r = interleaved(N, {
    single: () => (scheme === 'ed25519' ? ed25519.sign(msg, sk) : schnorr.sign(msg, sk)),
    wasm: () => sign(scheme, keys, msg, 'wasm'),
    nobleSteps: () => sign(scheme, keys, msg, 'noble'),
    nobleModule: () => signNobleModule(scheme, keys, msg),
  });
  report(`${scheme} 2-of-3 in-process sign (commit, 2 shares, aggregate, plain verify)`, {
    n: N,
    singleKeyP50Ms: r.single.p50,
    wasmP50Ms: r.wasm.p50,
    nobleStepsP50Ms: r.nobleSteps.p50,
    nobleModuleP50Ms: r.nobleModule.p50,
    wasmXSingleKey: r.wasm.p50 / r.single.p50,
    nobleModuleXWasm: r.nobleModule.p50 / r.wasm.p50,
  });
}

for (const name of ['ed25519', 'secp256k1'] as const) {
  const W = GROUPS.wasm[name];
  const Nb = GROUPS.noble[name];
  const s = () => W.Fn.create(BigInt('0x' + Buffer.from(randomBytes(32)).toString('hex'))) || 1n;
  const pw = W.base(s());
  const pn = Nb.base(s());
  const enc = W.encode(pw);
  const r = interleaved(N, {
    wasmBase: () => W.base(s()),
    nobleBase: () => Nb.base(s()),
    wasmMul: () => W.mul(pw, s()),
    nobleMul: () => Nb.mul(pn, s()),
    wasmDecode: () => W.decode(enc),
    nobleDecode: () => Nb.decode(enc),
  });
  const us = (k: string) => r[k].p50 * 1000;
  report(`${name} group operations, p50 µs`, {
    n: N,
    wasmBase: us('wasmBase'),
    nobleBase: us('nobleBase'),
    wasmMul: us('wasmMul'),
    nobleMul: us('nobleMul'),
    wasmDecode: us('wasmDecode'),
    nobleDecode: us('nobleDecode'),
  });
}

// The control plane's Ed25519 verification (owner, agent and control-document signatures, envelopes,
// receipts): noble's strict verifier, which the SDK keeps, against libsodium, which the signer and
// the server install (src/control/fast-verify.ts).
{
  const { sodiumVerifyEd25519 } = await import('../src/control/fast-verify.ts');
  const sk = ed25519.utils.randomSecretKey();
  const pk = ed25519.getPublicKey(sk);
  const msg = randomBytes(300);
  const sig = ed25519.sign(msg, sk);
  const r = interleaved(N, {
    noble: () => ed25519.verify(sig, msg, pk, { zip215: false }),
    libsodium: () => sodiumVerifyEd25519(sig, msg, pk),
  });
  report('Ed25519 verify (300-byte message), p50 µs', { n: N, noble: r.noble.p50 * 1000, libsodium: r.libsodium.p50 * 1000, nobleXLibsodium: r.noble.p50 / r.libsodium.p50 });
}
