/**
 * What every HTTP surface (public API, signer node) shares: JSON bodies validated with zod, one
 * error shape `{error:{code,message,requestId}}` with stable codes, a request id on every answer,
 * bearer tokens compared in constant time. Routes stay thin: validate, call the core, map errors.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { FleetkeyError, isFleetkeyError } from '../errors.ts';
import type { ProcessMetrics } from './metrics.ts';

export type Env = { Variables: { requestId: string; errorCode?: string } };

/** The operational routes: open (no token), never counted as requests, and answered while draining (/metrics aside). */
const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Graceful shutdown state shared by the app (which refuses new requests while draining) and
 * `listen` (which stops accepting connections and waits for the requests in flight).
 */
export class Gate {
  draining = false;
  private running = 0;
  private waiters: (() => void)[] = [];

  /** Admits a request, or refuses it with 503 `shutting_down` once draining has begun. */
  async admit(c: Context, next: () => Promise<void>): Promise<void> {
    if (this.draining) {
      c.header('connection', 'close');
      throw new FleetkeyError('shutting_down', 'this process is shutting down: send the request to another one, or again once it is back');
    }
    this.running++;
    try {
      await next();
    } finally {
      // An answer finished while draining closes its connection, so the client does not reuse it.
      if (this.draining) c.header('connection', 'close');
      if (--this.running === 0) for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Requests admitted and not yet answered. */
  get inFlight(): number {
    return this.running;
  }

  /** Resolves once no admitted request is in flight. */
  idle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

export interface Ops {
  gate: Gate;
  metrics: ProcessMetrics;
}

export function newId(prefix: string): string {
  return `${prefix}_${bytesToHex(randomBytes(12))}`;
}

/** Parses with a zod schema; a failure becomes a 400 `validation_failed` that names the field. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, where = '(body)'): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue.path.join('.') || where;
  throw new FleetkeyError('validation_failed', `${path}: ${issue.message}`, { details: { field: path, issues: r.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })) } });
}

export async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new FleetkeyError('invalid_json', 'request body is not valid JSON');
  }
}

/** Constant-time comparison of two secrets (compared as SHA-256 digests, so lengths do not leak). */
export function secretEquals(a: string, b: string): boolean {
  const x = sha256(utf8ToBytes(a));
  const y = sha256(utf8ToBytes(b));
  let d = 0;
  for (let i = 0; i < x.length; i++) d |= x[i] ^ y[i];
  return d === 0;
}

export function bearer(c: Context): string | undefined {
  const h = c.req.header('authorization');
  const m = h && /^Bearer\s+(\S+)$/i.exec(h);
  return m ? m[1] : undefined;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON-lines logger to stderr. Callers pass public fields only: ids, codes, timings. */
export function makeLogger(component: string, quiet = false): Logger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) => {
    if (quiet && level === 'info') return;
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level, component, msg, ...fields }) + '\n');
  };
  return { info: (m, f) => write('info', m, f), error: (m, f) => write('error', m, f) };
}

/**
 * A Hono app with request ids, a body limit, and the one error mapping. With `ops`: refuses new
 * requests once draining (the health routes keep answering until the socket closes), and counts
 * every answer by its outcome code.
 */
