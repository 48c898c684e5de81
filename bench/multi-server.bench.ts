/**
 * Throughput with one API server vs two on one PostgreSQL schema, in the same run and the same
 * cluster (3 signer processes, 2-of-3 Ed25519, the servers sharing the schema): the baseline sends
 * every request to server 1, the other alternates between servers 1 and 2. Two paths: admin signing
 * (POST /v1/wallets/:id/sign) and agent requests under a grant and a policy (POST /v1/requests:
 * request row, reservation, strict counters at every holder). Needs the local PostgreSQL
 * (FLEETKEY_BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/test); its schemas are dropped after.
 *
 *   npm run bench -- multi-server
 *   node --import tsx bench/multi-server.bench.ts [--n 300] [--concurrency 8]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import pg from 'pg';
import { LocalCluster } from '../src/cli/cluster.ts';
import { signAgentRequest, signControlDoc, type ControlDoc } from '../src/control/index.ts';
import { readOwnerSecret } from '../src/control/owner.ts';
import { report, stats } from './lib.ts';
import { SOL_ASSETS, SOL_DEST, solTransfer } from '../test/helpers/agent.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, concurrency: { type: 'string' } } });
const N = Number(values.n ?? 300);
const CONC = Number(values.concurrency ?? 8);
const URL = process.env.FLEETKEY_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** `n` calls of `f`, `conc` at a time; latency of each and the wall time of all. */
async function load(n: number, conc: number, f: (i: number) => Promise<void>): Promise<{ samples: number[]; wallMs: number }> {
  const samples: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await f(i);
        samples.push(performance.now() - t);
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}

async function main() {
  const run = `bench_${bytesToHex(randomBytes(4))}_`;
  const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-multi-')), signers: 3, servers: 2, postgres: URL, schemaPrefix: run, quiet: true });
  const owner = readOwnerSecret(c.info.ownerKey);
  const post = async (server: number, path: string, body: unknown, admin = true) => {
    const r = await fetch(c.info.servers[server] + path, { method: 'POST', headers: { ...(admin ? { authorization: `Bearer ${c.info.token}` } : {}), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = (await r.json()) as any;
    if (!r.ok) throw Object.assign(new Error(`${path}: ${JSON.stringify(j)}`), { code: j?.error?.code ?? String(r.status) });
    return j;
  };
  /** Refusals under load (a signer timing out on this shared machine: 503) are counted and reported, not fatal. */
  const errors: Record<string, number> = {};
  const tolerant = (p: Promise<unknown>) => p.then(() => undefined, (e: { code?: string }) => void (errors[e.code ?? 'error'] = (errors[e.code ?? 'error'] ?? 0) + 1));
  const control = (doc: ControlDoc) => post(0, '/v1/control', signControlDoc(doc, owner));
  try {
    const w = await post(0, '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
    // Agent path: a policy with a cap no run reaches, a grant for one agent key.
    const policy = { version: 1, assets: SOL_ASSETS, rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: '1000000000000000', window: '24h' }] };
    await control({ kind: 'policy', walletId: w.id, version: 1, policy: policy as never, issuedAt: Date.now() });
    const agentSecret = ed25519.utils.randomSecretKey();
    const grantId = `grant_${bytesToHex(randomBytes(6))}`;
    await control({ kind: 'grant', id: grantId, agent: { keyType: 'ed25519', publicKey: bytesToHex(ed25519.getPublicKey(agentSecret)) }, wallets: [w.id], expiresAt: Date.now() + 3600_000, issuedAt: Date.now() });
    const agentRequest = (i: number) => {
      const now = Date.now();
      return signAgentRequest({ grantId, walletId: w.id, requestId: `r${bytesToHex(randomBytes(12))}`, payload: { kind: 'solana_transaction', data: solTransfer(w.address, BigInt(1 + i), SOL_DEST, i), opts: { network: 'mainnet-beta' } }, issuedAt: now, expiresAt: now + 120_000 }, agentSecret, 'ed25519');
    };
    const paths = {
      admin: (server: number, i: number) => post(server, `/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) + i.toString(16).padStart(8, '0') }),
      agent: (server: number, i: number) => post(server, '/v1/requests', agentRequest(i), false),
    };
    for (const [path, f] of Object.entries(paths)) {
      await load(40, 4, (i) => tolerant(f(i % 2, i))); // warm both servers and the pools
      for (const k of Object.keys(errors)) delete errors[k];
      // Alternate the order of the two configurations over two rounds, so neither always runs on a warmer system.
      const one: number[] = [];
      const two: number[] = [];
      let wallOne = 0;
      let wallTwo = 0;
      for (const order of [['one', 'two'], ['two', 'one']]) {
        for (const cfg of order) {
          const r = await load(N / 2, CONC, (i) => tolerant(f(cfg === 'one' ? 0 : i % 2, i)));
          if (cfg === 'one') (one.push(...r.samples), (wallOne += r.wallMs));
          else (two.push(...r.samples), (wallTwo += r.wallMs));
        }
      }
      const a = stats(one);
      const b = stats(two);
      const opsOne = (one.length * 1000) / wallOne;
      const opsTwo = (two.length * 1000) / wallTwo;
      report(`multi-server/${path}`, {
        n: N,
        concurrency: CONC,
        oneServerOpsPerSec: opsOne,
        twoServersOpsPerSec: opsTwo,
        ratioTwoOverOne: opsTwo / opsOne,
        oneP50ms: a.p50,
        oneP99ms: a.p99,
        twoP50ms: b.p50,
        twoP99ms: b.p99,
        errors: { ...errors },
      });
    }
  } finally {
    await c.stop();
    const db = new pg.Client({ connectionString: URL });
    await db.connect();
    for (const s of ['signer_1', 'signer_2', 'signer_3', 'server']) await db.query(`DROP SCHEMA IF EXISTS ${run}${s} CASCADE`);
    await db.end();
  }
}

await main();
