/**
 * `fleetkey signer backup` and `fleetkey signer restore` (src/signer/backup.ts says what a backup
 * holds and why a restored node never reuses a nonce). The KEK is the node's own: DATA/kek.key or
 * FLEETKEY_KEK (never created here), or the HSM key named by --kek pkcs11:… / the --pkcs11-* flags.
 */
import { join, resolve } from 'node:path';
import { FleetkeyError } from '../errors.ts';
import { backupSigner, restoreSigner } from '../signer/backup.ts';
import { pkcs11FromFlags } from '../signer/pkcs11.ts';
import { loadKek, makeSealer, type Sealer } from '../signer/seal.ts';
import { need, print, type Flags } from './common.ts';
import type { CliModule } from './module.ts';

/** The node's sealer for `dataDir`, and how to let go of it. */
async function sealerFor(flags: Flags, dataDir: string): Promise<{ sealer: Sealer; close(): void }> {
  const config = pkcs11FromFlags(flags);
  if (config) {
    const { HsmKek } = await import('../signer/pkcs11.ts');
    const hsm = await HsmKek.open(config);
    return { sealer: hsm.sealer, close: () => hsm.close() };
  }
  try {
    return { sealer: makeSealer(loadKek(join(dataDir, 'kek.key'), process.env.FLEETKEY_KEK, false)), close: () => undefined };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FleetkeyError('not_found', `no KEK: put the node's kek.key in ${dataDir} (mode 0600), set FLEETKEY_KEK, or name its HSM key with --kek pkcs11:…`, { details: { field: '--data' } });
    throw e;
  }
}

export const signerBackupCli: CliModule = {
  nouns: ['signer'],
  options: { out: { type: 'string' }, in: { type: 'string' } },
  help: `Signer backup (sealed under the node's own KEK; a restored node refuses every nonce it had at backup time)
  fleetkey signer backup --data DIR --out FILE [--db FILE] [--kek pkcs11:…]   safe while the signer runs
  fleetkey signer restore --in FILE --data DIR [--kek pkcs11:…]               into a fresh DIR holding the same KEK
                                                                               (DIR/kek.key, FLEETKEY_KEK or the HSM)`,
  async run(_noun, verb, _args, flags) {
    if (verb !== 'backup' && verb !== 'restore') return undefined;
    const dataDir = resolve(need(flags, 'data'));
    const k = await sealerFor(flags, dataDir);
    try {
      if (verb === 'backup') {
        const r = await backupSigner({ dataDir, out: resolve(need(flags, 'out')), sealer: k.sealer, db: flags.db as string | undefined });
        print(flags, r, () => `backup ${r.backupId} of ${r.nodeId} written (${r.bytes} bytes, sealed under its KEK)\n  ${r.pooledNonces} pooled nonces in it will be refused after a restore`);
      } else {
        const r = await restoreSigner({ input: resolve(need(flags, 'in')), dataDir, sealer: k.sealer });
        print(flags, r, () => `restored ${r.nodeId} from ${r.backupId} (taken ${new Date(r.takenAt).toISOString()})\n  ${r.erasedNonces} pooled nonces erased and recorded as consumed; audit chain continues from entry ${r.auditHead} (restore logged as ${r.restoreEntry})\n  counters, documents and audit entries after the backup are not in it: re-send the owner's documents since then`);
      }
      return 0;
    } finally {
      k.close();
    }
  },
};