export function baseApp(log: Logger, maxBody = 1 << 20, ops?: Ops): Hono<Env> {
  const app = new Hono<Env>();
  app.use('*', async (c, next) => {
    const rid = c.req.header('x-request-id');
    c.set('requestId', rid && /^[\w.-]{1,64}$/.test(rid) ? rid : newId('req'));
    c.header('x-request-id', c.get('requestId'));
    await next();
  });
  if (ops) ops.metrics.countInFlight(() => ops.gate.inFlight);
  if (ops)
    app.use('*', async (c, next) => {
      if (OPS_PATHS.has(c.req.path) && c.req.method === 'GET') return next();
      let refused: string | undefined;
      try {
        await ops.gate.admit(c, next);
      } catch (e) {
        refused = isFleetkeyError(e) ? e.code : 'internal';
        throw e;
      } finally {
        // onError and notFound record the error code; anything else that answered < 400 is "ok".
        ops.metrics.requests.inc({ code: refused ?? c.get('errorCode') ?? (c.res.status < 400 ? 'ok' : 'internal') });
      }
    });
  app.use('*', limitBody(maxBody));
  app.onError(async (err, c) => {
    const requestId = c.get('requestId');
    c.set('errorCode', isFleetkeyError(err) ? err.code : 'internal');
    if (isFleetkeyError(err)) {
      if (err.status >= 500) log.error('request failed', { requestId, code: err.code, path: c.req.path });
      // A body refused part-way leaves unread bytes on the socket: close it, so the client does
      // not send its next request on a connection the server is about to drop. Closing a socket
      // with unread bytes resets it, and a client still writing then sees EPIPE, not this answer
      // (seen in the suite on Node 24): so first read and drop what is left, never keeping it,
      // within a bound in bytes and time.
      if (err.code === 'payload_too_large') {
        c.header('connection', 'close');
        await discardBody(c.req.raw, maxBody * 16, 2000);
      }
      return c.json(err.toJSON(requestId), err.status as 400);
    }
    // Unknown errors: log the type and message (never a body or a secret), answer a generic 500.
    log.error('internal error', { requestId, path: c.req.path, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    return c.json(new FleetkeyError('internal', 'internal error').toJSON(requestId), 500);
  });
  app.notFound((c) => (c.set('errorCode', 'not_found'), c.json(new FleetkeyError('not_found', `no route ${c.req.method} ${c.req.path}`).toJSON(c.get('requestId')), 404)));
  return app;
}

/**
 * Refuses a body over `maxSize` bytes with `payload_too_large`: at once when its Content-Length says
 * so (onError then drops the rest, below), else while reading it (chunked). A chunked body found too
 * large is read on and dropped, within a bound in bytes and time, before the answer goes out: hono's
 * own bodyLimit answered with the client still sending, so the close reset the connection and a
 * loaded client lost the 413 (seen in test/net/wire.test.ts: an empty reply).
 */
function limitBody(maxSize: number): MiddlewareHandler {
  const tooLarge = () => new FleetkeyError('payload_too_large', `request body over ${maxSize} bytes`);
  return async (c, next) => {
    const req = c.req.raw;
    if (!req.body) return next();
    if (req.headers.has('content-length') && !req.headers.has('transfer-encoding')) {
      if (Number(req.headers.get('content-length')) > maxSize) throw tooLarge();
      return next();
    }
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read().catch(() => {
        throw new FleetkeyError('bad_request', 'the request body was cut off');
      });
      if (done) break;
      size += value.length;
      if (size > maxSize) {
        await drain(reader, maxSize * 16 - size, 2000);
        throw tooLarge();
      }
      chunks.push(value);
    }
    c.req.raw = new Request(req, { body: concatBytes(...chunks) });
    return next();
  };
}

/**
 * Reads and drops a request body, at most `maxBytes` and `ms` long, keeping nothing. A body that
 * declares more than `maxBytes`, or is still coming after `ms`, is left for the socket's close.
 */
async function discardBody(req: Request, maxBytes: number, ms: number): Promise<void> {
  const declared = Number(req.headers.get('content-length') ?? NaN);
  // A chunked body (no length) was read, and its rest dropped, by limitBody: its stream is locked.
  if (!req.body || req.bodyUsed || req.body.locked || !(declared <= maxBytes)) return;
  await drain(req.body.getReader(), maxBytes, ms);
}

/** Reads and drops from `reader` until the end, `maxBytes` or `ms`, whichever comes first. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number, ms: number): Promise<void> {
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), ms);
  try {
    for (let seen = 0; seen <= maxBytes; ) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.length;
    }
  } catch {
    // The client went away or the timer cancelled the read: nothing more to drop.
  } finally {
    clearTimeout(timer);
  }
}

export const hex = (bytes?: number) =>
  z
    .string()
    .regex(/^(0x)?([0-9a-fA-F]{2})*$/, 'must be hex')
    .transform((s) => s.replace(/^0x/, '').toLowerCase())
    .refine((s) => bytes === undefined || s.length === bytes * 2, { message: bytes === undefined ? 'bad length' : `must be ${bytes} bytes` });

/** Linux caps a backlog at net.core.somaxconn (4096 by default since 5.4). */
const LISTEN_BACKLOG = 4096;

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
  /**
   * Graceful stop: refuses new connections (the listening socket closes) and new requests on open
   * ones (503 `shutting_down`, via the gate), lets the requests in flight finish, then closes every
   * connection. Resolves false if requests were still running after `timeoutMs`.
   */
  drain(timeoutMs?: number): Promise<boolean>;
}

