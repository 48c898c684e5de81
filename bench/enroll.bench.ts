/**
 * Enrolment of N devices in one secp256k1-schnorr fleet (issue 5): every device's child public
 * key derived from the fleet root (BIP32 CKDpub, optionally + BIP341 output key), stored as one
 * compact SQLite row. Prints JSON lines; 10,000 devices first, then N.
 *
 *   node --import tsx bench/enroll.bench.ts [--n 1000000] [--workers 2] [--window 8] [--batch 4096] [--modes bare,taproot]
 *
 * noble APIs used: `Point.precompute(W, false)` on a private copy of the generator (`secpFixedBase`:
 * a wider fixed-base table without touching the shared `Point.BASE`), `multiplyUnsafe` (every
 * input is public), `normalizeZ` from `@noble/curves/abstract/curve.js` (one batched inversion per
 * batch instead of one per point), `hmac.create(sha512, c).clone()` (the HMAC key schedule done
 * once), `schnorr.utils.taggedHash` (TapTweak). Work is spread over `node:worker_threads`; the
 * main thread only writes rows (better-sqlite3 prepared statement, one transaction per batch).
 * Timing is reported, never asserted.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import Database from 'better-sqlite3';
import { deriveSecpChildKeys, frostChainCode, frostDkgTranscript, secpFixedBase, secpNodeOf } from '../src/crypto/derive.ts';
import { frostDkg } from '../src/crypto/frost.ts';
import { runInProcess } from '../src/crypto/run.ts';
import type { KeyGenResult, PartyProtocol } from '../src/crypto/types.ts';
import { report } from './lib.ts';

interface Job {
  from: number;
  count: number;
}
interface Init {
  bip32Key: Uint8Array;
  chainCode: Uint8Array;
  taproot: boolean;
  window: number;
}

if (!isMainThread) {
  const init = workerData as Init;
  const base = secpFixedBase(init.window);
  parentPort!.postMessage('ready');
  parentPort!.on('message', (job: Job) => {
    const r = deriveSecpChildKeys(init.bip32Key, init.chainCode, job.from, job.count, { taproot: init.taproot, base });
    const transfer = [r.keys.buffer, ...(r.outputKeys ? [r.outputKeys.buffer] : [])] as ArrayBuffer[];
    parentPort!.postMessage({ ...job, keys: r.keys, outputKeys: r.outputKeys, invalid: r.invalid }, transfer);
  });
} else {
  await main();
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

/** A 2-of-3 fleet root from a real in-process DKG, with its transcript chain code. */
function fleetRoot() {
  const parties = [1, 2, 3];
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg('secp256k1-schnorr', { self: p, parties, threshold: 2 })]));
  const round1 = new Map<number, Uint8Array[]>();
  const out = runInProcess(protos, (m) => {
    if (m.round === 1 && m.kind === 'broadcast') round1.set(m.from, (m.body as { commitment: string[] }).commitment.map(hexToBytes));
    return m.body;
  });
  const pub = out.get(1)!.public;
  const chainCode = frostChainCode(frostDkgTranscript('secp256k1-schnorr', round1));
  return secpNodeOf({ ...pub, extra: { ...pub.extra, chainCode: Buffer.from(chainCode).toString('hex') } });
}

/** The bare cost the derivation is compared with: k·G for random k, µs per op, one thread. */
function pointMulCost(window: number, samples = 1000) {
  const Fn = schnorr.Point.Fn;
  const ks = Array.from({ length: samples }, () => Fn.create(bytesToNumberBE(randomBytes(32))) || 1n);
  const G = secpFixedBase(window);
  const time = (f: (k: bigint) => unknown) => {
    const t = performance.now();
    for (const k of ks) f(k);
    return ((performance.now() - t) * 1000) / samples;
  };
  schnorr.Point.BASE.multiply(3n); // build noble's default table outside the timing
  return { multiplyUs: time((k) => schnorr.Point.BASE.multiply(k)), multiplyUnsafeUs: time((k) => G.multiplyUnsafe(k)) };
}

/** A worker running this file; tsx is registered in it first (loader hooks are not inherited by workers on Node 20). */
function startWorker(init: Init): Worker {
  const src = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  return new Worker(src, { eval: true, workerData: init });
}

