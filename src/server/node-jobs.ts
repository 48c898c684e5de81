/**
 * `fleetkey node retire NODE` / `fleetkey node replace OLD NEW` (issue 11): a membership change
 * moves every wallet whose committee holds the node, in the background, one wallet at a time.
 *
 * Authority: the CLI signs one `wallet_reshare` order per wallet (the same document `wallet reshare`
 * sends, src/enforce/wallet-reshare.ts), not one order for the whole change. Each holder then checks
 * exactly what it checks for a single reshare (its wallet, its epoch, the committee and threshold),
 * with no second document kind whose "which wallets does this change touch" a holder could not
 * decide from its own records; and an order cannot be stretched to a wallet created after it.
 *
 * Durability: the job and each wallet's order and outcome are rows in the server store, written
 * before the job answers. Any server on the store resumes unfinished jobs when it starts (and a
 * running server picks up new ones at once), so a crash of the server mid-job only delays it: a
 * wallet whose move was recorded is found moved (done), one whose move was not is run again under
 * the same order (still valid for the unchanged epoch: the CLI signs job orders for 12 hours).
 *
 * One runner per job: a server runs a job only while it holds the job's lease (runner, runner_until),
 * which it renews every few seconds; a server that dies stops renewing, and the next server to start
 * (or one already running, at its next look) takes the job over once the lease has run out. The new
 * runner may then take the wallet lock the dead runner left (its owner names the job), instead of
 * waiting for that lock's own 30-minute lease. Should a runner that lost its lease still be running
 * (a long pause), the store lets one move of a wallet's epoch through (advanceEpoch checks it).
 *
 * Derived device wallets are not rows of their own: their root's move is theirs (a fleet of any size
 * costs one reshare).
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { jsonBody, newId, parse } from '../http/common.ts';
import type { Coordinator } from './coordinator.ts';
import { reshareWallet } from './reshare.ts';

export const NODE_JOB_MIGRATIONS = [
  `CREATE TABLE node_jobs (
     id TEXT PRIMARY KEY, kind TEXT NOT NULL, node TEXT NOT NULL, replacement TEXT,
     status TEXT NOT NULL, runner TEXT, runner_until BIGINT NOT NULL DEFAULT 0,
     created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE TABLE node_job_wallets (
     job_id TEXT NOT NULL, wallet_id TEXT NOT NULL, order_json TEXT NOT NULL, status TEXT NOT NULL,
     attempts INTEGER NOT NULL, epoch INTEGER, error_code TEXT, error_message TEXT, updated_at BIGINT NOT NULL,
     PRIMARY KEY (job_id, wallet_id))`,
];

/** Tries per wallet before its outcome is `failed` (a node down for a moment, a wallet locked by a manual reshare). */
const MAX_ATTEMPTS = 3;
/** A runner's lease on a job (FLEETKEY_NODE_JOB_LEASE_MS, default 30 s), renewed six times per lease. */
const JOB_LEASE_MS = Math.max(1000, Number(process.env.FLEETKEY_NODE_JOB_LEASE_MS ?? 30_000) || 30_000);
const JOB_RENEW_MS = Math.floor(JOB_LEASE_MS / 6);

export interface NodeJobWallet {
  walletId: string;
  status: 'pending' | 'done' | 'failed';
  attempts: number;
  /** For `done`: the wallet's new epoch. */
  epoch?: number;
  error?: { code: string; message: string };
}

export interface NodeJob {
  id: string;
  kind: 'retire' | 'replace';
  node: string;
  replacement?: string;
  status: 'running' | 'done' | 'failed';
  createdAt: number;
  updatedAt: number;
  progress: { total: number; done: number; failed: number; pending: number };
  wallets: NodeJobWallet[];
}

export class NodeJobs {
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  /** This process's runner id (the job leases it holds name it). */
  private readonly runner = newId('run');
  private renewal?: NodeJS.Timeout;

  constructor(private readonly coord: Coordinator) {}

