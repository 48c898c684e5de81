/**
 * The server's own state: wallets (public data only: the group public package, who holds the
 * shares, the current epoch) and the commits still owed to signers after a refresh.
 */
import type { Db, Queryable } from './db.ts';

export const SERVER_MIGRATIONS = [
  `CREATE TABLE wallets (
     id TEXT PRIMARY KEY, scheme TEXT NOT NULL, label TEXT, threshold INTEGER NOT NULL,
     participants TEXT NOT NULL, public_key TEXT NOT NULL, address TEXT NOT NULL, network TEXT,
     public_json TEXT NOT NULL, epoch INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE TABLE pending_commits (
     wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL, node_id TEXT NOT NULL, evidence TEXT NOT NULL,
     PRIMARY KEY (wallet_id, epoch, node_id))`,
  `CREATE TABLE control_owed (
     node_id TEXT NOT NULL, digest TEXT NOT NULL, signed_json TEXT NOT NULL, created_at BIGINT NOT NULL,
     PRIMARY KEY (node_id, digest));
   CREATE TABLE agent_requests (
     request_id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, grant_id TEXT, request_digest TEXT NOT NULL,
     status TEXT NOT NULL, signed_json TEXT NOT NULL, approvals_json TEXT NOT NULL, detail_json TEXT,
     result_json TEXT, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE INDEX agent_requests_status ON agent_requests (status, created_at)`,
  // Several API servers on one store (README, "Several API servers"): a request being signed is
  // leased to one server; preprocessed nonce commitments, status-list publishing and MQTT counters
  // are shared rows.
  `ALTER TABLE agent_requests ADD COLUMN lease_owner TEXT;
   ALTER TABLE agent_requests ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
   CREATE TABLE nonce_pool (
     pool TEXT NOT NULL, nonce_id TEXT NOT NULL, commitment_json TEXT NOT NULL, added_at BIGINT NOT NULL,
     PRIMARY KEY (pool, nonce_id));
   CREATE TABLE mqtt_counters (
     fleet TEXT NOT NULL, reason TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (fleet, reason))`,
  // One committee change at a time per wallet, across every server on the store (src/server/reshare.ts).
  `CREATE TABLE wallet_jobs (wallet_id TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, until BIGINT NOT NULL)`,
];

/** A preprocessed FROST nonce commitment of one signer, as the signer handed it out (public values only). */
export interface PooledCommitment {
  id: string;
  hiding: string;
  binding: string;
}

/** An agent request the server has seen: waiting for approvals, signed, refused, or expired. */
export interface AgentRequestRecord {
  requestId: string;
  walletId: string;
  grantId: string | null;
  requestDigest: string;
  status: 'pending_approval' | 'signing' | 'signed' | 'rejected' | 'expired' | 'failed';
  signed: unknown;
  approvals: unknown[];
  detail: Record<string, unknown> | null;
  result: Record<string, unknown> | null;
  createdAt: number;
  expiresAt: number;
  /** The server signing it now (status `signing`), and until when; another server may take it over after. */
  leaseOwner?: string | null;
  leaseUntil?: number;
}

/** Who holds which share index of a wallet. */
export interface Participant {
  index: number;
  nodeId: string;
}

export interface WalletRecord {
  id: string;
  scheme: string;
  label: string | null;
  threshold: number;
  participants: Participant[];
  publicKey: string;
  address: string;
  network: string | null;
  publicJson: string;
  epoch: number;
  createdAt: number;
  updatedAt: number;
}

export class ServerStore {
  constructor(readonly db: Db) {}

  async init(): Promise<void> {
    await this.db.migrate('server', SERVER_MIGRATIONS);
  }

  async createWallet(w: WalletRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO wallets (id, scheme, label, threshold, participants, public_key, address, network, public_json, epoch, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [w.id, w.scheme, w.label, w.threshold, JSON.stringify(w.participants), w.publicKey, w.address, w.network, w.publicJson, w.epoch, w.createdAt, w.updatedAt],
    );
  }

  async getWallet(id: string): Promise<WalletRecord | undefined> {
    const r = await this.db.all(`SELECT * FROM wallets WHERE id = $1`, [id]);
    return r[0] ? walletOf(r[0]) : undefined;
  }

  async listWallets(limit = 1000, after = ''): Promise<WalletRecord[]> {
    const r = await this.db.all(`SELECT * FROM wallets WHERE id > $1 ORDER BY id LIMIT $2`, [after, limit]);
    return r.map(walletOf);
  }

