/**
 * The signer node's HTTP surface. Only `GET /healthz` and `GET /v1/identity` are open; every other
 * route needs the cluster token. Routes validate, call SignerNode, and map errors.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';
import { baseApp, bearer, jsonBody, listen, makeLogger, parse, readSecret, secretEquals, type Logger } from '../http/common.ts';
import { dbConfigFrom, openDb } from '../store/db.ts';
import { SignerStore } from '../store/signer-store.ts';
import { SignerNode, commitSchema, noncesSchema, roundSchema, signSchema, reserveSchema, startSchema } from './node.ts';
import { loadKek, makeSealer } from './seal.ts';
import { NonceLedger } from './nonce-ledger.ts';
import { signedApprovalSchema, signedControlDocSchema } from '../control/schemas.ts';
import { loadOwnerKeys } from '../control/owner.ts';

export function signerApp(node: SignerNode, token: string, log: Logger) {
  const app = baseApp(log);
  app.get('/healthz', (c) => c.json({ status: 'ok', nodeId: node.keys.nodeId }));
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
  const kek = loadKek(join(o.dataDir, 'kek.key'));
  const sealer = makeSealer(kek);
  // Beside the KEK, out of the database's reach: which nonces may still be used.
  const ledger = NonceLedger.open(join(o.dataDir, 'nonce-ledger.json'), kek);
  const db = await openDb(dbConfigFrom(o.db ?? join(o.dataDir, 'signer.db'), o.dbSchema));
  const ownerKeys = loadOwnerKeys(process.env.FLEETKEY_OWNER_KEYS, join(o.dataDir, 'owner.pub'));
  if (!ownerKeys.length) throw new FleetkeyError('bad_request', 'no owner key pinned: set FLEETKEY_OWNER_KEYS (hex Ed25519, comma-separated) or write DATA/owner.pub');
  const node = await SignerNode.open(new SignerStore(db), sealer, join(o.dataDir, 'peers.json'), log, ownerKeys, ledger);
  const app = signerApp(node, token, log);
  const { port, close } = await listen(app, o.port, o.host);
  log.info('signer listening', { nodeId: node.keys.nodeId, port });
  return {
    node,
    port,
    async close() {
      await close();
      await db.close();
    },
  };
}
