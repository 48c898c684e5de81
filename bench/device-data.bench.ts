// Device-data verification throughput on a real local cluster: signed readings checked by the
// server (`POST /v1/verify/data`: device signature, fleet credential, current status lists, the
// registry, and the durable replay log in SQLite), and offline by the SDK's `verifyDeviceData`.
//
//   node --import tsx bench/device-data.bench.ts [--seconds 10] [--concurrency 8] [--devices 20]
//
// Readings are signed before the clock starts (signing is the device's cost). Every timed
// verification is of a distinct reading, so each one passes the replay check and is remembered.
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../src/cli/cluster.ts';
import { didKeyFromPublicKey, localSigner, signDeviceData } from '../src/identity/index.ts';
import { ed25519 } from '@noble/curves/ed25519.js';
import { verifyDeviceData } from '../src/sdk/index.ts';
import { report } from './lib.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const seconds = Number(arg('seconds', '10'));
const concurrency = Number(arg('concurrency', '8'));
const nDevices = Number(arg('devices', '20'));
const load = () => loadavg().map((x) => +x.toFixed(2)).join(' ');

const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-data-')), signers: 3, quiet: true });
const call = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(c.info.url + path, { method, headers: { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return (await r.json()) as any;
};
try {
  const fleet = await call('POST', '/v1/fleets', { scheme: 'ed25519' });
  const devices: { did: string; sign: ReturnType<typeof localSigner>; credential: string }[] = [];
  for (let i = 0; i < nDevices; i++) {
    const sk = ed25519.utils.randomSecretKey();
    const did = didKeyFromPublicKey('Ed25519', ed25519.getPublicKey(sk));
    const d = await call('POST', `/v1/fleets/${fleet.id}/devices`, { deviceDid: did });
    const { credential } = await call('POST', `/v1/fleets/${fleet.id}/devices/${d.index}/credential`, { firmwareHash: 'ab'.repeat(32) });
    devices.push({ did, sign: localSigner('Ed25519', sk), credential });
  }
  const lists = await Promise.all(['revocation', 'suspension'].map(async (p) => (await fetch(`${fleet.statusLists}/${p}/0`)).text()));
  // Enough distinct readings for the run at a generous rate; signing is outside the timing.
  const make = async (n: number) => Promise.all(Array.from({ length: n }, (_, i) => devices[i % nDevices]).map(async (d, i) => ({ d, r: await signDeviceData({ deviceDid: d.did, fleet: fleet.id, data: { i, t: 20 + (i % 10) } }, d.sign) })));

  for (const mode of ['http', 'offline'] as const) {
    const pool = await make(mode === 'http' ? 400 * seconds : 2500 * seconds);
    let next = 0;
    let ok = 0;
    const loadBefore = load();
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    const worker = async () => {
      while (performance.now() < until && next < pool.length) {
        const { d, r } = pool[next++];
        const v =
          mode === 'http'
            ? await call('POST', '/v1/verify/data', { reading: r, credential: d.credential })
            : await verifyDeviceData(r, { credential: d.credential, statusLists: lists, fleetIssuerDid: fleet.issuerDid });
        if (!v.trusted) throw new Error(`untrusted: ${v.reason} ${v.detail ?? ''}`);
        ok++;
      }
    };
    await Promise.all(Array.from({ length: mode === 'http' ? concurrency : 1 }, worker));
    const s = (performance.now() - t0) / 1000;
    if (next >= pool.length) process.stderr.write(`${mode}: ran out of pre-signed readings; the figure is a lower bound\n`);
    report(`device-data/${mode}`, { verified: ok, seconds: s, perSecond: ok / s, concurrency: mode === 'http' ? concurrency : 1, devices: nDevices, loadBefore, loadAfter: load() });
  }
} finally {
  await c.stop();
}
