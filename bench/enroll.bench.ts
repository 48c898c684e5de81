// Fleet enrolment: N device wallets derived and stored by the server's own code path
// (FleetService.enrollBatch: DerivePool workers + FleetStore multi-row inserts through the Db seam,
// SQLite WAL with synchronous = FULL), in requests of 100,000, the most one
// `POST /v1/fleets/:id/devices/batch` takes. Compared with the bare point multiplication measured in the same run.
//
//   node --import tsx bench/enroll.bench.ts [--n 1000000] [--modes ecdsa,taproot,keys] [--keys-n 20000]
//
// Modes: `ecdsa` (ecdsa-secp256k1 fleet: BIP32 CKDpub, one k·G per device; N devices), `taproot`
// (secp256k1-schnorr fleet: CKDpub then the BIP341 tweak, two k·G per device; at most 100,000),
// `keys` (ecdsa with a device did:key per device, to measure the extra bytes of the device key and
// its unique index; --keys-n devices).
// One JSON line per mode: total wall time, devices/s, CPU, peak RSS, bytes stored per device (the
// SQLite file after a checkpoint, divided by N), and the ratio of the wall time to N bare
// multiplications spread over the workers (`ratioToBaseMultiply`: Point.BASE.multiply, noble's
// constant-time default; `ratioToMultiplyUnsafe`: the variable-time multiply on the W = 8 table the
// derivation uses).
import { cpus, loadavg, tmpdir } from 'node:os';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { secpFixedBase } from '../src/crypto/derive.ts';
import { schemeOf } from '../src/crypto/schemes.ts';
import { frostDkg } from '../src/crypto/frost.ts';
import { runInProcess } from '../src/crypto/run.ts';
import type { GroupPublic, KeyGenResult, PartyProtocol } from '../src/crypto/types.ts';
import { didKeyFromPublicKey } from '../src/identity/index.ts';
import type { Logger } from '../src/http/common.ts';
import type { Coordinator } from '../src/server/coordinator.ts';
import { FleetService, MAX_BATCH } from '../src/server/fleets.ts';
import { openDb } from '../src/store/db.ts';
import { FleetStore } from '../src/store/fleet-store.ts';
import { report } from './lib.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const load = () => loadavg().map((x) => +x.toFixed(2)).join(' ');

/** A 2-of-3 secp256k1-schnorr root from a real in-process FROST DKG (its chain code included). */
function taprootRoot(): GroupPublic {
  const parties = [1, 2, 3];
  const protos = new Map<number, PartyProtocol<KeyGenResult>>(parties.map((p) => [p, frostDkg('secp256k1-schnorr', { self: p, parties, threshold: 2 })]));
  return runInProcess(protos, (m) => m.body).get(1)!.public;
}

/** An ecdsa-secp256k1 root: what derivation reads of it is the group key and the chain code. */
function ecdsaRoot(): GroupPublic {
  return { publicKey: bytesToHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)), threshold: 2, parties: [1, 2, 3], verifyingShares: {}, extra: { chainCode: bytesToHex(randomBytes(32)) } };
}

/** The bare cost: k·G for random k, µs per operation, one thread. */
function pointMulCost(samples = 1000) {
  const Fn = schnorr.Point.Fn;
  const ks = Array.from({ length: samples }, () => Fn.create(bytesToNumberBE(randomBytes(32))) || 1n);
  const G = secpFixedBase(8);
  const time = (f: (k: bigint) => unknown) => {
    const t = performance.now();
    for (const k of ks) f(k);
    return ((performance.now() - t) * 1000) / samples;
  };
  schnorr.Point.BASE.multiply(3n); // build noble's default table outside the timing
  return { multiplyUs: time((k) => schnorr.Point.BASE.multiply(k)), multiplyUnsafeUs: time((k) => G.multiplyUnsafe(k)) };
}

const quiet: Logger = { info() {}, error: (m, f) => process.stderr.write(`${m} ${JSON.stringify(f)}\n`) };

