/**
 * The public HTTP API (`/v1`, bearer-token authenticated, JSON). Routes are thin: validate with
 * zod, call the coordinator, answer. Errors are `{"error":{"code","message","requestId"}}`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { hexToBytes } from '@noble/hashes/utils.js';
import { FleetkeyError } from '../errors.ts';
import { baseApp, bearer, Gate, isLoopback, jsonBody, listen, makeLogger, parse, readSecret, secretEquals, type Logger } from '../http/common.ts';
import { peersOf, readManifest, selfIn } from '../tls/manifest.ts';
import { fetchWith, loadOwnTls, pinnedAgent, TlsStats } from '../tls/mtls.ts';
import { readJoin } from '../tls/init.ts';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ServerMetrics } from '../http/metrics.ts';
import { Gauge } from 'prom-client';
import type { PeerInfo } from '../signer/envelope.ts';
import { dbConfigFrom, openDb, probeWritable, type Db } from '../store/db.ts';
import { ServerStore } from '../store/server-store.ts';
import { AuditLog } from '../store/audit-store.ts';
import { ed25519CheckpointSigner } from '../audit/index.ts';
import { keyFile } from '../signer/seal.ts';
import { Coordinator, walletView } from './coordinator.ts';
import { ethMessageSchema, ethTransactionSchema, ethTypedDataSchema, signEthMessage, signEthTransaction, signEthTypedData } from './ethereum.ts';
import { openApiDocument } from './openapi.ts';
import { createWalletSchema, creationOf, reshareSchema, signSchema } from './schemas.ts';
import { reshareWallet } from './reshare.ts';
import { NodeJobs, nodeJobRoutes } from './node-jobs.ts';
import { exportSchema, exportWallet } from './export.ts';
import { PackageStore } from '../store/package-store.ts';
import { SignerPool } from './signers.ts';
import { fleetRoutes, initFleets } from './fleets.ts';
import { ControlStore } from '../store/control-store.ts';
import { Authorizer } from '../enforce/authorize.ts';
import { AgentDesk, approveSchema, submitSchema } from './requests.ts';
import { agentStatusRoute } from './agent-status.ts';
import { controlDocSchema, requestIdSchema, signedControlDocSchema, type GrantDoc } from '../control/schemas.ts';
import { controlDocDigest } from '../control/documents.ts';
import { DOMAINS, webauthnChallenge } from '../control/keys.ts';
import { passkeyFromSpki, passkeyRegistrationSchema } from './passkeys.ts';
import { loadOwnerKeys, readOwnerSecret } from '../control/owner.ts';
import { consoleRoutes } from '../console/routes.ts';
import { OPERATOR_MIGRATIONS, OperatorGate, operatorRoutes } from './operators.ts';

/** An audit chain id: the Ed25519 checkpoint public key of the server that writes it. */
const auditChainSchema = z.string().regex(/^[0-9a-f]{64}$/, 'not an audit chain id (64 hex digits)');
const walletIdSchema = z.string().regex(/^wal_[0-9a-f]{24}(\.\d{1,10})?$/, 'not a wallet id (wal_… or wal_….INDEX for a child wallet)');

/** What the operational routes need: the drain gate, the metrics, and the store to probe. */
export interface ServerOps {
  gate: Gate;
  metrics: ServerMetrics;
  db: Db;
}

/**
 * Why this server cannot serve signing now (empty: ready). Ready means: the store takes a write,
 * and at least one wallet has at least its threshold t of share holders reachable (probed now, so
 * a signer that died since the last call is seen); a server with no wallet yet needs one signer
 * reachable, the least that wallet creation and control delivery need to make progress.
 */
export async function serverNotReady(coord: Coordinator, db: Db, gate?: Gate): Promise<string[]> {
  const reasons: string[] = [];
  if (gate?.draining) reasons.push('shutting down');
  try {
    await probeWritable(db);
  } catch {
    reasons.push('store is not writable');
  }
  const peers = coord.signers.peers();
  const up = new Set<string>();
  await Promise.all(peers.map(async (p) => void ((await coord.signers.probe(p.nodeId, 800)) === 'up' && up.add(p.nodeId))));
  let wallets = 0;
  let enough = false;
  try {
    // Most clusters answer on the first wallet; the scan stops at the first one that can sign.
    for (let after = ''; !enough; ) {
      const page = await coord.store.listWallets(500, after);
      wallets += page.length;
      enough = page.some((w) => w.participants.filter((p) => up.has(p.nodeId)).length >= w.threshold);
      if (page.length < 500) break;
      after = page[page.length - 1].id;
    }
  } catch {
    if (!reasons.includes('store is not writable')) reasons.push('store is not readable');
    return reasons;
  }
  if (wallets === 0 ? up.size === 0 : !enough)
    reasons.push(wallets === 0 ? `no signer node is reachable (0 of ${peers.length})` : `no wallet has its threshold of signers reachable (${up.size} of ${peers.length} signer nodes up)`);
  return reasons;
}

