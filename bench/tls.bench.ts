/**
 * What mutual TLS adds per signing request: the same 2-of-3 Ed25519 admin signing over loopback,
 * once with plain-HTTP signer links and once with pinned mutual TLS 1.3 (keep-alive on both), in
 * the same run, one cluster after the other. Also reads the server's
 * `fleetkey_signer_link_tls` counters: how many handshakes keep-alive and session resumption saved.
 *
 *   npm run bench -- tls          node --import tsx bench/tls.bench.ts [--n 200]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../src/cli/cluster.ts';
import { report, timeAsync } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' } } });
const N = Number(values.n ?? 200);

async function measure(tls: boolean) {
  const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-tls-')), signers: 3, quiet: true, tls });
  try {
    const headers = { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown) => {
      const res = await fetch(c.info.url + path, { method: 'POST', headers, body: JSON.stringify(body) });
      const json = (await res.json()) as { id: string; signature?: string };
      if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
      return json;
    };
    const w = await post('/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
    const sign = () => post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
    for (let i = 0; i < 20; i++) await sign(); // warm-up: connections, sessions, JIT
    const s = await timeAsync(N, sign);
    const metrics = await (await fetch(c.info.url + '/metrics', { headers })).text();
    const counter = (k: string) => Number(new RegExp(`^fleetkey_signer_link_tls\\{count="${k}"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    return { s, requests: counter('requests'), connections: counter('connections'), resumed: counter('resumed') };
  } finally {
    await c.stop();
  }
}

async function main() {
  const plain = await measure(false);
  const mtls = await measure(true);
  report('sign 2-of-3 ed25519, signer links plain HTTP (baseline)', { n: plain.s.n, p50_ms: plain.s.p50, p99_ms: plain.s.p99, mean_ms: plain.s.mean });
  report('sign 2-of-3 ed25519, signer links mutual TLS 1.3', {
    n: mtls.s.n,
    p50_ms: mtls.s.p50,
    p99_ms: mtls.s.p99,
    mean_ms: mtls.s.mean,
    added_p50_ms: mtls.s.p50 - plain.s.p50,
    ratio_p50: mtls.s.p50 / plain.s.p50,
    ratio_mean: mtls.s.mean / plain.s.mean,
    signer_requests: mtls.requests,
    tls_handshakes: mtls.connections,
    handshakes_avoided: mtls.requests - mtls.connections,
    resumed_handshakes: mtls.resumed,
  });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
