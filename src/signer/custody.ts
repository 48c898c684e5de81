/**
 * What a new holder of a wallet must know before its share may sign (issue 11): the owner-signed
 * documents that govern the wallet (policy versions, grants naming it, their revocations, the
 * approver registry, the standing of the wallet and of its derived device wallets) and the
 * requests the old holders counted against its limits.
 *
 * Each old holder reports what it holds in an envelope signed with its pinned identity key
 * (`custodyReport`). A new holder activates its share only with reports from at least t_old
 * distinct members of the committee it received the share from (recorded when it joined the
 * reshare session, not taken from the relay), and first:
 *  - stores every document through ControlStore.putControlDoc, which verifies the owner's
 *    signature: a report cannot invent a grant or drop a revocation it does not hold, and a
 *    revocation any one reporter holds reaches the new holder;
 *  - takes the union of the reported requests by request id (ControlStore.importCounted): each
 *    counter starts at least at the largest value any reporter had, and a request counted by
 *    several holders still counts once. Under strict counters every honest old holder counted
 *    every signed request, so one honest reporter among the t_old is enough for exact limits.
 *
 * The server collects the reports when it delivers the commit, after the new epoch is recorded:
 * the old epoch no longer signs then, so nothing it counts can be missing from the reports.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { signedControlDocSchema, type SignedControlDoc } from '../control/schemas.ts';
import type { CarriedRequest, ControlStore } from '../store/control-store.ts';
import { verifyEnvelope, type Envelope, type PeerInfo } from './envelope.ts';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const carriedSchema = z.strictObject({
  requestId: z.string().min(1).max(128),
  walletId: z.string().min(1).max(80),
  grantId: z.string().max(128).nullable(),
  requestDigest: hex64,
  reservedAt: z.number().int().min(0),
  expiresAt: z.number().int().min(0),
  usage: z
    .array(
      z.strictObject({
        idx: z.number().int().min(0).max(1000),
        counter: z.string().min(1).max(400),
        counterKey: z.string().min(1).max(300),
        kind: z.enum(['sum', 'count']),
        amount: z.string().regex(/^\d{1,78}$/),
        at: z.number().int().min(0),
        keepUntil: z.number().int().min(0),
      }),
    )
    .max(64),
});

export const custodyBodySchema = z.strictObject({
  custody: z.literal(true),
  walletId: z.string().min(1).max(80),
  at: z.number().int().min(0),
  docs: z.array(signedControlDocSchema).max(200_000),
  requests: z.array(carriedSchema).max(1_000_000),
});
export type CustodyBody = z.infer<typeof custodyBodySchema>;

/** The session name of a custody report: binds it to one wallet and the epoch it hands over to. */
export const custodySession = (walletId: string, epoch: number) => `custody:${walletId}:${epoch}`.slice(0, 80);

/** The committee a new holder received its share from, recorded at the reshare's start. */
export interface PreviousCommittee {
  epoch: number;
  threshold: number;
  nodes: string[];
}
export const previousKey = (walletId: string, epoch: number) => `reshare_from:${walletId}:${epoch}`;

/** Everything this node holds that governs `rootId` and its derived wallets. */
export async function custodyBody(control: ControlStore, rootId: string, now = Date.now()): Promise<CustodyBody> {
  const mine = (id: string) => id === rootId || id.startsWith(`${rootId}.`);
  const approvers = await control.documents('approvers');
  const policies = (await control.documents('policy')).filter((d) => mine((d.doc as { walletId: string }).walletId));
  const grants = (await control.documents('grant')).filter((d) => (d.doc as { wallets: string[] }).wallets.some(mine));
  const ids = new Set(grants.map((g) => (g.doc as { id: string }).id));
  const revocations = (await control.documents('revocation')).filter((d) => ids.has((d.doc as { grantId: string }).grantId));
  const statuses = (await control.documents('wallet_status')).filter((d) => mine((d.doc as { walletId: string }).walletId));
  return { custody: true, walletId: rootId, at: now, docs: [...approvers, ...policies, ...grants, ...revocations, ...statuses], requests: await control.countedRequests(rootId, now) };
}

/**
 * Checks the reports and takes what they carry into `control`; throws unless at least
 * `prev.threshold` distinct members of `prev.nodes` signed a report for this wallet and epoch.
 * Returns the number of documents stored and requests added, for the audit entry.
 */
export async function takeCustody(
  control: ControlStore,
  o: { walletId: string; epoch: number; prev: PreviousCommittee; reports: readonly Envelope[]; peer: (nodeId: string) => PeerInfo },
): Promise<{ from: string[]; docs: number; requests: number }> {
  const bodies = new Map<string, CustodyBody>();
  for (const e of o.reports) {
    if (!o.prev.nodes.includes(e.from) || bodies.has(e.from)) continue;
    if (e.session !== custodySession(o.walletId, o.epoch) || e.round !== 0) throw new FleetkeyError('validation_failed', `custody report from ${e.from} is for another wallet or epoch`, { details: { from: e.from } });
    verifyEnvelope(e, o.peer(e.from));
    const b = custodyBodySchema.safeParse(e.body);
    if (!b.success || b.data.walletId !== o.walletId) throw new FleetkeyError('validation_failed', `custody report from ${e.from} is malformed`, { details: { from: e.from } });
    bodies.set(e.from, b.data);
  }
  if (bodies.size < o.prev.threshold)
    throw new FleetkeyError('custody_missing', `a new holder needs the policy, grants and counters of ${o.prev.threshold} old holders; got ${bodies.size}`, { details: { have: [...bodies.keys()], need: o.prev.threshold } });
  let docs = 0;
  // Oldest versions first, so a registry or policy history arrives in order; a version already held is a conflict, and fine.
  const all = [...bodies.values()].flatMap((b) => b.docs as SignedControlDoc[]);
  const rank = (d: SignedControlDoc) => ((d.doc as { version?: number; seq?: number }).version ?? (d.doc as { seq?: number }).seq ?? 0);
  for (const d of all.sort((a, b) => rank(a) - rank(b))) {
    try {
      if ((await control.putControlDoc(d)).status === 'stored') docs++;
    } catch (err) {
      if (!(err instanceof FleetkeyError && err.code === 'conflict')) throw err;
    }
  }
  const byId = new Map<string, CarriedRequest>();
  for (const b of bodies.values()) for (const r of b.requests) if (!byId.has(r.requestId)) byId.set(r.requestId, r);
  const requests = await control.importCounted(o.walletId, [...byId.values()]);
  return { from: [...bodies.keys()], docs, requests };
}