async function run(mode: string, n: number, dir: string, bare: { multiplyUs: number; multiplyUnsafeUs: number }) {
  const scheme = mode === 'taproot' ? 'secp256k1-schnorr' : 'ecdsa-secp256k1';
  const group = mode === 'taproot' ? taprootRoot() : ecdsaRoot();
  const file = join(dir, `${mode}-${n}.sqlite`);
  const db = await openDb({ kind: 'sqlite', path: file });
  const store = new FleetStore(db);
  await store.init();
  // The service's only use of the coordinator here is reading the root wallet.
  const root = { id: 'wal_' + bytesToHex(randomBytes(12)), scheme, publicJson: JSON.stringify({ group }), network: mode === 'taproot' ? 'regtest' : null, threshold: 2, participants: [], address: '' };
  const coord = { wallet: async () => root, store: { db } } as unknown as Coordinator;
  const svc = new FleetService(coord, store, quiet);
  const fleet = await store.createFleet({ id: root.id, scheme, label: null, issuerDid: 'did:example:bench', statusBase: 'https://fleet.example/status', createdAt: Date.now() });
  // Device keys are made before the clock starts: on a real fleet each device makes its own.
  const dids = mode === 'keys' ? Array.from({ length: n }, () => didKeyFromPublicKey('Ed25519', ed25519.getPublicKey(ed25519.utils.randomSecretKey()))) : undefined;

  const loadBefore = load();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let enrolled = 0;
  for (let done = 0; done < n; done += MAX_BATCH) {
    const count = Math.min(MAX_BATCH, n - done);
    const r = await svc.enrollBatch(fleet, count, dids?.slice(done, done + count));
    enrolled += r.enrolled;
    if (process.stderr.isTTY) process.stderr.write(`\r${mode}: ${done + count} / ${n}`);
  }
  const totalS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (process.stderr.isTTY) process.stderr.write('\n');
  await svc.close();
  const rows = (await db.all('SELECT COUNT(*) AS c FROM fleet_devices'))[0].c;
  // Spot check of the last device: @scure/bip32 (ECDSA), the scheme's own derivation (taproot).
  const last = (await store.getDevice(fleet, n - 1))?.publicKey;
  const want =
    mode === 'taproot'
      ? schemeOf(scheme).deriveChildPublic(group, n - 1).publicKey
      : bytesToHex(new HDKey({ publicKey: hexToBytes(group.publicKey), chainCode: hexToBytes(String(group.extra!.chainCode)) }).deriveChild(n - 1).publicKey!);
  if (last !== want) throw new Error('stored key differs from an independent derivation');
  await db.run('PRAGMA wal_checkpoint(TRUNCATE)');
  await db.close();
  const bytes = statSync(file).size + (existsSync(file + '-wal') ? statSync(file + '-wal').size : 0);
  const workers = svc.pool.size;
  const muls = mode === 'taproot' ? 2 : 1;
  report(`enroll/${mode}`, {
    devices: n,
    rows: Number(rows),
    enrolled,
    totalS,
    devicesPerS: n / totalS,
    cpuS: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    bytesPerDevice: bytes / n,
    fileMiB: bytes / 2 ** 20,
    ratioToBaseMultiply: totalS / ((n * muls * bare.multiplyUs) / 1e6 / workers),
    ratioToMultiplyUnsafe: totalS / ((n * muls * bare.multiplyUnsafeUs) / 1e6 / workers),
    workers,
    cores: cpus().length,
    loadBefore,
    loadAfter: load(),
  });
  rmSync(file, { force: true });
  rmSync(file + '-wal', { force: true });
  rmSync(file + '-shm', { force: true });
}

const N = Number(arg('n', '1000000'));
const KEYS_N = Number(arg('keys-n', '20000'));
const modes = arg('modes', 'ecdsa,taproot,keys').split(',');
if (!Number.isSafeInteger(N) || N < 1 || N >= 0x80000000) throw new Error('--n must be in [1, 2^31)');
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-enrol-'));
try {
  const bare = pointMulCost();
  report('enroll/point-mul-baseline', { ...bare, load: load() });
  for (const mode of modes) await run(mode, mode === 'keys' ? Math.min(N, KEYS_N) : mode === 'taproot' ? Math.min(N, 100_000) : N, dir, bare);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
