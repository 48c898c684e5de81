/**
 * Reshare (src/crypto/reshare.ts): time to move one wallet from a 2-of-3 to a 3-of-5 committee, all
 * parties in one process (the protocol's computation, no network), per scheme. Baseline in the same
 * run: a proactive refresh of the same 2-of-3 wallet (`xRefresh` = reshare p50 / refresh p50). For
 * ecdsa-secp256k1 the reshare includes the new committee's DKLs23 pairwise set-up (`pairSetup`).
 *
 * A fleet's devices are children derived from its root by a public tweak, so a fleet of 1,000,000
 * devices costs one reshare of the root: the line `fleet` shows it by deriving a device's key from the
 * reshared root (the same key as before the reshare; per-device cost is that derivation, done lazily
 * at signing time, never a reshare).
 * Run: npm run bench -- reshare   (BENCH_RESHARE_N: samples per scheme, default 5; ECDSA uses 1)
 */
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { frostDkg, frostRefresh, type FrostSchemeName } from '../src/crypto/frost.ts';
import { dkg as dklsDkg, pairSetup, refresh as dklsRefresh } from '../src/crypto/dkls23/index.ts';
import { runInProcess } from '../src/crypto/run.ts';
import { reshare, type ReshareResult, type ReshareScheme } from '../src/crypto/reshare.ts';
import { schemeOf } from '../src/crypto/schemes.ts';
import type { KeyGenResult, PartyProtocol } from '../src/crypto/types.ts';
import { report, stats } from './lib.ts';

const N = Number(process.env.BENCH_RESHARE_N ?? 5);
const sid = (p: string) => `${p}-${bytesToHex(randomBytes(6))}`;

function keygen(scheme: ReshareScheme): Map<number, KeyGenResult> {
  const parties = [1, 2, 3];
  const s = sid('dkg');
  return runInProcess(new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, scheme === 'ecdsa-secp256k1' ? dklsDkg({ self: p, parties, threshold: 2, sessionId: s }) : frostDkg(scheme, { self: p, parties, threshold: 2 })])));
}

function refreshOnce(scheme: ReshareScheme, k: Map<number, KeyGenResult>): void {
  const s = sid('refresh');
  runInProcess(new Map([...k].map(([i, r]) => [i, scheme === 'ecdsa-secp256k1' ? dklsRefresh({ share: r.share, public: r.public, sessionId: s }) : frostRefresh(scheme as FrostSchemeName, { share: r.share, public: r.public })])));
}

/** 2-of-3 -> 3-of-5: holders 1 and 2 deal; new indexes 1..5 (1..3 on the same nodes). */
function reshareOnce(scheme: ReshareScheme, k: Map<number, KeyGenResult>): Map<number, { public: KeyGenResult['public']; share: KeyGenResult['share'] }> {
  const old = k.get(1)!.public;
  const plan = { dealers: [{ party: 1, index: 1 }, { party: 2, index: 2 }], receivers: [1, 2, 3, 4, 5].map((i) => ({ party: i, index: i })), threshold: 3 };
  const s = sid('reshare');
  const res = runInProcess(new Map<number, PartyProtocol<ReshareResult>>([1, 2, 3, 4, 5].map((p) => [p, reshare({ scheme, self: p, plan, old, share: k.get(p)?.share, sessionId: s })])));
  const out = new Map([...res].map(([i, r]) => [i, { public: r.public, share: r.share! }]));
  if (scheme !== 'ecdsa-secp256k1') return out;
  const s2 = sid('pairs');
  return runInProcess(new Map([...out].map(([i, r]) => [i, pairSetup({ share: r.share, public: r.public, sessionId: s2 })])));
}

for (const scheme of ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'] as const) {
  const n = scheme === 'ecdsa-secp256k1' ? 1 : N;
  const k = keygen(scheme);
  const base: number[] = [];
  const rs: number[] = [];
  let last: ReturnType<typeof reshareOnce> | undefined;
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    refreshOnce(scheme, k);
    base.push(performance.now() - t);
    t = performance.now();
    last = reshareOnce(scheme, k);
    rs.push(performance.now() - t);
  }
  const r = stats(rs);
  const b = stats(base);
  report(`reshare ${scheme} 2-of-3 -> 3-of-5`, { n, p50Ms: r.p50, refreshP50Ms: b.p50, xRefresh: r.p50 / b.p50 });
  // A fleet of any size: one root reshare; device 999,999 has the same key before and after.
  const s = schemeOf(scheme);
  const t = performance.now();
  const before = s.deriveChildPublic(k.get(1)!.public, 999_999).publicKey;
  const after = s.deriveChildPublic(last!.get(1)!.public, 999_999).publicKey;
  report(`fleet ${scheme}: 1,000,000 devices = 1 root reshare`, { rootResharesPerFleet: 1, sameDeviceKey: before === after, deriveTwoChildrenMs: performance.now() - t });
}
