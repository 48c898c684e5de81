/**
 * A signer node's control-plane state: the owner-signed documents it has accepted (policy versions
 * per wallet, grants, revocations, approver registries), its request log (idempotency by request id,
 * grant use counts) and its own usage counters, against which it reserves amounts atomically before
 * taking part in a signature.
 *
 * Reservations. `reserve` re-checks every cap of a policy Decision's reservations against committed +
 * live reserved usage and records the amounts, in ONE transaction, all or nothing. Writers to the
 * same counter are serialized: on SQLite by the single connection and BEGIN IMMEDIATE; on PostgreSQL
 * (READ COMMITTED) by a row lock on `control_locks` per counter (and per grant), taken with an
 * upsert in a fixed (sorted) order so two requests can never deadlock. A request id is claimed by
 * inserting its log row first, so two concurrent reserves of the same id run one after the other.
 *
 * Lifecycle of a request: reserved → committed (a share was produced: it counts for good) or
 * released (nothing was produced: it stops counting). A reserved row whose ttl has passed stops
 * counting by itself (`expireStale` marks it); `commit` still records it (a signature that exists
 * is counted even if late — the safe direction), so the ttl must outlast a signing session.
 *
 * SQL note: db.ts maps `$n` to SQLite's positional `?`, so every placeholder appears once, in order.
 *
 * Counter keys come from the policy engine (`sum/wallet/…`, `count/fleet/<fleetId>/…`): `wallet` keys
 * are stored per wallet id; `fleet` keys name their fleet, so each is one counter for every wallet
 * of that fleet on this node, and fleets never share one.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import type { Reservation } from '../policy/evaluate.ts';
import type { UsageView } from '../policy/usage.ts';
import { controlDocDigest, verifyControlDoc } from '../control/documents.ts';
import { verifyApprovals } from '../control/approvals.ts';
import { DOMAINS, digestOf } from '../control/keys.ts';
import { approvalSchema, signedApprovalSchema, type SignedApproval } from '../control/schemas.ts';
import { approversDocSchema, grantDocSchema, idSchema, msSchema, parseOrThrow, policyDocSchema, requestIdSchema, type ApproversDoc, type ControlDoc, type GrantDoc, type PolicyDoc, type SignedControlDoc } from '../control/schemas.ts';
import type { Db, Queryable, Row } from './db.ts';
import type { OwnerKey } from '../control/keys.ts';

export const CONTROL_MIGRATIONS = [
  `CREATE TABLE control_policies (
     wallet_id TEXT NOT NULL, version BIGINT NOT NULL, digest TEXT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL,
     PRIMARY KEY (wallet_id, version));
   CREATE TABLE control_grants (
     id TEXT PRIMARY KEY, digest TEXT NOT NULL, expires_at BIGINT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL);
   CREATE TABLE control_revocations (grant_id TEXT PRIMARY KEY, digest TEXT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL);
   CREATE TABLE control_approvers (version BIGINT PRIMARY KEY, digest TEXT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL);
   CREATE TABLE control_locks (name TEXT PRIMARY KEY);
   CREATE TABLE control_requests (
     request_id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, grant_id TEXT, request_digest TEXT NOT NULL,
     status TEXT NOT NULL, reserved_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE INDEX control_requests_grant ON control_requests (grant_id, status);
   CREATE TABLE control_usage (
     request_id TEXT NOT NULL, idx INTEGER NOT NULL, counter TEXT NOT NULL, counter_key TEXT NOT NULL, kind TEXT NOT NULL,
     amount TEXT NOT NULL, at BIGINT NOT NULL, keep_until BIGINT NOT NULL, PRIMARY KEY (request_id, idx));
   CREATE INDEX control_usage_counter ON control_usage (counter, at)`,
  `CREATE TABLE control_wallet_status (
     wallet_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, status TEXT NOT NULL, digest TEXT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL)`,
  // Approvers' signed decisions, as delivered by the server (a reject here stops the request whatever approvals come with it).
  `CREATE TABLE control_decisions (
     request_digest TEXT NOT NULL, approver TEXT NOT NULL, decision TEXT NOT NULL, digest TEXT NOT NULL, signed_json TEXT NOT NULL, stored_at BIGINT NOT NULL,
     PRIMARY KEY (request_digest, approver, decision))`,
  // Issue 13: a counter's totals (totalIn) read only indexes: the window's usage rows from the first,
  // and each row's request status from the second, instead of two table rows per usage row.
  `CREATE INDEX control_usage_window ON control_usage (counter, at, request_id, amount);
   DROP INDEX control_usage_counter;
   CREATE INDEX control_requests_live ON control_requests (request_id, status, expires_at)`,
];

/** Longest window a policy may have (366 days) plus a day: what an unfiltered usage view loads. */
const MAX_WINDOW_MS = 367 * 86_400_000;

export type RequestStatus = 'reserved' | 'committed' | 'released' | 'expired';

export interface StoredReservation {
  counterKey: string;
  kind: 'sum' | 'count';
  amount: bigint;
  /** Record time (the reservation's `now`). */
  at: number;
}

export interface RequestRecord {
  requestId: string;
  walletId: string;
  grantId: string | null;
  requestDigest: string;
  status: RequestStatus;
  reservedAt: number;
  /** Until when a 'reserved' request counts. */
  expiresAt: number;
  reservations: StoredReservation[];
}

