/**
 * A wallet's signed public package: what its holders agreed on at the end of a key generation or
 * refresh, checkable by anyone who pins the cluster's node identity keys (and the owner key).
 *
 * Before a holder activates a key it checks that every holder signed (with its Ed25519 identity key,
 * in a `result` envelope, src/signer/envelope.ts) the same `publicHash` of the package
 * `{ scheme, walletId, epoch, threshold, participants, group, network?, createDigest? }`. The server
 * keeps those envelopes and serves them at `GET /v1/public/wallets/:id` with the package and the
 * owner's `wallet_create` document. `verifyWalletPackage` redoes the holders' check offline, so a
 * server cannot show a 1-of-1 key as 2-of-3, another key, or another network: the threshold, the
 * holders, the key and the address it returns come from what the holders signed, never from the
 * server's own fields (those are only compared with it).
 */
import { z } from 'zod';
import { controlDocDigest, verifyControlDoc } from '../control/documents.ts';
import { isScheme, schemeAddress, schemeChildPublic } from '../crypto/public.ts';
import type { BitcoinNetwork } from '../crypto/address.ts';
import type { GroupPublic } from '../crypto/types.ts';
import { FleetkeyError } from '../errors.ts';
import { publicHash, verifyEnvelope, type Envelope } from '../signer/envelope.ts';
import { splitWalletId } from './wallet-id.ts';
import { isRecord } from '../audit/verify.ts';

const hex = (n?: number) => z.string().regex(n ? new RegExp(`^[0-9a-f]{${n}}$`) : /^([0-9a-f]{2})*$/);

const envelopeSchema = z.object({
  v: z.literal(1),
  session: z.string().max(80),
  kind: z.literal('result'),
  round: z.literal(0),
  from: z.string().max(64),
  body: z.strictObject({ walletId: z.string().max(80), epoch: z.number().int().min(0), publicHash: hex(64) }),
  sig: hex(128),
});

/** The package as stored and served (`package` of `GET /v1/public/wallets/:id`). */
export const walletPackageSchema = z.strictObject({
  public: z
    .object({
      scheme: z.string(),
      walletId: z.string().max(80),
      epoch: z.number().int().min(0),
      threshold: z.number().int().min(1).max(64),
      participants: z.array(z.strictObject({ index: z.number().int().min(1).max(255), nodeId: z.string().min(1).max(64) })).min(1).max(64),
      group: z.object({ publicKey: hex() }).passthrough(),
      network: z.string().max(32).optional(),
      createDigest: hex(64).optional(),
    })
    .passthrough(),
  /** One `result` envelope per holder, each signed by that holder's node identity key. */
  signatures: z.array(envelopeSchema).max(64),
  /** The owner-signed `wallet_create` document the key was generated under. */
  create: z.unknown().optional(),
});
export type WalletPackage = z.infer<typeof walletPackageSchema>;

/** Node identity keys (hex Ed25519) by node id: a map, or a `peers.json`-style list. */
export type NodeKeys = Record<string, string> | readonly { nodeId: string; signPub: string }[];

export interface VerifyWalletPackageOptions {
  /** The cluster's node identity keys, pinned by the verifier (the operator's peers.json). */
  nodeKeys: NodeKeys;
  /** The owner's public key (hex Ed25519): when given, the package must carry a matching owner-signed wallet_create. */
  ownerKey?: string | readonly string[];
}

/** What the holders signed, as a verifier sees it. */
export interface VerifiedWallet {
  /** The wallet asked for (a child `<root>.<index>` is derived from its root's package). */
  id: string;
  scheme: string;
  threshold: number;
  signers: number;
  holders: string[];
  publicKey: string;
  address: string;
  network: string | null;
  epoch: number;
}

/**
 * Checks a wallet's signed public package (or a whole `GET /v1/public/wallets/:id` answer, whose own
 * fields must then agree with the package) and returns the facts the holders signed. Throws
 * `bad_signature` (a holder's signature missing, by an unpinned key, or invalid; the owner document
 * missing or not the owner's) or `validation_failed` (malformed, or the package and what is claimed
 * or ordered differ), naming the field.
 */
