/**
 * Signing load with faults on a NetCluster, and the checks that nothing was lost or doubled.
 * test/net/faults.test.ts runs it; each run is bounded in request count and in time.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { recoverAddress, type Hex } from 'viem';
import { decode } from '../../src/chains/index.ts';
import { BIN } from '../../src/cli/cluster.ts';
import { signAgentRequest, signControlDoc, type ControlDoc, type Payload, type SignedAgentRequest } from '../../src/control/index.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';
import { call, fetchAny, type ApiResult } from '../helpers/cluster.ts';
import { newAgent, SOL_ASSETS, SOL_DEST, solTransfer, type Agent } from '../helpers/agent.ts';
import { verifySig } from '../helpers/cluster.ts';
import type { NetCluster } from './harness.ts';

export type Kind = 'agent' | 'agent-uses' | 'admin-ed25519' | 'admin-bip340' | 'admin-ecdsa';
export type Fault = 'partition' | 'latency' | 'kill-signer' | 'kill-server';

export interface LoadOptions {
  requests: number;
  concurrency: number;
  threshold: number;
  /** Share of ECDSA (DKLs23) requests: one in `ecdsaEvery` (they take far longer than FROST). */
  ecdsaEvery: number;
  /** The window cap of the agents' wallet, in requests of about AMOUNT each. */
  capRequests: number;
  /** maxUses of the second agent's grant. */
  maxUses: number;
  /** Hard bound on the whole load phase. */
  deadlineMs: number;
}

interface Outcome {
  i: number;
  kind: Kind;
  walletId: string;
  /** Every signature an answer carried for this request (an agent retry must give the same one). */
  signatures: string[];
  /** The final error code, if it did not end signed. */
  code?: string;
  requestId?: string;
  amount?: bigint;
  message: Uint8Array;
  attempts: number;
}

interface Wallet {
  id: string;
  scheme: string;
  publicKey: string;
  address: string;
}

