/**
 * Faults under load on a real network (issue 9): signer and server processes in their own network
 * namespaces, the servers reaching each signer through a proxy that adds latency and stalls.
 * While agents and the admin sign (FROST Ed25519 under a capped policy, BIP340, some ECDSA), at
 * random points a signer is partitioned and healed, a signer and a server are SIGKILLed and
 * restarted, and 5-50 ms of latency comes and goes. Then: every request ended signed exactly once
 * (checked with noble and viem) or with a clear error code; no nonce was used twice; the caps held
 * at the server and at every signer; every audit chain verifies offline; nothing is left pending.
 *
 * Knobs: FLEETKEY_NET_LOAD (requests of the 2-of-3 run, default 2000), FLEETKEY_NET_LOAD_35
 * (3-of-5 run, default 120), FLEETKEY_NET_SERVERS (API servers, default 2, on one shared
 * PostgreSQL schema; the load spreads over them and an agent retries at the next one). The
 * servers' request lease is 5 s here (15 s by default) so a killed server's requests are taken
 * over sooner.
 */
import { after, before, describe, test } from 'node:test';
import { NetCluster, netnsUnavailable } from './harness.ts';
import { LoadRun } from './load.ts';

const why = netnsUnavailable();
if (why) process.stdout.write(`# skipping test/net/faults.test.ts: ${why}\n`);
const SERVERS = Number(process.env.FLEETKEY_NET_SERVERS ?? 2);

const cases = [
  { name: '2-of-3', signers: 3, threshold: 2, requests: Number(process.env.FLEETKEY_NET_LOAD ?? 2000), ecdsaEvery: 50, capRequests: 300, maxUses: 40 },
  // The 2,000 requests are the 2-of-3 run's; the 3-of-5 run checks the same under a larger committee,
  // and every kind of fault still comes up in it (the load's last tenth waits for them): 120 by default, CI time.
  { name: '3-of-5', signers: 5, threshold: 3, requests: Number(process.env.FLEETKEY_NET_LOAD_35 ?? 120), ecdsaEvery: 40, capRequests: 25, maxUses: 8 },
];

for (const k of cases.filter((x) => x.requests > 0))
  describe(`faults under load, ${k.name} (${k.signers} signer namespaces, ${SERVERS} server${SERVERS > 1 ? 's' : ''})`, { skip: why, timeout: 600_000 }, () => {
    let c: NetCluster;
    before(async () => {
      c = await NetCluster.start({ signers: k.signers, servers: SERVERS, threshold: k.threshold, sharedServerSchema: true, env: { FLEETKEY_REQUEST_LEASE_MS: '5000' } });
    });
    after(async () => c?.stop());

    test(`${k.requests} signing requests while signers are partitioned and killed, a server is killed, latency comes and goes`, async () => {
      const run = new LoadRun(c, { requests: k.requests, concurrency: 8, threshold: k.threshold, ecdsaEvery: k.ecdsaEvery, capRequests: k.capRequests, maxUses: k.maxUses, deadlineMs: 300_000 });
      const t0 = performance.now();
      await run.setup();
      const t1 = performance.now();
      await run.run();
      const t2 = performance.now();
      try {
        process.stdout.write(`# ${k.name}: ${JSON.stringify(await run.check())}\n`);
      } finally {
        const secs = (a: number, b: number) => Math.round((b - a) / 100) / 10;
        process.stdout.write(`# ${k.name}: setup ${secs(t0, t1)} s, load ${secs(t1, t2)} s, checks ${secs(t2, performance.now())} s\n`);
      }
    });
  });
