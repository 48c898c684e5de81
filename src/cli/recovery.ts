/**
 * The owner-only recovery export (issue 11), the offline half:
 *   fleetkey recovery-key create --out FILE    an X25519 key pair; the secret stays in FILE (0600), offline
 *   fleetkey wallet export ID --recovery-key FILE
 * signs an `export` document with the owner key (10 minutes), has the server relay it to every
 * holder, opens the t or more sealed shares with the recovery secret, interpolates the key
 * (src/crypto/export.ts), checks it against the wallet's public key, and prints it in the chain's form.
 */
import { writeFileSync } from 'node:fs';
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { controlDocDigest, signControlDoc, type ExportDoc } from '../control/index.ts';
import { readSecretKeyFile } from '../control/owner.ts';
import { formatKey, interpolate, matchesPublicKey, newRecoveryKey, openShare, recoveryPublicOf, scalarFrom } from '../crypto/export.ts';
import type { SchemeName } from '../crypto/schemes.ts';
import { FleetkeyError } from '../errors.ts';
import type { ExportAnswer } from '../server/export.ts';
import { api, need, print, type Flags } from './common.ts';
import { ownerSecretIfAny } from './control.ts';
import type { CliModule } from './module.ts';

const EXPORT_TTL_MS = 10 * 60_000;
const boxSchema = z.strictObject({
  v: z.literal(1),
  scheme: z.enum(['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1']),
  walletId: z.string(),
  epoch: z.number().int().min(0),
  index: z.number().int().min(1).max(255),
  scalar: z.string().regex(/^[0-9a-f]{64}$/),
  order: z.string().regex(/^[0-9a-f]{64}$/),
});

/** Opens every box, checks each answers this order for this wallet, and reconstructs the key from them. */
export function recoverKey(answer: ExportAnswer, order: string, recoveryPub: Uint8Array, recoverySecret: Uint8Array): bigint {
  const scheme = answer.scheme as SchemeName;
  const shares = answer.shares.map((s) => {
    const box = boxSchema.safeParse(openShare(s.box, recoveryPub, recoverySecret));
    if (!box.success) throw new FleetkeyError('validation_failed', `the share of ${s.nodeId} is malformed`);
    const b = box.data;
    if (b.order !== order || b.walletId !== answer.walletId || b.scheme !== scheme) throw new FleetkeyError('validation_failed', `the share of ${s.nodeId} answers another export order or wallet`);
    return { index: b.index, epoch: b.epoch, scalar: scalarFrom(scheme, b.scalar) };
  });
  if (new Set(shares.map((s) => s.index)).size !== shares.length) throw new FleetkeyError('validation_failed', 'two shares name the same party index');
  if (new Set(shares.map((s) => s.epoch)).size > 1) throw new FleetkeyError('validation_failed', 'the shares are of different epochs (a refresh ran meanwhile): export again');
  if (shares.length < answer.threshold) throw new FleetkeyError('not_enough_signers', `${shares.length} shares, the key needs ${answer.threshold}`);
  const key = interpolate(scheme, shares.slice(0, answer.threshold));
  // Every share must lie on the same polynomial: with more than t, all of them give the same key.
  if (!matchesPublicKey(scheme, key, answer.publicKey) || (shares.length > answer.threshold && interpolate(scheme, shares) !== key))
    throw new FleetkeyError('bad_share', 'the shares do not reconstruct the wallet\'s public key');
  return key;
}

export const recoveryCli: CliModule = {
  nouns: ['wallet', 'recovery-key'],
  options: { 'recovery-key': { type: 'string' }, out: { type: 'string' }, 'owner-key': { type: 'string' } },
  help: `Recovery export (owner only; off unless the wallet's policy says "exportable": true)
  fleetkey recovery-key create --out FILE             X25519 recovery key pair: the secret in FILE (0600, keep it offline), prints the public key
  fleetkey wallet export ID --recovery-key FILE [--owner-key FILE]
                                                      every holder checks the owner's export order and the policy, logs the export,
                                                      and seals its share to the recovery key; the key is rebuilt here, offline,
                                                      checked against the wallet's public key, and printed (hex / WIF / Ed25519 scalar)`,
  async run(noun, verb, args, flags: Flags) {
    if (noun === 'recovery-key' && verb === 'create') {
      const out = need(flags, 'out');
      const k = newRecoveryKey();
      try {
        writeFileSync(out, k.secretKey + '\n', { mode: 0o600, flag: 'wx' });
      } catch {
        throw new FleetkeyError('conflict', `${out} exists (or cannot be written); a recovery key is never overwritten`, { details: { field: '--out' } });
      }
      print(flags, { publicKey: k.publicKey, file: out }, () => `recovery public key ${k.publicKey}\n  secret in ${out} (keep it offline; whoever holds it opens every export made to this key)`);
      return 0;
    }
    if (noun !== 'wallet' || verb !== 'export') return undefined;
    const id = args[0];
    if (!id) throw new FleetkeyError('validation_failed', 'usage: fleetkey wallet export ID --recovery-key FILE');
    const secret = readSecretKeyFile(need(flags, 'recovery-key'), 'recovery key');
    const pub = recoveryPublicOf(secret);
    const owner = ownerSecretIfAny(flags);
    if (!owner) throw new FleetkeyError('bad_request', 'an export is ordered by the owner: pass --owner-key FILE or set FLEETKEY_OWNER_KEY_FILE');
    const now = Date.now();
    const doc: ExportDoc = { kind: 'export', walletId: id, recipient: bytesToHex(pub), issuedAt: now, expiresAt: now + EXPORT_TTL_MS };
    const answer = await api<ExportAnswer>('POST', `/v1/wallets/${encodeURIComponent(id)}/export`, { order: signControlDoc(doc, owner) });
    const key = recoverKey(answer, controlDocDigest(doc), pub, secret);
    const formatted = formatKey(answer.scheme as SchemeName, key, answer.network ?? undefined);
    const out = { walletId: answer.walletId, scheme: answer.scheme, publicKey: answer.publicKey, address: answer.address, holders: answer.shares.map((s) => s.nodeId), ...formatted };
    print(flags, out, () => Object.entries(out).map(([k, v]) => `${k.padEnd(16)} ${Array.isArray(v) ? v.join(', ') : v}`).join('\n'));
    return 0;
  },
};
