/**
 * A small network on this machine: one Linux network namespace per host, each joined to one bridge
 * by a veth pair, with addresses in a private /24 (10.77.X.0, X from this process id). Signers and
 * API servers run as real `fleetkey` processes inside their namespace, bound to its address.
 *
 * The cluster is deployed as an operator deploys it (README, "Deploy across machines"): `init` per
 * process, one `cluster manifest`, every process started with `--manifest`, every server-signer
 * link mutual TLS. Between each server and each signer sits a DelayProxy (test/net/proxy.ts) in the
 * root namespace, on the bridge address: signer k advertises proxy k's URL, so the servers reach it
 * only through that proxy (a TCP proxy: the TLS session is end to end), and latency and stalls can
 * be added per link at run time. A partition takes the host's
 * veth down. PostgreSQL listens on 127.0.0.1 only: a plain forwarder on the bridge address lets
 * the server namespaces reach it.
 *
 * Every name made here starts with `fknet-PID` (namespaces) or `fkb`/`fkv` + PID (links), so a
 * start-up sweep can remove what a killed earlier run left (PostgreSQL schemas `fknet_PID_*` too),
 * without touching a run still alive.
 * Every process launch goes through NetCluster.launch (one function, at boot and on every restart).
 */
import { execFile, execFileSync } from 'node:child_process';
import type { Agent } from 'node:https';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import pg from 'pg';
import { BIN, LocalCluster, start, type Proc } from '../../src/cli/cluster.ts';
import { ensureOwnerKey } from '../../src/control/owner.ts';
import type { JoinRecord } from '../../src/tls/manifest.ts';
import { loadOwnTls, pinnedAgent } from '../../src/tls/mtls.ts';
import { DelayProxy, forwarder, type Impairment } from './proxy.ts';

const PG_URL = process.env.FLEETKEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SIGNER_PORT = 7400;
const SERVER_PORT = 7300;
const execFileP = promisify(execFile);

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and links an earlier run (now dead) left behind. */
export function sweep(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(fknet-(\d+)-\S+)/.exec(line);
    if (m && !alive(Number(m[2]))) ip('netns', 'del', m[1]);
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const m = /^\d+:\s+((fkb|fkv)(\d+)[^@:\s]*)/.exec(line);
    if (m && !alive(Number(m[3]))) {
      try {
        ip('link', 'del', m[1]);
      } catch {
        // A veth goes with its peer: already gone.
      }
    }
  }
}

/** Why namespaces cannot be made here (the suite then skips, printing this), or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  const probe = `fknet-${process.pid}-probe`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
  } catch (e) {
    return `cannot make a network namespace: ${(e as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/** Drops the PostgreSQL schemas `which` names (this run's, or those a dead run left). */
async function dropSchemas(which: (cl: pg.Client) => Promise<string[]>): Promise<void> {
  const cl = new pg.Client({ connectionString: PG_URL });
  await cl.connect();
  try {
    for (const s of await which(cl)) if (/^fknet_\d+_[a-z0-9_]+$/.test(s)) await cl.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await cl.end();
  }
}

export interface Host {
  name: string;
  ns: string;
  addr: string;
  /** The root-namespace end of the veth pair, attached to the bridge (partitions take it down). */
  link: string;
}

/**
 * 10.77.X, X from this process id, or the next X no route on this machine uses yet: two suites may run
 * at once (CI runs Node 20's and Node 24's side by side) and two bridges must not claim one /24.
 */
function freeSubnet(): string {
  const used = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  for (let k = 0; k < 250; k++) {
    const x = ((process.pid + k) % 250) + 1;
    if (!used.includes(`10.77.${x}.0/24`)) return `10.77.${x}`;
  }
  throw new Error('no free 10.77.X.0/24 for the test network');
}

/** Namespaces, veth pairs and a bridge; `teardown` removes them all, also from an 'exit' handler. */
export class Net {
  readonly bridge = `fkb${process.pid}`;
  readonly subnet = freeSubnet();
  readonly gateway = `${this.subnet}.1`;
  readonly hosts = new Map<string, Host>();
  private readonly onExit = () => this.teardown();

