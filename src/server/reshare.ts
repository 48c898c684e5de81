/**
 * `POST /v1/wallets/:id/reshare` (`fleetkey wallet reshare ID --to NODE,… [--threshold T]`): moves a
 * wallet to a new committee, same public key, same addresses (src/crypto/reshare.ts).
 *
 *  1. t_old current holders deal (those staying in the committee first); the new committee receives.
 *  2. ecdsa-secp256k1 only: the new committee runs the DKLs23 pairwise set-up (`pairs` session).
 *  3. Every party signed the same public package; the server records the new epoch, committee and
 *     the deliveries it owes (commits to new holders, retirements to holders that leave) in one
 *     transaction, then delivers them. A new holder activates only with every new holder's signed
 *     result (SignerNode.commit); a leaving holder erases its share and nonces only with them
 *     (SignerNode.retire). Until the new epoch is recorded, the old one keeps signing.
 *
 * The move is the owner's order (`wallet_reshare`, src/enforce/wallet-reshare.ts), sent by the CLI
 * (or written by a server that holds the owner key, `fleetkey dev`) and relayed to every node of the
 * session, each of which checks it before dealing or receiving.
 *
 * The coordinator stays untrusted: every check that matters is made by the signer nodes.
 */
import { randomUUID } from 'node:crypto';
import { FleetkeyError } from '../errors.ts';
import { verifyControlDoc } from '../control/documents.ts';
import { parseOrThrow, signedControlDocSchema, walletReshareDocSchema, type SignedControlDoc, type WalletReshareDoc } from '../control/schemas.ts';
import { newId } from '../http/common.ts';
import { pausePoint } from '../pause.ts';
import { publicHash, type Envelope } from '../signer/envelope.ts';
import type { SharePublic } from '../signer/node.ts';
import { LEAVING_BASE } from '../signer/reshare.ts';
import type { Participant } from '../store/server-store.ts';
import type { WalletPackage } from '../enforce/wallet-package.ts';
import { splitWalletId } from '../enforce/authorize.ts';
import { walletView, type Coordinator, type WalletView } from './coordinator.ts';

const ROUND_TIMEOUT_MS = 180_000;

/**
 * How long a reshare holds its wallet's lock in the store (the wallet_jobs row): longer than a slow
 * run (two sessions of ROUND_TIMEOUT_MS rounds at worst), short enough that a lock whose server died
 * frees the wallet the same day.
 */
const LOCK_MS = 30 * 60_000;
/** The lease, shortened by FLEETKEY_RESHARE_LEASE_MS (tests of a server that dies holding it). */
const lockMs = () => Number(process.env.FLEETKEY_RESHARE_LEASE_MS) || LOCK_MS;

export interface ReshareRequest {
  to?: string[];
  threshold?: number;
  /** The owner-signed wallet_reshare order; without it, a server that holds the owner key writes one. */
  order?: unknown;
}

