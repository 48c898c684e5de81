/**
 * What the nonce ledger (src/signer/nonce-ledger.ts) adds to each FROST signature share: taking
 * one seq out of the live set and the atomic, fsync'd replace of the ledger file in the data dir.
 * Measured with a live set of realistic size (many wallets' pools) in a temporary directory (so on
 * whatever disk the temp dir is), next to the SQLite transaction that consumes a nonce today.
 *
 *   node --import tsx bench/nonce-ledger.bench.ts [--n 500] [--live 5000]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from '@noble/hashes/utils.js';
import { NonceLedger } from '../src/signer/nonce-ledger.ts';
import { openDb } from '../src/store/db.ts';
import { SignerStore } from '../src/store/signer-store.ts';
import { report, timeAsync } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, live: { type: 'string' } } });
const N = Number(values.n ?? 500);
const LIVE = Number(values.live ?? 5000);

const dir = mkdtempSync(join(tmpdir(), 'fk-bench-ledger-'));
const ledger = await NonceLedger.open(join(dir, 'nonce-ledger.json'), randomBytes(32));
// Pools of 32 for LIVE/32 wallets, then N more to spend, spread across them (ranges split as they are spent).
for (let i = 0; i < LIVE / 32; i++) ledger.allocate(32);
const first = ledger.allocate(N);
const spend = await timeAsync(N, async (i) => {
  if (!ledger.spend(first + ((i * 7919) % N))) throw new Error('not live');
  await ledger.persist();
});
report('nonce-ledger spend + persist (per signature share)', { ...spend, live: ledger.liveCount() });

const store = new SignerStore(await openDb({ kind: 'sqlite', path: join(dir, 'signer.db') }));
await store.init();
await store.putNonces(Array.from({ length: N }, (_, i) => ({ id: `n${i}`, walletId: 'w', epoch: 0, sealed: 's', commitment: 'c', seq: i })));
const consume = await timeAsync(N, (i) => store.consumeNonce(`n${i}`, 'w', `r${i}`));
report('SQLite consumeNonce transaction (baseline, already paid per share)', { ...consume });
