/**
 * What mutual TLS adds per signing request: the same 2-of-3 Ed25519 admin signing over loopback,
 * on a cluster with plain-HTTP signer links and one with pinned mutual TLS 1.3 (keep-alive on
 * both), in the same run, requests alternating between the two. Also reads the server's
 * `fleetkey_signer_link_*` counters: how many handshakes keep-alive and session resumption saved.
 *
 *   npm run bench -- tls          node --import tsx bench/tls.bench.ts [--n 200]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../src/cli/cluster.ts';
import { report, stats } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' } } });
const N = Number(values.n ?? 200);

/** A running cluster, its wallet, and one timed signing request. */
async function setUp(tls: boolean) {
  const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-tls-')), signers: 3, quiet: true, tls });
  const headers = { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(c.info.url + path, { method: 'POST', headers, body: JSON.stringify(body) });
    const json = (await res.json()) as { id: string; signature?: string };
    if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
    return json;
  };
  const w = await post('/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
  const samples: number[] = [];
  const sign = async () => {
    const t = performance.now();
    await post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
    samples.push(performance.now() - t);
  };
  const counters = async () => {
    const metrics = await (await fetch(c.info.url + '/metrics', { headers })).text();
    const counter = (k: string) => Number(new RegExp(`^fleetkey_signer_link_${k}\\{[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    return { requests: counter('requests'), connections: counter('connections'), resumed: counter('resumed') };
  };
  return { c, sign, samples, counters };
}

async function main() {
  // Both clusters run at once and take turns request by request, so load from anything else on the
  // machine falls on both alike.
  const plain = await setUp(false);
  const mtls = await setUp(true);
  try {
    for (let i = 0; i < 20; i++) for (const x of [plain, mtls]) await x.sign(); // warm-up: connections, sessions, JIT
    plain.samples.length = mtls.samples.length = 0;
    for (let i = 0; i < N; i++) for (const x of i % 2 ? [plain, mtls] : [mtls, plain]) await x.sign();
    const p = stats(plain.samples);
    const m = stats(mtls.samples);
    const k = await mtls.counters();
    report('sign 2-of-3 ed25519, signer links plain HTTP (baseline)', { n: p.n, p50_ms: p.p50, p99_ms: p.p99, mean_ms: p.mean });
    report('sign 2-of-3 ed25519, signer links mutual TLS 1.3', {
      n: m.n,
      p50_ms: m.p50,
      p99_ms: m.p99,
      mean_ms: m.mean,
      added_p50_ms: m.p50 - p.p50,
      ratio_p50: m.p50 / p.p50,
      ratio_mean: m.mean / p.mean,
      signer_requests: k.requests,
      tls_handshakes: k.connections,
      handshakes_avoided: k.requests - k.connections,
      resumed_handshakes: k.resumed,
    });
  } finally {
    await Promise.all([plain.c.stop(), mtls.c.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
