/**
 * The server's own state: wallets (public data only: the group public package, who holds the
 * shares, the current epoch) and the commits still owed to signers after a refresh.
 */
import type { Db } from './db.ts';

export const SERVER_MIGRATIONS = [
  `CREATE TABLE wallets (
     id TEXT PRIMARY KEY, scheme TEXT NOT NULL, label TEXT, threshold INTEGER NOT NULL,
     participants TEXT NOT NULL, public_key TEXT NOT NULL, address TEXT NOT NULL, network TEXT,
     public_json TEXT NOT NULL, epoch INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE TABLE pending_commits (
     wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL, node_id TEXT NOT NULL, evidence TEXT NOT NULL,
     PRIMARY KEY (wallet_id, epoch, node_id))`,
];

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
   * Moves a wallet to a new epoch (after a refresh) and records, in the same transaction, the
   * commits still to be delivered to each signer, so a crash cannot leave a signer behind for good.
   */
  async advanceEpoch(id: string, fromEpoch: number, publicJson: string, owed: { nodeId: string; evidence: string }[]): Promise<boolean> {
    return this.db.tx(async (q) => {
      const n = await q.run(`UPDATE wallets SET epoch = $1, public_json = $2, updated_at = $3 WHERE id = $4 AND epoch = $5`, [
        fromEpoch + 1,
        publicJson,
        Date.now(),
        id,
        fromEpoch,
      ]);
      if (n !== 1) return false;
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
