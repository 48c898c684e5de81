/**
 * The web console (issue 12): static assets at `/console`, and the few read routes its screens need
 * that the API did not have (`/v1/console/*`, `/v1/policy/simulate`, `/v1/audit/verify`). Those sit
 * behind the same bearer check as every admin `/v1` route; nothing here changes state. Whatever
 * changes state (approve, reject, revoke) is the browser's signed document posted to the existing
 * routes, checked there and by every signer.
 *
 * Assets: plain ES modules and CSS shipped as they are (no build step, no third-party code in the
 * origin that approves payments), read once at start into memory and served under a strict
 * Content-Security-Policy: scripts, styles and fetches from this origin only, no inline script, no
 * eval, DOM sinks behind Trusted Types (the app writes text nodes only), no framing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Hono } from 'hono';
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { jsonBody, parse } from '../http/common.ts';
import { verifyLog } from '../audit/verify.ts';
import type { AuditEntry } from '../audit/index.ts';
import { SEQ_MAX } from '../store/audit-store.ts';
import { decode, PAYLOAD_KINDS } from '../chains/index.ts';
import type { Action } from '../chains/types.ts';
import { describePolicy, NO_USAGE, simulate, validatePolicy } from '../policy/index.ts';
import type { Coordinator } from '../server/coordinator.ts';
import type { AgentDesk } from '../server/requests.ts';
import type { SignedAgentRequest, PolicyDoc } from '../control/index.ts';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types',
].join('; ');

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'canonical.js': 'text/javascript; charset=utf-8',
  'digest.js': 'text/javascript; charset=utf-8',
  'passkey.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

function loadAssets(): Map<string, Buffer> {
  // Beside this module: src/console/public in a checkout; the build copies it to dist/console/public.
  const dir = new URL('./public/', import.meta.url);
  return new Map(Object.keys(ASSETS).map((f) => [f, f === 'canonical.js' ? canonicalModule() : readFileSync(new URL(f, dir))]));
}

/**
 * The browser's canonical JSON is the server's own module: the compiled dist/audit/canonical.js in
 * a published package, or src/audit/canonical.ts with its types stripped by esbuild (which a
 * checkout has: tsx, which runs the sources, is built on it). It imports nothing.
 */