export function verifyWalletPackage(input: unknown, o: VerifyWalletPackageOptions): VerifiedWallet {
  const view = isRecord(input) && 'package' in input ? input : undefined;
  if (view && (view.package === null || view.package === undefined)) throw new FleetkeyError('bad_signature', 'the wallet has no signed public package (created before packages were kept)');
  const pkg = parseWith(walletPackageSchema, view ? view.package : input, 'package');
  const pub = pkg.public;
  if (!isScheme(pub.scheme)) throw invalid('package.public.scheme', `unknown scheme ${pub.scheme}`);
  const n = pub.participants.length;
  if (pub.threshold > n || (pub.threshold === 1 && n > 1)) throw invalid('package.public.threshold', `threshold ${pub.threshold} of ${n} holders`);
  if (new Set(pub.participants.map((p) => p.nodeId)).size !== n || pub.participants.some((p, i) => p.index !== i + 1))
    throw invalid('package.public.participants', 'holders must be distinct, with indexes 1..n in order');

  // Every holder signed this very package, with the key the verifier pins for it.
  const keys = new Map(Array.isArray(o.nodeKeys) ? (o.nodeKeys as { nodeId: string; signPub: string }[]).map((k) => [k.nodeId, k.signPub.toLowerCase()]) : Object.entries(o.nodeKeys as Record<string, string>).map(([k, v]) => [k, v.toLowerCase()]));
  const hash = publicHash(pub);
  for (const p of pub.participants) {
    const signPub = keys.get(p.nodeId);
    if (!signPub) throw new FleetkeyError('bad_signature', `no pinned identity key for holder ${p.nodeId}`, { details: { nodeId: p.nodeId } });
    const e = pkg.signatures.find((s) => s.from === p.nodeId);
    if (!e) throw new FleetkeyError('bad_signature', `holder ${p.nodeId} did not sign the package`, { details: { nodeId: p.nodeId } });
    verifyEnvelope(e as Envelope, { nodeId: p.nodeId, signPub, encPub: '', url: '' });
    if (e.body.walletId !== pub.walletId || e.body.epoch !== pub.epoch || e.body.publicHash !== hash)
      throw new FleetkeyError('bad_signature', `holder ${p.nodeId} signed another package`, { details: { nodeId: p.nodeId } });
  }

  // The owner ordered exactly this wallet.
  if (o.ownerKey !== undefined) {
    if (pkg.create === undefined || !pub.createDigest) throw new FleetkeyError('bad_signature', 'the package carries no owner-signed wallet_create document');
    const doc = verifyControlDoc(pkg.create, typeof o.ownerKey === 'string' ? [o.ownerKey] : o.ownerKey);
    if (doc.kind !== 'wallet_create') throw invalid('package.create.doc.kind', 'not a wallet_create document');
    if (controlDocDigest(doc) !== pub.createDigest) throw invalid('package.public.createDigest', 'the holders signed under another wallet_create document');
    if (doc.walletId !== pub.walletId || doc.scheme !== pub.scheme || doc.threshold !== pub.threshold || doc.holders.join(',') !== pub.participants.map((p) => p.nodeId).join(',') || (doc.network ?? null) !== (pub.network ?? null))
      throw invalid('package.create', 'the package is not the wallet the owner ordered');
  }

  const id = view && typeof view.id === 'string' ? view.id : pub.walletId;
  const { rootId, index } = splitWalletId(id);
  if (rootId !== pub.walletId) throw invalid('id', `the package is for wallet ${pub.walletId}, not ${rootId}`);
  const group: GroupPublic = index === undefined ? (pub.group as unknown as GroupPublic) : schemeChildPublic(pub.scheme, pub.group as unknown as GroupPublic, index);
  const network = pub.network ?? null;
  const verified: VerifiedWallet = {
    id,
    scheme: pub.scheme,
    threshold: pub.threshold,
    signers: n,
    holders: pub.participants.map((p) => p.nodeId),
    publicKey: group.publicKey,
    address: schemeAddress(pub.scheme, group.publicKey, pub.scheme === 'secp256k1-schnorr' ? ((network ?? 'mainnet') as BitcoinNetwork) : undefined),
    network,
    epoch: pub.epoch,
  };
  if (view) assertSameClaims(view, verified);
  return verified;
}

/** A server's claims about a wallet (`POST /v1/wallets`, `GET /v1/wallets/:id`, …) must be what the holders signed. */
export function assertSameClaims(claimed: Record<string, unknown>, verified: VerifiedWallet): void {
  for (const k of ['id', 'scheme', 'publicKey', 'address', 'threshold', 'signers', 'network', 'epoch'] as const)
    if (k in claimed && claimed[k] !== undefined && claimed[k] !== verified[k])
      throw invalid(k, `the server says ${k} ${JSON.stringify(claimed[k])}, the holders signed ${JSON.stringify(verified[k])}`);
}


function invalid(path: string, message: string): FleetkeyError {
  return new FleetkeyError('validation_failed', `wallet package: ${path}: ${message}`, { details: { path } });
}

function parseWith<S extends z.ZodType>(schema: S, v: unknown, what: string): z.output<S> {
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0];
    throw invalid([what, ...i.path.map(String)].join('.'), i.message);
  }
  return r.data;
}
