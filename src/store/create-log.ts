/**
 * A signer's durable record of the owner's `wallet_create` documents it has acted on: one wallet id,
 * one key generation, ever (src/enforce/wallet-create.ts). Its own migration set, next to the
 * signer's shares and nonces.
 */
import { FleetkeyError } from '../errors.ts';
import type { Db, Queryable } from './db.ts';

export const CREATE_LOG_MIGRATIONS = [`CREATE TABLE used_create_docs (wallet_id TEXT PRIMARY KEY, digest TEXT NOT NULL, used_at BIGINT NOT NULL)`];

export class CreateLog {
  constructor(readonly db: Db) {}

  async init(): Promise<void> {
    await this.db.migrate('wallet_create', CREATE_LOG_MIGRATIONS);
  }

  /**
   * Records `walletId`'s create document as used (durably, before the caller takes part). A wallet id
   * seen before, with this document or any other, is `conflict`: a document is never used twice.
   * With `q`, inside the caller's transaction (so the claim and its audit entry commit together).
   */
  async claim(walletId: string, digest: string, now = Date.now(), q: Queryable = this.db): Promise<void> {
    const n = await q.run(`INSERT INTO used_create_docs (wallet_id, digest, used_at) VALUES ($1, $2, $3) ON CONFLICT (wallet_id) DO NOTHING`, [walletId, digest, now]);
    if (n === 0) throw new FleetkeyError('conflict', `the wallet_create document for ${walletId} was already used on this node`, { details: { walletId, reason: 'create_document_used' } });
  }
}
