/**
 * The owner-only recovery export (issue 11), the offline half:
 *   fleetkey recovery-key create --out FILE    an X25519 key pair; the secret stays in FILE (0600), offline
 *   fleetkey wallet export ID --recovery-key FILE
 * signs an `export` document with the owner key (10 minutes), has the server relay it to every
 * holder, checks each holder's signature on its box against the pinned node keys (recoverKey),
 * opens the t or more sealed shares with the recovery secret, interpolates the key
 * (src/crypto/export.ts), checks it against the wallet's public key, and prints it in the chain's form.
 */
import { writeFileSync } from 'node:fs';
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { controlDocDigest, signControlDoc, type ExportDoc } from '../control/index.ts';
import { readSecretKeyFile } from '../control/owner.ts';
import { boxSignedBy, formatKey, interpolate, matchesPublicKey, newRecoveryKey, openShare, recoveryPublicOf, scalarFrom } from '../crypto/export.ts';
import type { SchemeName } from '../crypto/schemes.ts';
import { FleetkeyError } from '../errors.ts';
import type { ExportAnswer } from '../server/export.ts';
import { peersOf, readManifest } from '../tls/manifest.ts';
import { api, need, print, type Flags } from './common.ts';
import { ownerSecretIfAny } from './control.ts';
import type { CliModule } from './module.ts';
import { pinnedNodeKeys } from './wallet-create.ts';

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

/**
 * Checks every box before opening any: it must come from a signer the CLI pins (the cluster
 * manifest's identity keys, never keys the server hands over), once per node and per party index,
 * and carry that node's signature over this order, this wallet, its public key, the node's index
 * and epoch, and the box itself. Only then are the boxes opened, checked to answer the same order,
 * wallet, index and epoch, and the key reconstructed and checked against the public key.
 */
export function recoverKey(answer: ExportAnswer, expected: { walletId: string; order: string }, pinned: readonly { nodeId: string; signPub: string }[], recoveryPub: Uint8Array, recoverySecret: Uint8Array): bigint {
  const scheme = answer.scheme as SchemeName;
  const { order } = expected;
  if (answer.walletId !== expected.walletId) throw new FleetkeyError('validation_failed', `the server answered for wallet ${answer.walletId}, not ${expected.walletId}`);
  const keyOf = new Map(pinned.map((p) => [p.nodeId, p.signPub.toLowerCase()]));
  const seenNodes = new Set<string>();
  const seenIndexes = new Set<number>();
  for (const s of answer.shares) {
    const signPub = keyOf.get(s.nodeId);
    if (!signPub) throw new FleetkeyError('bad_signature', `a share comes from ${s.nodeId}, which is not a signer of the pinned manifest: refused`, { details: { nodeId: s.nodeId } });
    if (seenNodes.has(s.nodeId) || seenIndexes.has(s.index)) throw new FleetkeyError('validation_failed', `two shares come from ${s.nodeId} or name party index ${s.index}: refused`, { details: { nodeId: s.nodeId } });
    seenNodes.add(s.nodeId);
    seenIndexes.add(s.index);
    const stmt = { order, walletId: expected.walletId, publicKey: answer.publicKey, nodeId: s.nodeId, index: s.index, epoch: s.epoch, box: s.box };
    if (typeof s.box !== 'string' || !/^([0-9a-f]{2})+$/.test(s.box) || typeof s.sig !== 'string' || !boxSignedBy(stmt, s.sig, signPub))
      throw new FleetkeyError('bad_signature', `the share of ${s.nodeId} is not signed by that node for this export order, wallet and public key (a box swapped, forged or from another export): refused`, { details: { nodeId: s.nodeId } });
  }
  const shares = answer.shares.map((s) => {
    const box = boxSchema.safeParse(openShare(s.box, recoveryPub, recoverySecret));
    if (!box.success) throw new FleetkeyError('validation_failed', `the share of ${s.nodeId} is malformed`);
    const b = box.data;
    if (b.order !== order || b.walletId !== answer.walletId || b.scheme !== scheme || b.index !== s.index || b.epoch !== s.epoch) throw new FleetkeyError('validation_failed', `the share of ${s.nodeId} answers another export order, wallet or index`);
    return { index: b.index, epoch: b.epoch, scalar: scalarFrom(scheme, b.scalar) };
  });
  if (new Set(shares.map((s) => s.epoch)).size > 1) throw new FleetkeyError('validation_failed', 'the shares are of different epochs (a refresh ran meanwhile): export again');
  if (shares.length < answer.threshold) throw new FleetkeyError('not_enough_signers', `${shares.length} shares, the key needs ${answer.threshold}`);
  const key = interpolate(scheme, shares.slice(0, answer.threshold));
  // Every share must lie on the same polynomial: with more than t, all of them give the same key.
  if (!matchesPublicKey(scheme, key, answer.publicKey) || (shares.length > answer.threshold && interpolate(scheme, shares) !== key))
    throw new FleetkeyError('bad_share', 'the shares do not reconstruct the wallet\'s public key');
  return key;
}

/** The signers' identity keys: from `--manifest FILE` (the cluster manifest), else FLEETKEY_NODE_KEYS / `fleetkey dev`'s. */
function exportNodeKeys(flags: Flags): { nodeId: string; signPub: string }[] {
  const file = flags.manifest as string | undefined;
  return file ? peersOf(readManifest(file)) : pinnedNodeKeys();
}

export const recoveryCli: CliModule = {
  nouns: ['wallet', 'recovery-key'],
  options: { 'recovery-key': { type: 'string' }, out: { type: 'string' }, 'owner-key': { type: 'string' } },
  help: `Recovery export (owner only; off unless the wallet's policy says "exportable": true)
  fleetkey recovery-key create --out FILE             X25519 recovery key pair: the secret in FILE (0600, keep it offline), prints the public key
  fleetkey wallet export ID --recovery-key FILE [--owner-key FILE] [--manifest FILE]
                                                      every holder checks the owner's export order and the policy, logs the export,
                                                      seals its share to the recovery key and signs the box with its node key; each
                                                      box's signature is checked against the node keys pinned in the manifest
                                                      (else FLEETKEY_NODE_KEYS / .fleetkey/cluster.json); the key is rebuilt here, offline,
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
    const nodeKeys = exportNodeKeys(flags);
    const now = Date.now();
    const doc: ExportDoc = { kind: 'export', walletId: id, recipient: bytesToHex(pub), issuedAt: now, expiresAt: now + EXPORT_TTL_MS };
    const answer = await api<ExportAnswer>('POST', `/v1/wallets/${encodeURIComponent(id)}/export`, { order: signControlDoc(doc, owner) });
    const key = recoverKey(answer, { walletId: id, order: controlDocDigest(doc) }, nodeKeys, pub, secret);
    const formatted = formatKey(answer.scheme as SchemeName, key, answer.network ?? undefined);
    const out = { walletId: answer.walletId, scheme: answer.scheme, publicKey: answer.publicKey, address: answer.address, holders: answer.shares.map((s) => s.nodeId), ...formatted };
    print(flags, out, () => Object.entries(out).map(([k, v]) => `${k.padEnd(16)} ${Array.isArray(v) ? v.join(', ') : v}`).join('\n'));
    return 0;
  },
};