export interface ReserveOptions {
  walletId: string;
  /** requestDigest of the agent request: a request id reused for other content is a `conflict`. */
  requestDigest: string;
  now: number;
  /** How long the reservation counts if neither committed nor released. */
  ttlMs: number;
  /** The grant the request uses: counted for usesSoFar, and its maxUses enforced atomically. */
  grant?: { id: string; maxUses?: number };
}

export interface ExceededCheck {
  counterKey: string;
  windowMs: number;
  max: bigint;
  /** Committed + live reserved usage in the window, before this request. */
  used: bigint;
  amount: bigint;
}

export type ReserveResult =
  | { ok: true; replayed: boolean; request: RequestRecord }
  | { ok: false; reason: 'limit_exceeded'; exceeded: ExceededCheck[] }
  | { ok: false; reason: 'grant_exhausted'; usesSoFar: number; maxUses: number }
  | { ok: false; reason: 'grant_revoked' };

export type PutResult = { kind: ControlDoc['kind']; status: 'stored' | 'exists'; digest: string };

/** An approver's decision stored (or already held): `digest` is sha256 of its signing input. */
export type DecisionPutResult = { kind: 'approval'; status: 'stored' | 'exists'; digest: string; requestDigest: string; approver: string; decision: 'approve' | 'reject' };

export interface StoredPolicy {
  walletId: string;
  version: number;
  digest: string;
  doc: PolicyDoc;
  signed: SignedControlDoc<PolicyDoc>;
}

const counterKeySchema = z.string().max(2048).regex(/^(sum|count)\/(wallet|fleet)\/\S+$/, 'a policy counter key (sum|count)/(wallet|fleet)/…');
const checkSchema = z.strictObject({ windowMs: z.number().int().min(1).max(MAX_WINDOW_MS), max: z.bigint().min(0n) });
const reservationSchema = z
  .strictObject({ counterKey: counterKeySchema, amount: z.bigint().min(0n), windowMs: z.number().int().min(1).max(MAX_WINDOW_MS), kind: z.enum(['sum', 'count']), checks: z.array(checkSchema).max(64) })
  .refine((r) => r.kind === 'sum' || r.amount === 1n, { message: 'a count reservation is 1', path: ['amount'] })
  .refine((r) => r.kind === (r.counterKey.startsWith('sum/') ? 'sum' : 'count'), { message: 'kind does not match the counter key', path: ['kind'] });
const reserveOptionsSchema = z.strictObject({
  walletId: idSchema,
  requestDigest: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex'),
  now: msSchema,
  ttlMs: z.number().int().min(1).max(MAX_WINDOW_MS),
  grant: z.strictObject({ id: idSchema, maxUses: z.number().int().min(1).optional() }).optional(),
});

/** Thrown inside a transaction to roll it back with an answer. */
class Refused {
  constructor(readonly result: Extract<ReserveResult, { ok: false }>) {}
}

const LIVE = `(r.status = 'committed' OR (r.status = 'reserved' AND r.expires_at > $NOW))`;

/**
 * What counts on one counter in one window: the number of live records and the exact sum of their
 * amounts, computed by the database rather than by reading every record (issue 13: a check read
 * every record of its longest window, so its cost grew with the history). Amounts are decimal text
 * of up to 78 digits. PostgreSQL sums them as `numeric` (exact); SQLite sums those of at most 18
 * digits as 64-bit integers (exact: SQLite raises an error on overflow instead of wrapping, and
 * then the records are read and summed here) and the longer ones are read and added here.
 */
async function totalIn(q: Queryable, postgres: boolean, counter: string, since: number, now: number, except?: string): Promise<{ count: bigint; sum: bigint }> {
  // SQLite: the join reads each request's status from control_requests_live (the planner would take
  // the primary key's index and then the table row).
  const where = `FROM control_usage u JOIN control_requests r${postgres ? '' : ' INDEXED BY control_requests_live'} ON r.request_id = u.request_id WHERE u.counter = $1 AND u.at > $2 AND ${LIVE.replace('$NOW', '$3')}${except !== undefined ? ' AND u.request_id <> $4' : ''}`;
  const params = except !== undefined ? [counter, since, now, except] : [counter, since, now];
  if (postgres) {
    const [row] = await q.all(`SELECT COUNT(*)::text AS n, COALESCE(SUM(u.amount::numeric), 0)::text AS total ${where}`, params);
    return { count: BigInt(row.n as string), sum: BigInt(row.total as string) };
  }
  const add = (rows: Row[], from: bigint) => rows.reduce((t, a) => t + BigInt(a.amount as string), from);
  let row: Row;
  try {
    [row] = await q.all(
      `SELECT CAST(COUNT(*) AS TEXT) AS n, CAST(COALESCE(SUM(CASE WHEN length(u.amount) <= 18 THEN CAST(u.amount AS INTEGER) ELSE 0 END), 0) AS TEXT) AS total, COALESCE(SUM(length(u.amount) > 18), 0) AS longer ${where}`,
      params,
    );
  } catch (e) {
    if (!/integer overflow/i.test((e as Error).message)) throw e;
    const rows = await q.all(`SELECT u.amount ${where}`, params);
    return { count: BigInt(rows.length), sum: add(rows, 0n) };
  }
  const small = BigInt(row.total as string);
  // The longer amounts, read only when there are any (never for a count counter, whose amounts are 1).
  const sum = Number(row.longer) > 0 ? add(await q.all(`SELECT u.amount ${where} AND length(u.amount) > 18`, params), small) : small;
  return { count: BigInt(row.n as string), sum };
}

export class ControlStore {
  private readonly owners: OwnerKey[];