  async init(): Promise<void> {
    await this.coord.store.db.migrate('node_jobs', NODE_JOB_MIGRATIONS);
    // Renews this runner's leases; also looks for jobs whose runner died (their lease ran out).
    this.renewal = setInterval(() => {
      this.coord.store.db
        .run(`UPDATE node_jobs SET runner_until = $1 WHERE runner = $2 AND status = $3`, [Date.now() + JOB_LEASE_MS, this.runner, 'running'])
        .then(() => this.kick(), () => undefined);
    }, JOB_RENEW_MS);
    this.renewal.unref();
    this.kick();
  }

  /**
   * Records a job: every wallet (root) whose committee holds `node`, each with the owner's order
   * sent for it. A wallet without an order, an order for a wallet the change does not touch, or an
   * order whose committee is not the change (the node left out, or replaced at its place) is refused
   * before anything is written.
   */
  async create(o: { kind: 'retire' | 'replace'; node: string; replacement?: string; orders: unknown[] }): Promise<NodeJob> {
    const { kind, node, replacement } = o;
    if (kind === 'replace' && (!replacement || replacement === node)) throw new FleetkeyError('validation_failed', 'replace names the new node, other than the old one', { details: { field: 'replacement' } });
    const known = new Set(this.coord.signers.peers().map((p) => p.nodeId));
    for (const n of kind === 'replace' ? [node, replacement!] : [node])
      if (!known.has(n)) throw new FleetkeyError('unknown_node', `not a signer node of this cluster: ${n}`, { details: { nodeIds: [n] } });
    const touched = await this.touching(node);
    const byWallet = new Map<string, unknown>();
    for (const [i, signed] of o.orders.entries()) {
      const doc = (signed as { doc?: { walletId?: unknown } })?.doc;
      if (typeof doc?.walletId !== 'string') throw new FleetkeyError('validation_failed', `orders[${i}] is not a signed wallet_reshare order`, { details: { path: `orders.${i}` } });
      if (byWallet.has(doc.walletId)) throw new FleetkeyError('validation_failed', `two orders for wallet ${doc.walletId}`, { details: { path: `orders.${i}` } });
      byWallet.set(doc.walletId, signed);
    }
    const extra = [...byWallet.keys()].filter((id) => !touched.some((w) => w.id === id));
    if (extra.length) throw new FleetkeyError('validation_failed', `orders for wallets whose committee does not hold ${node}: ${extra.join(', ')}`, { details: { walletIds: extra } });
    const missing = touched.filter((w) => !byWallet.has(w.id)).map((w) => w.id);
    if (missing.length) throw new FleetkeyError('owner_authorization_required', `no owner order for ${missing.length} wallet(s) the change touches: ${missing.slice(0, 5).join(', ')}`, { details: { walletIds: missing } });
    for (const w of touched) {
      const want = w.participants.map((p) => p.nodeId).flatMap((n) => (n !== node ? [n] : kind === 'replace' ? [replacement!] : []));
      const doc = (byWallet.get(w.id) as { doc: { holders?: unknown } }).doc;
      if (JSON.stringify(doc.holders) !== JSON.stringify(want))
        throw new FleetkeyError('validation_failed', `the order for ${w.id} names holders ${JSON.stringify(doc.holders)}, the change makes ${want.join(', ')}`, { details: { walletId: w.id } });
    }
    const id = newId('job');
    const now = Date.now();
    await this.coord.store.db.tx(async (q) => {
      await q.run(`INSERT INTO node_jobs (id, kind, node, replacement, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [id, kind, node, replacement ?? null, 'running', now, now]);
      for (const w of touched)
        await q.run(`INSERT INTO node_job_wallets (job_id, wallet_id, order_json, status, attempts, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`, [id, w.id, JSON.stringify(byWallet.get(w.id)), 'pending', 0, now]);
    });
    await this.coord.audit.append({ type: 'admin', outcome: 'node_job_created', data: { jobId: id, kind, node, ...(replacement ? { replacement } : {}), wallets: touched.length } });
    this.kick();
    return (await this.get(id))!;
  }

  /** Root wallets whose current committee holds `node`. */
  async touching(node: string) {
    const out = [];
    for (let after = ''; ; ) {
      const page = await this.coord.store.listWallets(1000, after);
      out.push(...page.filter((w) => w.participants.some((p) => p.nodeId === node)));
      if (page.length < 1000) return out;
      after = page[page.length - 1].id;
    }
  }

  async get(id: string): Promise<NodeJob | undefined> {
    const rows = await this.coord.store.db.all(`SELECT * FROM node_jobs WHERE id = $1`, [id]);
    return rows[0] ? this.view(rows[0]) : undefined;
  }

  async list(): Promise<NodeJob[]> {
    const rows = await this.coord.store.db.all(`SELECT * FROM node_jobs ORDER BY created_at, id`, []);
    return Promise.all(rows.map((r) => this.view(r)));
  }

  private async view(r: Record<string, unknown>): Promise<NodeJob> {
    const ws = await this.coord.store.db.all(`SELECT * FROM node_job_wallets WHERE job_id = $1 ORDER BY wallet_id`, [r.id as string]);
    const wallets: NodeJobWallet[] = ws.map((w) => ({
      walletId: w.wallet_id as string,
      status: w.status as NodeJobWallet['status'],
      attempts: Number(w.attempts),
      ...(w.epoch !== null && w.epoch !== undefined ? { epoch: Number(w.epoch) } : {}),
      ...(w.error_code ? { error: { code: w.error_code as string, message: w.error_message as string } } : {}),
    }));
    const count = (s: string) => wallets.filter((w) => w.status === s).length;
    return {
      id: r.id as string,
      kind: r.kind as NodeJob['kind'],
      node: r.node as string,
      ...(r.replacement ? { replacement: r.replacement as string } : {}),
      status: r.status as NodeJob['status'],
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
      progress: { total: wallets.length, done: count('done'), failed: count('failed'), pending: count('pending') },
      wallets,
    };
  }

  /** Runs unfinished jobs (one runner per process; a kick while it runs makes it look again). */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.runAll().catch((e) => this.coord.log.error('node jobs stopped', { code: (e as FleetkeyError).code, message: (e as Error).message }));
      } while (this.again && !this.closed);
    })().finally(() => (this.running = undefined));
  }

  /** Waits for the runner to stop (tests; shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.renewal);
    await this.running;
  }

  private async runAll(): Promise<void> {
    const db = this.coord.store.db;
    for (;;) {
      if (this.closed) return;
      const now0 = Date.now();
      const next = await db.all(
        `SELECT w.job_id, w.wallet_id, w.order_json, w.attempts FROM node_job_wallets w JOIN node_jobs j ON j.id = w.job_id
         WHERE j.status = $1 AND w.status = $2 AND (j.runner = $3 OR j.runner_until < $4) ORDER BY j.created_at, w.updated_at, w.wallet_id LIMIT 1`,
        ['running', 'pending', this.runner, now0],
      );
      if (!next[0]) return;
      const { job_id: jobId, wallet_id: walletId } = next[0] as { job_id: string; wallet_id: string };
      // Take (or keep) the job's lease; another server that took it first runs it.
      const claimed = await db.run(`UPDATE node_jobs SET runner = $1, runner_until = $2 WHERE id = $3 AND (runner = $4 OR runner_until < $5)`, [this.runner, now0 + JOB_LEASE_MS, jobId, this.runner, now0]);
      if (claimed === 0) continue;
      // A wallet lock left by an earlier runner of this job (which lost the lease: dead) is this runner's now.
      await db.run(`DELETE FROM wallet_jobs WHERE wallet_id = $1 AND owner LIKE $2 AND owner <> $3`, [walletId, `job:${jobId}:%`, `job:${jobId}:${this.runner}`]);
      const order = JSON.parse(next[0].order_json as string) as { doc: { epoch: number; holders: string[] } };
      const attempts = Number(next[0].attempts) + 1;
      let outcome: { status: NodeJobWallet['status']; epoch?: number; code?: string; message?: string };
      try {
        const w = await this.coord.store.getWallet(walletId);
        if (!w) throw new FleetkeyError('not_found', `no wallet ${walletId}`);
        if (w.epoch === order.doc.epoch + 1 && JSON.stringify(w.participants.map((p) => p.nodeId)) === JSON.stringify(order.doc.holders)) {
          // Moved before a crash let this row record it.
          outcome = { status: 'done', epoch: w.epoch };
        } else {
          const moved = await reshareWallet(this.coord, walletId, { order }, `job:${jobId}:${this.runner}`);
          outcome = { status: 'done', epoch: moved.epoch };
        }
      } catch (e) {
        const err = e instanceof FleetkeyError ? e : new FleetkeyError('internal', (e as Error).message);
        if (err.code === 'conflict' && (err.details as { reason?: string } | undefined)?.reason === 'wallet_locked') {
          // Another move of this wallet holds the lock (or a dead server's lease has not run out): later, without using a try.
          await db.run(`UPDATE node_job_wallets SET updated_at = $1 WHERE job_id = $2 AND wallet_id = $3`, [Date.now(), jobId, walletId]);
          await new Promise((r) => setTimeout(r, 2000));
          continue;
        }
        // Retried: a signer down for a moment, a wallet locked by a manual reshare. Not retried: the owner's order no longer applies.
        const final = attempts >= MAX_ATTEMPTS || ['forbidden', 'request_expired', 'bad_signature', 'validation_failed', 'not_found', 'owner_authorization_required', 'unknown_node'].includes(err.code);
        outcome = { status: final ? 'failed' : 'pending', code: err.code, message: err.message };
        this.coord.log.info('node job: wallet not moved', { jobId, walletId, attempt: attempts, code: err.code });
        if (!final) await new Promise((r) => setTimeout(r, 1000 * attempts));
      }
      const now = Date.now();
      await db.tx(async (q) => {
        await q.run(`UPDATE node_job_wallets SET status = $1, attempts = $2, epoch = $3, error_code = $4, error_message = $5, updated_at = $6 WHERE job_id = $7 AND wallet_id = $8`, [
          outcome.status,
          attempts,
          outcome.epoch ?? null,
          outcome.code ?? null,
          outcome.message ?? null,
          now,
          jobId,
          walletId,
        ]);
        const left = await q.all(`SELECT status FROM node_job_wallets WHERE job_id = $1 AND status <> $2`, [jobId, 'done']);
        if (!left.some((r) => r.status === 'pending'))
          await q.run(`UPDATE node_jobs SET status = $1, updated_at = $2 WHERE id = $3`, [left.length ? 'failed' : 'done', now, jobId]);
      });
    }
  }
}

const nodeIdSchema = z.string().regex(/^[\w-]{1,64}$/, 'not a node id');
/** `POST /v1/node-jobs`: a membership change and the owner's order for each wallet it touches. */
export const nodeJobSchema = z
  .object({
    kind: z.enum(['retire', 'replace']),
    node: nodeIdSchema,
    replacement: nodeIdSchema.optional(),
    orders: z.array(z.unknown()).max(100_000),
  })
  .strict();

/** The job routes (admin token, like every /v1 route but the public ones). */
export function nodeJobRoutes(app: Hono<any>, jobs: NodeJobs): void {
  app.post('/v1/node-jobs', async (c) => c.json(await jobs.create(parse(nodeJobSchema, await jsonBody(c))), 202));
  app.get('/v1/node-jobs', async (c) => c.json({ jobs: await jobs.list() }));
  app.get('/v1/node-jobs/:id', async (c) => {
    const job = await jobs.get(c.req.param('id'));
    if (!job) throw new FleetkeyError('not_found', `no node job ${c.req.param('id')}`);
    return c.json(job);
  });
}
