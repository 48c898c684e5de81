/**
 * What one node's policy check costs as a wallet's history grows: the whole agent check of
 * src/enforce/authorize.ts (agent signature, grant, Solana decoding, a 10-rule policy whose limits
 * span 1 minute to 7 days, the counters' totals) plus the atomic reservation, on the node's own
 * SQLite store, measured after 0, 1,000 and 5,000 earlier requests of the same wallet, all inside
 * every window. Baseline in the same run: the same check at an empty history.
 * Run: node --import tsx bench/policy-history.bench.ts [--n 100] [--sizes 1000,5000]   (also: npm run bench -- policy-history)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { getAddressDecoder } from '@solana/kit';
import { signControlDoc } from '../src/control/index.ts';
import '../src/control/fast-verify.ts';
import { Authorizer } from '../src/enforce/authorize.ts';
import { ControlStore } from '../src/store/control-store.ts';
import { openDb } from '../src/store/db.ts';
import { newAgent, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../test/helpers/agent.ts';
import { report, stats } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, sizes: { type: 'string' } } });
const N = Number(values.n ?? 100);
const from = getAddressDecoder().decode(new Uint8Array(32).fill(3)) as string;
const big = '1000000000000000000';
const policy = {
  version: 1,
  assets: SOL_ASSETS,
  rules: [
    { id: 'allow', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] },
    { id: 'per-tx', type: 'tx_cap', asset: 'SOL', max: '5000000000' },
    { id: 'hourly', type: 'window_cap', asset: 'SOL', max: big, window: '1h' },
    { id: 'daily', type: 'window_cap', asset: 'SOL', max: big, window: '24h' },
    { id: 'weekly-payee', type: 'window_cap', asset: 'SOL', max: big, window: '7d', perDestination: true },
    { id: 'fleet-daily', type: 'window_cap', asset: 'SOL', max: big, window: '24h', scope: 'fleet' },
    { id: 'rate-minute', type: 'rate_limit', max: 1_000_000, window: '1m' },
    { id: 'rate-hour', type: 'rate_limit', max: 1_000_000, window: '1h' },
    { id: 'rate-payee', type: 'rate_limit', max: 1_000_000, window: '24h', perDestination: true },
    { id: 'always', type: 'time_window', from: '00:00', to: '24:00' },
  ],
};
const db = await openDb({ kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'fk-bench-history-')), 'control.db') });
const owner = ed25519.utils.randomSecretKey();
const ownerPub = bytesToHex(ed25519.getPublicKey(owner));
const control = new ControlStore(db, { ownerPublicKeys: [ownerPub] });
await control.init();
const walletId = 'wal_' + 'b'.repeat(24);
await control.putControlDoc(signControlDoc({ kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() }, owner));
const agent = newAgent();
await control.putControlDoc(signControlDoc({ kind: 'grant', id: 'history-grant', agent: { keyType: 'ed25519', publicKey: agent.publicKey }, wallets: [walletId], expiresAt: Date.now() + 24 * 3600_000, issuedAt: Date.now() }, owner));
const authz = new Authorizer(control, [ownerPub]);
let seq = 0;
/** One agent request through the check and the reservation, committed as a signer does; its time in ms. */
async function one(): Promise<number> {
  const i = seq++;
  const r = request(agent, 'history-grant', walletId, { kind: 'solana_transaction', data: solTransfer(from, 1000n + BigInt(i), SOL_DEST, i), opts: { network: 'mainnet-beta' } } as never);
  const t = performance.now();
  const a = await authz.authorize({ agent: r }, { walletId, scheme: 'ed25519', address: from, network: 'mainnet-beta' });
  await db.tx(control.reserveAndCommitHook(a.requestId, a.reservations, { walletId, requestDigest: a.requestDigest, now: Date.now(), ttlMs: 60_000, grant: a.grant }));
  return performance.now() - t;
}
const measure = async () => {
  const out: number[] = [];
  for (let i = 0; i < N; i++) out.push(await one());
  return stats(out);
};
for (let i = 0; i < 20; i++) await one(); // warm-up
const base = await measure();
report('policy check + reservation, history of about 100 requests (baseline)', { n: base.n, p50Ms: base.p50, p99Ms: base.p99 });
for (const upTo of (values.sizes ?? '1000,5000').split(',').map(Number)) {
  while (seq < upTo) await one();
  const s = await measure();
  report(`policy check + reservation, history of ${upTo} requests`, { n: s.n, p50Ms: s.p50, p99Ms: s.p99, ratioP50: s.p50 / base.p50 });
}
await db.close();