  constructor(
    readonly db: Db,
    opts: { ownerPublicKeys: readonly OwnerKey[] },
  ) {
    if (!opts.ownerPublicKeys.length) throw new FleetkeyError('bad_request', 'at least one owner public key must be pinned');
    this.owners = opts.ownerPublicKeys.map((k) => (typeof k === 'string' ? k.toLowerCase() : k));
  }

  async init(): Promise<void> {
    await this.db.migrate('control', CONTROL_MIGRATIONS);
  }

  // ---- control documents ----

  /**
   * Verifies an owner-signed document against the pinned keys and stores it. Policies and approver
   * registries are versioned: a version lower than or equal to the stored one is a `conflict`
   * (resubmitting the identical signed document is a no-op, 'exists', so forwarding is retry-safe).
   * A grant id is issued once (same document again: 'exists'; another: `conflict`). Revocations are
   * kept even for grants this node has not seen yet.
   */
  async putControlDoc(signed: unknown, now = Date.now()): Promise<PutResult> {
    const doc = verifyControlDoc(signed, this.owners);
    const digest = controlDocDigest(doc);
    const json = JSON.stringify({ ...(signed as object), doc });
    const done = (status: 'stored' | 'exists'): PutResult => ({ kind: doc.kind, status, digest });
    return this.db.tx(async (q) => {
      switch (doc.kind) {
        case 'policy':
        case 'approvers': {
          await lockAll(q, [doc.kind === 'policy' ? `policy/${doc.walletId}` : 'approvers']);
          const top =
            doc.kind === 'policy'
              ? await q.all(`SELECT version, digest FROM control_policies WHERE wallet_id = $1 ORDER BY version DESC LIMIT 1`, [doc.walletId])
              : await q.all(`SELECT version, digest FROM control_approvers ORDER BY version DESC LIMIT 1`);
          if (top[0]) {
            const v = Number(top[0].version);
            if (v === doc.version && top[0].digest === digest) return done('exists');
            if (doc.version <= v) throw new FleetkeyError('conflict', `${doc.kind} version ${doc.version} is not newer than the stored version ${v}`, { details: { version: v } });
          }
          if (doc.kind === 'policy')
            await q.run(`INSERT INTO control_policies (wallet_id, version, digest, signed_json, stored_at) VALUES ($1, $2, $3, $4, $5)`, [doc.walletId, doc.version, digest, json, now]);
          else await q.run(`INSERT INTO control_approvers (version, digest, signed_json, stored_at) VALUES ($1, $2, $3, $4)`, [doc.version, digest, json, now]);
          return done('stored');
        }
        case 'grant': {
          const n = await q.run(`INSERT INTO control_grants (id, digest, expires_at, signed_json, stored_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [doc.id, digest, doc.expiresAt, json, now]);
          if (n) return done('stored');
          const old = await q.all(`SELECT digest FROM control_grants WHERE id = $1`, [doc.id]);
          if (old[0]?.digest === digest) return done('exists');
          throw new FleetkeyError('conflict', `grant ${doc.id} already exists with other content`, { details: { grantId: doc.id } });
        }
        case 'revocation': {
          const n = await q.run(`INSERT INTO control_revocations (grant_id, digest, signed_json, stored_at) VALUES ($1, $2, $3, $4) ON CONFLICT (grant_id) DO NOTHING`, [doc.grantId, digest, json, now]);
          return done(n ? 'stored' : 'exists');
        }
        case 'wallet_status': {
          await lockAll(q, [`status/${doc.walletId}`]);
          const old = (await q.all(`SELECT seq, status, digest FROM control_wallet_status WHERE wallet_id = $1`, [doc.walletId]))[0];
          if (old) {
            if (old.digest === digest) return done('exists');
            if (old.status === 'revoked') throw new FleetkeyError('conflict', `wallet ${doc.walletId} is revoked for good`, { details: { walletId: doc.walletId } });
            if (doc.seq <= Number(old.seq)) throw new FleetkeyError('conflict', `wallet_status seq ${doc.seq} is not newer than the stored seq ${Number(old.seq)}`, { details: { seq: Number(old.seq) } });
            await q.run(`UPDATE control_wallet_status SET seq = $1, status = $2, digest = $3, signed_json = $4, stored_at = $5 WHERE wallet_id = $6`, [doc.seq, doc.status, digest, json, now, doc.walletId]);
          } else await q.run(`INSERT INTO control_wallet_status (wallet_id, seq, status, digest, signed_json, stored_at) VALUES ($1, $2, $3, $4, $5, $6)`, [doc.walletId, doc.seq, doc.status, digest, json, now]);
          return done('stored');
        }
        case 'sign':
          throw new FleetkeyError('validation_failed', 'a sign authorization is sent with its signing request, not stored', { details: { path: 'doc.kind' } });
        case 'wallet_create':
          throw new FleetkeyError('validation_failed', 'a wallet_create document is sent with POST /v1/wallets or /v1/fleets, not stored', { details: { path: 'doc.kind' } });
        case 'export':
          throw new FleetkeyError('validation_failed', 'an export document is sent with POST /v1/wallets/:id/export, not stored', { details: { path: 'doc.kind' } });
        case 'wallet_reshare':
          throw new FleetkeyError('validation_failed', 'a wallet_reshare document is sent with POST /v1/wallets/:id/reshare, not stored', { details: { path: 'doc.kind' } });
      }
    });
  }

  async getGrant(id: string): Promise<GrantDoc | undefined> {
    const r = await this.db.all(`SELECT signed_json FROM control_grants WHERE id = $1`, [id]);
    return r[0] ? parseOrThrow(grantDocSchema, JSON.parse(r[0].signed_json as string).doc, 'stored grant') : undefined;
  }

  async isRevoked(grantId: string): Promise<boolean> {
    return (await this.db.all(`SELECT 1 AS x FROM control_revocations WHERE grant_id = $1`, [grantId])).length > 0;
  }

  /** The highest policy version's number and digest only: cheap, for callers that cache compiled policies by digest. */
  async policyHead(walletId: string): Promise<{ version: number; digest: string } | undefined> {
    const r = await this.db.all(`SELECT version, digest FROM control_policies WHERE wallet_id = $1 ORDER BY version DESC LIMIT 1`, [walletId]);
    return r[0] ? { version: Number(r[0].version), digest: r[0].digest as string } : undefined;
  }

  /** The highest policy version stored for the wallet, with its signed document (to forward or audit). */
  async latestPolicy(walletId: string): Promise<StoredPolicy | undefined> {
    const r = await this.db.all(`SELECT version, digest, signed_json FROM control_policies WHERE wallet_id = $1 ORDER BY version DESC LIMIT 1`, [walletId]);
    if (!r[0]) return undefined;
    const signed = JSON.parse(r[0].signed_json as string) as SignedControlDoc<PolicyDoc>;
    const doc = parseOrThrow(policyDocSchema, signed.doc, 'stored policy');
    return { walletId, version: Number(r[0].version), digest: r[0].digest as string, doc, signed: { ...signed, doc } };
  }

  /** The wallet's standing: 'active' unless a wallet_status document said otherwise. */
  async walletStatus(walletId: string): Promise<{ status: 'active' | 'suspended' | 'revoked'; seq: number }> {
    const r = (await this.db.all(`SELECT seq, status FROM control_wallet_status WHERE wallet_id = $1`, [walletId]))[0];
    return r ? { status: r.status as 'active' | 'suspended' | 'revoked', seq: Number(r.seq) } : { status: 'active', seq: 0 };
  }

  /** Every stored document of one kind (signed, as received), oldest first: for listing and re-forwarding. */
  async documents(kind: 'grant' | 'revocation' | 'policy' | 'approvers' | 'wallet_status'): Promise<SignedControlDoc[]> {
    const table = { grant: 'control_grants', revocation: 'control_revocations', policy: 'control_policies', approvers: 'control_approvers', wallet_status: 'control_wallet_status' }[kind];
    const rows = await this.db.all(`SELECT signed_json FROM ${table} ORDER BY stored_at`);
    return rows.map((r) => JSON.parse(r.signed_json as string) as SignedControlDoc);
  }

  /**
   * Stores an approver's signed decision (approve or reject) on a request digest, delivered like the
   * owner's documents (issue 15, item 6). It is checked against the latest approver registry: a
   * registered approver's valid signature, or `bad_signature` / `forbidden`. Whether the approver is
   * eligible for the request's rule is decided when the request is authorized. The same decision
   * again is 'exists'; an approver's approve and reject on one request are both kept (the reject wins).
   */
  // ---- custody state that travels with a reshare (src/signer/custody.ts) ----

  /**
   * The requests that count on a wallet and its derived wallets (`<root>.<n>`): committed ones and
   * live reservations, each with its usage rows still inside their window. What a node reports to
   * a new holder of the wallet.
   */
  async countedRequests(rootId: string, now = Date.now()): Promise<CarriedRequest[]> {
    const w = parseOrThrow(idSchema, rootId, 'walletId');
    const which = `${LIVE.replace('$NOW', '$1')} AND (r.wallet_id = $2 OR substr(r.wallet_id, 1, $3) = $4)`;
    const args = [now, w, w.length + 1, `${w}.`];
    const reqs = await this.db.all(
      `SELECT r.request_id, r.wallet_id, r.grant_id, r.request_digest, r.reserved_at, r.expires_at FROM control_requests r WHERE ${which} ORDER BY r.request_id`,
      args,
    );
    // Every request's usage rows in one query, not one query per request ($N in order: SQLite binds by position).
    const rows = await this.db.all(
      `SELECT u.request_id, u.idx, u.counter, u.counter_key, u.kind, u.amount, u.at, u.keep_until FROM control_usage u
       JOIN control_requests r ON r.request_id = u.request_id WHERE ${which} AND u.keep_until > $5 ORDER BY u.request_id, u.idx`,
      [...args, now],
    );
    const usage = new Map<string, CarriedRequest['usage']>();
    for (const u of rows) {
      const id = u.request_id as string;
      if (!usage.has(id)) usage.set(id, []);
      usage.get(id)!.push({ idx: Number(u.idx), counter: u.counter as string, counterKey: u.counter_key as string, kind: u.kind as 'sum' | 'count', amount: u.amount as string, at: Number(u.at), keepUntil: Number(u.keep_until) });
    }
    return reqs.map((r) => ({
      requestId: r.request_id as string,
      walletId: r.wallet_id as string,
      grantId: (r.grant_id as string | null) ?? null,
      requestDigest: r.request_digest as string,
      reservedAt: Number(r.reserved_at),
      expiresAt: Number(r.expires_at),
      usage: usage.get(r.request_id as string) ?? [],
    }));
  }

  /**
   * Takes requests other holders counted, as committed, in one transaction: a request this node
   * already counts is left as it is (one request never counts twice), one it released or let
   * expire counts again (the safe direction), one it never saw is added with its usage rows. The
   * union over several holders' reports is at least the largest of them on every counter.
   */
  async importCounted(rootId: string, requests: readonly CarriedRequest[], now = Date.now()): Promise<number> {
    const w = parseOrThrow(idSchema, rootId, 'walletId');
    const mine = (id: string) => id === w || id.startsWith(`${w}.`);
    return this.db.tx(async (q) => {
      let added = 0;
      for (const r of requests) {
        if (!mine(r.walletId)) throw new FleetkeyError('validation_failed', `carried request ${r.requestId} is for wallet ${r.walletId}, not ${w}`);
        for (const u of r.usage)
          if (u.counter !== storageKey(r.walletId, u.counterKey))
            throw new FleetkeyError('validation_failed', `carried usage of ${r.requestId} names another wallet's counter`);
        const old = (await q.all(`SELECT status, wallet_id, request_digest FROM control_requests WHERE request_id = $1`, [r.requestId]))[0];
        if (old) {
          if (old.wallet_id !== r.walletId || old.request_digest !== r.requestDigest) continue; // another request under that id here: keep ours
          if (old.status === 'released' || old.status === 'expired') await q.run(`UPDATE control_requests SET status = 'committed', updated_at = $1 WHERE request_id = $2`, [now, r.requestId]);
        } else {
          await q.run(
            `INSERT INTO control_requests (request_id, wallet_id, grant_id, request_digest, status, reserved_at, expires_at, updated_at) VALUES ($1, $2, $3, $4, 'committed', $5, $6, $7)`,
            [r.requestId, r.walletId, r.grantId, r.requestDigest, r.reservedAt, r.expiresAt, now],
          );
          added++;
        }
        for (const u of r.usage)
          await q.run(`INSERT INTO control_usage (request_id, idx, counter, counter_key, kind, amount, at, keep_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (request_id, idx) DO NOTHING`, [
            r.requestId, u.idx, u.counter, u.counterKey, u.kind, u.amount, u.at, u.keepUntil,
          ]);
      }
      return added;
    });
  }

  async putDecision(signed: unknown, now = Date.now()): Promise<DecisionPutResult> {
    const env = parseOrThrow(signedApprovalSchema, signed, 'signed');
    const approval = parseOrThrow(approvalSchema, env.approval, 'approval');
    const registry = await this.approvers();
    if (!registry) throw new FleetkeyError('forbidden', 'no approver registry has been set: an approval decision cannot be checked');
    const tally = verifyApprovals(approval.requestDigest, [{ approval, sig: env.sig }], registry, { required: 1, approvers: [approval.approver] });
    const bad = tally.ignored[0];
    if (bad) throw new FleetkeyError(bad.reason === 'bad_signature' ? 'bad_signature' : 'forbidden', `approval decision not accepted: ${bad.reason}`, { details: { reason: bad.reason } });
    const digest = digestOf(DOMAINS.approval, approval);
    const n = await this.db.run(
      `INSERT INTO control_decisions (request_digest, approver, decision, digest, signed_json, stored_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_digest, approver, decision) DO NOTHING`,
      [approval.requestDigest, approval.approver, approval.decision, digest, JSON.stringify({ approval, sig: env.sig }), now],
    );
    return { kind: 'approval', status: n ? 'stored' : 'exists', digest, requestDigest: approval.requestDigest, approver: approval.approver, decision: approval.decision };
  }

  /** The signed rejections this node holds for a request digest (checked again, with eligibility, by the Authorizer). */
  async rejections(requestDigest: string): Promise<SignedApproval[]> {
    const r = await this.db.all(`SELECT signed_json FROM control_decisions WHERE request_digest = $1 AND decision = 'reject' ORDER BY approver`, [requestDigest]);
    return r.map((x) => JSON.parse(x.signed_json as string) as SignedApproval);
  }

  /** The latest approver registry. */
  async approvers(): Promise<ApproversDoc | undefined> {
    const r = await this.db.all(`SELECT signed_json FROM control_approvers ORDER BY version DESC LIMIT 1`);
    return r[0] ? parseOrThrow(approversDocSchema, JSON.parse(r[0].signed_json as string).doc, 'stored approvers') : undefined;
  }

  // ---- usage ----

  /**
   * A snapshot UsageView for the policy engine (whose interface is synchronous): committed + live
   * reserved records of `walletId`'s wallet-scoped counters and of the fleet-scoped ones. With
   * `keys`, only those counters are loaded and asking for another throws (so nothing reads an
   * empty history by accident): evaluate once with NO_USAGE, take the decision's reservation keys
   * (a deny cannot turn into an allow with more usage), load them, evaluate again. The
   * authoritative check is `reserve`, which repeats every cap inside its transaction.
   * Records later than `now` (clock skew between calls) count too: the safe direction. `except`:
   * a request id whose own records are left out.
   */
  async usageView(walletId: string, opts: { now: number; keys?: readonly string[]; except?: string }): Promise<UsageView> {
    const w = parseOrThrow(idSchema, walletId, 'walletId');
    const now = parseOrThrow(msSchema, opts.now, 'now');
    const keys = opts.keys?.map((k, i) => parseOrThrow(counterKeySchema, k, `keys[${i}]`));
    const since = now - MAX_WINDOW_MS;
    const rows: Row[] = [];
    const base = `SELECT u.request_id, u.counter_key, u.amount, u.at FROM control_usage u JOIN control_requests r ON r.request_id = u.request_id WHERE ${LIVE.replace('$NOW', '$1')} AND u.at > $2`;
    if (keys) for (const k of new Set(keys)) rows.push(...(await this.db.all(`${base} AND u.counter = $3`, [now, since, storageKey(w, k)])));
    // substr, not LIKE: wallet ids may contain "_", a LIKE wildcard.
    else rows.push(...(await this.db.all(`${base} AND (substr(u.counter, 1, $3) = $4 OR substr(u.counter, 1, 2) = '*/')`, [now, since, w.length + 1, `${w}/`])));
    const byKey = new Map<string, { amount: bigint; at: number }[]>();
    for (const r of rows) {
      // The request being decided may already be counted here (a strict-counters receipt, or a
      // retry of a committed request): it must not count against itself.
      if (opts.except !== undefined && r.request_id === opts.except) continue;
      const k = r.counter_key as string;
      const list = byKey.get(k) ?? (byKey.set(k, []), byKey.get(k)!);
      list.push({ amount: BigInt(r.amount as string), at: Number(r.at) });
    }
    const loaded = keys ? new Set(keys) : undefined;
    const records = (key: string) => {
      if (loaded && !loaded.has(key)) throw new FleetkeyError('internal', `usage for counter ${key} was not loaded`);
      return byKey.get(key) ?? [];
    };
    return {
      sum: (key, sinceMs) => records(key).reduce((s, r) => (r.at > sinceMs ? s + r.amount : s), 0n),
      count: (key, sinceMs) => records(key).filter((r) => r.at > sinceMs).length,
    };
  }

  /**
   * The UsageView a second evaluation pass needs, as totals the database computes: for each
   * `checks` entry (a counter key of the first pass's reservations and one window of it) the live
   * count and sum in (now − windowMs, …], leaving out request `except`. Asking the view for a
   * counter or window not listed throws, as `usageView` with `keys` does.
   */
  async usageTotals(walletId: string, opts: { now: number; checks: readonly { counterKey: string; windowMs: number }[]; except?: string }): Promise<UsageView> {
    const w = parseOrThrow(idSchema, walletId, 'walletId');
    const now = parseOrThrow(msSchema, opts.now, 'now');
    const totals = new Map<string, { count: bigint; sum: bigint }>();
    for (const [i, c] of opts.checks.entries()) {
      const key = parseOrThrow(counterKeySchema, c.counterKey, `checks[${i}].counterKey`);
      const windowMs = parseOrThrow(msSchema, c.windowMs, `checks[${i}].windowMs`);
      const tag = `${key}\n${windowMs}`;
      if (!totals.has(tag)) totals.set(tag, await totalIn(this.db, this.db.kind === 'postgres', storageKey(w, key), now - windowMs, now, opts.except));
    }
    const total = (key: string, sinceMs: number) => {
      const t = totals.get(`${key}\n${now - sinceMs}`);
      if (!t) throw new FleetkeyError('internal', `usage for counter ${key} since ${sinceMs} was not loaded`);
      return t;
    };
    return { sum: (key, sinceMs) => total(key, sinceMs).sum, count: (key, sinceMs) => Number(total(key, sinceMs).count) };
  }

  /**
   * Reserves a decision's amounts for one request, or refuses without writing anything. For each
   * check of each reservation: usage in (now − windowMs, …] + this request's amount on that counter
   * ≤ max. Idempotent by request id: a live or committed request answers `replayed: true` with
   * what it holds and counts nothing again; a released or expired one is checked and reserved
   * afresh. A request id reused for another request (digest or wallet differs) is a `conflict`.
   */
  async reserve(requestId: string, reservations: readonly Reservation[], options: ReserveOptions, hook?: (q: Queryable) => Promise<unknown>): Promise<ReserveResult> {
    const v = validReserve(requestId, reservations, options);
    try {
      // `hook`: another repository's write that must commit with the reservation or not at all
      // (SignerStore.claimSessionHook: the signing session's id is used up in the same transaction).
      return await this.db.tx(async (q) => {
        await hook?.(q);
        return reserveIn(q, v, this.db.kind === 'postgres');
      });
    } catch (e) {
      if (e instanceof Refused) return e.result;
      throw e;
    }
  }

  /**
   * `reserve` and `commit` as one hook for another repository's transaction (SignerStore.consumeNonce),
   * so that taking the nonce, checking every cap and counting the amounts for good are one durable
   * step: a refusal throws (rolling the nonce back too) and a crash leaves neither. A request that
   * is already committed counts nothing again. Resolves to the request as reserved (its
   * `reservedAt` is when it was first counted).
   */
  reserveAndCommitHook(requestId: string, reservations: readonly Reservation[], options: ReserveOptions): (q: Queryable) => Promise<RequestRecord> {
    const v = validReserve(requestId, reservations, options);
    return async (q) => {
      let reserved: RequestRecord;
      try {
        reserved = (await reserveIn(q, v, this.db.kind === 'postgres')).request;
      } catch (e) {
        if (e instanceof Refused) throw refusalError(e.result);
        throw e;
      }
      const r = await commitIn(q, v.id, v.o.now);
      if (r !== 'committed' && r !== 'already_committed') throw new FleetkeyError('conflict', `request ${v.id} cannot be committed (${r})`, { details: { requestId: v.id, state: r } });
      return reserved;
    };
  }

  /**
   * The node produced its share: the reservation counts for good. Also records a reservation whose
   * ttl passed (the signature may exist; over-counting is the safe direction). A released request
   * cannot be committed (`released`): release promised nothing was produced.
   */
  async commit(requestId: string, now = Date.now()): Promise<CommitResult> {
    return this.db.tx(this.commitHook(requestId, now));
  }

  /** `commit` as a hook for another repository's transaction (ServerStore.updateRequest). */
  commitHook(requestId: string, now = Date.now()): (q: Queryable) => Promise<CommitResult> {
    return (q) => commitIn(q, requestId, now);
  }

  /** Nothing was produced from this request: its amounts stop counting. A committed request stays committed (`committed`). */
  async release(requestId: string, now = Date.now()): Promise<'released' | 'already_released' | 'committed' | 'unknown'> {
    return this.db.tx((q) => transition(q, requestId, now, 'released', { released: 'already_released', committed: 'committed' }));
  }

  /** Marks reservations past their ttl as expired (they already no longer count); returns their ids, for the audit log. */
  async expireStale(now = Date.now()): Promise<string[]> {
    const rows = await this.db.all(`UPDATE control_requests SET status = 'expired', updated_at = $1 WHERE status = 'reserved' AND expires_at <= $2 RETURNING request_id`, [now, now]);
    return rows.map((r) => r.request_id as string).sort();
  }

  /** Deletes usage records older than their longest window, and those of released or expired requests. The request log stays (idempotency, grant uses). */
  async pruneUsage(now = Date.now()): Promise<number> {
    return this.db.tx(async (q) => {
      const a = await q.run(`DELETE FROM control_usage WHERE keep_until <= $1`, [now]);
      const b = await q.run(`DELETE FROM control_usage WHERE request_id IN (SELECT request_id FROM control_requests WHERE status IN ('released', 'expired'))`);
      return a + b;
    });
  }

  async getRequest(requestId: string): Promise<RequestRecord | undefined> {
    return readRequest(this.db, requestId);
  }

  /** Requests made under the grant that count as uses: committed, or reserved and live at `now` (not counting request `except`, a retry's own earlier attempt). */
  async usesSoFar(grantId: string, now = Date.now(), except?: string): Promise<number> {
    return usesOf(this.db, grantId, now, except);
  }

}

/** One request as a holder counts it, carried to a new holder by a reshare. */
export interface CarriedRequest {
  requestId: string;
  walletId: string;
  grantId: string | null;
  requestDigest: string;
  reservedAt: number;
  expiresAt: number;
  usage: { idx: number; counter: string; counterKey: string; kind: 'sum' | 'count'; amount: string; at: number; keepUntil: number }[];
}

export type CommitResult = 'committed' | 'already_committed' | 'released' | 'unknown';

function commitIn(q: Queryable, requestId: string, now: number): Promise<CommitResult> {
  return transition(q, requestId, now, 'committed', { committed: 'already_committed', released: 'released' });
}

/** reserved or expired → `to`; otherwise what `other` maps the current status to ('unknown' when there is no such request). */
async function transition<T extends 'committed' | 'released', A extends string>(q: Queryable, requestId: string, now: number, to: T, other: Partial<Record<RequestStatus, A>>): Promise<T | A | 'unknown'> {
  const id = parseOrThrow(requestIdSchema, requestId, 'requestId');
  const n = await q.run(`UPDATE control_requests SET status = $1, updated_at = $2 WHERE request_id = $3 AND status IN ('reserved', 'expired')`, [to, now, id]);
  if (n) return to;
  const r = await q.all(`SELECT status FROM control_requests WHERE request_id = $1`, [id]);
  return r[0] ? other[r[0].status as RequestStatus]! : 'unknown';
}

/**
 * `wallet` counters are per wallet (wallet ids never contain "/"); `fleet` counters are shared by the
 * wallets that ask for them ("*" starts no id), and a fleet key names its fleet (`…/fleet/<fleetId>/…`,
 * the policy engine's ctx.fleet: the root wallet id), so that is every wallet of one fleet.
 */
function storageKey(walletId: string, counterKey: string): string {
  return counterKey.split('/', 2)[1] === 'fleet' ? `*/${counterKey}` : `${walletId}/${counterKey}`;
}

/**
 * Serializes writers per name until the transaction ends: the upsert takes the row lock on
 * PostgreSQL (a no-op under SQLite's single writer). Names are locked in sorted order: no deadlocks.
 */
async function lockAll(q: Queryable, names: string[]): Promise<void> {
  for (const n of [...new Set(names)].sort()) await q.run(`INSERT INTO control_locks (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name`, [n]);
}

async function usesOf(q: Queryable, grantId: string, now: number, except?: string): Promise<number> {
  const r = await q.all(`SELECT COUNT(*) AS n FROM control_requests r WHERE r.grant_id = $1 AND ${LIVE.replace('$NOW', '$2')} AND r.request_id <> $3`, [grantId, now, except ?? '']);
  return Number(r[0].n);
}

async function readRequest(q: Queryable, id: string): Promise<RequestRecord | undefined> {
  const r = (await q.all(`SELECT * FROM control_requests WHERE request_id = $1`, [id]))[0];
  if (!r) return undefined;
  const usage = await q.all(`SELECT counter_key, kind, amount, at FROM control_usage WHERE request_id = $1 ORDER BY idx`, [id]);
  return {
    requestId: id,
    walletId: r.wallet_id as string,
    grantId: (r.grant_id as string | null) ?? null,
    requestDigest: r.request_digest as string,
    status: r.status as RequestStatus,
    reservedAt: Number(r.reserved_at),
    expiresAt: Number(r.expires_at),
    reservations: usage.map((u) => ({ counterKey: u.counter_key as string, kind: u.kind as 'sum' | 'count', amount: BigInt(u.amount as string), at: Number(u.at) })),
  };
}

type ValidReserve = { id: string; list: z.output<typeof reservationSchema>[]; o: z.output<typeof reserveOptionsSchema> };

function validReserve(requestId: string, reservations: readonly Reservation[], options: ReserveOptions): ValidReserve {
  return {
    id: parseOrThrow(requestIdSchema, requestId, 'requestId'),
    list: reservations.map((r, i) => parseOrThrow(reservationSchema, r, `reservations[${i}]`)),
    o: parseOrThrow(reserveOptionsSchema, options, 'options'),
  };
}

/** A refused reservation as the error a caller answers with (stable codes). */
export function refusalError(r: Extract<ReserveResult, { ok: false }>): FleetkeyError {
  switch (r.reason) {
    case 'grant_revoked':
      return new FleetkeyError('grant_revoked', 'the grant was revoked');
    case 'grant_exhausted':
      return new FleetkeyError('grant_exhausted', `the grant was used ${r.usesSoFar} of ${r.maxUses} times`, { details: { maxUses: r.maxUses } });
    case 'limit_exceeded':
      return new FleetkeyError('limit_exceeded', `policy limit reached: ${r.exceeded.map((x) => `${x.counterKey} used ${x.used} + ${x.amount} > ${x.max} per ${x.windowMs} ms`).join('; ')}`, {
        details: { exceeded: r.exceeded.map((x) => ({ counterKey: x.counterKey, windowMs: x.windowMs, max: x.max.toString(), used: x.used.toString(), amount: x.amount.toString() })) },
      });
  }
}

/** The body of `reserve`, inside the caller's transaction; throws Refused (roll back) on refusal. */
async function reserveIn(q: Queryable, { id, list, o }: ValidReserve, postgres: boolean): Promise<Extract<ReserveResult, { ok: true }>> {
  // Claim the request id first: a concurrent reserve of the same id waits here for us.
  const claimed = await q.run(
    `INSERT INTO control_requests (request_id, wallet_id, grant_id, request_digest, status, reserved_at, expires_at, updated_at) VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7) ON CONFLICT (request_id) DO NOTHING`,
    [id, o.walletId, o.grant?.id ?? null, o.requestDigest, o.now, o.now + o.ttlMs, o.now],
  );
  if (!claimed) {
    const old = (await q.all(`SELECT * FROM control_requests WHERE request_id = $1${postgres ? ' FOR UPDATE' : ''}`, [id]))[0];
    if (old.request_digest !== o.requestDigest || old.wallet_id !== o.walletId || (old.grant_id ?? null) !== (o.grant?.id ?? null))
      throw new FleetkeyError('conflict', `request id ${id} was already used for another request`, { details: { requestId: id } });
    const status = old.status as RequestStatus;
    if (status === 'committed' || (status === 'reserved' && Number(old.expires_at) > o.now)) return { ok: true as const, replayed: true, request: (await readRequest(q, id))! };
    // released or expired: start over (the old rows stop existing; on refusal the rollback restores them)
    await q.run(`DELETE FROM control_usage WHERE request_id = $1`, [id]);
    await q.run(`UPDATE control_requests SET status = 'reserved', reserved_at = $1, expires_at = $2, updated_at = $3 WHERE request_id = $4`, [o.now, o.now + o.ttlMs, o.now, id]);
  }
  const stored = list.map((r) => ({ ...r, counter: storageKey(o.walletId, r.counterKey) }));
  await lockAll(q, [...stored.map((r) => `counter/${r.counter}`), ...(o.grant?.maxUses ? [`grant/${o.grant.id}`] : [])]);

  if (o.grant && (await q.all(`SELECT 1 AS x FROM control_revocations WHERE grant_id = $1`, [o.grant.id])).length) throw new Refused({ ok: false, reason: 'grant_revoked' });
  if (o.grant?.maxUses !== undefined) {
    const used = await usesOf(q, o.grant.id, o.now, id);
    if (used >= o.grant.maxUses) throw new Refused({ ok: false, reason: 'grant_exhausted', usesSoFar: used, maxUses: o.grant.maxUses });
  }
  // This request's total per counter (a decision normally has one reservation per key).
  const mine = new Map<string, bigint>();
  for (const r of stored) mine.set(r.counter, (mine.get(r.counter) ?? 0n) + r.amount);
  const exceeded: ExceededCheck[] = [];
  const seen = new Set<string>();
  // One query per counter and window, however many caps share them.
  const totals = new Map<string, { count: bigint; sum: bigint }>();
  for (const r of stored)
    for (const c of r.checks) {
      const tag = `${r.counter}\n${c.windowMs}\n${c.max}`;
      if (seen.has(tag)) continue;
      seen.add(tag);
      const window = `${r.counter}\n${c.windowMs}`;
      let total = totals.get(window);
      if (!total) totals.set(window, (total = await totalIn(q, postgres, r.counter, o.now - c.windowMs, o.now)));
      const used = r.kind === 'sum' ? total.sum : total.count;
      const amount = mine.get(r.counter)!;
      if (used + amount > c.max) exceeded.push({ counterKey: r.counterKey, windowMs: c.windowMs, max: c.max, used, amount });
    }
  if (exceeded.length) throw new Refused({ ok: false, reason: 'limit_exceeded', exceeded });
  for (let i = 0; i < stored.length; i++) {
    const r = stored[i];
    await q.run(`INSERT INTO control_usage (request_id, idx, counter, counter_key, kind, amount, at, keep_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
      id, i, r.counter, r.counterKey, r.kind, r.amount.toString(), o.now, o.now + r.windowMs,
    ]);
  }
  return { ok: true as const, replayed: false, request: (await readRequest(q, id))! };
}