const AMOUNT = 10_000_000n; // 0.01 SOL, plus the request index so every transaction differs
/** How long an agent keeps retrying one request (longer than a server's request lease, FLEETKEY_REQUEST_LEASE_MS). */
const RETRY_FOR_MS = 90_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** An API call that turns a transport failure (server killed, link down) into a code instead of throwing. */
async function tryCall(base: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<ApiResult> {
  try {
    return await call(base, token, method, path, body);
  } catch {
    return { status: 0, body: { error: { code: 'unreachable' } } };
  }
}

export class LoadRun {
  readonly outcomes: Outcome[] = [];
  readonly faults: Record<Fault, number> = { partition: 0, latency: 0, 'kill-signer': 0, 'kill-server': 0 };
  wallets: Record<string, Wallet> = {};
  agents: { a: Agent; grant: string; b: Agent; grantUses: string } | undefined;
  capLamports = 0n;

  constructor(
    readonly c: NetCluster,
    readonly o: LoadOptions,
  ) {}

  private admin(method: string, path: string, body?: unknown, server = 0) {
    return call(this.c.serverUrls[server], this.c.adminToken, method, path, body);
  }

  private async publish(doc: ControlDoc): Promise<void> {
    const r = await this.admin('POST', '/v1/control', signControlDoc(doc, readOwnerSecret(this.c.ownerKeyFile)));
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }

  /** Wallets (FROST ed25519 with a capped policy, BIP340, ECDSA), two agents, their grants. */
  async setup(): Promise<void> {
    const n = this.c.signers.length;
    // One key generation at a time (concurrent ones timed out on a loaded machine); a 5xx is tried again, bounded.
    for (const [name, scheme] of [['sol', 'ed25519'], ['ed', 'ed25519'], ['btc', 'secp256k1-schnorr'], ['eth', 'ecdsa-secp256k1']] as const) {
      let w = await this.admin('POST', '/v1/wallets', { scheme, threshold: this.o.threshold, signers: n, label: `net-${name}` });
      for (let i = 0; i < 3 && w.status >= 500; i++) w = await this.admin('POST', '/v1/wallets', { scheme, threshold: this.o.threshold, signers: n, label: `net-${name}` });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      this.wallets[name] = w.body;
    }
    this.capLamports = AMOUNT * BigInt(this.o.capRequests) + BigInt(this.o.requests) * BigInt(this.o.capRequests);
    const policy = {
      version: 1,
      assets: SOL_ASSETS,
      rules: [
        { id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] },
        { id: 'per-tx', type: 'tx_cap', asset: 'SOL', max: String(AMOUNT * 2n) },
        { id: 'daily', type: 'window_cap', asset: 'SOL', max: String(this.capLamports), window: '24h' },
      ],
    };
    const sol = this.wallets.sol.id;
    await this.publish({ kind: 'policy', walletId: sol, version: 1, policy, issuedAt: Date.now() } as ControlDoc);
    const a = newAgent();
    const b = newAgent();
    const now = Date.now();
    const grant = `grant_${bytesToHex(randomBytes(6))}`;
    const grantUses = `grant_${bytesToHex(randomBytes(6))}`;
    await this.publish({ kind: 'grant', id: grant, agent: { keyType: 'ed25519', publicKey: a.publicKey }, wallets: [sol], expiresAt: now + 3600_000, issuedAt: now } as ControlDoc);
    await this.publish({ kind: 'grant', id: grantUses, agent: { keyType: 'ed25519', publicKey: b.publicKey }, wallets: [sol], expiresAt: now + 3600_000, maxUses: this.o.maxUses, issuedAt: now } as ControlDoc);
    this.agents = { a, grant, b, grantUses };
  }

  private kindOf(i: number): Kind {
    if (i % this.o.ecdsaEvery === this.o.ecdsaEvery - 1) return 'admin-ecdsa';
    const k = i % 20;
    if (k < 9) return 'agent';
    if (k === 9) return 'agent-uses';
    if (k < 15) return 'admin-bip340';
    return 'admin-ed25519';
  }

  /** One request, with the retries an agent makes: the same signed request again on 5xx or a lost connection. */
  private async one(i: number, deadline: number): Promise<void> {
    const kind = this.kindOf(i);
    const servers = this.c.serverUrls;
    let server = i % servers.length;
    if (kind === 'agent' || kind === 'agent-uses') {
      const w = this.wallets.sol;
      const amount = AMOUNT + BigInt(i);
      const payload: Payload = { kind: 'solana_transaction', data: solTransfer(w.address, amount, SOL_DEST, i), opts: { network: 'mainnet-beta' } };
      const message = decode('solana_transaction', payload.data, { from: w.address }).signingPayloads[0];
      const agent = kind === 'agent' ? this.agents!.a : this.agents!.b;
      const grantId = kind === 'agent' ? this.agents!.grant : this.agents!.grantUses;
      const now = Date.now();
      const signed: SignedAgentRequest = signAgentRequest({ grantId, walletId: w.id, requestId: `rnet${i}x${bytesToHex(randomBytes(6))}`, payload, issuedAt: now, expiresAt: now + 240_000 }, agent.secret, 'ed25519');
      const out: Outcome = { i, kind, walletId: w.id, signatures: [], requestId: signed.request.requestId, amount, message, attempts: 0 };
      this.outcomes.push(out);
      const started = Date.now();
      for (;;) {
        out.attempts++;
        const r = await tryCall(servers[server], undefined, 'POST', '/v1/requests', signed);
        if (r.status === 200 && r.body.status === 'signed') {
          out.signatures.push(r.body.signature);
          delete out.code;
          return;
        }
        out.code = r.status === 200 ? `status_${r.body.status}` : r.body?.error?.code ?? `http_${r.status}`;
        // A server killed mid-request leaves it `signing` under a lease: the retry gets 409 in_progress (or 503)
        // until the lease runs out, then completes it. Retried until done, bounded in attempts and time.
        const retry = r.status === 0 || r.status >= 500 || r.status === 200 || out.code === 'in_progress';
        if (!retry || out.attempts >= (r.status === 200 ? 4 : 60) || Date.now() > Math.min(deadline, started + RETRY_FOR_MS)) return;
        server = (server + 1) % servers.length;
        await sleep(rand(200, 1200));
      }
    }
    const w = kind === 'admin-ecdsa' ? this.wallets.eth : kind === 'admin-bip340' ? this.wallets.btc : this.wallets.ed;
    const message = randomBytes(32);
    const out: Outcome = { i, kind, walletId: w.id, signatures: [], message, attempts: 1 };
    this.outcomes.push(out);
    // Admin signing is not idempotent: sent once; a lost connection is its answer ("unreachable").
    const r = await tryCall(servers[server], this.c.adminToken, 'POST', `/v1/wallets/${w.id}/sign`, kind === 'admin-ecdsa' ? { hash: bytesToHex(message) } : { message: bytesToHex(message) });
    if (r.status === 200) out.signatures.push(r.body.signature);
    else out.code = r.body?.error?.code ?? `http_${r.status}`;
  }

  /** Faults at random points, one at a time, until `done()`; every kind comes up in each round. */
  async chaos(done: () => boolean, deadline: number, onRound: () => void = () => undefined): Promise<void> {
    const c = this.c;
    const signers = c.signerNames();
    const servers = c.serverNames();
    while (!done() && Date.now() < deadline) {
      const round: Fault[] = ['partition', 'latency', 'kill-signer', 'kill-server'].sort(() => Math.random() - 0.5) as Fault[];
      for (const f of round) {
        await sleep(rand(500, 2500));
        if (done() || Date.now() > deadline) return;
        this.faults[f]++;
        if (f === 'partition') {
          const s = signers[rand(0, signers.length - 1)];
          c.partition(s);
          await sleep(rand(1000, 3000));
          c.heal(s);
        } else if (f === 'latency') {
          c.impair({ latencyMs: rand(5, 50), jitterMs: 5, stallProbability: 0.02, stallMs: 300 });
          await sleep(rand(1500, 4000));
          c.impair({ latencyMs: 0, jitterMs: 0, stallProbability: 0, stallMs: 0 });
        } else if (f === 'kill-signer') {
          const s = signers[rand(0, signers.length - 1)];
          await c.kill(s);
          await sleep(rand(200, 1500));
          await c.restart(s);
        } else {
          const s = servers[rand(0, servers.length - 1)];
          await c.kill(s);
          await sleep(rand(200, 1000));
          await c.restart(s);
        }
      }
      onRound();
    }
  }

  async run(): Promise<void> {
    const deadline = Date.now() + this.o.deadlineMs;
    let next = 0;
    let finished = 0;
    let round = false;
    const workers = Array.from({ length: this.o.concurrency }, async () => {
      while (next < this.o.requests && Date.now() < deadline) {
        // The last tenth of the load waits until every kind of fault has happened once, so a fast
        // run (3-of-5 on an idle machine took 20 s) cannot end before the faults it is meant to meet.
        while (!round && next >= this.o.requests * 0.9 && Date.now() < deadline) await sleep(100);
        await this.one(next++, deadline);
      }
      finished++;
    });
    const chaos = this.chaos(() => finished === this.o.concurrency, deadline, () => (round = true));
    await Promise.all(workers);
    await chaos;
    // Everything back: no partition, no latency, every process up.
    for (const s of this.c.signerNames()) this.c.heal(s);
    this.c.impair({ latencyMs: 0, jitterMs: 0, stallProbability: 0, stallMs: 0 });
    for (const n of this.c.procs.keys()) if (!this.c.running(n)) await this.c.restart(n);
    assert.equal(this.outcomes.length, this.o.requests, `every request was sent before the deadline (${this.outcomes.length} of ${this.o.requests})`);
  }

  /** The checks of issue 9 after a run under faults. */
  async check(): Promise<Record<string, unknown>> {
    const c = this.c;
    assert.deepEqual(c.unexpectedExits, [], 'no process died that the test did not kill');
    for (const f of Object.keys(this.faults) as Fault[]) assert.ok(this.faults[f] > 0, `fault ${f} happened at least once`);
    const byCode: Record<string, number> = {};
    const rs = new Map<string, number>();
    const internal: string[] = [];
    let signed = 0;
    for (const o of this.outcomes) {
      if (o.code) {
        // A clear error: a stable code from the API, or a connection the test itself cut by killing the server.
        // `internal` is not one: it is a bug the server could not name.
        assert.match(o.code, /^[a-z][a-z0-9_]+$/, `request ${o.i} (${o.kind}) ended with a code`);
        byCode[o.code] = (byCode[o.code] ?? 0) + 1;
        if (o.code === 'internal') internal.push(`${o.i} (${o.kind})`);
        continue;
      }
      signed++;
      assert.ok(o.signatures.length >= 1);
      assert.ok(o.signatures.every((s) => s === o.signatures[0]), `request ${o.i}: every answer carried one signature`);
      const w = Object.values(this.wallets).find((x) => x.id === o.walletId)!;
      const sig = o.signatures[0].replace(/^0x/, '');
      if (w.scheme === 'ecdsa-secp256k1') {
        const addr = await recoverAddress({ hash: ('0x' + bytesToHex(o.message)) as Hex, signature: ('0x' + sig) as Hex });
        assert.equal(addr.toLowerCase(), w.address.toLowerCase(), `request ${o.i}: viem recovers the wallet address`);
      } else if (w.scheme === 'ed25519') {
        assert.ok(ed25519.verify(hexToBytes(sig), o.message, hexToBytes(w.publicKey), { zip215: false }), `request ${o.i}: noble Ed25519 verifies`);
      } else {
        assert.ok(verifySig(w.scheme, w.publicKey, o.message, sig), `request ${o.i}: noble BIP340 verifies`);
      }
      // R (the nonce commitment) must never repeat across signatures: r || s, first 32 bytes.
      const R = sig.slice(0, 64);
      assert.equal(rs.has(R), false, `request ${o.i}: nonce point R already used by request ${rs.get(R)}`);
      rs.set(R, o.i);
    }
    // Agent requests: the server's final word agrees with what the agent saw, and nothing is left pending.
    const left: string[] = [];
    for (const o of this.outcomes.filter((x) => x.requestId)) {
      const r = await call(c.serverUrls[0], undefined, 'GET', `/v1/requests/${o.requestId}`);
      if (r.status === 404) {
        assert.ok(o.code, `request ${o.i}: unknown to the server, so it must have ended with an error`);
        continue;
      }
      assert.equal(r.status, 200, JSON.stringify(r.body));
      if (['signing', 'pending_approval'].includes(r.body.status)) {
        left.push(`${o.requestId} (${r.body.status}, agent saw ${o.code})`);
        continue;
      }
      if (!o.code) assert.equal(r.body.signature, o.signatures[0], `request ${o.i}: the server's record holds the signature the agent got`);
      else assert.notEqual(r.body.status, 'signed', `request ${o.i}: ended ${o.code} for the agent, but signed at the server`);
    }
    for (const s of c.serverUrls) assert.deepEqual((await call(s, c.adminToken, 'GET', '/v1/approvals')).body.requests, [], 'no request waits for approval');
    // Caps, seen by the agents.
    const agentSigned = this.outcomes.filter((o) => o.requestId && !o.code);
    const spent = agentSigned.reduce((a, o) => a + o.amount!, 0n);
    assert.ok(spent <= this.capLamports, `signed ${spent} lamports, the window cap is ${this.capLamports}`);
    const usesSigned = agentSigned.filter((o) => o.kind === 'agent-uses').length;
    assert.ok(usesSigned <= this.o.maxUses, `grant with maxUses ${this.o.maxUses} signed ${usesSigned}`);
    const audit = await this.checkSigners();
    // One chain per server in the shared store (src/store/audit-store.ts): each exported by its owner and verified.
    for (const [i, url] of c.serverUrls.entries()) await this.verifyChain(`server-${i + 1}`, url + '/v1/audit', c.adminToken);
    process.stdout.write(`# errors by code: ${JSON.stringify(byCode)}; faults: ${JSON.stringify(this.faults)}\n`);
    // Last, so every check above has run: requests a killed server was signing must end, and no 500s.
    assert.deepEqual(left, [], `${left.length} agent request(s) left pending at the server (a server SIGKILLed while signing them)`);
    assert.deepEqual(internal, [], `${internal.length} request(s) ended with code internal`);
    return { requests: this.outcomes.length, signed, errors: byCode, faults: this.faults, agentSpent: spent.toString(), cap: this.capLamports.toString(), usesSigned, maxUses: this.o.maxUses, ...audit };
  }

  /** Exports a chain and runs `fleetkey audit verify` on it (a separate process, offline). */
  private async verifyChain(name: string, url: string, token: string): Promise<Record<string, unknown>[]> {
    // A GET, so one retry is safe: under a heavy load the server may close a kept-alive connection just as
    // it is reused (undici: "other side closed"), which says nothing about the chain.
    const get = () => fetchAny(url, { headers: { authorization: `Bearer ${token}` } });
    const res = await get().catch((e: Error & { cause?: { code?: string } }) => {
      if (e.cause?.code !== 'UND_ERR_SOCKET') throw e;
      return get();
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const file = join(this.c.dataDir, `${name}-audit.jsonl`);
    writeFileSync(file, text);
    const v = spawnSync(process.execPath, [BIN, 'audit', 'verify', file, '--json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(v.status, 0, `${name}: fleetkey audit verify: ${v.stdout} ${v.stderr}`);
    assert.equal(JSON.parse(v.stdout).ok, true);
    return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /**
   * Every signer: its chain verifies; no nonce id in two share entries; every nonce it shared from
   * is in its consumed-nonce log for that request; counters it committed stay within the caps.
   */
  private async checkSigners(): Promise<Record<string, unknown>> {
    const c = this.c;
    const perSigner: Record<string, unknown> = {};
    const sol = this.wallets.sol.id;
    for (const s of c.signers) {
      const entries = await this.verifyChain(s.name, s.direct + '/v1/audit', c.clusterToken);
      const shares = entries.filter((e) => e.outcome === 'share_issued') as { data: { nonceId?: string; requestId: string; walletId: string; grantId?: string; reservations: { counterKey: string; amount: string }[] } }[];
      const nonceIds = shares.map((e) => e.data.nonceId).filter((x): x is string => !!x);
      assert.equal(new Set(nonceIds).size, nonceIds.length, `${s.name}: a nonce id appears in two share entries`);
      const dbFile = join(c.dataDir, s.name, 'signer.db');
      assert.ok(existsSync(dbFile));
      const db = new Database(dbFile, { readonly: true, fileMustExist: true });
      try {
        const consumed = new Map((db.prepare('SELECT id, request_id FROM consumed_nonces').all() as { id: string; request_id: string }[]).map((r) => [r.id, r.request_id]));
        for (const e of shares) if (e.data.nonceId) assert.equal(consumed.get(e.data.nonceId), e.data.requestId, `${s.name}: nonce ${e.data.nonceId} logged as consumed for its request`);
        perSigner[s.name] = { shares: shares.length, consumed: consumed.size };
      } finally {
        db.close();
      }
      // Counted once per request id, whatever the retries: within the window cap and the grant's uses.
      const counted = new Map<string, { amount: bigint; grantId?: string }>();
      for (const e of entries as { outcome?: string; data?: { requestId?: string; walletId?: string; grantId?: string; reservations?: { counterKey: string; amount: string }[] } }[]) {
        if ((e.outcome !== 'share_issued' && e.outcome !== 'counted') || e.data?.walletId !== sol || !e.data.requestId) continue;
        const sum = (e.data.reservations ?? []).filter((r) => r.counterKey.startsWith('sum/')).reduce((a, r) => (BigInt(r.amount) > a ? BigInt(r.amount) : a), 0n);
        counted.set(e.data.requestId, { amount: sum, grantId: e.data.grantId });
      }
      const total = [...counted.values()].reduce((a, x) => a + x.amount, 0n);
      const uses = [...counted.values()].filter((x) => x.grantId === this.agents!.grantUses).length;
      assert.ok(total <= this.capLamports, `${s.name} counted ${total} lamports against a cap of ${this.capLamports}`);
      assert.ok(uses <= this.o.maxUses, `${s.name} counted ${uses} uses of a grant capped at ${this.o.maxUses}`);
    }
    return { signers: perSigner };
  }
}
