/**
 * 2-of-3 signing across a network, in one run: p50 / p99 over loopback (`fleetkey dev`'s layout,
 * the baseline), over the namespace network of test/net/harness.ts (each process in its own network
 * namespace, server-signer links through the user-space proxy with nothing added), and with 5 ms
 * one-way latency added on every server-signer link; then throughput with one API server vs two.
 *
 *   npm run bench -- network
 *   node --import tsx bench/network.bench.ts [--n 100] [--scheme secp256k1-schnorr] [--tput 300] [--concurrency 16]
 *
 * Needs root for the namespaces; without it only the loopback figures are reported. Every
 * server-signer link is mutual TLS from the cluster manifest, on loopback and on the namespace
 * network alike. The two API servers share one PostgreSQL schema and sign the same wallet (the
 * bench checks that the second server sees the first one's wallet and says so).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { LocalCluster } from '../src/cli/cluster.ts';
import { NetCluster, netnsUnavailable } from '../test/net/harness.ts';
import { report, stats, timeAsync } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, scheme: { type: 'string' }, tput: { type: 'string' }, concurrency: { type: 'string' } } });
const N = Number(values.n ?? 100);
const SCHEME = values.scheme ?? 'secp256k1-schnorr';
const TPUT = Number(values.tput ?? 300);
const CONC = Number(values.concurrency ?? 16);

type Post = (path: string, body: unknown) => Promise<any>;

function poster(url: string, token: string): Post {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return async (path, body) => {
    const r = await fetch(url + path, { method: 'POST', headers, body: JSON.stringify(body) });
    const j = (await r.json()) as any;
    if (!r.ok) throw new Error(JSON.stringify(j));
    return j;
  };
}

/** Creates a wallet, warms up, then N sequential signatures: latency per request. */
async function sequential(post: Post) {
  const w = await post('/v1/wallets', { scheme: SCHEME, threshold: 2, signers: 3 });
  for (let i = 0; i < 20; i++) await post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
  return timeAsync(N, () => post(`/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) }));
}

/** TPUT signatures, CONC at a time, spread round-robin over `targets` (a server and its wallet each). */
async function throughput(targets: { post: Post; wallet: string }[]) {
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < TPUT) {
        const t = targets[next++ % targets.length];
        const s = performance.now();
        await t.post(`/v1/wallets/${t.wallet}/sign`, { message: bytesToHex(randomBytes(32)) });
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { perSec: TPUT / secs, ...stats(lat) };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'fk-netbench-'));
  const local = await LocalCluster.start({ dataDir: dir, signers: 3, quiet: true });
  let loop;
  try {
    loop = await sequential(poster(local.info.url, local.info.token));
  } finally {
    await local.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  report(`${SCHEME} 2-of-3 over loopback (baseline)`, { n: N, p50Ms: loop.p50, p99Ms: loop.p99 });
  const why = netnsUnavailable();
  if (why) {
    process.stderr.write(`network.bench: namespace figures skipped: ${why}\n`);
    return;
  }
  const c = await NetCluster.start({ signers: 3, servers: 2, sharedServerSchema: true });
  try {
    const posts = c.serverUrls.map((u) => poster(u, c.adminToken));
    const ns = await sequential(posts[0]);
    report(`${SCHEME} 2-of-3 over the namespace network (proxy, 0 ms added)`, { n: N, p50Ms: ns.p50, p99Ms: ns.p99, xLoopbackP50: ns.p50 / loop.p50 });
    c.impair({ latencyMs: 5 });
    const lat = await sequential(posts[0]);
    report(`${SCHEME} 2-of-3 over the namespace network, 5 ms one-way added per server-signer link`, { n: N, p50Ms: lat.p50, p99Ms: lat.p99, xLoopbackP50: lat.p50 / loop.p50, addedP50Ms: lat.p50 - ns.p50 });
    c.impair({ latencyMs: 0 });
    // One wallet made at server 1; server 2 signs it too (shared store). If it could not see it, it gets its own and the report says so.
    const w1 = (await posts[0]('/v1/wallets', { scheme: SCHEME, threshold: 2, signers: 3 })).id as string;
    const seen = await fetch(`${c.serverUrls[1]}/v1/wallets/${w1}`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    const shared = seen.status === 200;
    const w2 = shared ? w1 : ((await posts[1]('/v1/wallets', { scheme: SCHEME, threshold: 2, signers: 3 })).id as string);
    for (const [p, w] of [[posts[0], w1], [posts[1], w2]] as const) for (let i = 0; i < 10; i++) await p(`/v1/wallets/${w}/sign`, { message: bytesToHex(randomBytes(32)) });
    const one = await throughput([{ post: posts[0], wallet: w1 }]);
    const two = await throughput([{ post: posts[0], wallet: w1 }, { post: posts[1], wallet: w2 }]);
    report(`${SCHEME} 2-of-3 throughput, one API server (namespace network)`, { n: TPUT, concurrency: CONC, perSec: one.perSec, p50Ms: one.p50, p99Ms: one.p99 });
    report(`${SCHEME} 2-of-3 throughput, two API servers (${shared ? 'one shared wallet' : 'a wallet each: server 2 did not see server 1\'s wallet'})`, { n: TPUT, concurrency: CONC, perSec: two.perSec, p50Ms: two.p50, p99Ms: two.p99, xOneServer: two.perSec / one.perSec });
  } finally {
    await c.stop();
  }
}

await main();
