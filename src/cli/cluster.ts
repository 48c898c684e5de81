/**
 * A whole local cluster as real processes: N signer nodes and one server, each its own Node
 * process on loopback, data under one folder. `fleetkey dev` runs it; the integration tests and
 * benchmarks use the same code, so what they test is what users run.
 *
 * It deploys the way an operator does across machines, only on one: `init` for every process
 * (identity and TLS key in its own folder), one manifest of their join records
 * (DATA/cluster-manifest.json), every process started with it, every server-signer link mutual
 * TLS. `tls: false` keeps the older plain-HTTP links (the benchmark's baseline).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Agent } from 'node:https';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { PeerInfo } from '../signer/envelope.ts';
import { ensureOwnerKey } from '../control/owner.ts';
import { initServer, initSigner } from '../tls/init.ts';
import { parsePkcs11Uri } from '../signer/pkcs11.ts';
import { assembleManifest, peersOf, readManifest } from '../tls/manifest.ts';
import { fetchWith, loadOwnTls, pinnedAgent } from '../tls/mtls.ts';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/fleetkey');

export interface ClusterOptions {
  dataDir: string;
  port?: number;
  signers?: number;
  /** Default threshold of wallets created without one (capped at their number of signers). */
  threshold?: number;
  /** A PostgreSQL URL; each signer then uses its own schema in that database, and the servers share one. */
  postgres?: string;
  /**
   * API servers (default 1). More than one needs `postgres`: they share its schema `server`
   * (README, "Several API servers"); each has its own data folder (`server`, `server-2`, …).
   */
  servers?: number;
  /** Prefix of every schema name in `postgres` (tests: a run of its own, dropped after). */
  schemaPrefix?: string;
  /** Give the server the owner key file (default true: `fleetkey dev`). False models a production server. */
  ownerKeyOnServer?: boolean;
  /** More owner keys every node pins beside the key file's (hex, or a passkey's JSON: src/control/owner.ts). */
  extraOwnerKeys?: string[];
  quiet?: boolean;
  /** More arguments for one signer's command line (e.g. its `--kek pkcs11:…`). */
  signerArgs?: (name: string) => string[];
  /** Every line a process writes to stderr, whether or not `quiet` (tests read the logs). */
  onLog?: (name: string, line: string) => void;
  onExit?: (name: string, code: number | null, signal: string | null) => void;
  /** Mutual TLS on every server-signer link, from a generated manifest (default true). */
  tls?: boolean;
}

export interface ClusterInfo {
  url: string;
  /** Every API server's URL (the first is `url`); any of them answers any request. */
  servers: string[];
  token: string;
  /** Path of the owner key file (hex Ed25519 secret, 0600) the CLI signs control documents with. */
  ownerKey: string;
  /**
   * The signer nodes, with the Ed25519 identity key each one signs wallet packages with
   * (`signPub`, as in peers.json): the CLI checks every wallet's signed public package against them.
   */
  signers: { nodeId: string; url: string; signPub: string }[];
}

export interface Proc {
  name: string;
  child: ChildProcess;
  port: number;
  args: string[];
  env: NodeJS.ProcessEnv;
}

function secretFile(path: string): string {
  if (!existsSync(path)) writeFileSync(path, bytesToHex(randomBytes(32)) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return readFileSync(path, 'utf8').trim();
}

/** The API servers' process names: `server`, then `server-2`, … (several need a shared PostgreSQL). */
function serverNames(o: ClusterOptions): string[] {
  const n = o.servers ?? 1;
  if (n > 1 && !o.postgres) throw new Error('several API servers need a shared PostgreSQL store (postgres)');
  return Array.from({ length: n }, (_, i) => (i === 0 ? 'server' : `server-${i + 1}`));
}

/**
 * Spawns `bin/fleetkey <args>` and resolves with the port it reports once listening. `prefix` runs
 * it under another command (the network tests use `ip netns exec NS`, which execs in place, so the
 * child's pid is still the fleetkey process).
 */
export function start(name: string, args: string[], env: NodeJS.ProcessEnv, quiet: boolean, onExit?: ClusterOptions['onExit'], onLog?: ClusterOptions['onLog'], prefix: string[] = []): Promise<Proc> {
  return new Promise((resolveStart, reject) => {
    const [cmd, ...pre] = [...prefix, process.execPath];
    const child = spawn(cmd, [...pre, BIN, ...args], { env: { ...process.env, FLEETKEY_EXIT_WITH_PARENT: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    let listening = false;
    /** The last lines it wrote, for the error if it dies before listening (a quiet start prints none of them). */
    const last: string[] = [];
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!listening && last.push(line) > 20) last.shift();
        let rec: { msg?: string; port?: number; level?: string } | undefined;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = undefined;
        }
        if (!listening && rec?.msg?.endsWith('listening') && rec.port) {
          listening = true;
          resolveStart({ name, child, port: rec.port, args, env });
        }
        onLog?.(name, line);
        if (!quiet || rec?.level === 'error') process.stderr.write(`[${name}] ${line}\n`);
      }
    });
    child.on('exit', (code, signal) => {
      if (!listening) reject(new Error(`${name} exited before listening (code ${code}${signal ? `, ${signal}` : ''}): ${[...last, buf].join('\n').slice(-2000)}`));
      onExit?.(name, code, signal);
    });
  });
}

