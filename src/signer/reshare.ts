/**
 * A signer node's side of moving a wallet to a new committee (issue 11): the checks it makes on a
 * reshare start before it deals or receives anything, and on a retirement before it erases its share.
 * The maths is src/crypto/reshare.ts; the session transport and storage are SignerNode's.
 *
 * Transport numbering: a reshare session's participants are the new committee, each at its new
 * Shamir index, plus every dealer that leaves, at an index above 100. A node checks that its own
 * record agrees with what the relay says about the current committee, so a relay cannot make it
 * deal under another index, to another key, or to a committee other than the one every new holder
 * signs at the end.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import type { Participant } from '../store/server-store.ts';
import type { ResharePlan } from '../crypto/reshare.ts';
import type { SharePublic } from './node.ts';

const nodeIndex = z.object({ index: z.number().int().min(1).max(255), nodeId: z.string().min(1).max(64) });

export const reshareStartSchema = z.object({
  /** Exactly t_old current holders, each with its current Shamir index. */
  dealers: z.array(nodeIndex).min(1).max(64),
  /** The new committee, each with its new Shamir index (= its session index). */
  holders: z.array(nodeIndex).min(2).max(64),
  /** The current epoch's public package, for a new holder that has no share of this wallet. */
  current: z.record(z.string(), z.unknown()).optional(),
});
export type ReshareStart = z.infer<typeof reshareStartSchema>;

/** The first index a dealer that leaves the committee may have in the session. */
export const LEAVING_BASE = 101;

/**
 * Checks a reshare start against this node's view of the wallet and returns the plan. `own` is this
 * node's current public package if it holds a share, else undefined (then `r.current` is used, and
 * its key is bound by the dealers' commitments: a wrong one fails every new holder's check).
 */
export function checkReshareStart(
  r: ReshareStart,
  o: { walletId: string; scheme: string; epoch: number; threshold: number; participants: Participant[]; self: string; own?: SharePublic },
): { plan: ResharePlan; current: SharePublic; holders: Participant[]; dealer?: Participant } {
  const bad = (m: string, details?: Record<string, unknown>) => new FleetkeyError('validation_failed', `reshare: ${m}`, details ? { details } : undefined);
  const current = o.own ?? (r.current as SharePublic | undefined);
  if (!current) throw bad('a new holder needs the current public package');
  if (current.walletId !== o.walletId || current.epoch !== o.epoch || current.scheme !== o.scheme || typeof current.group?.publicKey !== 'string')
    throw new FleetkeyError('protocol_state', `reshare: wallet ${o.walletId} is not at epoch ${o.epoch} with scheme ${o.scheme} here`);
  const holders = [...r.holders].sort((a, b) => a.index - b.index);
  if (o.threshold < 2 || o.threshold > holders.length) throw bad(`threshold ${o.threshold} must be in 2..${holders.length}`, { field: 'threshold' });
  if (r.dealers.length !== current.threshold) throw bad(`need exactly ${current.threshold} dealers`);
  for (const d of r.dealers) {
    const held = current.participants.find((p) => p.nodeId === d.nodeId);
    if (!held || held.index !== d.index) throw bad(`dealer ${d.nodeId} does not hold index ${d.index} of the current committee`, { nodeId: d.nodeId });
  }
  if (new Set(holders.map((h) => h.nodeId)).size !== holders.length) throw bad('a node appears twice in the new committee');
  // The transport list must be exactly: every holder at its new index, every leaving dealer above LEAVING_BASE.
  const want = new Map<string, number>(holders.map((h) => [h.nodeId, h.index]));
  for (const d of r.dealers) if (!want.has(d.nodeId)) want.set(d.nodeId, -1);
  if (o.participants.length !== want.size) throw bad('session participants must be the new committee and the dealers');
  for (const p of o.participants) {
    const w = want.get(p.nodeId);
    if (w === undefined || (w === -1 ? p.index < LEAVING_BASE : p.index !== w)) throw bad(`session participant ${p.nodeId} has the wrong index`, { nodeId: p.nodeId });
  }
  if (!o.own && !holders.some((h) => h.nodeId === o.self)) throw new FleetkeyError('forbidden', 'this node holds no share of the wallet and is not in the new committee');
  const partyOf = (nodeId: string) => o.participants.find((p) => p.nodeId === nodeId)!.index;
  const plan: ResharePlan = {
    dealers: r.dealers.map((d) => ({ party: partyOf(d.nodeId), index: d.index })),
    receivers: holders.map((h) => ({ party: h.index, index: h.index })),
    threshold: o.threshold,
  };
  const dealer = r.dealers.find((d) => d.nodeId === o.self);
  return { plan, current, holders, ...(dealer ? { dealer } : {}) };
}

export const retireSchema = z.object({
  walletId: z.string().max(80),
  /** The new epoch, which this node is not part of. */
  epoch: z.number().int().min(1),
  /** The new epoch's public package, signed by every new holder in `results`. */
  public: z.record(z.string(), z.unknown()),
  results: z.array(z.unknown()).max(64),
});