function canonicalModule(): Buffer {
  const built = new URL('../audit/canonical.js', import.meta.url);
  if (existsSync(built)) return readFileSync(built);
  const { transformSync } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  return Buffer.from(transformSync(readFileSync(new URL('../audit/canonical.ts', import.meta.url), 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' }).code);
}

/** A console search term: characters stored JSON never escapes (ids, addresses, outcome codes). */
const term = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'letters, digits and _ . : - only').optional();
const auditQuerySchema = z.strictObject({
  before: z.coerce.number().int().positive().max(SEQ_MAX).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  wallet: term,
  agent: term,
  outcome: term,
});
/** Rows one audit search reads at most before answering where it stopped. */
const AUDIT_SCAN = 20_000;

const walletIdSchema = z.string().regex(/^wal_[0-9a-f]{24}(\.\d{1,10})?$/, 'not a wallet id');
const simulateSchema = z.strictObject({
  policy: z.unknown(),
  kind: z.enum(PAYLOAD_KINDS),
  payload: z.union([z.string().max(1 << 18), z.record(z.string(), z.unknown())]),
  /** EVM chain id, or Solana cluster / Bitcoin network name, as `--chain-id` of the CLI. */
  chainId: z.string().max(40).optional(),
  from: z.string().max(200).optional(),
});

/** The amounts in an Action are bigints: JSON carries them as decimal strings. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)));

const NATIVE_UNITS: Record<string, string> = { solana: 'lamports (SOL)', evm: 'wei (native coin)', bitcoin: 'satoshi (BTC)' };

/** One line an approver reads before deciding: what moves where, on which chain. */
export function actionInWords(a: Action): string {
  const chain = `${a.chain}${a.chainId ? ` (${a.chainId})` : ''}`;
  const units = (asset: string) => (asset === 'native' ? NATIVE_UNITS[a.chain] ?? 'base units of the native coin' : `base units of ${asset}`);
  const moves = a.effects.map((e) => (e.type === 'transfer' ? `transfer ${e.amount} ${units(e.asset)} to ${e.to}` : `approve ${e.spender} to spend ${e.amount} ${units(e.asset)}`));
  const call = a.function ? `call ${a.function.name ?? a.function.selector}${a.contract ? ` on ${a.contract}` : ''}` : undefined;
  const what = [...moves, ...(call ? [call] : []), ...(a.message ? [`sign the message ${a.message.text !== undefined ? JSON.stringify(a.message.text) : a.message.hex}`] : [])];
  return `${chain}: ${what.length ? what.join('; ') : a.kind}`;
}

export function consoleRoutes(app: Hono<any>, coord: Coordinator, desk: AgentDesk): void {
  const assets = loadAssets();
  const serve = (file: string) =>
    new Response(new Uint8Array(assets.get(file)!), {
      headers: {
        'content-type': ASSETS[file],
        'content-security-policy': CONSOLE_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cross-origin-opener-policy': 'same-origin',
        'cache-control': 'no-cache',
      },
    });
  app.get('/console', () => serve('index.html'));
  app.get('/console/', () => serve('index.html'));
  app.get('/console/:file', (c) => {
    const f = c.req.param('file');
    if (!Object.hasOwn(ASSETS, f)) throw new FleetkeyError('not_found', `no console asset ${f}`);
    return serve(f);
  });

  // The approvals inbox: each pending request with what it does, decoded here by the signers' decoder.
  app.get('/v1/console/approvals', async (c) => {
    const out = [];
    for (const v of await desk.pending()) {
      const rec = await coord.store.getRequest(v.requestId);
      const signed = rec?.signed as SignedAgentRequest | undefined;
      let meaning: { action: unknown; words: string } | { error: string };
      try {
        const w = await coord.wallet(v.walletId);
        const p = signed!.request.payload;
        const a = decode(p.kind, p.data, { ...(p.opts?.network ? { network: p.opts.network } : {}), ...(p.opts?.chainId ? { chainId: p.opts.chainId } : {}), from: w.address }).action;
        meaning = { action: plain(a), words: actionInWords(a) };
      } catch (e) {
        meaning = { error: e instanceof Error ? e.message : 'undecodable' };
      }
      out.push({ ...v, request: signed?.request ?? null, ...meaning });
    }
    return c.json({ requests: out });
  });

  // A wallet's policy history (for the diff) and its rolling limits, used / limit, now.
  app.get('/v1/console/wallets/:id', async (c) => {
    const id = parse(walletIdSchema, c.req.param('id'), 'id');
    const wallet = await coord.wallet(id);
    const versions = (await coord.control.documents('policy')).map((s) => s.doc as PolicyDoc).filter((d) => d.walletId === id).sort((a, b) => a.version - b.version);
    const latest = versions.at(-1);
    const now = Date.now();
    const limits = latest ? describePolicy(latest.policy, await coord.control.usageView(id, { now }), now) : null;
    return c.json({ walletId: id, address: wallet.address, policies: versions.map((d) => ({ version: d.version, issuedAt: d.issuedAt, policy: d.policy })), limits });
  });

  // As `fleetkey policy simulate`: decode, evaluate with no usage, explain. Nothing is signed or stored.
  app.post('/v1/policy/simulate', async (c) => {
    const b = parse(simulateSchema, await jsonBody(c));
    const policy = validatePolicy(b.policy);
    const net = b.chainId === undefined ? {} : b.kind.startsWith('evm_') ? { chainId: b.chainId } : { network: b.chainId };
    const decoded = decode(b.kind, b.payload, { ...net, ...(b.from ? { from: b.from } : {}) });
    const sim = simulate(policy, decoded.action, { now: Date.now(), usage: NO_USAGE, fleet: 'FLEET' });
    return c.json(plain({ decision: sim.decision, action: decoded.action, words: actionInWords(decoded.action), explanation: sim.explanation }));
  });

  // The audit screen's pages, newest first, searched on the server: the console used to fetch the whole
  // chain for every look at it. `next` is the seq to pass as `before` for older entries (null: none left).
  app.get('/v1/console/audit', async (c) => {
    const q = parse(auditQuerySchema, c.req.query(), 'query');
    const wanted = (e: AuditEntry) => {
      const d = (e as { data?: Record<string, unknown> }).data ?? {};
      const w = String((e as { walletId?: unknown }).walletId ?? d.walletId ?? '');
      return (!q.wallet || w.includes(q.wallet)) && (!q.agent || JSON.stringify([e.actor, d.grantId, d.agent]).includes(q.agent)) && (!q.outcome || String(e.outcome ?? '').includes(q.outcome));
    };
    const contains = [q.wallet, q.agent, q.outcome].filter((x): x is string => !!x);
    const entries: AuditEntry[] = [];
    // `cursor`: the seq of the last entry looked at (the next read starts below it); `done`: nothing is left below it.
    let cursor = q.before;
    let scanned = 0;
    let done = false;
    // Read in batches until the page is full; a search that matches little stops after AUDIT_SCAN rows
    // and answers where it stopped, so one request never reads the whole chain.
    while (!done && entries.length < q.limit && scanned < AUDIT_SCAN) {
      const batch = await coord.audit.newestFirst({ before: cursor, limit: 500, contains });
      scanned += batch.length;
      let i = 0;
      for (; i < batch.length && entries.length < q.limit; i++) {
        cursor = batch[i].seq;
        if (wanted(batch[i])) entries.push(batch[i]);
      }
      done = batch.length < 500 && i === batch.length;
    }
    const next = done || cursor === undefined ? null : cursor;
    return c.json({ entries, next });
  });

  // Whether this server's audit chain verifies, sealed by a fresh checkpoint first.
  app.get('/v1/audit/verify', async (c) => {
    await coord.audit.checkpoint();
    const r = verifyLog(await coord.audit.exportJsonl(coord.audit.chain), { trustedKeys: [coord.audit.publicKey] });
    return c.json({ ok: r.ok, entries: r.entries.length, head: r.head, sealedThrough: r.sealedThrough, checkpoints: r.checkpoints.length, ...(r.firstBroken ? { firstBroken: r.firstBroken } : {}) });
  });
}
