/**
 * "Policy before every signature", as one check that the server (to fail fast and to queue
 * approvals) and every signer node (authoritatively, with its own documents and counters) run the
 * same way. Given what is to be signed and the caller's authorization, it answers what may be
 * reserved, or throws a stable error:
 *
 * - owner authorization: a `sign` document signed by a pinned owner key (admin signing, raw hashes
 *   included). Not judged by a policy; counted nowhere; logged.
 * - agent request: signed by the agent key of an owner-issued grant that is live, not revoked, not
 *   used up, covering the wallet. The payload is decoded here (never taken from the caller), the
 *   message to sign must be one the payload commits to, and the wallet's policy (its fleet root's
 *   policy combined with its own) must allow it, with M-of-N approvals where it asks for them.
 *
 * Nothing is written here: the caller reserves the returned amounts atomically (ControlStore).
 */
import { z } from 'zod';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decode } from '../chains/index.ts';
import type { Action, Decoded } from '../chains/types.ts';
import { checkGrantUsable, controlDocDigest, requestDigest, verifyAgentRequest, verifyApprovals, verifyControlDoc } from '../control/index.ts';
import { signedAgentRequestSchema, signedControlDocSchema, type Payload, type SignDoc } from '../control/schemas.ts';
import { FleetkeyError } from '../errors.ts';
import { combine, compilePolicy, evaluate, NO_USAGE, type CompiledPolicy, type Decision, type Reservation } from '../policy/index.ts';
import type { ControlStore } from '../store/control-store.ts';

/** How a signing request proves it may happen. Exactly one of `owner` / `agent`. */
export const signAuthSchema = z.union([
  z.strictObject({ owner: signedControlDocSchema }),
  z.strictObject({
    agent: signedAgentRequestSchema,
    approvals: z.array(z.unknown()).max(64).optional(),
    /** Under strict counters: every other share holder's reservation receipt (src/enforce/receipts.ts). */
    receipts: z.array(z.unknown()).max(64).optional(),
  }),
]);
export type SignAuth = z.infer<typeof signAuthSchema>;

/** Longest an agent request (or an owner authorization) may stay valid: long enough to wait for approvals. */
export const MAX_REQUEST_TTL_MS = 24 * 3600_000;

/** A child wallet id is `<root>.<index>` with a non-hardened BIP32-style index. */
export function splitWalletId(walletId: string): { rootId: string; index?: number } {
  const m = /^(.+)\.(\d{1,10})$/.exec(walletId);
  if (!m) return { rootId: walletId };
  const index = Number(m[2]);
  if (index >= 0x80000000) throw new FleetkeyError('validation_failed', `child index ${index} is hardened or too large (0 ≤ index < 2^31)`, { details: { path: 'walletId' } });
  return { rootId: m[1], index };
}

export interface AuthTarget {
  /** The wallet being signed for (a root wallet, or `<root>.<index>`). */
  walletId: string;
  /** The wallet's own address in its chain's form (the decoder's `from`). */
  address: string;
  /** Network for Bitcoin addresses when the payload does not name one. */
  network?: string;
}

export interface Authorized {
  by: 'owner' | 'agent';
  requestId: string;
  requestDigest: string;
  payload: Payload;
  decoded: Decoded;
  /** For agent requests: the grant (its use count is checked again atomically when reserving). */
  grant?: { id: string; maxUses?: number };
  decision?: Decision;
  reservations: Reservation[];
  /** Approvers whose approvals counted. */
  approvedBy?: string[];
  /**
   * The request touches a rolling limit or a grant's use count and the policy counts strictly: every
   * share holder must count it before any issues a share (src/enforce/receipts.ts).
   */
  strict: boolean;
}

export class Authorizer {
  private compiled = new Map<string, CompiledPolicy>();

