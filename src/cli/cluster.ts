/**
 * A whole local cluster as real processes: N signer nodes and one server, each its own Node
 * process speaking HTTP on loopback, data under one folder. `fleetkey dev` runs it; the
 * integration tests and benchmarks use the same code, so what they test is what users run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { PeerInfo } from '../signer/envelope.ts';
import { ensureOwnerKey } from '../control/owner.ts';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/fleetkey');

export interface ClusterOptions {
  dataDir: string;
  port?: number;
  signers?: number;
  /** Default threshold of wallets created without one (capped at their number of signers). */
  threshold?: number;
  /** A PostgreSQL URL; each process then uses its own schema in that database. */
  postgres?: string;
  /** Give the server the owner key file (default true: `fleetkey dev`). False models a production server. */
  ownerKeyOnServer?: boolean;
  quiet?: boolean;
  onExit?: (name: string, code: number | null, signal: string | null) => void;
}

export interface ClusterInfo {
  url: string;
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

/**
 * Spawns `bin/fleetkey <args>` and resolves with the port it reports once listening. `prefix` runs
 * it under another command (the network tests use `ip netns exec NS`, which execs in place, so the
 * child's pid is still the fleetkey process).
 */
export function start(name: string, args: string[], env: NodeJS.ProcessEnv, quiet: boolean, onExit?: ClusterOptions['onExit'], prefix: string[] = []): Promise<Proc> {
  return new Promise((resolveStart, reject) => {
    const [cmd, ...pre] = [...prefix, process.execPath];
    const child = spawn(cmd, [...pre, BIN, ...args], { env: { ...process.env, FLEETKEY_EXIT_WITH_PARENT: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    let listening = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
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
        if (!quiet || rec?.level === 'error') process.stderr.write(`[${name}] ${line}\n`);
      }
    });
    child.on('exit', (code, signal) => {
      if (!listening) reject(new Error(`${name} exited before listening (code ${code}): ${buf.slice(-2000)}`));
      onExit?.(name, code, signal);
    });
  });
}

export class LocalCluster {
  private constructor(
    readonly dataDir: string,
    readonly info: ClusterInfo,
    private procs: Map<string, Proc>,
    private readonly quiet: boolean,
    private readonly onExit?: ClusterOptions['onExit'],
  ) {}

  static async start(o: ClusterOptions): Promise<LocalCluster> {
    const dataDir = resolve(o.dataDir);
    const n = o.signers ?? 3;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const clusterToken = secretFile(join(dataDir, 'cluster-token'));
    const adminToken = secretFile(join(dataDir, 'admin-token'));
    // The owner key: signs policies, grants and admin signing authorizations. Every signer pins its public key.
    const ownerKeyFile = join(dataDir, 'owner.key');
    const ownerPub = ensureOwnerKey(ownerKeyFile);
    const quiet = o.quiet ?? false;
    const procs = new Map<string, Proc>();
    const dbArg = (name: string) => (o.postgres ? ['--db', o.postgres, '--db-schema', name.replace(/-/g, '_')] : []);
    try {
      const signerProcs = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const name = `signer-${i + 1}`;
          const dir = join(dataDir, name);
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          // Reuse the port of an earlier run, so peers recorded before a restart still match.
          const portFile = join(dir, 'port');
          const port = existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() : '0';
          writeFileSync(join(dir, 'owner.pub'), ownerPub + '\n');
          return start(name, ['signer', '--data', dir, '--port', port, ...dbArg(name)], { FLEETKEY_CLUSTER_TOKEN: clusterToken }, quiet, o.onExit).catch(() =>
            start(name, ['signer', '--data', dir, '--port', '0', ...dbArg(name)], { FLEETKEY_CLUSTER_TOKEN: clusterToken }, quiet, o.onExit),
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
      const serverDir = join(dataDir, 'server');
      mkdirSync(serverDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(serverDir, 'peers.json'), peersJson);
      writeFileSync(join(serverDir, 'owner.pub'), ownerPub + '\n');
      // `fleetkey dev` lets its server use the owner key (admin signing with just the admin token). Never in production.
      const ownerEnv = o.ownerKeyOnServer === false ? {} : { FLEETKEY_OWNER_KEY_FILE: ownerKeyFile };
      const server = await start('server', ['server', '--data', serverDir, '--port', String(o.port ?? 0), ...dbArg('server')], { FLEETKEY_CLUSTER_TOKEN: clusterToken, FLEETKEY_ADMIN_TOKEN: adminToken, FLEETKEY_DEFAULT_THRESHOLD: String(o.threshold ?? 2), ...ownerEnv }, quiet, o.onExit);
      procs.set('server', server);
      const info: ClusterInfo = { url: `http://127.0.0.1:${server.port}`, token: adminToken, ownerKey: ownerKeyFile, signers: peers.map((p) => ({ nodeId: p.nodeId, url: p.url, signPub: p.signPub })) };
      writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
      return new LocalCluster(dataDir, info, procs, quiet, o.onExit);
    } catch (e) {
      for (const p of procs.values()) p.child.kill('SIGKILL');
      throw e;
    }
  }

  signerNames(): string[] {
    return [...this.procs.keys()].filter((k) => k.startsWith('signer-'));
  }

  nodeIdOf(name: string): string {
    return this.info.signers[Number(name.split('-')[1]) - 1].nodeId;
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

  /** Starts a stopped process again on the same port with the same data. */
  async restart(name: string): Promise<void> {
    const p = this.procs.get(name)!;
    await this.kill(name);
    const args = [...p.args];
    args[args.indexOf('--port') + 1] = String(p.port);
    this.procs.set(name, await start(name, args, p.env, this.quiet, this.onExit));
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