  constructor() {
    sweep();
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    process.once('exit', this.onExit);
  }

  addHost(name: string): Host {
    const i = this.hosts.size + 2;
    const host: Host = { name, ns: `fknet-${process.pid}-${name}`, addr: `${this.subnet}.${i}`, link: `fkv${process.pid}x${i}` };
    const inner = `fkv${process.pid}y${i}`;
    ip('netns', 'add', host.ns);
    this.hosts.set(name, host);
    ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', host.ns);
    ip('link', 'set', host.link, 'master', this.bridge);
    ip('link', 'set', host.link, 'up');
    ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', inner);
    ip('-n', host.ns, 'link', 'set', inner, 'up');
    ip('-n', host.ns, 'link', 'set', 'lo', 'up');
    return host;
  }

  /** Cuts the host off the network (its link down): connections to and from it hang, then time out. */
  partition(name: string): void {
    ip('link', 'set', this.hosts.get(name)!.link, 'down');
  }

  heal(name: string): void {
    ip('link', 'set', this.hosts.get(name)!.link, 'up');
  }

  /** Synchronous, so it also runs from process 'exit'. Deleting a namespace deletes its veth pair. */
  teardown(): void {
    process.off('exit', this.onExit);
    for (const h of this.hosts.values()) {
      try {
        ip('netns', 'del', h.ns);
      } catch {
        // already gone
      }
    }
    this.hosts.clear();
    try {
      ip('link', 'del', this.bridge);
    } catch {
      // already gone
    }
  }
}

export interface NetClusterOptions {
  signers: number;
  /** API servers (each in its own namespace). More than one needs the shared store of issue 9 (h2). */
  servers?: number;
  threshold?: number;
  /**
   * One PostgreSQL schema for every server (the shared state of issue 9) instead of one each.
   * Off by default until servers on one database share their state correctly.
   */
  sharedServerSchema?: boolean;
  /** Extra environment for every process (e.g. FLEETKEY_HEADERS_TIMEOUT_MS). */
  env?: NodeJS.ProcessEnv;
}

interface ProcSpec {
  host: Host;
  role: 'signer' | 'server';
  dataDir: string;
  port: number;
  env: NodeJS.ProcessEnv;
  /** Flags beyond role, data, address and store (the manifest). */
  args: string[];
  schema?: string;
}

export interface SignerInfo {
  name: string;
  nodeId: string;
  /** The signer's own address, https (tests reach it with test/helpers' `call`, over mutual TLS as server-1). */
  direct: string;
  signPub: string;
  /** The certificate the manifest pins for it (PEM). */
  tlsCertificate: string;
}

/** Signers and servers as real processes in their own namespaces, with a proxy on every signer link. */
export class NetCluster {
  readonly procs = new Map<string, { spec: ProcSpec; proc?: Proc }>();
  readonly proxies = new Map<string, DelayProxy>();
  readonly signers: SignerInfo[] = [];
  readonly serverUrls: string[] = [];
  clusterToken = '';
  adminToken = '';
  ownerKeyFile = '';
  /** Exits nobody asked for (name, code, signal): a crash under load shows here. */
  readonly unexpectedExits: string[] = [];
  private readonly expectedExit = new Set<string>();
  private pgForward?: DelayProxy;
  private readonly schemas = new Set<string>();
  private readonly agents = new Map<string, Agent>();

  private constructor(
    readonly net: Net,
    readonly dataDir: string,
  ) {}