  /**
   * Moves a wallet to a new epoch (after a refresh or a reshare) and records, in the same transaction, the
   * commits still to be delivered to each signer, so a crash cannot leave a signer behind for good.
   */
  async advanceEpoch(id: string, fromEpoch: number, publicJson: string, owed: { nodeId: string; evidence: string }[], committee?: { threshold: number; participants: Participant[] }): Promise<boolean> {
    return this.db.tx(async (q) => {
      const n = await q.run(`UPDATE wallets SET epoch = $1, public_json = $2, updated_at = $3 WHERE id = $4 AND epoch = $5`, [
        fromEpoch + 1,
        publicJson,
        Date.now(),
        id,
        fromEpoch,
      ]);
      if (n !== 1) return false;
      // A reshare moves the wallet to a new committee in the same transaction.
      if (committee) await q.run(`UPDATE wallets SET threshold = $1, participants = $2 WHERE id = $3`, [committee.threshold, JSON.stringify(committee.participants), id]);
      for (const o of owed)
        await q.run(`INSERT INTO pending_commits (wallet_id, epoch, node_id, evidence) VALUES ($1, $2, $3, $4)`, [id, fromEpoch + 1, o.nodeId, o.evidence]);
      return true;
    });
  }

  async pendingCommits(walletId?: string): Promise<{ walletId: string; epoch: number; nodeId: string; evidence: string }[]> {
    const r = walletId
      ? await this.db.all(`SELECT * FROM pending_commits WHERE wallet_id = $1`, [walletId])
      : await this.db.all(`SELECT * FROM pending_commits`);
    return r.map((x) => ({ walletId: x.wallet_id as string, epoch: Number(x.epoch), nodeId: x.node_id as string, evidence: x.evidence as string }));
  }

  async commitDelivered(walletId: string, epoch: number, nodeId: string): Promise<void> {
    await this.db.run(`DELETE FROM pending_commits WHERE wallet_id = $1 AND epoch = $2 AND node_id = $3`, [walletId, epoch, nodeId]);
  }

  // ---- control documents a signer has not received yet ----

  async oweControl(nodeId: string, digest: string, signedJson: string): Promise<void> {
    await this.db.run(`INSERT INTO control_owed (node_id, digest, signed_json, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (node_id, digest) DO NOTHING`, [nodeId, digest, signedJson, Date.now()]);
  }

  async owedControl(): Promise<{ nodeId: string; digest: string; signedJson: string }[]> {
    const r = await this.db.all(`SELECT node_id, digest, signed_json FROM control_owed ORDER BY created_at`);
    return r.map((x) => ({ nodeId: x.node_id as string, digest: x.digest as string, signedJson: x.signed_json as string }));
  }

  async controlDelivered(nodeId: string, digest: string): Promise<void> {
    await this.db.run(`DELETE FROM control_owed WHERE node_id = $1 AND digest = $2`, [nodeId, digest]);
  }

  // ---- agent requests (approval queue and idempotent answers) ----

  /** Records a new request; false when the id exists (the caller reads it). */
  async insertRequest(r: AgentRequestRecord): Promise<boolean> {
    return this.insertRequestIn(this.db, r);
  }

  /** `insertRequest` inside a caller's transaction (the server's reservation: one commit for both). */
  async insertRequestIn(q: Queryable, r: AgentRequestRecord): Promise<boolean> {
    const n = await q.run(
      `INSERT INTO agent_requests (request_id, wallet_id, grant_id, request_digest, status, signed_json, approvals_json, detail_json, result_json, created_at, expires_at, updated_at, lease_owner, lease_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (request_id) DO NOTHING`,
      [r.requestId, r.walletId, r.grantId, r.requestDigest, r.status, JSON.stringify(r.signed), JSON.stringify(r.approvals), r.detail ? JSON.stringify(r.detail) : null, r.result ? JSON.stringify(r.result) : null, r.createdAt, r.expiresAt, Date.now(), r.leaseOwner ?? null, r.leaseUntil ?? 0],
    );
    return n === 1;
  }

  async getRequest(requestId: string): Promise<AgentRequestRecord | undefined> {
    const r = (await this.db.all(`SELECT * FROM agent_requests WHERE request_id = $1`, [requestId]))[0];
    return r ? requestOf(r) : undefined;
  }

  async listRequests(status: string, limit = 100): Promise<AgentRequestRecord[]> {
    const r = await this.db.all(`SELECT * FROM agent_requests WHERE status = $1 ORDER BY created_at LIMIT $2`, [status, limit]);
    return r.map(requestOf);
  }