/** A port free on loopback right now (the manifest must name each signer's URL before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

/** The port an earlier run used, if it is still free: peers recorded before a restart still match. */
async function portFor(dir: string): Promise<number> {
  const file = join(dir, 'port');
  const before = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
  if (before > 0) {
    const free = await new Promise<boolean>((r) => {
      const srv = createServer();
      srv.once('error', () => r(false));
      srv.listen(before, '127.0.0.1', () => srv.close(() => r(true)));
    });
    if (free) return before;
  }
  return freePort();
}

/** The agents of every cluster this process started: the tests' direct signer calls go through them. */
const signerAgents = new Map<string, Agent>();

export class LocalCluster {
  /**
   * fetch that reaches this process's clusters' signers over mutual TLS with the dev server's
   * certificate, as the server (or a test playing a compromised one) does; other URLs as usual.
   */
  static readonly fetch: typeof fetch = fetchWith((u) => signerAgents.get(u.origin));

  /** Lets a cluster deployed by other code (the network harness, test/net) be reached through `LocalCluster.fetch` too. */
  static pin(origin: string, agent: Agent): void {
    signerAgents.set(origin, agent);
  }

  private constructor(
    readonly dataDir: string,
    readonly info: ClusterInfo,
    private procs: Map<string, Proc>,
    private readonly quiet: boolean,
    private readonly onExit?: ClusterOptions['onExit'],
    private readonly onLog?: ClusterOptions['onLog'],
  ) {}

