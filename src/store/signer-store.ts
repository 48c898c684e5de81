/**
 * A signer node's own state: its sealed key shares (one per wallet and epoch), its sealed
 * pre-generated FROST nonces, and the log of consumed nonce ids. Everything secret arrives here
 * already sealed (AES-256-GCM, see src/signer/seal.ts); this layer never sees plaintext.
 */
import { FleetkeyError } from '../errors.ts';
import type { Db, Queryable } from './db.ts';

/** Work to do inside the same transaction (an audit entry), so both commit or neither does. */
export type TxHook = (q: Queryable) => Promise<unknown>;

export const SIGNER_MIGRATIONS = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE shares (
     wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL, scheme TEXT NOT NULL,
     status TEXT NOT NULL, sealed TEXT NOT NULL, public_json TEXT NOT NULL, public_hash TEXT NOT NULL,
     created_at BIGINT NOT NULL, PRIMARY KEY (wallet_id, epoch));
   CREATE TABLE nonces (
     id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL,
     sealed TEXT NOT NULL, commitment TEXT NOT NULL, created_at BIGINT NOT NULL);
   CREATE INDEX nonces_wallet ON nonces (wallet_id, epoch);
   CREATE TABLE consumed_nonces (id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, request_id TEXT, consumed_at BIGINT NOT NULL)`,
  `CREATE TABLE peer_bans (wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL, node_id TEXT NOT NULL, reason TEXT NOT NULL, at BIGINT NOT NULL,
     PRIMARY KEY (wallet_id, epoch, node_id))`,
  // Every protocol session id this node ever started, per kind: a session id is used once, ever (issue 16).
  `CREATE TABLE used_sessions (kind TEXT NOT NULL, session_id TEXT NOT NULL, wallet_id TEXT NOT NULL, at BIGINT NOT NULL,
     PRIMARY KEY (kind, session_id))`,
  // The nonce's place in the node's nonce ledger (src/signer/nonce-ledger.ts); NULL for nonces made before it (never used).
  `ALTER TABLE nonces ADD COLUMN seq BIGINT`,
];

export type ShareStatus = 'pending' | 'active';

export interface ShareRecord {
  walletId: string;
  epoch: number;
  scheme: string;
  status: ShareStatus;
  sealed: string;
  publicJson: string;
  publicHash: string;
}

export interface NonceRecord {
  id: string;
  walletId: string;
  epoch: number;
  sealed: string;
  commitment: string;
  /** Sequence number in the node's nonce ledger, sealed into the record's associated data (absent/null: made before the ledger). */
  seq?: number | null;
}

export type ConsumeResult = { ok: true; nonce: NonceRecord } | { ok: false; reason: 'consumed' | 'unknown' };

export class SignerStore {
  constructor(readonly db: Db) {}

  async init(): Promise<void> {
    await this.db.migrate('signer', SIGNER_MIGRATIONS);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.db.all(`SELECT value FROM meta WHERE key = $1`, [key]);
    return r[0]?.value as string | undefined;
  }

  /** Sets a value only if none exists; returns the value that is stored afterwards. */
  async setMeta(key: string, value: string): Promise<void> {
    await this.db.run(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, value]);
  }

  async initMeta(key: string, value: string): Promise<string> {
    await this.db.run(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value]);
    return (await this.getMeta(key))!;
  }

  /** Stores a freshly generated share as pending; it signs nothing until activated. */
  async putPendingShare(r: Omit<ShareRecord, 'status'>): Promise<void> {
    await this.db.tx(async (q) => {
      const existing = await q.all(`SELECT status FROM shares WHERE wallet_id = $1 AND epoch = $2`, [r.walletId, r.epoch]);
      if (existing[0]?.status === 'active') throw new Error('an active share already exists for this wallet and epoch');
      await q.run(`DELETE FROM shares WHERE wallet_id = $1 AND epoch = $2`, [r.walletId, r.epoch]);
      await q.run(
        `INSERT INTO shares (wallet_id, epoch, scheme, status, sealed, public_json, public_hash, created_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)`,
        [r.walletId, r.epoch, r.scheme, r.sealed, r.publicJson, r.publicHash, Date.now()],
      );
    });
  }

  /**
   * Makes `epoch` the wallet's active share and erases every other epoch's share and nonces in
   * the same transaction (proactive refresh is only worth anything if old shares are gone).
   * Idempotent: activating the already-active epoch is a no-op.
   */
  async activateShare(walletId: string, epoch: number, publicHash: string, hook?: TxHook): Promise<'activated' | 'already' | 'missing' | 'mismatch'> {
    return this.db.tx(async (q) => {
      const rows = await q.all(`SELECT status, public_hash FROM shares WHERE wallet_id = $1 AND epoch = $2`, [walletId, epoch]);
      if (!rows.length) return 'missing';
      if (rows[0].public_hash !== publicHash) return 'mismatch';
      if (rows[0].status === 'active') return 'already';
      await q.run(`UPDATE shares SET status = 'active' WHERE wallet_id = $1 AND epoch = $2`, [walletId, epoch]);
      await q.run(`DELETE FROM shares WHERE wallet_id = $1 AND epoch <> $2`, [walletId, epoch]);
      await q.run(`DELETE FROM nonces WHERE wallet_id = $1 AND epoch <> $2`, [walletId, epoch]);
      await hook?.(q);
      return 'activated';
    });
  }

  /**
   * Erases every share and nonce this node holds of a wallet, with `hook` (its audit entry) in the
   * same transaction: the node has left the wallet's committee (a reshare moved the key elsewhere).
   */
  async retireWallet(walletId: string, hook?: TxHook): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run(`DELETE FROM shares WHERE wallet_id = $1`, [walletId]);
      await q.run(`DELETE FROM nonces WHERE wallet_id = $1`, [walletId]);
      await hook?.(q);
    });
  }

  async getShare(walletId: string, epoch: number): Promise<ShareRecord | undefined> {
    const r = await this.db.all(`SELECT * FROM shares WHERE wallet_id = $1 AND epoch = $2`, [walletId, epoch]);
    return r[0] ? shareOf(r[0]) : undefined;
  }

  async getActiveShare(walletId: string): Promise<ShareRecord | undefined> {
    const r = await this.db.all(`SELECT * FROM shares WHERE wallet_id = $1 AND status = 'active'`, [walletId]);
    return r[0] ? shareOf(r[0]) : undefined;
  }

  async putNonces(list: NonceRecord[]): Promise<void> {
    const now = Date.now();
    await this.db.tx(async (q) => {
      for (const n of list)
        await q.run(`INSERT INTO nonces (id, wallet_id, epoch, sealed, commitment, created_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
          n.id,
          n.walletId,
          n.epoch,
          n.sealed,
          n.commitment,
          now,
          n.seq ?? null,
        ]);
    });
  }

  /**
   * Takes a nonce out for one use. The row is deleted and its id written to the consumed log in
   * one transaction that is durable before this resolves, so whatever happens next (a crash, a
   * retry, a second request naming the same id) the nonce can never be used again — as long as
   * the database is honest: against someone who can write it, the node's nonce ledger decides
   * (src/signer/nonce-ledger.ts), after this and before anything is computed from the nonce.
   */
  async consumeNonce(id: string, walletId: string, requestId: string, hook?: TxHook): Promise<ConsumeResult> {
    return this.db.tx(async (q) => {
      const rows = await q.all(`DELETE FROM nonces WHERE id = $1 AND wallet_id = $2 RETURNING id, wallet_id, epoch, sealed, commitment, seq`, [id, walletId]);
      if (!rows.length) {
        const used = await q.all(`SELECT 1 AS x FROM consumed_nonces WHERE id = $1`, [id]);
        return { ok: false, reason: used.length ? 'consumed' : 'unknown' };
      }
      await q.run(`INSERT INTO consumed_nonces (id, wallet_id, request_id, consumed_at) VALUES ($1, $2, $3, $4)`, [id, walletId, requestId, Date.now()]);
      await hook?.(q);
      const r = rows[0];
      return { ok: true, nonce: { id: r.id as string, walletId: r.wallet_id as string, epoch: Number(r.epoch), sealed: r.sealed as string, commitment: r.commitment as string, seq: r.seq === null || r.seq === undefined ? null : Number(r.seq) } };
    });
  }

  /**
   * Records `sessionId` as used for `kind`, inside the caller's transaction (the one that starts the
   * session), or throws `session_reused` if it ever was: DKLs23's pairwise OT state is keyed by the
   * session id, and a relay that could run the same id twice could make a malicious peer's OT
   * extension repeat (src/crypto/dkls23/README.md, "Session ids"). Kept forever (a few dozen bytes
   * per session); the primary key makes the check and the insert one atomic statement on both drivers.
   */
  claimSessionHook(kind: string, sessionId: string, walletId: string): TxHook {
    return async (q) => {
      const n = await q.run(`INSERT INTO used_sessions (kind, session_id, wallet_id, at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, session_id) DO NOTHING`, [kind, sessionId, walletId, Date.now()]);
      if (n === 0) throw new FleetkeyError('session_reused', `a ${kind} session ${sessionId} was already started on this node; session ids are used once`, { details: { session: sessionId, kind } });
    };
  }

  /** {@link claimSessionHook} in a transaction of its own (DKG and refresh, which start with no other write). */
  async claimSession(kind: string, sessionId: string, walletId: string): Promise<void> {
    await this.db.tx(this.claimSessionHook(kind, sessionId, walletId));
  }

  /** Records that this node stops signing `walletId` at `epoch` with `nodeId` (an abort it caused). */
  async banPeer(walletId: string, epoch: number, nodeId: string, reason: string): Promise<void> {
    await this.db.run(`INSERT INTO peer_bans (wallet_id, epoch, node_id, reason, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (wallet_id, epoch, node_id) DO NOTHING`, [walletId, epoch, nodeId, reason.slice(0, 500), Date.now()]);
  }

  /** The peers this node will not sign `walletId` with at `epoch`. */
  async bannedPeers(walletId: string, epoch: number): Promise<string[]> {
    const r = await this.db.all(`SELECT node_id FROM peer_bans WHERE wallet_id = $1 AND epoch = $2`, [walletId, epoch]);
    return r.map((x) => x.node_id as string);
  }

  /** The ledger sequence numbers of every stored nonce (the ledger drops live entries whose rows are gone). */
  async nonceSeqs(): Promise<number[]> {
    const r = await this.db.all(`SELECT seq FROM nonces WHERE seq IS NOT NULL`);
    return r.map((x) => Number(x.seq));
  }

  async countNonces(walletId: string): Promise<number> {
    const r = await this.db.all(`SELECT COUNT(*) AS n FROM nonces WHERE wallet_id = $1`, [walletId]);
    return Number(r[0].n);
  }

  async consumedCount(): Promise<number> {
    const r = await this.db.all(`SELECT COUNT(*) AS n FROM consumed_nonces`);
    return Number(r[0].n);
  }
}

function shareOf(r: Record<string, unknown>): ShareRecord {
  return {
    walletId: r.wallet_id as string,
    epoch: Number(r.epoch),
    scheme: r.scheme as string,
    status: r.status as ShareStatus,
    sealed: r.sealed as string,
    publicJson: r.public_json as string,
    publicHash: r.public_hash as string,
  };
}
