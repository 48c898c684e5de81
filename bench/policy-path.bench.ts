/**
 * What policy enforcement adds to the signing path, over real processes (a server and three signer
 * nodes on loopback, FROST Ed25519 2-of-3):
 *   baseline  the owner's admin signing of the transaction's message bytes (an owner authorization,
 *             checked by every signer; no agent signature, no decoding, no policy, no counters)
 *   policy    the same transaction as an agent request under a grant and a 20-rule policy: the
 *             server and each signer verify the agent's signature and the grant, decode the Solana
 *             transaction, evaluate the policy with their own counters, and reserve + commit
 *             atomically. Twice: strict counters (the holder outside the signing pair counts and signs a receipt
 *             before two sign) and per-signer counters (only the two signers count).
 * All three are interleaved in one run, so they see the same machine load.
 * Run: node --import tsx bench/policy-path.bench.ts [--n 100]   (also: npm run bench -- policy-path)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { getAddressDecoder } from '@solana/kit';
import { decode } from '../src/chains/index.ts';
import { LocalCluster } from '../src/cli/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../test/helpers/agent.ts';
import { report, stats } from './lib.ts';
import { ed25519 } from '@noble/curves/ed25519.js';
import { openDb } from '../src/store/db.ts';
import { ControlStore } from '../src/store/control-store.ts';
import { Authorizer } from '../src/enforce/authorize.ts';
import { signControlDoc, verifyAgentRequest } from '../src/control/index.ts';

const { values } = parseArgs({ options: { n: { type: 'string' } } });
const N = Number(values.n ?? 100);
const addrs = (n: number, seed: number) => Array.from({ length: n }, (_, i) => getAddressDecoder().decode(Uint8Array.from({ length: 32 }, (_, j) => (j === 0 ? seed : j === 1 ? i >> 8 : j === 2 ? i & 255 : 7))) as string);

const c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-bench-policy-')), signers: 3, quiet: true });
try {
  const call = async (path: string, body: unknown) => {
    const res = await fetch(c.info.url + path, { method: 'POST', headers: { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(JSON.stringify(j));
    return j;
  };
  const w = (await call('/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })) as { id: string; address: string };
  const policy = {
    version: 1,
    assets: SOL_ASSETS,
    rules: [
      { id: 'allow-payees', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST, ...addrs(200, 1)] },
      { id: 'sanctions', type: 'deny', to: addrs(2000, 2) },
      { id: 'no-devnet', type: 'deny', chainIds: ['devnet'] },
      { id: 'no-programs', type: 'deny', programs: addrs(5, 3) },
      { id: 'per-tx', type: 'tx_cap', asset: 'SOL', max: '5000000000' },
      { id: 'per-tx-dest', type: 'tx_cap', asset: 'SOL', max: '4000000000', perDestination: true },
      { id: 'hourly', type: 'window_cap', asset: 'SOL', max: '1000000000000000', window: '1h' },
      { id: 'daily', type: 'window_cap', asset: 'SOL', max: '1000000000000000', window: '24h' },
      { id: 'weekly-payee', type: 'window_cap', asset: 'SOL', max: '1000000000000000', window: '7d', perDestination: true },
      { id: 'fleet-daily', type: 'window_cap', asset: 'SOL', max: '1000000000000000', window: '24h', scope: 'fleet' },
      { id: 'rate-minute', type: 'rate_limit', max: 1_000_000, window: '1m' },
      { id: 'rate-hour', type: 'rate_limit', max: 1_000_000, window: '1h' },
      { id: 'rate-payee', type: 'rate_limit', max: 1_000_000, window: '24h', perDestination: true },
      { id: 'always', type: 'time_window', from: '00:00', to: '24:00' },
      { id: 'term', type: 'date_window', notBefore: '2026-01-01', notAfter: '2036-01-01' },
      { id: 'approvals', type: 'approval_limit', max: '1000000000' },
      { id: 'big', type: 'require_approval', asset: 'SOL', above: '3000000000', m: 2, approvers: ['alice', 'bob'] },
      { id: 'bigger', type: 'require_approval', asset: 'SOL', above: '3500000000', m: 1, approvers: ['carol'] },
      { id: 'deny-self', type: 'deny', to: [w.address] },
      { id: 'no-approve-kind', type: 'deny', kinds: ['contract_deploy'] },
    ],
  };
  if (policy.rules.length !== 20) throw new Error('the benchmark policy must have 20 rules');
  const p = await publish(c, { kind: 'policy', walletId: w.id, version: 1, policy, issuedAt: Date.now() });
  if (p.status !== 200) throw new Error(JSON.stringify(p.body));
  // The same policy counted per signer (no receipts round; a compromised server gets up to n/t × each limit).
  const wl = (await call('/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })) as { id: string; address: string };
  const pl = await publish(c, { kind: 'policy', walletId: wl.id, version: 1, policy: { ...policy, counters: 'per-signer', rules: policy.rules.map((r) => (r.id === 'deny-self' ? { ...r, to: [wl.address] } : r)) }, issuedAt: Date.now() });
  if (pl.status !== 200) throw new Error(JSON.stringify(pl.body));
  const agent = newAgent();
  const g = await grant(c, agent, [w.id, wl.id], { ttlMs: 24 * 3600_000 });

  const payload = (i: number, from = w.address) => ({ kind: 'solana_transaction' as const, data: solTransfer(from, 1000n + BigInt(i), SOL_DEST, i), opts: { network: 'mainnet-beta' } });
  const baseline: number[] = [];
  const withPolicy: number[] = [];
  const perSigner: number[] = [];
  const warm = 10;
  for (let i = 0; i < N + warm; i++) {
    const p1 = payload(2 * i);
    const msg = bytesToHex(decode(p1.kind, p1.data, { from: w.address }).signingPayloads[0]);
    let t = performance.now();
    await call(`/v1/wallets/${w.id}/sign`, { message: msg, requestId: `bench-${bytesToHex(randomBytes(8))}` });
    if (i >= warm) baseline.push(performance.now() - t);
    const r = request(agent, g, w.id, payload(2 * i + 1));
    t = performance.now();
    await call('/v1/requests', r);
    if (i >= warm) withPolicy.push(performance.now() - t);
    const rl = request(agent, g, wl.id, payload(2 * i + 1, wl.address));
    t = performance.now();
    await call('/v1/requests', rl);
    if (i >= warm) perSigner.push(performance.now() - t);
  }
  const a = stats(baseline);
  const b = stats(withPolicy);
  const l = stats(perSigner);
  report('sign: owner authorization, no policy (baseline)', { n: a.n, p50Ms: a.p50, p99Ms: a.p99 });
  report('sign: agent request + grant + 20-rule policy, strict counters (a receipt from the holder outside the signing pair, then 2 count and sign)', { n: b.n, p50Ms: b.p50, p99Ms: b.p99 });
  report('sign: the same policy, counters per signer (2 signers check and count)', { n: l.n, p50Ms: l.p50, p99Ms: l.p99 });
  report('policy on the signing path, strict', { addedP50Ms: b.p50 - a.p50, ratioP50: b.p50 / a.p50, ratioP99: b.p99 / a.p99 });
  report('policy on the signing path, per-signer', { addedP50Ms: l.p50 - a.p50, ratioP50: l.p50 / a.p50, ratioP99: l.p99 / a.p99 });

  // Where the added time goes: the whole check one node makes (src/enforce/authorize.ts), in process,
  // on its own SQLite store, split into its parts.
  const dir = mkdtempSync(join(tmpdir(), 'fk-bench-authz-'));
  const db = await openDb({ kind: 'sqlite', path: join(dir, 'control.db') });
  const owner = ed25519.utils.randomSecretKey();
  const control = new ControlStore(db, { ownerPublicKeys: [bytesToHex(ed25519.getPublicKey(owner))] });
  await control.init();
  await control.putControlDoc(signControlDoc({ kind: 'policy', walletId: w.id, version: 1, policy, issuedAt: Date.now() }, owner));
  const now = Date.now();
  await control.putControlDoc(signControlDoc({ kind: 'grant', id: 'bench-grant', agent: { keyType: 'ed25519', publicKey: agent.publicKey }, wallets: [w.id], expiresAt: now + 3600_000, issuedAt: now }, owner));
  const authz = new Authorizer(control, [bytesToHex(ed25519.getPublicKey(owner))]);
  const reqs = Array.from({ length: N + warm }, (_, i) => request(agent, 'bench-grant', w.id, payload(10_000 + i)));
  const parts = { verify: [] as number[], decode: [] as number[], authorize: [] as number[], reserve: [] as number[] };
  for (const [i, r] of reqs.entries()) {
    let t = performance.now();
    verifyAgentRequest(r, (await control.getGrant('bench-grant'))!, { now: Date.now(), maxTtlMs: 3600_000 });
    const tv = performance.now() - t;
    t = performance.now();
    decode('solana_transaction', r.request.payload.data, { from: w.address, network: 'mainnet-beta' });
    const td = performance.now() - t;
    t = performance.now();
    const a = await authz.authorize({ agent: r }, { walletId: w.id, scheme: 'ed25519', address: w.address, network: 'mainnet-beta' });
    const ta = performance.now() - t;
    t = performance.now();
    await control.reserve(a.requestId, a.reservations, { walletId: w.id, requestDigest: a.requestDigest, now: Date.now(), ttlMs: 60_000, grant: a.grant });
    const tr = performance.now() - t;
    if (i >= warm) (parts.verify.push(tv), parts.decode.push(td), parts.authorize.push(ta), parts.reserve.push(tr));
  }
  await db.close();
  const med = (x: number[]) => stats(x).p50;
  report('one node\'s check, in process (p50 ms)', {
    authorizeTotal: med(parts.authorize),
    ofWhichAgentSignature: med(parts.verify),
    ofWhichDecodeSolana: med(parts.decode),
    reserveAtomically: med(parts.reserve),
    ratioToBaselineSignatureP50: (med(parts.authorize) + med(parts.reserve)) / a.p50,
  });
} finally {
  await c.stop();
}
