/**
 * Threshold signing 2-of-3 over loopback HTTP (real signer and server processes), against two
 * baselines measured in the same run: a single-key signature with the same curve library, and
 * the same FROST protocol with every party in this one process (no network, no storage).
 *
 *   npm run bench            (all benchmarks)
 *   node --import tsx bench/cluster.bench.ts [--n 300] [--concurrency 16]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../src/cli/cluster.ts';
import { frostAggregate, frostCommit, frostDkg, frostSignShare, frostVerify, type CommitmentJson, type FrostSchemeName } from '../src/crypto/frost.ts';
import { runInProcess } from '../src/crypto/run.ts';
import type { KeyGenResult, PartyProtocol } from '../src/crypto/types.ts';
import { report, stats, timeAsync, timeSync } from './lib.ts';
import { readFileSync } from 'node:fs';

/** CPU milliseconds (user + system) a process has used so far, from /proc (Linux, 100 ticks/s). */
function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as dkls23 from '../src/crypto/dkls23/index.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, concurrency: { type: 'string' }, schemes: { type: 'string' }, 'ecdsa-n': { type: 'string' }, 'ecdsa-sizes': { type: 'string' } } });
const N = Number(values.n ?? 300);
const CONC = Number(values.concurrency ?? 16);
const SCHEMES = (values.schemes ?? 'secp256k1-schnorr,ed25519,ecdsa-secp256k1').split(',');
const ECDSA_N = Number(values['ecdsa-n'] ?? 30);
const ECDSA_SIZES = (values['ecdsa-sizes'] ?? '2-3,3-5').split(',').map((x) => x.split('-').map(Number));

function inProcessDkg(scheme: FrostSchemeName) {
  const parties = [1, 2, 3];
  return runInProcess(new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg(scheme, { self: p, parties, threshold: 2 })])));
}

function inProcessSign(scheme: FrostSchemeName, keys: Map<number, KeyGenResult>, msg: Uint8Array) {
  const signers = [1, 2];
  const n = signers.map((s) => frostCommit(scheme, keys.get(s)!.share));
  const commitments: Record<number, CommitmentJson> = { 1: n[0].commitment, 2: n[1].commitment };
  const shares: Record<number, string> = {};
  signers.forEach((s, i) => (shares[s] = frostSignShare(scheme, keys.get(s)!.share, keys.get(s)!.public, n[i].nonces, commitments, msg)));
  const sig = frostAggregate(scheme, keys.get(1)!.public, commitments, msg, shares);
  if (!frostVerify(scheme, Uint8Array.from(Buffer.from(keys.get(1)!.public.publicKey, 'hex')), msg, sig)) throw new Error('bad signature');
}