async function enrol(n: number, taproot: boolean, node: { bip32Key: Uint8Array; chainCode: Uint8Array }, o: { workers: number; window: number; batch: number; dir: string }) {
  const file = join(o.dir, `enrol-${n}-${taproot ? 'tr' : 'bare'}.sqlite`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    taproot
      ? 'CREATE TABLE device (idx INTEGER PRIMARY KEY, pubkey BLOB NOT NULL, outkey BLOB NOT NULL, status INTEGER NOT NULL)'
      : 'CREATE TABLE device (idx INTEGER PRIMARY KEY, pubkey BLOB NOT NULL, status INTEGER NOT NULL)',
  );
  const ins = taproot ? db.prepare('INSERT INTO device VALUES (?, ?, ?, 0)') : db.prepare('INSERT INTO device VALUES (?, ?, 0)');
  type Res = Job & { keys: Uint8Array; outputKeys?: Uint8Array; invalid: number[] };
  const write = db.transaction((r: Res) => {
    const bad = new Set(r.invalid);
    for (let j = 0; j < r.count; j++) {
      const i = r.from + j;
      if (bad.has(i)) continue; // BIP32: no key at this index; the device takes the next one
      const pk = r.keys.subarray(j * 33, j * 33 + 33);
      if (taproot) ins.run(i, pk, r.outputKeys!.subarray(j * 32, j * 32 + 32));
      else ins.run(i, pk);
    }
  });

  // Worker start-up (tsx, module load, the fixed-base table) is timed apart from the enrolment.
  const ts = performance.now();
  const init: Init = { ...node, taproot, window: o.window };
  const workers = Array.from({ length: o.workers }, () => startWorker(init));
  await Promise.all(workers.map((w) => new Promise<void>((ok, fail) => (w.once('message', () => ok()), w.once('error', fail)))));
  const startupMs = performance.now() - ts;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let invalid = 0;
  let writeMs = 0;
  await new Promise<void>((resolve, reject) => {
    const feed = (w: Worker) => {
      if (next >= n) return;
      const count = Math.min(o.batch, n - next);
      w.postMessage({ from: next, count } satisfies Job);
      next += count;
    };
    for (const w of workers) {
      w.on('error', reject);
      w.on('message', (r: Res) => {
        feed(w); // keep the worker busy while this batch is written
        const tw = performance.now();
        write(r);
        writeMs += performance.now() - tw;
        invalid += r.invalid.length;
        done += r.count;
        if (done === n) resolve();
      });
      feed(w); // two batches in flight per worker
      feed(w);
    }
  });
  await Promise.all(workers.map((w) => w.terminate()));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const rows = (db.prepare('SELECT count(*) AS c FROM device').get() as { c: number }).c;
  db.close();
  const totalMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const bytes = statSync(file).size + (existsSync(file + '-wal') ? statSync(file + '-wal').size : 0);
  rmSync(file, { force: true });
  rmSync(file + '-wal', { force: true });
  rmSync(file + '-shm', { force: true });
  return { totalMs, startupMs, writeMs, cpuS: (cpu.user + cpu.system) / 1e6, rows, invalid, bytes };
}

async function main() {
  const N = Number(arg('n', '1000000'));
  const workers = Number(arg('workers', String(Math.max(1, cpus().length))));
  const window = Number(arg('window', '8'));
  const batch = Number(arg('batch', '4096'));
  const modes = arg('modes', 'bare,taproot').split(',');
  if (!Number.isSafeInteger(N) || N < 1 || N > 0x80000000) throw new Error('--n must be in [1, 2^31]');
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-enrol-'));
  try {
    const node = fleetRoot();
    const bare = pointMulCost(window);
    report('enroll/point-mul-baseline', { ...bare, window, load: loadavg().map((x) => +x.toFixed(2)).join(' ') });
    const sizes = N === 10_000 ? [N] : [10_000, N];
    for (const n of sizes)
      for (const mode of modes) {
        const taproot = mode === 'taproot';
        const load = loadavg().map((x) => +x.toFixed(2)).join(' ');
        const r = await enrol(n, taproot, node, { workers, window, batch, dir });
        // The bare cost of the same work: one k·G per device (two with the taproot key), spread over the workers.
        const mulsPerDevice = taproot ? 2 : 1;
        const bareS = (n * mulsPerDevice * bare.multiplyUs) / 1e6 / workers;
        const bareUnsafeS = (n * mulsPerDevice * bare.multiplyUnsafeUs) / 1e6 / workers;
        report(`enroll/${mode}`, {
          devices: n,
          rows: r.rows,
          invalidIndexes: r.invalid,
          totalS: r.totalMs / 1000,
          workerStartupS: r.startupMs / 1000,
          devicesPerS: n / (r.totalMs / 1000),
          sqliteWriteS: r.writeMs / 1000,
          cpuS: r.cpuS,
          peakRssMiB: process.resourceUsage().maxRSS / 1024,
          bytesPerDevice: r.bytes / n,
          fileMiB: r.bytes / 2 ** 20,
          ratioToBaseMultiply: (r.totalMs / 1000) / bareS,
          ratioToMultiplyUnsafe: (r.totalMs / 1000) / bareUnsafeS,
          workers,
          window,
          batch,
          loadBefore: load,
          loadAfter: loadavg().map((x) => +x.toFixed(2)).join(' '),
        });
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
