/**
 * The server's copy of each wallet's signed public package per epoch (src/enforce/wallet-package.ts):
 * the package, every holder's signed `result` envelope and the owner's `wallet_create` document, served
 * at `GET /v1/public/wallets/:id` so anyone can check it. Nothing secret; its own migration set.
 */
import type { Db } from './db.ts';
import type { WalletPackage } from '../enforce/wallet-package.ts';

export const PACKAGE_MIGRATIONS = [`CREATE TABLE wallet_packages (wallet_id TEXT NOT NULL, epoch INTEGER NOT NULL, package_json TEXT NOT NULL, PRIMARY KEY (wallet_id, epoch))`];

export class PackageStore {
  constructor(readonly db: Db) {}

  async init(): Promise<void> {
    await this.db.migrate('wallet_packages', PACKAGE_MIGRATIONS);
  }

  /** Stores (or replaces: a refresh that was never committed may be run again) the package of `epoch`. */
  async put(walletId: string, epoch: number, pkg: WalletPackage): Promise<void> {
    await this.db.run(
      `INSERT INTO wallet_packages (wallet_id, epoch, package_json) VALUES ($1, $2, $3) ON CONFLICT (wallet_id, epoch) DO UPDATE SET package_json = excluded.package_json`,
      [walletId, epoch, JSON.stringify(pkg)],
    );
  }

  async get(walletId: string, epoch: number): Promise<WalletPackage | undefined> {
    const r = await this.db.all(`SELECT package_json FROM wallet_packages WHERE wallet_id = $1 AND epoch = $2`, [walletId, epoch]);
    return r[0] ? (JSON.parse(r[0].package_json as string) as WalletPackage) : undefined;
  }
}
