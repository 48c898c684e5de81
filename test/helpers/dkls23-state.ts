/**
 * Makes one signer's DKLs23 pairwise OT state wrong at rest, so that its peer appears to cheat: with
 * its Δ towards `peerIndex` flipped in one bit, that peer's round-1 message fails the KOS check at
 * this node. The node is stopped while its store is edited and started again afterwards.
 */
import { join } from 'node:path';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { keyFile, makeSealer } from '../../src/signer/seal.ts';
import { openDb } from '../../src/store/db.ts';
import { SignerStore } from '../../src/store/signer-store.ts';

export async function corruptPairwiseDelta(c: LocalCluster, signer: string, walletId: string, peerIndex: number): Promise<void> {
  await c.kill(signer);
  const dir = join(c.dataDir, signer);
  const db = await openDb({ kind: 'sqlite', path: join(dir, 'signer.db') });
  const sealer = makeSealer(keyFile(join(dir, 'kek.key')));
  const rec = (await new SignerStore(db).getActiveShare(walletId))!;
  const ctx = `share|${walletId}|${rec.epoch}`;
  const share = JSON.parse(new TextDecoder().decode(sealer.open(rec.sealed, ctx)));
  const d = hexToBytes(share.secret.pairs[String(peerIndex)].delta);
  d[0] ^= 1;
  share.secret.pairs[String(peerIndex)].delta = bytesToHex(d);
  await db.run(`UPDATE shares SET sealed = $1 WHERE wallet_id = $2`, [sealer.seal(utf8ToBytes(JSON.stringify(share)), ctx), walletId]);
  await db.close();
  await c.restart(signer);
}