  /**
   * Leases a request to `owner` for signing, in one atomic statement: from status `from`, or from
   * `signing` whose lease has run out (its server died or stalled mid-request; the agent's retry
   * re-drives it here). False if neither: another server holds a live lease, or it is settled.
   */
  async claimRequest(requestId: string, from: 'failed' | 'pending_approval', owner: string, leaseMs: number, now = Date.now()): Promise<boolean> {
    const n = await this.db.run(
      `UPDATE agent_requests SET status = 'signing', lease_owner = $1, lease_until = $2, updated_at = $3
       WHERE request_id = $4 AND (status = $5 OR (status = 'signing' AND lease_until <= $6))`,
      [owner, now + leaseMs, now, requestId, from, now],
    );
    return n === 1;
  }

  /** Extends `owner`'s lease on a request it is signing; false if the lease is no longer its own. */
  async renewLease(requestId: string, owner: string, leaseMs: number, now = Date.now()): Promise<boolean> {
    const n = await this.db.run(`UPDATE agent_requests SET lease_until = $1 WHERE request_id = $2 AND status = 'signing' AND lease_owner = $3`, [now + leaseMs, requestId, owner]);
    return n === 1;
  }

  /**
   * Moves a request from one of `from` to `to`, in one transaction with the row locked; `update`
   * sees the current record and returns what to change. False if it was not in `from`, or, with
   * `leaseOwner`, if the request is leased to another server (it took over after this lease ran out).
   */
  async updateRequest(...args: Parameters<ServerStore['updateRequestHook']>): Promise<boolean> {
    return this.db.tx(this.updateRequestHook(...args));
  }

  /** `updateRequest` as a hook for another repository's transaction (the signature's audit entry: one commit for both). */
  updateRequestHook(
    requestId: string,
    from: AgentRequestRecord['status'][],
    to: AgentRequestRecord['status'],
    update: (cur: AgentRequestRecord) => { approvals?: unknown[]; detail?: Record<string, unknown> | null; result?: Record<string, unknown> | null } = () => ({}),
    leaseOwner?: string,
    /** Another repository's write that commits in the same transaction, whether or not the row changes. */
    also?: (q: Queryable) => Promise<unknown>,
  ): (q: Queryable) => Promise<boolean> {
    return async (q) => {
      await also?.(q);
      const row = (await q.all(`SELECT * FROM agent_requests WHERE request_id = $1${this.db.kind === 'postgres' ? ' FOR UPDATE' : ''}`, [requestId]))[0];
      if (!row) return false;
      const cur = requestOf(row);
      if (!from.includes(cur.status)) return false;
      if (leaseOwner !== undefined && cur.leaseOwner !== leaseOwner) return false;
      const set = update(cur);
      const detail = set.detail === undefined ? cur.detail : set.detail;
      const result = set.result === undefined ? cur.result : set.result;
      await q.run(`UPDATE agent_requests SET status = $1, approvals_json = $2, detail_json = $3, result_json = $4, updated_at = $5 WHERE request_id = $6`, [
        to, JSON.stringify(set.approvals ?? cur.approvals), detail ? JSON.stringify(detail) : null, result ? JSON.stringify(result) : null, Date.now(), requestId,
      ]);
      return true;
    };
  }

  // ---- preprocessed nonce commitments, shared by every server on this store ----

  /** Adds commitments a signer handed out to pool `pool` (root wallet | epoch | node). */
  async addCommitments(pool: string, commitments: readonly PooledCommitment[], now = Date.now()): Promise<void> {
    await this.db.tx(async (q) => {
      for (const c of commitments)
        await q.run(`INSERT INTO nonce_pool (pool, nonce_id, commitment_json, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT (pool, nonce_id) DO NOTHING`, [pool, c.id, JSON.stringify(c), now]);
    });
  }

  /**
   * Takes one commitment out of the pool, for good: the row is deleted by the statement that picks
   * it, so no two callers (servers) ever get the same one. On PostgreSQL the pick skips rows another
   * transaction has locked (FOR UPDATE SKIP LOCKED) instead of queueing behind it; on SQLite the
   * single writer serializes. Oldest first, so a signer's older nonces go before it may forget them.
   */
  async takeCommitment(pool: string): Promise<PooledCommitment | undefined> {
    return this.takeIn(this.db, pool);
  }

  /**
   * One commitment from each of `pools` (undefined where a pool is empty), in one transaction: a
   * signing round's picks cost one commit, not one per signer. Each pick is the statement above, so
   * what one pool yields is never another caller's.
   */
  async takeCommitments(pools: readonly string[]): Promise<(PooledCommitment | undefined)[]> {
    return this.db.tx(async (q) => {
      const out: (PooledCommitment | undefined)[] = [];
      for (const pool of pools) out.push(await this.takeIn(q, pool));
      return out;
    });
  }