  static async start(o: ClusterOptions): Promise<LocalCluster> {
    const dataDir = resolve(o.dataDir);
    const n = o.signers ?? 3;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const clusterToken = secretFile(join(dataDir, 'cluster-token'));
    const adminToken = secretFile(join(dataDir, 'admin-token'));
    // The owner key: signs policies, grants and admin signing authorizations. Every signer pins its public key.
    const ownerKeyFile = join(dataDir, 'owner.key');
    // owner.pub: the key file's public key, then any other pinned owner keys (passkeys), one per line.
    const ownerPub = [ensureOwnerKey(ownerKeyFile), ...(o.extraOwnerKeys ?? [])].join('\n');
    const quiet = o.quiet ?? false;
    const procs = new Map<string, Proc>();
    const dbArg = (name: string) => (o.postgres ? ['--db', o.postgres, '--db-schema', (o.schemaPrefix ?? '') + name.replace(/-/g, '_')] : []);
    try {
      if (o.tls !== false) {
        const { procs: started, peers } = await LocalCluster.startTls(o, dataDir, ownerPub, clusterToken, dbArg, quiet);
        for (const p of started) procs.set(p.name, p);
        return await LocalCluster.startServer(o, dataDir, ownerPub, ownerKeyFile, clusterToken, adminToken, peers, procs, dbArg, quiet, ['--manifest', join(dataDir, 'cluster-manifest.json')]);
      }
      const signerProcs = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const name = `signer-${i + 1}`;
          const dir = join(dataDir, name);
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          // Reuse the port of an earlier run, so peers recorded before a restart still match.
          const portFile = join(dir, 'port');
          const port = existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() : '0';
          writeFileSync(join(dir, 'owner.pub'), ownerPub + '\n');
          return start(name, ['signer', '--data', dir, '--port', port, ...dbArg(name), ...(o.signerArgs?.(name) ?? [])], { FLEETKEY_CLUSTER_TOKEN: clusterToken }, quiet, o.onExit, o.onLog).catch(() =>
            start(name, ['signer', '--data', dir, '--port', '0', ...dbArg(name), ...(o.signerArgs?.(name) ?? [])], { FLEETKEY_CLUSTER_TOKEN: clusterToken }, quiet, o.onExit, o.onLog),
          );
        }),
      );
      const peers: PeerInfo[] = [];
      for (const p of signerProcs) {
        procs.set(p.name, p);
        writeFileSync(join(dataDir, p.name, 'port'), String(p.port));
        const url = `http://127.0.0.1:${p.port}`;
        const id = (await (await fetch(url + '/v1/identity')).json()) as Omit<PeerInfo, 'url'>;
        peers.push({ ...id, url });
      }
      // The operator pins the membership: every node and the server get the same peer list.
      const peersJson = JSON.stringify(peers, null, 2);
      for (const p of signerProcs) writeFileSync(join(dataDir, p.name, 'peers.json'), peersJson);
      for (const name of serverNames(o)) {
        mkdirSync(join(dataDir, name), { recursive: true, mode: 0o700 });
        writeFileSync(join(dataDir, name, 'peers.json'), peersJson);
      }
      return await LocalCluster.startServer(o, dataDir, ownerPub, ownerKeyFile, clusterToken, adminToken, peers, procs, dbArg, quiet, []);
    } catch (e) {
      for (const p of procs.values()) p.child.kill('SIGKILL');
      throw e;
    }
  }

  /** `init` every process, assemble the manifest, start the signers with it. */
  private static async startTls(o: ClusterOptions, dataDir: string, ownerPub: string, clusterToken: string, dbArg: (name: string) => string[], quiet: boolean) {
    const n = o.signers ?? 3;
    const names = Array.from({ length: n }, (_, i) => `signer-${i + 1}`);
    const ports: number[] = [];
    for (const name of names) {
      const dir = join(dataDir, name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, 'owner.pub'), ownerPub + '\n');
      // A port is free only until someone binds it: the kernel may hand the one just closed to the next
      // signer too (seen with two test runs side by side), and a manifest refuses a URL listed twice.
      let port = await portFor(dir);
      for (let tries = 0; ports.includes(port) && tries < 20; tries++) port = await freePort();
      ports.push(port);
    }
    // One init at a time: an HSM-backed init opens the PKCS#11 module in this process, and one init's
    // close (C_Finalize) must not pull the library out from under another's.
    const records = [];
    for (const [i, name] of names.entries()) {
      const [db, dbSchema] = o.postgres ? [o.postgres, (o.schemaPrefix ?? '') + name.replace(/-/g, '_')] : [];
      // A signer whose KEK is in an HSM (`signerArgs` with --kek) seals its identity there from init on.
      const extra = o.signerArgs?.(name) ?? [];
      const kek = extra.indexOf('--kek');
      const pkcs11 = kek >= 0 ? parsePkcs11Uri(extra[kek + 1]) : undefined;
      records.push(await initSigner({ dataDir: join(dataDir, name), name, advertise: `https://127.0.0.1:${ports[i]}`, db, dbSchema, pkcs11 }));
    }
    const serverDir = join(dataDir, 'server');
    const servers = [];
    for (const name of serverNames(o)) servers.push(await initServer({ dataDir: join(dataDir, name), name }));
    const manifest = assembleManifest([...records, ...servers]);
    const manifestFile = join(dataDir, 'cluster-manifest.json');
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    const own = loadOwnTls(serverDir);
    for (const r of records) signerAgents.set(new URL(r.url!).origin, pinnedAgent(own, r.tlsCertificate));
    const started = await Promise.allSettled(
      names.map((name, i) => {
        writeFileSync(join(dataDir, name, 'port'), String(ports[i]));
        return start(name, ['signer', '--data', join(dataDir, name), '--port', String(ports[i]), '--manifest', manifestFile, ...dbArg(name), ...(o.signerArgs?.(name) ?? [])], { FLEETKEY_CLUSTER_TOKEN: clusterToken }, quiet, o.onExit, o.onLog);
      }),
    );
    const procs = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // The signers that did start must not outlive this failure: a live child keeps the caller's
      // process (a test file, `fleetkey dev`) from ever exiting.
      for (const p of procs) p.child.kill('SIGKILL');
      throw failed.reason;
    }
    return { procs, peers: peersOf(manifest) };
  }

  private static async startServer(o: ClusterOptions, dataDir: string, ownerPub: string, ownerKeyFile: string, clusterToken: string, adminToken: string, peers: PeerInfo[], procs: Map<string, Proc>, dbArg: (name: string) => string[], quiet: boolean, extra: string[]): Promise<LocalCluster> {
    // `fleetkey dev` lets its server use the owner key (admin signing with just the admin token). Never in production.
    const ownerEnv = o.ownerKeyOnServer === false ? {} : { FLEETKEY_OWNER_KEY_FILE: ownerKeyFile };
    const started = await Promise.allSettled(
      serverNames(o).map((name, i) => {
        const serverDir = join(dataDir, name);
        mkdirSync(serverDir, { recursive: true, mode: 0o700 });
        writeFileSync(join(serverDir, 'owner.pub'), ownerPub + '\n');
        // Every server on the one schema `server`: the state they share is there (src/store/server-store.ts).
        const port = i === 0 ? String(o.port ?? 0) : '0';
        return start(name, ['server', '--data', serverDir, '--port', port, ...extra, ...dbArg('server')], { FLEETKEY_CLUSTER_TOKEN: clusterToken, FLEETKEY_ADMIN_TOKEN: adminToken, FLEETKEY_DEFAULT_THRESHOLD: String(o.threshold ?? 2), ...ownerEnv }, quiet, o.onExit, o.onLog);
      }),
    );
    // Those that did start are stopped by the caller with the rest if one did not.
    for (const r of started) if (r.status === 'fulfilled') procs.set(r.value.name, r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const urls = started.map((r) => `http://127.0.0.1:${(r as PromiseFulfilledResult<Proc>).value.port}`);
    const info: ClusterInfo = { url: urls[0], servers: urls, token: adminToken, ownerKey: ownerKeyFile, signers: peers.map((p) => ({ nodeId: p.nodeId, url: p.url, signPub: p.signPub })) };
    writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    return new LocalCluster(dataDir, info, procs, quiet, o.onExit, o.onLog);
  }

  signerNames(): string[] {
    return [...this.procs.keys()].filter((k) => k.startsWith('signer-'));
  }

  nodeIdOf(name: string): string {
    return this.info.signers[Number(name.split('-')[1]) - 1].nodeId;
  }

  /** The processes running now (a killed one is left out until restarted). */
  running(): string[] {
    return [...this.procs.values()].filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.name);
  }

  pid(name: string): number | undefined {
    return this.procs.get(name)?.child.pid;
  }

  /** SIGKILL: no chance to flush or clean up, like a power cut. */
  async kill(name: string): Promise<void> {
    const p = this.procs.get(name);
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGKILL');
    await exited;
  }

  /** Sends `signal` (SIGTERM: a graceful drain) and resolves with how the process ended. */
  terminate(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.procs.get(name)!;
    if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve({ code: p.child.exitCode, signal: p.child.signalCode });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.child.once('exit', (code, sig) => r({ code, signal: sig })));
    p.child.kill(signal);
    return ended;
  }

  /**
   * Starts a stopped process again on the same port with the same data (and the manifest file as it
   * is now). SIGKILL first by default; SIGTERM is an operator's restart: in-flight requests drain.
   */
  async restart(name: string, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(name)!;
    if (signal === 'SIGTERM') await this.terminate(name, 'SIGTERM');
    else await this.kill(name);
    const args = [...p.args];
    args[args.indexOf('--port') + 1] = String(p.port);
    this.procs.set(name, await start(name, args, p.env, this.quiet, this.onExit, this.onLog));
  }

  /**
   * Starts a signer that joined after the cluster did, as its operator would: DATA/NAME holds what
   * `fleetkey signer init` made (and `owner.pub`; its store is SQLite there), DATA/cluster-manifest.json
   * names it (`fleetkey node add`), and it listens on the port of the URL it advertised. The other processes learn it only
   * when restarted with that manifest; this adds it to `info.signers` and pins its certificate for
   * `LocalCluster.fetch`.
   */
  async startJoined(name: string): Promise<void> {
    // nodeIdOf reads the number in the name as a place in info.signers.
    if (name !== `signer-${this.info.signers.length + 1}`) throw new Error(`the next signer joined is signer-${this.info.signers.length + 1}, not ${name}`);
    const manifestFile = join(this.dataDir, 'cluster-manifest.json');
    const record = readManifest(manifestFile).nodes.find((n) => n.role === 'signer' && n.name === name);
    if (!record) throw new Error(`${manifestFile} names no signer ${name}`);
    const dir = join(this.dataDir, name);
    const port = new URL(record.url!).port;
    const token = readFileSync(join(this.dataDir, 'cluster-token'), 'utf8').trim();
    const proc = await start(name, ['signer', '--data', dir, '--port', port, '--manifest', manifestFile], { FLEETKEY_CLUSTER_TOKEN: token }, this.quiet, this.onExit, this.onLog);
    this.procs.set(name, proc);
    writeFileSync(join(dir, 'port'), port);
    signerAgents.set(new URL(record.url!).origin, pinnedAgent(loadOwnTls(join(this.dataDir, 'server')), record.tlsCertificate));
    this.info.signers.push({ nodeId: record.nodeId, url: new URL(record.url!).origin, signPub: record.identityPublicKey });
    writeFileSync(join(this.dataDir, 'cluster.json'), JSON.stringify(this.info, null, 2) + '\n', { mode: 0o600 });
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.procs.values()].map(
        (p) =>
          new Promise<void>((r) => {
            if (p.child.exitCode !== null || p.child.signalCode !== null) return r();
            p.child.once('exit', () => r());
            p.child.kill('SIGTERM');
          }),
      ),
    );
  }
}
