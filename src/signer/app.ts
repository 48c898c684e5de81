/**
 * The signer node's HTTP surface. Only `GET /healthz` and `GET /v1/identity` are open; every other
 * route needs the cluster token. Routes validate, call SignerNode, and map errors.
 */
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';
import { baseApp, bearer, Gate, isLoopback, jsonBody, listen, makeLogger, parse, readSecret, secretEquals, type Logger, type TlsListen } from '../http/common.ts';
import { peersOf, readManifest, selfIn } from '../tls/manifest.ts';
import { loadOwnTls, mtlsServer, refusal } from '../tls/mtls.ts';
import { readJoin } from '../tls/init.ts';
import { ProcessMetrics } from '../http/metrics.ts';
import { dbConfigFrom, openDb, probeWritable } from '../store/db.ts';
import { SignerStore } from '../store/signer-store.ts';
import { retireSchema } from './reshare.ts';
import { SignerNode, commitSchema, custodyRequestSchema, noncesSchema, roundSchema, signSchema, reserveSchema, startSchema } from './node.ts';
import { loadKek, makeSealer, type Sealer } from './seal.ts';
import { HsmKek, type Pkcs11Config } from './pkcs11.ts';
import { NonceLedger } from './nonce-ledger.ts';
import { publicOf } from './envelope.ts';
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
 * Readiness of a signer: the store takes a write, and the KEK opens its sealed identity, the same
 * key that seals its shares. `kekProblem` says why it does not (undefined: it does): for the file
 * KEK, FLEETKEY_KEK or DATA/kek.key read again now, never created, so a node whose KEK was replaced,
 * corrupted or removed is caught before a restart would fail; for an HSM, a round trip to it.
 */
export async function signerNotReady(store: SignerStore, kekProblem: (sealedIdentity: string) => string | undefined, gate?: Gate): Promise<string[]> {
  const reasons: string[] = [];
  if (gate?.draining) reasons.push('shutting down');
  try {
    await probeWritable(store.db);
  } catch {
    reasons.push('store is not writable');
  }
  const sealed = await store.getMeta('identity').catch(() => undefined);
  const problem = sealed ? kekProblem(sealed) : NO_UNSEAL;
  if (problem) reasons.push(problem);
  return reasons;
}

// Never say more than this about a KEK that does not open the identity: which check failed on which bytes is not the caller's business.
const NO_UNSEAL = 'shares cannot be unsealed: the KEK does not open this node\'s sealed identity';

/** The file KEK's readiness check (see signerNotReady). */
export function fileKekProblem(kekFile: string): (sealedIdentity: string) => string | undefined {
  return (sealed) => {
    try {
      makeSealer(loadKek(kekFile, process.env.FLEETKEY_KEK, false)).open(sealed, 'identity');
      return undefined;
    } catch {
      return NO_UNSEAL;
    }
  };
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
  app.post('/v1/custody', async (c) => c.json(await node.custodyReport(parse(custodyRequestSchema, await jsonBody(c)))));
  app.post('/v1/nonces', async (c) => c.json(await node.makeNonces(parse(noncesSchema, await jsonBody(c)))));
  app.post('/v1/sign', async (c) => c.json(await node.sign(parse(signSchema, await jsonBody(c)))));
  app.post('/v1/export', async (c) => c.json(await node.exportShare(parse(signedControlDocSchema, await jsonBody(c)))));
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
  /** The KEK in an HSM (src/signer/pkcs11.ts); absent: FLEETKEY_KEK or DATA/kek.key. */
  pkcs11?: Pkcs11Config;
  /**
   * The cluster manifest: the node must be named in it; its peers, and the API servers whose
   * certificates it accepts over mutual TLS, come from it. Without one the node speaks plain HTTP
   * (loopback only, unless `insecureHttp`).
   */
  manifest?: string;
  insecureHttp?: boolean;
}