async function main() {
  const cluster: LocalCluster = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-')), signers: SCHEMES.includes('ecdsa-secp256k1') ? 5 : 3, quiet: true });
  const headers = { authorization: `Bearer ${cluster.info.token}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    // After seconds of synchronous in-process baseline work, a pooled keep-alive socket may have
    // been closed by the server without this (blocked) process noticing: retry once on that.
    const send = () => fetch(cluster.info.url + path, { method: 'POST', headers, body: JSON.stringify(body) });
    const r = await send().catch((e) => ((e as { cause?: { code?: string } }).cause?.code === 'UND_ERR_SOCKET' ? send() : Promise.reject(e)));
    const j = (await r.json()) as any;
    if (!r.ok) throw new Error(JSON.stringify(j));
    return j;
  };
  try {
    for (const scheme of SCHEMES.filter((s): s is FrostSchemeName => s !== 'ecdsa-secp256k1')) {
      // Baseline 1: one key, one signature, same library.
      const sk = scheme === 'ed25519' ? ed25519.utils.randomSecretKey() : schnorr.utils.randomSecretKey();
      const msg32 = randomBytes(32);
      timeSync(50, () => (scheme === 'ed25519' ? ed25519.sign(msg32, sk) : schnorr.sign(msg32, sk)));
      const single = timeSync(N, () => (scheme === 'ed25519' ? ed25519.sign(msg32, sk) : schnorr.sign(msg32, sk)));
      // Baseline 2: the same protocol, all parties in one process.
      const keys = inProcessDkg(scheme);
      const dkgLocal = timeSync(5, () => inProcessDkg(scheme));
      timeSync(20, () => inProcessSign(scheme, keys, msg32));
      const local = timeSync(N, () => inProcessSign(scheme, keys, msg32));
      // The cluster: DKG over HTTP, then sequential and concurrent signing.
      const dkg = await timeAsync(5, () => post('/v1/wallets', { scheme, threshold: 2, signers: 3 }));
      const w = await post('/v1/wallets', { scheme, threshold: 2, signers: 3 });
      for (let i = 0; i < 40; i++) await post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
      // CPU spent by every process of the cluster per signature: robust to other load on the machine.
      const procs: (number | undefined)[] = ['server', ...cluster.signerNames()].map((p) => cluster.pid(p));
      const cpu0 = procs.reduce<number>((a, p) => a + cpuMs(p), 0);
      const seq = await timeAsync(N, () => post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) }));
      const cpuPerSig = (procs.reduce<number>((a, p) => a + cpuMs(p), 0) - cpu0) / N;
      const c0 = process.cpuUsage();
      for (let i = 0; i < 50; i++) inProcessSign(scheme, keys, msg32);
      const cu = process.cpuUsage(c0);
      const localCpu = (cu.user + cu.system) / 1000 / 50;
      const lat: number[] = [];
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONC }, async () => {
          while (next < N) {
            next++;
            const t = performance.now();
            await post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
            lat.push(performance.now() - t);
          }
        }),
      );
      const concSecs = (performance.now() - t0) / 1000;
      const conc = stats(lat);
      report(`${scheme} single-key sign (baseline)`, { p50Ms: single.p50, p99Ms: single.p99, opsPerSec: single.opsPerSec });
      report(`${scheme} 2-of-3 in-process protocol (baseline)`, { p50Ms: local.p50, p99Ms: local.p99, opsPerSec: local.opsPerSec, dkgMs: dkgLocal.p50 });
      report(`${scheme} 2-of-3 cluster over loopback HTTP`, {
        dkgP50Ms: dkg.p50,
        seqP50Ms: seq.p50,
        seqP99Ms: seq.p99,
        seqPerSec: seq.opsPerSec,
        concurrency: CONC,
        concPerSec: N / concSecs,
        concP50Ms: conc.p50,
        concP99Ms: conc.p99,
        xSingleKey: seq.p50 / single.p50,
        xInProcess: seq.p50 / local.p50,
        concPerSecVsSingleKey: N / concSecs / single.opsPerSec,
        clusterCpuMsPerSig: cpuPerSig,
        inProcessCpuMsPerSig: localCpu,
        cpuXInProcess: cpuPerSig / localCpu,
      });
    }
    const clusterCpu = () => ['server', ...cluster.signerNames()].reduce<number>((a, p) => a + cpuMs(cluster.pid(p)), 0);
    if (SCHEMES.includes('ecdsa-secp256k1')) await ecdsa(post, clusterCpu);
  } finally {
    await cluster.stop();
  }
}

/** Threshold ECDSA (DKLs23): 2-of-3 and 3-of-5, DKG and signing, HTTP cluster vs in-process vs one key. */
async function ecdsa(post: (path: string, body: unknown) => Promise<any>, clusterCpu: () => number) {
  const sk = secp256k1.utils.randomSecretKey();
  const h = randomBytes(32);
  timeSync(50, () => secp256k1.sign(h, sk, { prehash: false }));
  const single = timeSync(300, () => secp256k1.sign(h, sk, { prehash: false }));
  report('ecdsa-secp256k1 single-key sign (baseline)', { p50Ms: single.p50, p99Ms: single.p99, opsPerSec: single.opsPerSec });
  let sid = 0;
  for (const [t, n] of ECDSA_SIZES) {
    const parties = Array.from({ length: n }, (_, i) => i + 1);
    const localDkg = () => {
      const sessionId = `b${sid++}`; // one session id for every party of one run
      return dkls23.runInProcess(Object.fromEntries(parties.map((i) => [i, dkls23.dkg({ self: i, parties, threshold: t, sessionId })])));
    };
    const keys = localDkg();
    const dkgLocal = timeSync(2, () => localDkg());
    const signers = parties.slice(0, t);
    const localSign = () => {
      const sessionId = `s${sid++}`;
      const messageHash = randomBytes(32);
      return dkls23.runInProcess(Object.fromEntries(signers.map((i) => [i, dkls23.sign({ share: keys[i].share, public: keys[i].public, signers, messageHash, sessionId })])));
    };
    localSign();
    const signLocal = timeSync(ECDSA_N, () => localSign());
    const dkg = await timeAsync(2, () => post('/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: t, signers: n }));
    const w = await post('/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: t, signers: n });
    await post(`/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) });
    const cpu0 = clusterCpu();
    const seq = await timeAsync(ECDSA_N, () => post(`/v1/wallets/${w.id}/sign`, { hash: bytesToHex(randomBytes(32)) }));
    // CPU of every process of the cluster per signature (server and all signers): robust to other load.
    const cpuPerSig = (clusterCpu() - cpu0) / ECDSA_N;
    report(`ecdsa-secp256k1 ${t}-of-${n} in-process protocol (baseline)`, { signP50Ms: signLocal.p50, signP99Ms: signLocal.p99, dkgP50Ms: dkgLocal.p50 });
    report(`ecdsa-secp256k1 ${t}-of-${n} cluster over loopback HTTP`, {
      dkgP50Ms: dkg.p50,
      signP50Ms: seq.p50,
      signP99Ms: seq.p99,
      signPerSec: seq.opsPerSec,
      xSingleKey: seq.p50 / single.p50,
      xInProcess: seq.p50 / signLocal.p50,
      clusterCpuMsPerSig: cpuPerSig,
    });
  }
}

await main();