  static async start(o: NetClusterOptions): Promise<NetCluster> {
    const c = new NetCluster(new Net(), mkdtempSync(join(tmpdir(), 'fk-net-')));
    try {
      await c.boot(o);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  private secret(name: string): string {
    const path = join(this.dataDir, name);
    if (!existsSync(path)) writeFileSync(path, bytesToHex(randomBytes(32)) + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
    return readFileSync(path, 'utf8').trim();
  }

  /** Runs a `fleetkey` command (init, cluster manifest) as the operator does on each host; resolves with its stdout. */
  private async cli(args: string[]): Promise<string> {
    const { stdout } = await execFileP(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
    return stdout;
  }

  /**
   * Deploys the way README's "Deploy across machines" does: every process `init`ed in its own data
   * folder, `cluster manifest` over their join records, a copy of the manifest in every folder, every
   * process started with `--manifest` (server-signer links mutual TLS, pinned by fingerprint).
   * A signer advertises the URL the servers reach it at: its proxy's, in the root namespace. The
   * pinned certificate still matches (pinning is by fingerprint, not name); the signer itself binds
   * its own namespace's address (`--host`).
   */
  private async boot(o: NetClusterOptions): Promise<void> {
    this.clusterToken = this.secret('cluster-token');
    this.adminToken = this.secret('admin-token');
    this.ownerKeyFile = join(this.dataDir, 'owner.key');
    const ownerPub = ensureOwnerKey(this.ownerKeyFile);
    const pgUrl = new URL(PG_URL);
    this.pgForward = await forwarder(this.net.gateway, Number(pgUrl.port || 5432), { host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    const signerHosts = Array.from({ length: o.signers }, (_, i) => this.net.addHost(`s${i + 1}`));
    const serverHosts = Array.from({ length: o.servers ?? 1 }, (_, i) => this.net.addHost(`api${i + 1}`));
    await dropSchemas(async (cl) => (await cl.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fknet\\_%'`)).rows.map((r: { nspname: string }) => r.nspname).filter((n: string) => !alive(Number(n.split('_')[1]))));
    const manifestOf = (dataDir: string) => join(dataDir, 'cluster-manifest.json');
    const inits: Promise<string>[] = [];
    for (const [i, host] of signerHosts.entries()) {
      const name = `signer-${i + 1}`;
      const dataDir = join(this.dataDir, name);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dataDir, 'owner.pub'), ownerPub + '\n');
      const proxy = await DelayProxy.start(this.net.gateway, { host: host.addr, port: SIGNER_PORT });
      this.proxies.set(name, proxy);
      inits.push(this.cli(['signer', 'init', '--data', dataDir, '--name', name, '--advertise', `https://${proxy.host}:${proxy.port}`]));
      const args = ['--manifest', manifestOf(dataDir)];
      this.procs.set(name, { spec: { host, role: 'signer', dataDir, port: SIGNER_PORT, args, env: { ...o.env, FLEETKEY_CLUSTER_TOKEN: this.clusterToken } } });
    }
    const base = `fknet_${process.pid}`;
    for (const [i, host] of serverHosts.entries()) {
      const name = `server-${i + 1}`;
      const dataDir = join(this.dataDir, name);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dataDir, 'owner.pub'), ownerPub + '\n');
      inits.push(this.cli(['server', 'init', '--data', dataDir, '--name', name]));
      const schema = o.sharedServerSchema ? `${base}_server` : `${base}_server_${i + 1}`;
      this.schemas.add(schema);
      // Like `fleetkey dev`, the server holds the owner key so the admin token can order admin signing.
      const env = { ...o.env, FLEETKEY_CLUSTER_TOKEN: this.clusterToken, FLEETKEY_ADMIN_TOKEN: this.adminToken, FLEETKEY_DEFAULT_THRESHOLD: String(o.threshold ?? 2), FLEETKEY_OWNER_KEY_FILE: this.ownerKeyFile };
      // The public API is plain HTTP on the namespace address (the test's agents speak HTTP); the signer links are mutual TLS.
      const args = ['--manifest', manifestOf(dataDir), '--insecure-http'];
      this.procs.set(name, { spec: { host, role: 'server', dataDir, port: SERVER_PORT, args, env, schema } });
      this.serverUrls.push(`http://${host.addr}:${SERVER_PORT}`);
    }
    const records = (await Promise.all(inits)).map((out) => JSON.parse(out) as JoinRecord);
    const joinFiles = [...this.procs.values()].map((p) => join(p.spec.dataDir, 'join.json'));
    const manifestJson = await this.cli(['cluster', 'manifest', ...joinFiles]);
    // The operator copies the manifest to every host.
    for (const p of this.procs.values()) writeFileSync(manifestOf(p.spec.dataDir), manifestJson);
    const own = loadOwnTls(join(this.dataDir, 'server-1'));
    for (const name of this.signerNames()) {
      const { host } = this.procs.get(name)!.spec;
      const r = records.find((x) => x.name === name)!;
      const direct = `https://${host.addr}:${SIGNER_PORT}`;
      // The test reads a signer's audit chain directly, as server-1 would: its certificate, this signer's pinned.
      // (test/helpers' `call` goes through LocalCluster.fetch, which then uses this agent.)
      const agent = pinnedAgent(own, r.tlsCertificate);
      this.agents.set(new URL(direct).origin, agent);
      LocalCluster.pin(new URL(direct).origin, agent);
      this.signers.push({ name, nodeId: r.nodeId, direct, signPub: r.identityPublicKey, tlsCertificate: r.tlsCertificate });
    }
    await Promise.all(this.signerNames().map((n) => this.launch(n)));
    // Servers one after another: two first migrations of one shared schema would race.
    for (const name of this.serverNames()) await this.launch(name);
  }

  /** THE one place a fleetkey process starts (at boot and on every restart). */
  private async launch(name: string): Promise<void> {
    const entry = this.procs.get(name)!;
    const { host, role, dataDir, port, env, schema, args: extra } = entry.spec;
    const db = role === 'server' ? ['--db', `postgres://postgres@${this.net.gateway}:${this.pgForward!.port}${new URL(PG_URL).pathname}`, '--db-schema', schema!] : [];
    const args = [role, '--data', dataDir, '--host', host.addr, '--port', String(port), ...extra, ...db];
    this.expectedExit.delete(name);
    entry.proc = await start(name, args, env, true, (n, code, signal) => {
      if (!this.expectedExit.has(n)) this.unexpectedExits.push(`${n} exited (${signal ?? code})`);
    }, undefined, ['ip', 'netns', 'exec', host.ns]);
  }

  /** server-1's TLS key and certificate: what a test presents to reach a signer as a pinned server. */
  serverTls(): { keyPem: string; certPem: string } {
    return loadOwnTls(join(this.dataDir, 'server-1'));
  }

  signerNames(): string[] {
    return [...this.procs.keys()].filter((k) => k.startsWith('signer-'));
  }

  serverNames(): string[] {
    return [...this.procs.keys()].filter((k) => k.startsWith('server-'));
  }

  pid(name: string): number | undefined {
    return this.procs.get(name)?.proc?.child.pid;
  }

  running(name: string): boolean {
    const c = this.procs.get(name)?.proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** SIGKILL: no flush, no clean-up, like a power cut. */
  async kill(name: string): Promise<void> {
    const child = this.procs.get(name)?.proc?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.expectedExit.add(name);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed process again: same host, address, port and data. */
  async restart(name: string): Promise<void> {
    await this.kill(name);
    await this.launch(name);
  }

  /** Sets the impairment of every signer link (or one signer's). */
  impair(i: Partial<Impairment>, signer?: string): void {
    for (const [n, p] of this.proxies) if (!signer || n === signer) p.set(i);
  }

  hostOf(name: string): Host {
    return this.procs.get(name)!.spec.host;
  }

  partition(name: string): void {
    this.net.partition(this.hostOf(name).name);
  }

  heal(name: string): void {
    this.net.heal(this.hostOf(name).name);
  }

  /** Stops everything this cluster started: processes, proxies, forwarder, namespaces, bridge, schemas, data. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.kill(n)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    for (const a of this.agents.values()) a.destroy();
    await this.pgForward?.close();
    this.net.teardown();
    if (this.schemas.size) await dropSchemas(async () => [...this.schemas]);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