/** `lockOwner`: who holds the wallet's lock while the move runs (a node job names itself; default: this call). */
export async function reshareWallet(coord: Coordinator, walletId: string, req: ReshareRequest, lockOwner = `reshare:${randomUUID()}`): Promise<WalletView> {
  if (splitWalletId(walletId).index !== undefined)
    throw new FleetkeyError('validation_failed', 'a derived wallet follows its root: reshare the root', { details: { path: 'id' } });
  const w = await coord.store.getWallet(walletId);
  if (!w) throw new FleetkeyError('not_found', `no wallet ${walletId}`);
  const given = req.order !== undefined ? checkOrder(coord, w, req) : undefined;
  const to = given?.doc.holders ?? req.to ?? [];
  if (new Set(to).size !== to.length) throw new FleetkeyError('validation_failed', 'a node is named twice in --to', { details: { field: 'to' } });
  const known = new Set(coord.signers.peers().map((p) => p.nodeId));
  const unknown = to.filter((n) => !known.has(n));
  if (unknown.length) throw new FleetkeyError('unknown_node', `not signer nodes of this cluster: ${unknown.join(', ')}`, { details: { nodeIds: unknown } });
  const threshold = given?.doc.threshold ?? req.threshold ?? Math.min(w.threshold, to.length);
  if (!Number.isSafeInteger(threshold) || threshold < 2 || threshold > to.length)
    throw new FleetkeyError('validation_failed', `threshold ${threshold} must be in 2..${to.length} (the new committee)`, { details: { field: 'threshold' } });
  let order = given;
  if (!order) {
    if (!coord.holdsOwnerKey)
      throw new FleetkeyError('owner_authorization_required', 'this server holds no owner key: send the owner-signed wallet_reshare order as "order" (the fleetkey CLI signs it with --owner-key)');
    const now = Date.now();
    order = coord.ownerSign({ kind: 'wallet_reshare', orderId: newId('rso'), walletId, epoch: w.epoch, threshold, holders: to, issuedAt: now, expiresAt: now + 30 * 60_000 });
  }
  // The lock lives in the store: several servers on one database cannot run two reshares of one wallet.
  const owner = lockOwner;
  if (!(await coord.store.lockWallet(walletId, owner, 'reshare', Date.now() + lockMs())))
    throw new FleetkeyError('conflict', `a reshare of wallet ${walletId} is already running`, { details: { walletId, reason: 'wallet_locked' } });
  try {
    return await run(coord, w.id, to, threshold, order);
  } finally {
    await coord.store.unlockWallet(walletId, owner);
  }
}

async function run(coord: Coordinator, walletId: string, to: string[], threshold: number, order: SignedControlDoc<WalletReshareDoc>): Promise<WalletView> {
  const w = (await coord.store.getWallet(walletId))!;
  if (w.epoch !== order.doc.epoch) throw new FleetkeyError('conflict', `wallet ${walletId} moved to epoch ${w.epoch} since the order (epoch ${order.doc.epoch}) was signed`, { details: { walletId } });
  const current = JSON.parse(w.publicJson) as SharePublic;
  await coord.deliverOwedCommits(walletId);
  const involved = [...new Set([...to, ...w.participants.map((p) => p.nodeId)])];
  await Promise.all(involved.map((n) => coord.signers.probe(n, 800)));
  const downNew = to.filter((n) => !coord.signers.isUp(n));
  if (downNew.length) throw new FleetkeyError('not_enough_signers', `the new committee must be up: down ${downNew.join(', ')}`, { details: { down: downNew } });
  // Dealers: t_old holders that are up, those who stay first (fewer nodes in the session).
  const upOld = w.participants.filter((p) => coord.signers.isUp(p.nodeId));
  const dealers = [...upOld.filter((p) => to.includes(p.nodeId)), ...upOld.filter((p) => !to.includes(p.nodeId))].slice(0, w.threshold);
  if (dealers.length < w.threshold) throw new FleetkeyError('not_enough_signers', `a reshare needs ${w.threshold} current holders up, ${dealers.length} are`);
  const holders: Participant[] = to.map((nodeId, i) => ({ index: i + 1, nodeId }));
  const leaving = dealers.filter((d) => !to.includes(d.nodeId));
  const transport: Participant[] = [...holders, ...leaving.map((d, k) => ({ index: LEAVING_BASE + k, nodeId: d.nodeId }))];
  const base = { walletId, scheme: w.scheme, threshold, ...(w.network ? { network: w.network } : {}) };

  const dealt = await coord.runSession(
    transport.map((p) => p.nodeId),
    { kind: 'reshare', ...base, participants: transport, epoch: w.epoch, order, reshare: { dealers: dealers.map((d) => ({ index: d.index, nodeId: d.nodeId })), holders, current } },
    ROUND_TIMEOUT_MS,
  );
  let pub = agreed(dealt, transport.map((p) => p.nodeId));
  let results = dealt.results.filter((r) => to.includes(r.from));
  if (pub.group.publicKey !== w.publicKey) throw new FleetkeyError('cheating_signer', 'the reshared package has another public key; not committed');
  if (w.scheme === 'ecdsa-secp256k1') {
    // DKLs23: every new pair runs the OT and zero-sharing set-up again before the epoch can activate.
    const paired = await coord.runSession(to, { kind: 'pairs', ...base, participants: holders, epoch: w.epoch + 1 }, ROUND_TIMEOUT_MS);
    pub = agreed(paired, to);
    results = paired.results;
    if (pub.group.publicKey !== w.publicKey) throw new FleetkeyError('cheating_signer', 'the paired package has another public key; not committed');
  }
  await pausePoint('server', 'reshare:commit');
  const epoch = w.epoch + 1;
  const before = await coord.packages?.get(walletId, w.epoch);
  await coord.packages?.put(walletId, epoch, { public: pub as unknown as WalletPackage['public'], signatures: results as WalletPackage['signatures'], ...(before?.create !== undefined ? { create: before.create } : {}) });
  const commit = JSON.stringify({ walletId, epoch, results });
  // A new holder also needs the wallet's documents and counters from the old committee: collected at delivery (deliverOwedCommits).
  const join = JSON.stringify({ walletId, epoch, results, custodyFrom: w.participants.map((p) => p.nodeId) });
  const retire = JSON.stringify({ retire: true, walletId, epoch, public: pub, results });
  const stays = new Set(w.participants.map((p) => p.nodeId));
  const owed = [...holders.map((h) => ({ nodeId: h.nodeId, evidence: stays.has(h.nodeId) ? commit : join })), ...w.participants.filter((p) => !to.includes(p.nodeId)).map((p) => ({ nodeId: p.nodeId, evidence: retire }))];
  if (!(await coord.store.advanceEpoch(walletId, w.epoch, JSON.stringify(pub), owed, { threshold, participants: holders })))
    throw new FleetkeyError('conflict', 'wallet changed during reshare');
  await coord.store.dropPools(walletId);
  await coord.audit.append({ type: 'admin', outcome: 'wallet_reshared', data: { walletId, epoch, publicKey: w.publicKey, threshold, holders: to, from: w.participants.map((p) => p.nodeId), orderId: order.doc.orderId } });
  await pausePoint('server', 'reshare:deliver');
  await coord.deliverOwedCommits(walletId);
  return walletView((await coord.store.getWallet(walletId))!);
}