/** Starts a signer process: data dir, sealed store, identity, HTTP. Resolves once listening. */
export async function runSigner(o: SignerOptions) {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const log = makeLogger('signer', o.quiet);
  const token = o.token ?? readSecret(process.env.FLEETKEY_CLUSTER_TOKEN, join(o.dataDir, 'cluster-token'));
  if (!token) throw new FleetkeyError('bad_request', 'no cluster token: set FLEETKEY_CLUSTER_TOKEN or write DATA/cluster-token');
  let sealer: Sealer;
  let ledgerKey: Uint8Array;
  let kekProblem: (sealedIdentity: string) => string | undefined;
  let hsm: HsmKek | undefined;
  if (o.pkcs11) {
    hsm = await HsmKek.open(o.pkcs11);
    if (hsm.extractable()) log.info('warning: the KEK can be read out of the HSM (CKA_EXTRACTABLE or not CKA_SENSITIVE); create it with fleetkey kek create', { kek: hsm.describe() });
    sealer = hsm.sealer;
    // The ledger's HMAC key, sealed by the HSM beside the ledger (src/signer/pkcs11.ts says why it is not the HSM key).
    ledgerKey = hsm.ledgerKey(join(o.dataDir, 'ledger-key.sealed'));
    kekProblem = (sealed) => hsm!.check(sealed);
  } else {
    const kekFile = join(o.dataDir, 'kek.key');
    const kek = loadKek(kekFile);
    sealer = makeSealer(kek);
    ledgerKey = kek;
    kekProblem = fileKekProblem(kekFile);
  }
  // Beside the KEK, out of the database's reach: which nonces may still be used.
  const ledger = await NonceLedger.open(join(o.dataDir, 'nonce-ledger.json'), ledgerKey);
  const metrics = new ProcessMetrics('signer');
  const db = metrics.timeDb(await openDb(dbConfigFrom(o.db ?? join(o.dataDir, 'signer.db'), o.dbSchema)));
  await probeWritable(db);
  const ownerKeys = loadOwnerKeys(process.env.FLEETKEY_OWNER_KEYS, join(o.dataDir, 'owner.pub'));
  if (!ownerKeys.length) throw new FleetkeyError('bad_request', 'no owner key pinned: set FLEETKEY_OWNER_KEYS (hex Ed25519, comma-separated) or write DATA/owner.pub');
  // The manifest is checked before the node opens its store, so a bad one changes nothing.
  const manifest = o.manifest === undefined ? undefined : readManifest(o.manifest);
  const store = new SignerStore(db);
  let tls: TlsListen | undefined;
  let port = o.port;
  let host = o.host;
  if (manifest) {
    const joined = readJoin(o.dataDir, 'signer');
    const own = loadOwnTls(o.dataDir);
    const id = publicOf(await SignerNode.identity(store, sealer));
    const self = selfIn(manifest, { ...joined, nodeId: id.nodeId, identityPublicKey: id.signPub, encryptionPublicKey: id.encPub, tlsCertificate: own.certPem });
    // The protocol code reads its peers from peers.json: the manifest's signers, written fresh on every start.
    writeFileSync(join(o.dataDir, 'peers.json'), JSON.stringify(peersOf(manifest), null, 2) + '\n');
    const url = new URL(self.url!);
    port ||= Number(url.port) || 443;
    host ??= /^[\d.]+$|^\[/.test(url.hostname) ? url.hostname.replace(/^\[|\]$/g, '') : '0.0.0.0';
    const m = mtlsServer(own, manifest.nodes.filter((n) => n.role === 'server').map((n) => n.tlsCertificate));
    tls = {
      options: m.options,
      refuse: (socket) => refusal(socket, m.pins),
      // The peer's address and the reason: never a byte it sent.
      onRefused: (reason, socket) => log.info('tls peer refused', { reason, remote: socket.remoteAddress }),
    };
  } else if (host !== undefined && !isLoopback(host) && !o.insecureHttp) {
    throw new FleetkeyError('bad_request', `refusing plain HTTP on ${host}: give --manifest (mutual TLS), or --insecure-http if a tunnel already protects this link`);
  }
  const node = await SignerNode.open(store, sealer, join(o.dataDir, 'peers.json'), log, ownerKeys, ledger);
  node.authz.onDecision = (result) => metrics.policy.inc({ result });
  const gate = new Gate();
  const app = signerApp(node, token, log, { gate, metrics, notReady: () => signerNotReady(store, kekProblem, gate) });
  const http = await listen(app, port, host, gate, tls);
  log.info('signer listening', { nodeId: node.keys.nodeId, port: http.port, kek: hsm ? hsm.describe() : 'file', tls: tls ? 'mutual' : 'off', ...(manifest ? { cluster: manifest.clusterId } : {}) });
  return {
    node,
    port: http.port,
    /** Graceful stop (SIGTERM): refuse new requests, finish those in flight, close the store. */
    async close(timeoutMs?: number): Promise<boolean> {
      const drained = await http.drain(timeoutMs);
      await db.close();
      hsm?.close();
      return drained;
    },
  };
}
