/**
 * The signer node's HTTP surface. Only `GET /healthz` and `GET /v1/identity` are open; every other
 * route needs the cluster token. Routes validate, call SignerNode, and map errors.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';
import { baseApp, bearer, Gate, jsonBody, listen, makeLogger, parse, readSecret, secretEquals, type Logger } from '../http/common.ts';
import { ProcessMetrics } from '../http/metrics.ts';
import { dbConfigFrom, openDb, probeWritable } from '../store/db.ts';
import { SignerStore } from '../store/signer-store.ts';
import { retireSchema } from './reshare.ts';
import { SignerNode, commitSchema, noncesSchema, roundSchema, signSchema, reserveSchema, startSchema } from './node.ts';
import { loadKek, makeSealer } from './seal.ts';
import { NonceLedger } from './nonce-ledger.ts';
import { signedApprovalSchema, signedControlDocSchema } from '../control/schemas.ts';
import { loadOwnerKeys } from '../control/owner.ts';

/** What the operational routes need: the drain gate, the metrics, and how to check readiness. */
export interface SignerOps {
  gate: Gate;
  metrics: ProcessMetrics;
  /** Why this node cannot sign now (empty: ready). */
  notReady(): Promise<string[]>;
}

/**
 * Readiness of a signer: the store takes a write, and the KEK it would start with (FLEETKEY_KEK, or
 * DATA/kek.key read again now, never created) opens its sealed identity, the same key that seals
 * its shares: a node whose KEK was replaced, corrupted or removed could not unseal them after a restart.
 */
export async function signerNotReady(store: SignerStore, kekFile: string, gate?: Gate): Promise<string[]> {
  const reasons: string[] = [];
  if (gate?.draining) reasons.push('shutting down');
  try {
    await probeWritable(store.db);
  } catch {
    reasons.push('store is not writable');
  }
  try {
    const sealed = await store.getMeta('identity');
    if (!sealed) throw new Error('no identity');
    makeSealer(loadKek(kekFile, process.env.FLEETKEY_KEK, false)).open(sealed, 'identity');
  } catch {
    // Never say more than this: which check failed on which bytes is not the caller's business.
    reasons.push('shares cannot be unsealed: the KEK does not open this node\'s sealed identity');
  }
  return reasons;
}

export function signerApp(node: SignerNode, token: string, log: Logger, ops?: SignerOps) {
  const app = baseApp(log, undefined, ops);
  app.get('/healthz', (c) => c.json({ status: 'ok', nodeId: node.keys.nodeId }));
  if (ops) {
    app.get('/readyz', async (c) => {
      const reasons = await ops.notReady();
      return reasons.length ? c.json({ status: 'not_ready', reasons }, 503) : c.json({ status: 'ready', nodeId: node.keys.nodeId });
    });
    // The cluster token: only the operator's scraper (and the server) holds it; the series name this
    // node's peers and show its activity.
    app.get('/metrics', async (c) => {
      const t = bearer(c);
      if (!t || !secretEquals(t, token)) throw new FleetkeyError('unauthorized', 'missing or wrong cluster token');
      const m = await ops.metrics.render();
      return c.body(m.body, 200, { 'content-type': m.contentType });
    });
  }
  app.get('/v1/identity', (c) => c.json(node.identity()));
  app.use('/v1/*', async (c, next) => {
    if (c.req.path === '/v1/identity') return next();
    const t = bearer(c);
    if (!t || !secretEquals(t, token)) throw new FleetkeyError('unauthorized', 'missing or wrong cluster token');
    await next();
  });
  app.post('/v1/sessions', async (c) => c.json(await node.startSession(parse(startSchema, await jsonBody(c)))));
  app.post('/v1/sessions/:id/round', async (c) => c.json(await node.deliverRound(c.req.param('id'), parse(roundSchema, await jsonBody(c)))));
  app.post('/v1/sessions/:id/abort', async (c) => c.json(await node.abortSession(c.req.param('id'))));
  app.post('/v1/commit', async (c) => c.json(await node.commit(parse(commitSchema, await jsonBody(c)))));
  app.post('/v1/retire', async (c) => c.json(await node.retire(parse(retireSchema, await jsonBody(c)))));
  app.post('/v1/nonces', async (c) => c.json(await node.makeNonces(parse(noncesSchema, await jsonBody(c)))));
  app.post('/v1/sign', async (c) => c.json(await node.sign(parse(signSchema, await jsonBody(c)))));
  app.post('/v1/reserve', async (c) => c.json(await node.reserve(parse(reserveSchema, await jsonBody(c)))));
  // The owner's documents, and approvers' signed decisions ({approval, sig}) forwarded the same way.
  app.post('/v1/control', async (c) => {
    const body = await jsonBody(c);
    const isDecision = typeof body === 'object' && body !== null && 'approval' in body;
    return c.json(isDecision ? await node.putDecision(parse(signedApprovalSchema, body)) : await node.putControl(parse(signedControlDocSchema, body)));
  });
  app.get('/v1/audit', async (c) => c.body(await node.audit.exportJsonl(), 200, { 'content-type': 'application/x-ndjson' }));
  app.get('/v1/stats', async (c) => c.json({ consumedNonces: await node.store.consumedCount() }));
  return app;
}

export interface SignerOptions {
  dataDir: string;
  port: number;
  host?: string;
  db?: string;
  /** PostgreSQL schema for this process (several processes can share one database). */
  dbSchema?: string;
  token?: string;
  quiet?: boolean;
}

/** Starts a signer process: data dir, sealed store, identity, HTTP. Resolves once listening. */
export async function runSigner(o: SignerOptions) {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const log = makeLogger('signer', o.quiet);
  const token = o.token ?? readSecret(process.env.FLEETKEY_CLUSTER_TOKEN, join(o.dataDir, 'cluster-token'));
  if (!token) throw new FleetkeyError('bad_request', 'no cluster token: set FLEETKEY_CLUSTER_TOKEN or write DATA/cluster-token');
  const kekFile = join(o.dataDir, 'kek.key');
  const kek = loadKek(kekFile);
  const sealer = makeSealer(kek);
  // Beside the KEK, out of the database's reach: which nonces may still be used.
  const ledger = NonceLedger.open(join(o.dataDir, 'nonce-ledger.json'), kek);
  const metrics = new ProcessMetrics('signer');
  const db = metrics.timeDb(await openDb(dbConfigFrom(o.db ?? join(o.dataDir, 'signer.db'), o.dbSchema)));
  await probeWritable(db);
  const ownerKeys = loadOwnerKeys(process.env.FLEETKEY_OWNER_KEYS, join(o.dataDir, 'owner.pub'));
  if (!ownerKeys.length) throw new FleetkeyError('bad_request', 'no owner key pinned: set FLEETKEY_OWNER_KEYS (hex Ed25519, comma-separated) or write DATA/owner.pub');
  const store = new SignerStore(db);
  const node = await SignerNode.open(store, sealer, join(o.dataDir, 'peers.json'), log, ownerKeys, ledger);
  node.authz.onDecision = (result) => metrics.policy.inc({ result });
  const gate = new Gate();
  const app = signerApp(node, token, log, { gate, metrics, notReady: () => signerNotReady(store, kekFile, gate) });
  const http = await listen(app, o.port, o.host, gate);
  log.info('signer listening', { nodeId: node.keys.nodeId, port: http.port });
  return {
    node,
    port: http.port,
    /** Graceful stop (SIGTERM): refuse new requests, finish those in flight, close the store. */
    async close(timeoutMs?: number): Promise<boolean> {
      const drained = await http.drain(timeoutMs);
      await db.close();
      return drained;
    },
  };
}