  constructor(
    readonly control: ControlStore,
    private readonly ownerKeys: readonly string[],
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Checks `auth` for signing on `target`. With `message`, also checks that the message is one the
   * payload commits to (what a signer node signs must be what the agent asked for).
   */
  async authorize(auth: SignAuth, target: AuthTarget, message?: Uint8Array): Promise<Authorized> {
    const now = this.clock();
    const status = await this.standing(target.walletId);
    if (status !== 'active') throw new FleetkeyError('wallet_inactive', `wallet ${target.walletId} is ${status}`, { details: { walletId: target.walletId, status } });
    if ('owner' in auth) return this.owner(auth.owner, target, now, message);
    return this.agent(auth.agent, auth.approvals ?? [], target, now, message);
  }

  /** A child is inactive when it or its root is. */
  private async standing(walletId: string): Promise<string> {
    const { rootId, index } = splitWalletId(walletId);
    const own = await this.control.walletStatus(walletId);
    if (own.status !== 'active' || index === undefined) return own.status;
    return (await this.control.walletStatus(rootId)).status;
  }

  private async owner(signed: unknown, target: AuthTarget, now: number, message?: Uint8Array): Promise<Authorized> {
    const doc = verifyControlDoc(signed, this.ownerKeys);
    if (doc.kind !== 'sign') throw new FleetkeyError('validation_failed', 'an owner authorization is a "sign" document', { details: { path: 'owner.doc.kind' } });
    const d = doc as SignDoc;
    if (d.walletId !== target.walletId) throw new FleetkeyError('forbidden', `authorization is for wallet ${d.walletId}, not ${target.walletId}`);
    if (now >= d.expiresAt) throw new FleetkeyError('request_expired', 'owner authorization expired', { details: { requestId: d.requestId } });
    if (d.expiresAt - now > MAX_REQUEST_TTL_MS) throw new FleetkeyError('validation_failed', 'owner authorization is valid for too long', { details: { path: 'owner.doc.expiresAt' } });
    const decoded = this.decode(d.payload, target, message);
    return { by: 'owner', requestId: d.requestId, requestDigest: controlDocDigest(d), payload: d.payload, decoded, reservations: [], strict: false };
  }

  private async agent(signed: unknown, approvals: readonly unknown[], target: AuthTarget, now: number, message?: Uint8Array): Promise<Authorized> {
    const grantId = (signed as { request?: { grantId?: unknown } })?.request?.grantId;
    const grant = typeof grantId === 'string' ? await this.control.getGrant(grantId) : undefined;
    if (!grant) throw new FleetkeyError('unknown_grant', `no grant ${String(grantId).slice(0, 128)} on this node`, { details: { grantId: typeof grantId === 'string' ? grantId.slice(0, 128) : null } });
    const req = verifyAgentRequest(signed, grant, { now, maxTtlMs: MAX_REQUEST_TTL_MS });
    if (req.walletId !== target.walletId) throw new FleetkeyError('forbidden', `request is for wallet ${req.walletId}, not ${target.walletId}`);
    if (req.payload.kind === 'raw_hash') throw new FleetkeyError('forbidden', 'raw-hash signing is for the owner only, never for agent grants', { details: { path: 'request.payload.kind' } });
    const effective = await this.policyOf(target.walletId);
    const policy = effective?.policy;
    checkGrantUsable(grant, { now, revoked: await this.control.isRevoked(grant.id), usesSoFar: await this.control.usesSoFar(grant.id, now, req.requestId), policyVersion: effective?.version ?? null });
    const decoded = this.decode(req.payload, target, message);
    if (!policy) throw new FleetkeyError('no_policy', `wallet ${target.walletId} has no policy: agents may not sign with it`, { details: { walletId: target.walletId } });
    const digest = requestDigest({ request: req });
    let decision = await this.evaluate(policy, decoded.action, target.walletId, now, [], req.requestId);
    let approvedBy: string[] | undefined;
    if (decision.outcome === 'needs_approval') {
      const registry = await this.control.approvers();
      const granted = new Set<string>();
      const rejected = new Set<string>();
      if (registry)
        for (const r of decision.approvals ?? []) {
          const tally = verifyApprovals(digest, approvals, registry, r);
          tally.approved.forEach((a) => granted.add(a));
          tally.rejected.forEach((a) => rejected.add(a));
        }
      if (rejected.size) throw new FleetkeyError('approval_rejected', `rejected by ${[...rejected].join(', ')}`, { details: { rejectedBy: [...rejected], requestDigest: digest } });
      if (granted.size) decision = await this.evaluate(policy, decoded.action, target.walletId, now, [...granted], req.requestId);
      approvedBy = [...granted].sort();
    }
    // Over a rolling limit only: the same code the atomic reservation answers with (429), so a
    // client sees one code for "limit reached" whichever check caught it first.
    const limitOnly = decision.reasons.length > 0 && decision.reasons.every((r) => r.code === 'window_cap_exceeded' || r.code === 'rate_limit_exceeded');
    if (decision.outcome === 'deny')
      throw new FleetkeyError(limitOnly ? 'limit_exceeded' : 'policy_denied', `policy ${decision.policyVersion} denies this request: ${decision.reasons.map((r) => r.message).join('; ')}`, {
        details: { policyVersion: decision.policyVersion, reasons: decision.reasons.map((r) => ({ rule: r.rule, code: r.code, message: r.message })) },
      });
    if (decision.outcome === 'needs_approval')
      throw new FleetkeyError('approval_required', `needs approval: ${decision.reasons.map((r) => r.message).join('; ')}`, {
        details: { requestDigest: digest, policyVersion: decision.policyVersion, approvals: (decision.approvals ?? []).map((a) => ({ rule: a.rule, required: a.required, approvers: a.approvers, granted: a.granted })) },
      });
    const strict = policy.counters === 'strict' && (decision.reservations.length > 0 || grant.maxUses !== undefined);
    return { by: 'agent', requestId: req.requestId, requestDigest: digest, payload: req.payload, decoded, grant: { id: grant.id, maxUses: grant.maxUses }, decision, reservations: decision.reservations, approvedBy, strict };
  }

  /** Decodes as every signer does; the wallet's own address is the sender, whatever the caller says. */
  private decode(payload: Payload, target: AuthTarget, message?: Uint8Array): Decoded {
    const from = payload.opts?.from;
    if (from !== undefined && from.toLowerCase() !== target.address.toLowerCase())
      throw new FleetkeyError('validation_failed', `payload.opts.from ${from} is not this wallet's address ${target.address}`, { details: { path: 'payload.opts.from' } });
    const decoded = decode(payload.kind, payload.data, { ...payload.opts, from: target.address, ...(payload.opts?.network || !target.network ? {} : { network: target.network }) });
    if (!decoded.signingPayloads.length) throw new FleetkeyError('decode_failed', 'the payload has nothing to sign');
    if (message) {
      const hex = bytesToHex(message);
      if (!decoded.signingPayloads.some((p) => bytesToHex(p) === hex)) throw new FleetkeyError('forbidden', 'the message to sign is not what the request\'s payload commits to');
    }
    return decoded;
  }

  /**
   * The wallet's effective policy: its fleet root's combined with its own (which can only narrow
   * it); undefined when neither exists. `version` is the wallet's own policy version, else the root's.
   */
  async policyOf(walletId: string): Promise<{ policy: CompiledPolicy; version: number } | undefined> {
    const { rootId, index } = splitWalletId(walletId);
    // Heads first (version + digest): the document is read, validated and compiled once per digest.
    const own = await this.control.policyHead(walletId);
    const root = index === undefined ? undefined : await this.control.policyHead(rootId);
    if (!own && !root) return undefined;
    const key = `${root?.digest ?? ''}|${own?.digest ?? ''}`;
    let p = this.compiled.get(key);
    if (!p) {
      const ownDoc = own ? await this.control.latestPolicy(walletId) : undefined;
      const rootDoc = root ? await this.control.latestPolicy(rootId) : undefined;
      if ((own && ownDoc?.digest !== own.digest) || (root && rootDoc?.digest !== root.digest)) return this.policyOf(walletId); // a newer version landed meanwhile
      p = rootDoc && ownDoc ? combine(rootDoc.doc.policy as never, ownDoc.doc.policy as never) : compilePolicy((ownDoc ?? rootDoc)!.doc.policy);
      if (this.compiled.size > 10_000) this.compiled.clear();
      this.compiled.set(key, p);
    }
    return { policy: p, version: (own ?? root)!.version };
  }

  /**
   * Two passes: the first (no usage) names the counters the decision touches; the second reads them,
   * leaving out the request's own records (already counted by a receipt, or a retry).
   */
  private async evaluate(policy: CompiledPolicy, action: Action, walletId: string, now: number, approvals: string[], requestId: string): Promise<Decision> {
    // Fleet-wide limits count per fleet: the fleet is the root wallet (a wallet outside a fleet is its own).
    const fleet = splitWalletId(walletId).rootId;
    const first = evaluate(policy, action, { now, usage: NO_USAGE, approvals, fleet });
    if (first.outcome === 'deny' || !first.reservations.length) return first;
    const usage = await this.control.usageView(walletId, { now, keys: first.reservations.map((r) => r.counterKey), except: requestId });
    return evaluate(policy, action, { now, usage, approvals, fleet });
  }
}