  private async takeIn(q: Queryable, pool: string): Promise<PooledCommitment | undefined> {
    const lock = this.db.kind === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const r = await q.all(
      `DELETE FROM nonce_pool WHERE pool = $1 AND nonce_id = (SELECT nonce_id FROM nonce_pool WHERE pool = $2 ORDER BY added_at, nonce_id LIMIT 1${lock}) RETURNING commitment_json`,
      [pool, pool],
    );
    return r[0] ? (JSON.parse(r[0].commitment_json as string) as PooledCommitment) : undefined;
  }

  /** Commitments held per pool (metrics, refill decisions). */
  async poolDepths(): Promise<Map<string, number>> {
    const r = await this.db.all(`SELECT pool, COUNT(*) AS n FROM nonce_pool GROUP BY pool`);
    return new Map(r.map((x) => [x.pool as string, Number(x.n)]));
  }

  async poolDepth(pool: string): Promise<number> {
    return Number((await this.db.all(`SELECT COUNT(*) AS n FROM nonce_pool WHERE pool = $1`, [pool]))[0].n);
  }

  /** Forgets one pool (a signer refused one of its nonces: the rest are likely stale too). */
  async dropPool(pool: string): Promise<void> {
    await this.db.run(`DELETE FROM nonce_pool WHERE pool = $1`, [pool]);
  }

  /** Forgets every pool of a root wallet (after a refresh, its old epoch's nonces are of no use). */
  /**
   * Takes the wallet's job lock for `owner` until `until`, or returns false when another owner holds
   * it and its lease has not run out. One statement: two servers racing get one winner (the row's
   * primary key on both engines). A lock whose server died is taken over once its lease has passed.
   */
  async lockWallet(walletId: string, owner: string, kind: string, until: number, now = Date.now()): Promise<boolean> {
    const n = await this.db.run(
      `INSERT INTO wallet_jobs (wallet_id, owner, kind, until) VALUES ($1, $2, $3, $4)
       ON CONFLICT (wallet_id) DO UPDATE SET owner = excluded.owner, kind = excluded.kind, until = excluded.until WHERE wallet_jobs.until < $5`,
      [walletId, owner, kind, until, now],
    );
    return n > 0;
  }

  /** Releases the lock if `owner` still holds it. */
  async unlockWallet(walletId: string, owner: string): Promise<void> {
    await this.db.run(`DELETE FROM wallet_jobs WHERE wallet_id = $1 AND owner = $2`, [walletId, owner]);
  }

  async dropPools(rootWalletId: string): Promise<void> {
    // A prefix compare, not LIKE: the `_` in `wal_…` is a LIKE wildcard.
    const prefix = rootWalletId + '|';
    await this.db.run(`DELETE FROM nonce_pool WHERE substr(pool, 1, $1) = $2`, [prefix.length, prefix]);
  }

  // ---- MQTT ingest counters, summed over every server ----

  async countMqtt(fleet: string, reason: string): Promise<void> {
    await this.db.run(`INSERT INTO mqtt_counters (fleet, reason, n) VALUES ($1, $2, 1) ON CONFLICT (fleet, reason) DO UPDATE SET n = mqtt_counters.n + 1`, [fleet, reason]);
  }

  async mqttCounters(fleet: string): Promise<Record<string, number>> {
    const r = await this.db.all(`SELECT reason, n FROM mqtt_counters WHERE fleet = $1`, [fleet]);
    return Object.fromEntries(r.map((x) => [x.reason as string, Number(x.n)]));
  }
}

function requestOf(r: Record<string, unknown>): AgentRequestRecord {
  return {
    requestId: r.request_id as string,
    walletId: r.wallet_id as string,
    grantId: (r.grant_id as string | null) ?? null,
    requestDigest: r.request_digest as string,
    status: r.status as AgentRequestRecord['status'],
    signed: JSON.parse(r.signed_json as string),
    approvals: JSON.parse(r.approvals_json as string),
    detail: r.detail_json ? JSON.parse(r.detail_json as string) : null,
    result: r.result_json ? JSON.parse(r.result_json as string) : null,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    leaseOwner: (r.lease_owner as string | null) ?? null,
    leaseUntil: Number(r.lease_until ?? 0),
  };
}

function walletOf(r: Record<string, unknown>): WalletRecord {
  return {
    id: r.id as string,
    scheme: r.scheme as string,
    label: (r.label as string | null) ?? null,
    threshold: Number(r.threshold),
    participants: JSON.parse(r.participants as string),
    publicKey: r.public_key as string,
    address: r.address as string,
    network: (r.network as string | null) ?? null,
    publicJson: r.public_json as string,
    epoch: Number(r.epoch),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
