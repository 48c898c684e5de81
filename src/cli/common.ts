/**
 * What every CLI module shares: the connection to the server, the API call, flag readers and
 * output. Errors the server returned are RemoteError (exit 2); local ones FleetkeyError (exit 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { fetchWith } from '../tls/mtls.ts';
import { resolve } from 'node:path';
import { FleetkeyError } from '../errors.ts';

export class RemoteError extends Error {
  constructor(readonly body: { error: { code: string; message: string; requestId?: string } }) {
    super(body.error.message);
  }
}

export type Flags = Record<string, string | boolean | string[] | undefined>;

/** What `fleetkey dev` wrote to ./.fleetkey/cluster.json (server URL, admin token, owner key file), if it ran here. */
export function clusterJson(): { url: string; token: string; ownerKey?: string } | undefined {
  const file = resolve('.fleetkey/cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { url: string; token: string; ownerKey?: string }) : undefined;
}

export function connection(): { url: string; token: string } {
  const url = process.env.FLEETKEY_URL;
  const token = process.env.FLEETKEY_TOKEN;
  if (url && token) return { url: url.replace(/\/$/, ''), token };
  const c = clusterJson();
  if (c) return { url: url ?? c.url, token: token ?? c.token };
  throw new FleetkeyError('bad_request', 'no server: set FLEETKEY_URL and FLEETKEY_TOKEN, or run `fleetkey dev` here first');
}

let caFetch: typeof fetch | undefined;

/**
 * fetch for the server's public API: with FLEETKEY_CA (`--ca FILE`), a PEM file of certificates
 * trusted besides the system's, e.g. the server's self-signed one. Host names are still checked.
 */
export function serverFetch(): typeof fetch {
  const file = process.env.FLEETKEY_CA;
  if (!file) return fetch;
  if (!caFetch) {
    const agent = new https.Agent({ keepAlive: true, ca: [...rootCertificates, readFileSync(file, 'utf8')] });
    caFetch = fetchWith(() => agent);
  }
  return caFetch;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { url, token } = connection();
  let res: Response;
  try {
    res = await serverFetch()(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new FleetkeyError('unreachable', `cannot reach the server at ${url}`);
  }
  const json = (await res.json().catch(() => ({ error: { code: 'internal', message: `HTTP ${res.status}` } }))) as T & { error?: never };
  if (!res.ok) throw new RemoteError(json as never);
  return json;
}

/** Answers worth sending the same (signed, idempotent) request again for: nothing was decided. */
const UNAVAILABLE = new Set(['not_enough_signers', 'signer_unavailable', 'timeout', 'unreachable', 'in_progress']);

/** Whether a failed call may be sent again unchanged (the server answered 503 or in_progress, or did not answer). */
export function unavailable(e: unknown): boolean {
  const code = e instanceof RemoteError ? e.body.error.code : e instanceof FleetkeyError ? e.code : undefined;
  return code !== undefined && UNAVAILABLE.has(code);
}

export function readInput(v: string): string {
  if (v === '-') return readFileSync(0, 'utf8').trim();
  if (v.startsWith('@')) return readFileSync(v.slice(1), 'utf8').trim();
  return v;
}

export function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || !v) throw new FleetkeyError('validation_failed', `--${name} is required`);
  return v;
}

export function int(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FleetkeyError('validation_failed', `--${name} must be a whole number`);
  return n;
}

/** The options `fleetkey server` and `fleetkey signer` share. */
export function processOptions(flags: Flags, defaultPort: number) {
  return {
    dataDir: need(flags, 'data'),
    port: int(flags, 'port') ?? defaultPort,
    host: flags.host as string | undefined,
    db: flags.db as string | undefined,
    dbSchema: flags['db-schema'] as string | undefined,
    quiet: flags.quiet as boolean | undefined,
    manifest: flags.manifest as string | undefined,
    tlsCert: flags['tls-cert'] as string | undefined,
    tlsKey: flags['tls-key'] as string | undefined,
    insecureHttp: flags['insecure-http'] as boolean | undefined,
  };
}

export function print(flags: Flags, value: unknown, human: () => string): void {
  process.stdout.write((flags.json ? JSON.stringify(value) : human()) + '\n');
}