export function serverApp(coord: Coordinator, adminToken: string, log: Logger, defaults = { threshold: 2 }, ops?: ServerOps) {
  const app = baseApp(log, undefined, ops);
  app.get('/healthz', (c) => {
    const peers = coord.signers.peers();
    return c.json({ status: 'ok', signers: { up: peers.filter((p) => coord.signers.isUp(p.nodeId)).length, total: peers.length } });
  });
  if (ops) {
    app.get('/readyz', async (c) => {
      const reasons = await serverNotReady(coord, ops.db, ops.gate);
      return reasons.length ? c.json({ status: 'not_ready', reasons }, 503) : c.json({ status: 'ready' });
    });
    // The admin token, like every admin /v1 route: the series name the signer nodes and show how
    // much each path signs, which is the operator's business, not the agents' or the public's.
    app.get('/metrics', async (c) => {
      const t = bearer(c);
      if (!t || !secretEquals(t, adminToken)) throw new FleetkeyError('unauthorized', 'missing or wrong bearer token');
      const m = await ops.metrics.render();
      return c.body(m.body, 200, { 'content-type': m.contentType });
    });
  }
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  // Agents and approvers authenticate by signature (agent request, approval), not by the admin token.
  const desk = new AgentDesk(coord, log);
  app.post('/v1/requests', async (c) => {
    const r = await desk.submit(parse(submitSchema, await jsonBody(c)));
    return c.json(r.view, r.status as 200);
  });
  app.get('/v1/requests/:id', async (c) => c.json(await desk.get(parse(requestIdSchema, c.req.param('id'), 'id'))));
  app.post('/v1/approvals/:id', async (c) => c.json(await desk.decide(parse(requestIdSchema, c.req.param('id'), 'id'), parse(approveSchema, await jsonBody(c)))));
  // A wallet's public record (no secret in it): what an agent needs to build its account, with the
  // package every holder signed (and the owner's wallet_create), so that anyone can check it
  // (verifyWalletPackage in the SDK; src/enforce/wallet-package.ts).
  app.get('/v1/public/wallets/:id', async (c) => {
    const w = await coord.wallet(parse(walletIdSchema, c.req.param('id'), 'id'));
    return c.json({ id: w.id, scheme: w.scheme, publicKey: w.publicKey, address: w.address, network: w.network, threshold: w.threshold, signers: w.participants.length, epoch: w.epoch, package: await coord.publicPackage(w.id) });
  });
  // An agent's own grant, wallets and limits: a query signed by its agent key (src/server/agent-status.ts).
  agentStatusRoute(app, coord);
  const gate = new OperatorGate(coord.store.db, adminToken, coord.ownerKeys, async () => (await coord.control.approvers())?.approvers ?? {});
  app.use('/v1/*', async (c, next) => {
    if (c.req.method === 'GET' && c.req.path.startsWith('/v1/public/')) return next();
    if (c.req.method === 'POST' && c.req.path === '/v1/agent/status') return next();
    if ((c.req.method === 'POST' && c.req.path === '/v1/requests') || c.req.path.startsWith('/v1/requests/') || (c.req.method === 'POST' && c.req.path.startsWith('/v1/approvals/'))) return next();
    await gate.check(c); // the admin token, or an operator token / passkey session where ROUTE_ACCESS lets its role
    await next();
  });
  operatorRoutes(app, gate, coord);

  app.post('/v1/wallets', async (c) => {
    const b = parse(createWalletSchema, await jsonBody(c));
    return c.json(await coord.createWallet(creationOf(b, coord.signers.peers().length, defaults.threshold)), 201);
  });
  app.get('/v1/wallets', async (c) => {
    const after = c.req.query('after') ?? '';
    const limit = Math.min(Number(c.req.query('limit') ?? 100) || 100, 1000);
    const list = await coord.store.listWallets(limit, after);
    return c.json({ wallets: list.map(walletView), next: list.length === limit ? list[list.length - 1].id : null });
  });
  app.get('/v1/wallets/:id', async (c) => c.json(walletView(await coord.wallet(parse(walletIdSchema, c.req.param('id'), 'id')))));
  app.post('/v1/wallets/:id/sign', async (c) => {
    const id = parse(walletIdSchema, c.req.param('id'), 'id');
    const b = parse(signSchema, await jsonBody(c));
    const w = await coord.wallet(id);
    const ecdsa = w.scheme === 'ecdsa-secp256k1';
    if (ecdsa !== (b.hash !== undefined)) throw new FleetkeyError('validation_failed', ecdsa ? 'ecdsa-secp256k1 wallets sign a 32-byte "hash"' : `${w.scheme} wallets sign a "message"`, { details: { field: ecdsa ? 'hash' : 'message' } });
    const r = await coord.sign(id, hexToBytes((b.hash ?? b.message)!), b.requestId ?? c.get('requestId'));
    return c.json({ signature: r.signature, signers: r.signers });
  });
  app.post('/v1/wallets/:id/sign/transaction', async (c) =>
    c.json(await signEthTransaction(coord, parse(walletIdSchema, c.req.param('id'), 'id'), parse(ethTransactionSchema, await jsonBody(c)), c.get('requestId'))),
  );
  app.post('/v1/wallets/:id/sign/message', async (c) =>
    c.json(await signEthMessage(coord, parse(walletIdSchema, c.req.param('id'), 'id'), parse(ethMessageSchema, await jsonBody(c)), c.get('requestId'))),
  );
  app.post('/v1/wallets/:id/sign/typed-data', async (c) =>
    c.json(await signEthTypedData(coord, parse(walletIdSchema, c.req.param('id'), 'id'), parse(ethTypedDataSchema, await jsonBody(c)), c.get('requestId'))),
  );
  app.post('/v1/wallets/:id/refresh', async (c) => c.json(await coord.refreshWallet(parse(walletIdSchema, c.req.param('id'), 'id'))));
  app.post('/v1/wallets/:id/export', async (c) => c.json(await exportWallet(coord, parse(walletIdSchema, c.req.param('id'), 'id'), parse(exportSchema, await jsonBody(c)))));
  app.post('/v1/wallets/:id/reshare', async (c) => c.json(await reshareWallet(coord, parse(walletIdSchema, c.req.param('id'), 'id'), parse(reshareSchema, await jsonBody(c)))));
  // Each server keeps its own chain in a shared store (src/store/audit-store.ts); `?chain=KEY` exports
  // another server's (only its owner can seal it with a checkpoint), GET /v1/audit/chains lists them.
  app.get('/v1/audit', async (c) => {
    const chain = c.req.query('chain') === undefined ? coord.audit.chain : parse(auditChainSchema, c.req.query('chain'), 'chain');
    if (chain === coord.audit.chain && c.req.query('checkpoint') !== 'false') await coord.audit.checkpoint();
    return c.body(await coord.audit.exportJsonl(chain), 200, { 'content-type': 'application/x-ndjson' });
  });
  app.get('/v1/audit/chains', async (c) => c.json({ self: coord.audit.chain, chains: await coord.audit.chains() }));
  app.get('/v1/audit/key', (c) => c.json({ publicKey: coord.audit.publicKey }));
  app.get('/v1/nodes', async (c) => {
    const peers = coord.signers.peers();
    await Promise.all(peers.map((p) => coord.signers.probe(p.nodeId, 800)));
    return c.json(peers.map((p) => ({ id: p.nodeId, url: p.url, status: coord.signers.statusOf(p.nodeId) })));
  });
  // The owner's control plane: documents are signed by the owner key (CLI), verified here and by every signer.
  app.post('/v1/control', async (c) => c.json(await coord.submitControl(parse(signedControlDocSchema, await jsonBody(c)))));
  // Passkey helpers for the console (pure: nothing stored). A browser's getPublicKey() (SPKI) becomes
  // the key object an owner then signs into an approvers document or the owner keys; a document's
  // digest becomes the WebAuthn challenge (the browser has no canonical JSON of its own).
  app.post('/v1/passkeys/key', async (c) => c.json(passkeyFromSpki(parse(passkeyRegistrationSchema, await jsonBody(c)))));
  app.post('/v1/control/challenge', async (c) => {
    const { doc } = parse(z.strictObject({ doc: controlDocSchema }), await jsonBody(c));
    return c.json({ digest: controlDocDigest(doc), challenge: webauthnChallenge(DOMAINS.control, doc) });
  });
  app.get('/v1/grants', async (c) => {
    const now = Date.now();
    const grants = await coord.control.documents('grant');
    return c.json({
      grants: await Promise.all(
        grants.map(async (g) => {
          const d = g.doc as GrantDoc;
          const revoked = await coord.control.isRevoked(d.id);
          return { ...d, status: revoked ? 'revoked' : now >= d.expiresAt ? 'expired' : 'active', uses: await coord.control.usesSoFar(d.id, now) };
        }),
      ),
    });
  });
  app.get('/v1/wallets/:id/policy', async (c) => {
    const id = parse(walletIdSchema, c.req.param('id'), 'id');
    const p = await coord.control.latestPolicy(id);
    if (!p) throw new FleetkeyError('not_found', `wallet ${id} has no policy`);
    return c.json({ walletId: id, version: p.version, digest: p.digest, policy: p.doc.policy, signed: p.signed });
  });
  app.get('/v1/approvals', async (c) => c.json({ requests: await desk.pending() }));
  fleetRoutes(app, coord, log);
  consoleRoutes(app, coord, desk);
  return app;
}