export interface TlsListen {
  options: https.ServerOptions;
  /**
   * Mutual TLS: why a peer that finished its handshake is refused (undefined: accepted). Runs on
   * 'secureConnection', before the HTTP parser reads a byte, so no route ever sees a refused peer.
   */
  refuse?: (socket: TLSSocket) => string | undefined;
  onRefused?: (reason: string, socket: TLSSocket) => void;
}

/** Whether `host` names only this machine (binding it without TLS exposes nothing on the network). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Serves `app` on host:port (0 = any free port) and resolves once listening, with the port. With
 * `tls`, serves HTTPS (and, with `tls.refuse`, drops peers whose certificate is refused).
 */
export async function listen(app: Hono<Env>, port: number, host = '127.0.0.1', gate = new Gate(), tls?: TlsListen): Promise<Listening> {
  // Node's default accept backlog is 511: a burst of more new connections than that (1,000 agents at
  // once) overflows it and some clients see ECONNRESET. Ask for the kernel's maximum instead.
  // A client that never finishes its headers is cut off after headersTimeout (FLEETKEY_HEADERS_TIMEOUT_MS
  // shortens it, e.g. behind hostile networks), checked every connectionsCheckingInterval.
  const headersTimeout = Number(process.env.FLEETKEY_HEADERS_TIMEOUT_MS) || 66_000;
  const timeouts = { headersTimeout, requestTimeout: Math.max(300_000, headersTimeout), connectionsCheckingInterval: Math.min(30_000, Math.max(100, headersTimeout >> 1)) };
  const server = (
    tls
      ? createAdaptorServer({ fetch: app.fetch, createServer: https.createServer, serverOptions: { ...timeouts, ...tls.options } })
      : createAdaptorServer({ fetch: app.fetch, serverOptions: timeouts })
  ) as Server;
  if (tls?.refuse) {
    const refuse = tls.refuse;
    server.on('secureConnection', (socket: TLSSocket) => {
      const why = refuse(socket);
      if (why === undefined) return;
      tls.onRefused?.(why, socket);
      socket.destroy();
    });
  }
  // Bytes that are not TLS, or a handshake that fails: that socket is dropped, the process goes on.
  server.on('tlsClientError', (_e: Error, socket: TLSSocket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Keep idle keep-alive connections longer than clients do, so a client never sends a request
  // on a socket the server is closing at that moment ("other side closed").
  server.keepAliveTimeout = 65_000;
  const addr = server.address();
  const closed = new Promise<void>((r) => server.once('close', () => r()));
  return {
    server,
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () => new Promise<void>((r) => server.close(() => r())),
    async drain(timeoutMs = 30_000) {
      gate.draining = true;
      server.close(); // no new connections; 'close' fires once every open one has ended
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
      const done = await Promise.race([gate.idle().then(() => true as const), late]);
      // Answers given while draining carry `connection: close`; a connection that went idle in the
      // instant the drain began did not get one. Give sockets a moment to flush, then close them all.
      server.closeIdleConnections();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      server.closeAllConnections();
      clearTimeout(timer);
      return done;
    },
  };
}

/** A secret from the environment, else from a file in the data dir (trimmed), else undefined. */
export function readSecret(env: string | undefined, file: string): string | undefined {
  return env ?? (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
}
