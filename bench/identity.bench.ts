// Device-data verification throughput, against a bare Ed25519 verify measured in the same run.
//
//   node --import tsx bench/identity.bench.ts [seconds-per-case, default 2]
//
// Prints one JSON line per case. Readings are signed before timing (signing is the device's cost,
// not the gateway's); every timed verification is of a distinct reading, so the replay store is
// exercised as in production. The cases run interleaved in short slices (round-robin), so a busy or
// throttled machine slows them alike and the ratios stay meaningful. Cases:
//   ed25519_verify_baseline          noble ed25519.verify of one reading's signing input (the floor)
//   device_data_verify_cached        verifyDeviceData with a VerificationCache: the device signature
//                                    plus parsing, time, status-bit and replay checks per reading
//   device_data_verify_uncached      no cache: also verifies the credential and both status list
//                                    signatures and inflates both lists on every reading
//   device_data_verify_p256_cached   as cached, with a P-256 device key
import { ed25519 } from '@noble/curves/ed25519.js';
import { Resolver } from 'did-resolver';
import {
  MemoryReplayStore,
  createStatusList,
  createVerificationCache,
  decodeJws,
  getResolver,
  issueDeviceCredential,
  issueStatusListCredential,
  publicKeyFromDidKey,
  signDeviceData,
  statusListEntry,
  verifyDeviceData,
  type VerificationCache,
} from '../src/identity/index.ts';
import { makeKey } from '../test/identity/fixtures.ts';

const seconds = Number(process.argv[2] ?? 2);
const READINGS = 1000;
const REV = 'https://fleet.example/status/rev/1';
const SUS = 'https://fleet.example/status/sus/1';
const resolver = new Resolver(getResolver());
const fleet = makeKey('Ed25519');
const enrolled = new Date('2026-01-01T00:00:00Z');
const now = Date.now();

const rev = createStatusList().set(5);
const sus = createStatusList().set(6);
const lists = [
  await issueStatusListCredential({ issuerDid: fleet.did, alg: 'EdDSA', id: REV, statusPurpose: 'revocation', list: rev, validFrom: enrolled }, fleet.sign),
  await issueStatusListCredential({ issuerDid: fleet.did, alg: 'EdDSA', id: SUS, statusPurpose: 'suspension', list: sus, validFrom: enrolled }, fleet.sign),
];

async function setup(type: 'Ed25519' | 'P-256') {
  const device = makeKey(type);
  const credentialJwt = await issueDeviceCredential(
    {
      issuerDid: fleet.did,
      alg: 'EdDSA',
      deviceDid: device.did,
      fleet: 'fleet-7',
      firmwareHash: 'ab'.repeat(32),
      enrolledAt: enrolled,
      credentialStatus: [
        statusListEntry({ statusListCredential: REV, statusListIndex: 1000, statusPurpose: 'revocation' }),
        statusListEntry({ statusListCredential: SUS, statusListIndex: 1000, statusPurpose: 'suspension' }),
      ],
    },
    fleet.sign,
  );
  const readings: string[] = [];
  for (let i = 0; i < READINGS; i++) {
    readings.push(await signDeviceData({ deviceDid: device.did, fleet: 'fleet-7', ts: now - 1000, seq: i, data: { tempC: 20 + (i % 10) / 10, humidity: 0.4 } }, device.sign));
  }
  return { device, credentialJwt, readings };
}

interface Result {
  n: number;
  ms: number;
  opsPerSec: number;
}

type Run = (i: number) => Promise<unknown> | unknown;

/** Runs every case in slices of `slice` operations, round-robin, until each has had `seconds` of time. */
async function measureInterleaved(cases: Run[], slice = 25): Promise<Result[]> {
  for (const run of cases) for (let i = 0; i < 50; i++) await run(i); // warm-up
  const n = cases.map(() => 0);
  const ms = cases.map(() => 0);
  while (ms.some((t) => t < seconds * 1000)) {
    for (let c = 0; c < cases.length; c++) {
      if (ms[c]! >= seconds * 1000) continue;
      const start = performance.now();
      for (let k = 0; k < slice; k++) await cases[c]!(n[c]!++);
      ms[c]! += performance.now() - start;
    }
  }
  return cases.map((_, c) => ({ n: n[c]!, ms: Math.round(ms[c]!), opsPerSec: Math.round((n[c]! / ms[c]!) * 1000) }));
}

function line(name: string, r: Result, extra: Record<string, unknown> = {}) {
  console.log(JSON.stringify({ bench: 'identity', name, ops_per_sec: r.opsPerSec, n: r.n, ms: r.ms, ...extra }));
}

const ed = await setup('Ed25519');
const p256Dev = await setup('P-256');

// Baseline: the one signature check a reading cannot avoid, on the same bytes.
const decoded = ed.readings.map((m) => decodeJws(m));
const devKey = publicKeyFromDidKey(ed.device.did).bytes;
const baselineRun: Run = (i) => {
  const d = decoded[i % READINGS]!;
  if (!ed25519.verify(d.signature, d.signingInput, devKey, { zip215: false })) throw new Error('baseline verify failed');
};

function runner(s: Awaited<ReturnType<typeof setup>>, cache?: VerificationCache) {
  let seen = new MemoryReplayStore();
  return async (i: number) => {
    if (i % READINGS === 0) seen = new MemoryReplayStore(); // each reading once per pass
    const v = await verifyDeviceData(s.readings[i % READINGS]!, { credentialJwt: s.credentialJwt, statusListJwt: lists, resolver, fleetIssuerDid: fleet.did, seen, now, cache });
    if (!v.trusted) throw new Error(`unexpected verdict ${v.reason}: ${v.detail}`);
  };
}

const [baseline, cached, uncached, p256Cached] = await measureInterleaved([
  baselineRun,
  runner(ed, createVerificationCache()),
  runner(ed),
  runner(p256Dev, createVerificationCache()),
]);

console.log(JSON.stringify({ bench: 'identity', name: 'env', node: process.version, arch: process.arch, seconds_per_case: seconds }));
line('ed25519_verify_baseline', baseline);
line('device_data_verify_cached', cached, { ratio_to_baseline: +(cached.opsPerSec / baseline.opsPerSec).toFixed(3) });
line('device_data_verify_uncached', uncached, { ratio_to_baseline: +(uncached.opsPerSec / baseline.opsPerSec).toFixed(3) });
line('device_data_verify_p256_cached', p256Cached, { ratio_to_baseline: +(p256Cached.opsPerSec / baseline.opsPerSec).toFixed(3) });