export interface ServerOptions {
  dataDir: string;
  port: number;
  host?: string;
  db?: string;
  /** PostgreSQL schema for this process (several processes can share one database). */
  dbSchema?: string;
  adminToken?: string;
  clusterToken?: string;
  /** A file holding the owner's Ed25519 secret (hex): lets the server authorize admin signing itself. Development only. */
  ownerKeyFile?: string;
  quiet?: boolean;
  /** The cluster manifest: signers are reached over mutual TLS, each pinned to its certificate there. */
  manifest?: string;
  /** The public API's certificate and key (PEM files): serve HTTPS. */
  tlsCert?: string;
  tlsKey?: string;
  /** Allow plain HTTP for the public API on a non-loopback address (behind a TLS-terminating proxy). */
  insecureHttp?: boolean;
}

export async function runServer(o: ServerOptions) {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const log = makeLogger('server', o.quiet);
  const adminToken = o.adminToken ?? readSecret(process.env.FLEETKEY_ADMIN_TOKEN, join(o.dataDir, 'admin-token'));
  const clusterToken = o.clusterToken ?? readSecret(process.env.FLEETKEY_CLUSTER_TOKEN, join(o.dataDir, 'cluster-token'));
  if (!adminToken || !clusterToken) throw new FleetkeyError('bad_request', 'server needs an admin token and a cluster token (env or files in the data dir)');
  const peersFile = join(o.dataDir, 'peers.json');
  // Checked before anything is opened: a bad manifest, or a public API in the clear on the network, stops here.
  const manifest = o.manifest === undefined ? undefined : readManifest(o.manifest);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new FleetkeyError('validation_failed', '--tls-cert and --tls-key go together');
  const publicTls = o.tlsCert && o.tlsKey ? { cert: readFileSync(o.tlsCert, 'utf8'), key: readFileSync(o.tlsKey, 'utf8') } : undefined;
  if (!publicTls && o.host !== undefined && !isLoopback(o.host) && !o.insecureHttp)
    throw new FleetkeyError('bad_request', `refusing plain HTTP on ${o.host}: give --tls-cert FILE --tls-key FILE, or --insecure-http behind a TLS-terminating proxy`);
  const tlsStats = new TlsStats();
  let coord: Coordinator | undefined;
  const metrics = new ServerMetrics({
    signerUp: () => (coord ? coord.signers.peers().map((p) => ({ nodeId: p.nodeId, up: coord!.signers.isUp(p.nodeId) })) : []),
    poolDepth: () => coord?.poolDepth() ?? new Map(),
  });
  // Signer links over mutual TLS since start: requests sent, connections opened (each a handshake),
  // and of those the resumed handshakes; requests - connections reused an open connection.
  for (const [name, help, value] of [
    ['fleetkey_signer_link_requests', 'Requests sent to signers over mutual TLS since start', () => tlsStats.requests],
    ['fleetkey_signer_link_connections', 'Connections (each a TLS handshake) opened to signers since start; requests minus this reused one', () => tlsStats.connections],
    ['fleetkey_signer_link_resumed', 'Of those handshakes, the ones that resumed a cached TLS session', () => tlsStats.resumed],
  ] as const)
    new Gauge({ name, help, registers: [metrics.registry], collect() { this.set(value()); } });
  const db = metrics.timeDb(await openDb(dbConfigFrom(o.db ?? join(o.dataDir, 'server.db'), o.dbSchema)));
  await probeWritable(db);
  const store = new ServerStore(db);
  await store.init();
  await db.migrate('operator_tokens', OPERATOR_MIGRATIONS);
  const auditKey = keyFile(join(o.dataDir, 'audit.key'));
  const audit = new AuditLog(db, ed25519CheckpointSigner(auditKey), 'server');
  await audit.init();
  let signers: SignerPool;
  if (manifest) {
    // Every signer link is mutual TLS: this server's certificate out, the signer's pinned one in.
    const own = loadOwnTls(o.dataDir);
    selfIn(manifest, { ...readJoin(o.dataDir, 'server'), identityPublicKey: bytesToHex(ed25519.getPublicKey(auditKey)), tlsCertificate: own.certPem });
    const peers = peersOf(manifest);
    // A copy for tools that read a peer list (the CLI's FLEETKEY_NODE_KEYS); the manifest stays the truth.
    writeFileSync(peersFile, JSON.stringify(peers, null, 2) + '\n');
    const agents = new Map(manifest.nodes.filter((n) => n.role === 'signer').map((n) => [new URL(n.url!).origin, pinnedAgent(own, n.tlsCertificate)]));
    signers = new SignerPool(() => peers, clusterToken, undefined, fetchWith((u) => agents.get(u.origin) ?? refuseUnpinned(u), tlsStats));
  } else signers = new SignerPool(() => (existsSync(peersFile) ? (JSON.parse(readFileSync(peersFile, 'utf8')) as PeerInfo[]) : []), clusterToken);
  const ownerKeys = loadOwnerKeys(process.env.FLEETKEY_OWNER_KEYS, join(o.dataDir, 'owner.pub'));
  if (!ownerKeys.length) throw new FleetkeyError('bad_request', 'no owner key pinned: set FLEETKEY_OWNER_KEYS (hex Ed25519, comma-separated) or write DATA/owner.pub');
  const control = new ControlStore(db, { ownerPublicKeys: ownerKeys });
  await control.init();
  // Development only: a server that holds the owner key can authorize admin signing itself.
  const ownerKeyFile = o.ownerKeyFile ?? process.env.FLEETKEY_OWNER_KEY_FILE;
  const ownerSecret = ownerKeyFile ? readOwnerSecret(ownerKeyFile) : undefined;
  const packages = new PackageStore(db);
  await packages.init();
  const authz = new Authorizer(control, ownerKeys);
  authz.onDecision = (result) => metrics.policy.inc({ result });
  coord = new Coordinator(store, signers, log, audit, { control, authz, ownerSecret, ownerKeys, packages });
  coord.onSigned = (e) => metrics.signing.observe({ scheme: e.scheme, path: e.path, result: e.ok ? 'signed' : 'failed' }, e.seconds);
  signers.startProbing(1000, async () => {
    await coord.deliverOwedControl();
    await coord.deliverOwedCommits();
  });
  const fleets = await initFleets(coord, { dataDir: o.dataDir, log });
  const gate = new Gate();
  const app = serverApp(coord, adminToken, log, { threshold: Number(process.env.FLEETKEY_DEFAULT_THRESHOLD ?? 2) || 2 }, { gate, metrics, db });
  // Membership changes (node retire / replace): unfinished jobs resume here, on any server of the store.
  const nodeJobs = new NodeJobs(coord);
  await nodeJobs.init();
  nodeJobRoutes(app, nodeJobs);
  const http = await listen(app, o.port, o.host, gate, publicTls ? { options: { ...publicTls, minVersion: 'TLSv1.2' } } : undefined);
  log.info('server listening', { port: http.port, tls: publicTls ? 'on' : 'off', signerLinks: manifest ? 'mutual-tls' : 'http', ...(manifest ? { cluster: manifest.clusterId } : {}) });
  return {
    coord,
    port: http.port,
    /** Handshakes made and avoided on the signer links (mutual TLS only). */
    tlsStats,
    /**
     * Graceful stop (SIGTERM): refuse new requests, let those in flight finish (their signer
     * rounds included), then stop the background work and close the store. Resolves true if every
     * request finished within `timeoutMs`.
     */
    async close(timeoutMs?: number): Promise<boolean> {
      const drained = await http.drain(timeoutMs);
      await nodeJobs.close();
      signers.stop();
      await fleets.close();
      await db.close();
      return drained;
    },
  };
}

/** A signer URL the manifest does not list has no pinned certificate: never fall back to an unpinned call. */
function refuseUnpinned(u: URL): never {
  throw new FleetkeyError('signer_unavailable', `no pinned certificate for ${u.origin}`);
}
