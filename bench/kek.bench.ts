/**
 * What keeping the KEK in an HSM (src/signer/pkcs11.ts, SoftHSM2 here) costs next to the file KEK
 * (src/signer/seal.ts), both measured in this run: sealing and opening a share-sized record in this
 * process, and a whole 2-of-3 Ed25519 signature over loopback HTTP through a real cluster whose
 * signers use one KEK or the other (each signature share opens its share and its nonce).
 * SoftHSM2 is a library in the signer's process; a network HSM adds its round trip to every call.
 *
 *   npm run bench -- kek            or   node --import tsx bench/kek.bench.ts [--n 2000] [--signs 40]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../src/cli/cluster.ts';
import { HsmKek, parsePkcs11Uri, createHsmKey } from '../src/signer/pkcs11.ts';
import { makeSealer, type Sealer } from '../src/signer/seal.ts';
import { softHsm, softHsmMissing } from '../test/helpers/softhsm.ts';
import { report, stats, timeSync } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, signs: { type: 'string' } } });
const N = Number(values.n ?? 2000);
const SIGNS = Number(values.signs ?? 40);

const missing = softHsmMissing();
if (missing) {
  process.stderr.write(`kek.bench: ${missing}\n`);
  process.exit(1);
}
const hsm = softHsm(['fleetkey-bench']);
for (const n of [0, 1, 2, 3]) await createHsmKey(parsePkcs11Uri(hsm.uri(`kek-${n}`)));

// A FROST share as the signer seals it is a few hundred bytes of JSON.
const record = randomBytes(400);
const sealers: [string, Sealer][] = [['file', makeSealer(randomBytes(32))]];
const kek = await HsmKek.open(parsePkcs11Uri(hsm.uri('kek-0')));
sealers.push(['hsm', kek.sealer]);
const p50: Record<string, number> = {};
for (const [name, s] of sealers) {
  const sealed = Array.from({ length: N }, () => s.seal(record, 'share|w|0'));
  const seal = timeSync(N, () => s.seal(record, 'share|w|0'));
  const open = timeSync(N, (i) => s.open(sealed[i], 'share|w|0'));
  p50[`seal-${name}`] = seal.p50;
  p50[`open-${name}`] = open.p50;
  // Microseconds: report() keeps two decimals, too coarse in milliseconds for one cipher call.
  const us = (t: typeof seal) => ({ n: t.n, p50_us: t.p50 * 1000, p99_us: t.p99 * 1000, mean_us: t.mean * 1000, opsPerSec: t.opsPerSec });
  report(`seal 400 B, ${name} KEK`, us(seal));
  report(`open 400 B, ${name} KEK`, us(open));
}
kek.close();
report('hsm / file (p50)', { seal: p50['seal-hsm'] / p50['seal-file'], open: p50['open-hsm'] / p50['open-file'] });

/** A running 2-of-3 cluster with one warm Ed25519 wallet, and a function that signs once through it. */
async function cluster(name: string, signerArgs?: (n: string) => string[]) {
  const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), `fk-bench-kek-${name}-`)), signers: 3, quiet: true, signerArgs });
  const call = async (path: string, body: unknown) => {
    const r = await fetch(c.info.url + path, { method: 'POST', headers: { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<{ id: string }>;
  };
  const w = await call('/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
  const sign = () => call(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
  for (let i = 0; i < 5; i++) await sign(); // warm the nonce pools
  return { c, sign };
}
// Both clusters run at once and take turns, so a change in the shared machine's load hits both alike.
const file = await cluster('file');
const inHsm = await cluster('hsm', (n) => ['--kek', hsm.uri(`kek-${n.split('-')[1]}`)]);
try {
  const times: Record<'file' | 'hsm', number[]> = { file: [], hsm: [] };
  for (let i = 0; i < SIGNS; i++) {
    for (const [name, k] of [['file', file], ['hsm', inHsm]] as const) {
      const t = performance.now();
      await k.sign();
      times[name].push(performance.now() - t);
    }
  }
  const f = stats(times.file);
  const h = stats(times.hsm);
  report('2-of-3 ed25519 signature over HTTP, file KEK', { ...f });
  report('2-of-3 ed25519 signature over HTTP, hsm KEK', { ...h });
  report('signature hsm / file (p50)', { ratio: h.p50 / f.p50 });
} finally {
  await Promise.all([file.c.stop(), inHsm.c.stop()]);
}