/** Every node of the session ended with the same public package; returns it. */
function agreed(s: { answers: { public?: SharePublic }[]; results: Envelope[] }, nodes: string[]): SharePublic {
  const pub = s.answers[0]?.public;
  if (!pub) throw new FleetkeyError('internal', 'a signer finished without a public package');
  const hash = publicHash(pub);
  for (const [i, r] of s.results.entries())
    if ((r.body as { publicHash?: string }).publicHash !== hash) throw new FleetkeyError('cheating_signer', `signer ${nodes[i]} ended with a different public package`, { details: { nodeId: nodes[i] } });
  return pub;
}

/**
 * The owner's order a caller sent, checked here as every node of the session will check it (so a bad
 * one fails before any lock or session): signed by a pinned owner key if the server pins any, not
 * expired, for this wallet at its current epoch; `to` / `threshold` sent beside it must be its own.
 */
function checkOrder(coord: Coordinator, w: { id: string; epoch: number }, req: ReshareRequest): SignedControlDoc<WalletReshareDoc> {
  const env = parseOrThrow(signedControlDocSchema, req.order, 'order');
  const doc = parseOrThrow(walletReshareDocSchema, env.doc, 'order.doc');
  if (coord.ownerKeys.length) verifyControlDoc(env, coord.ownerKeys);
  if (Date.now() >= doc.expiresAt) throw new FleetkeyError('request_expired', 'the wallet_reshare order has expired', { details: { walletId: doc.walletId, orderId: doc.orderId } });
  const differs = (field: string) => new FleetkeyError('forbidden', `the request's ${field} is not the one the owner's wallet_reshare order names`, { details: { field, walletId: w.id, orderId: doc.orderId } });
  if (doc.walletId !== w.id) throw differs('walletId');
  if (doc.epoch !== w.epoch) throw differs('epoch');
  if (req.to !== undefined && JSON.stringify(req.to) !== JSON.stringify(doc.holders)) throw differs('holders');
  if (req.threshold !== undefined && req.threshold !== doc.threshold) throw differs('threshold');
  return { doc, sig: env.sig, signer: env.signer };
}
