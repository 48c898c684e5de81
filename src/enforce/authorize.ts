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
 *   An agent never has raw bytes or a raw hash signed (`raw_signing_forbidden`): those could be a
 *   transaction or a transaction's digest whatever they are called. It signs a message in its
 *   wallet's message form (EIP-191, Solana off-chain message, BIP-322), and a PSBT only when every
 *   input it signs commits to the whole transaction (SIGHASH_DEFAULT / ALL, else `unsupported_sighash`).
 * - both: only what the wallet's own scheme signs is signed (`scheme_mismatch` when nothing is);
 *   a Bitcoin PSBT's inputs of another scheme are someone else's and are left out.
 *
 * Nothing is written here: the caller reserves the returned amounts atomically (ControlStore).
 */
import { z } from 'zod';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decode } from '../chains/index.ts';
import type { Action, Decoded, SigningTarget } from '../chains/types.ts';
import { checkGrantUsable, controlDocDigest, requestDigest, verifyAgentRequest, verifyApprovals, verifyControlDoc } from '../control/index.ts';
import { signedAgentRequestSchema, signedControlDocSchema, type Payload, type SignDoc } from '../control/schemas.ts';
import { FleetkeyError } from '../errors.ts';
import { combine, compilePolicy, evaluate, NO_USAGE, type CompiledPolicy, type Decision, type Reservation } from '../policy/index.ts';
import type { ControlStore } from '../store/control-store.ts';
import { splitWalletId } from './wallet-id.ts';
import type { OwnerKey } from '../control/keys.ts';
// The signer and the server verify Ed25519 on libsodium (WebAssembly); see ../control/fast-verify.ts.
import '../control/fast-verify.ts';

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

/** The signing scheme (`SigningTarget.scheme`) of each wallet scheme. */
const SIGNS: Record<string, SigningTarget['scheme']> = { ed25519: 'ed25519', 'secp256k1-schnorr': 'schnorr-bip340', 'ecdsa-secp256k1': 'ecdsa-secp256k1' };
/** The raw kinds: signed as given, by any scheme; the owner's only. */
const RAW_KINDS: readonly string[] = ['raw_hash', 'raw_message'];
/** Bitcoin sighash types that commit to every input and output: SIGHASH_DEFAULT (taproot) and SIGHASH_ALL. */
const WHOLE_TX_SIGHASH: readonly number[] = [0x00, 0x01];

/** Longest an agent request (or an owner authorization) may stay valid: long enough to wait for approvals. */
export const MAX_REQUEST_TTL_MS = 24 * 3600_000;

export { splitWalletId };

export interface AuthTarget {
  /** The wallet being signed for (a root wallet, or `<root>.<index>`). */
  walletId: string;
  /** The wallet's scheme (`ed25519`, `secp256k1-schnorr`, `ecdsa-secp256k1`): only payloads it signs are signed. */
  scheme: string;
  /** The wallet's own address in its chain's form (the decoder's `from`). */
  address: string;
  /**
   * The wallet's own network (a Solana cluster, a Bitcoin network), fixed at its creation: a signer
   * passes its own record of it (src/enforce/wallet-create.ts). Solana and Bitcoin payloads are
   * decoded, and judged by the policy, on this network; a payload naming another is `wrong_network`.
   */
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

  /** Observes each policy decision's outcome (metrics); called with the outcome only, nothing else. */
  onDecision?: (outcome: Decision['outcome']) => void;

  constructor(
    readonly control: ControlStore,
    private readonly ownerKeys: readonly OwnerKey[],
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
    const decoded = this.decode(d.payload, target, message, 'owner');
    return { by: 'owner', requestId: d.requestId, requestDigest: controlDocDigest(d), payload: d.payload, decoded, reservations: [], strict: false };
  }

  private async agent(signed: unknown, approvals: readonly unknown[], target: AuthTarget, now: number, message?: Uint8Array): Promise<Authorized> {
    const grantId = (signed as { request?: { grantId?: unknown } })?.request?.grantId;
    const grant = typeof grantId === 'string' ? await this.control.getGrant(grantId) : undefined;
    if (!grant) throw new FleetkeyError('unknown_grant', `no grant ${String(grantId).slice(0, 128)} on this node`, { details: { grantId: typeof grantId === 'string' ? grantId.slice(0, 128) : null } });
    const req = verifyAgentRequest(signed, grant, { now, maxTtlMs: MAX_REQUEST_TTL_MS });
    if (req.walletId !== target.walletId) throw new FleetkeyError('forbidden', `request is for wallet ${req.walletId}, not ${target.walletId}`);
    if (RAW_KINDS.includes(req.payload.kind))
      throw new FleetkeyError('raw_signing_forbidden', `${req.payload.kind} signing is for the owner only, never for agent grants: sign a message as evm_message, solana_message or bitcoin_message`, { details: { path: 'request.payload.kind', kind: req.payload.kind } });
    const effective = await this.policyOf(target.walletId);
    const policy = effective?.policy;
    checkGrantUsable(grant, { now, revoked: await this.control.isRevoked(grant.id), usesSoFar: await this.control.usesSoFar(grant.id, now, req.requestId), policyVersion: effective?.version ?? null });
    const decoded = this.decode(req.payload, target, message, 'agent');
    if (!policy) throw new FleetkeyError('no_policy', `wallet ${target.walletId} has no policy: agents may not sign with it`, { details: { walletId: target.walletId } });
    const digest = requestDigest({ request: req });
    let decision = await this.evaluate(policy, decoded.action, target.walletId, now, [], req.requestId);
    let approvedBy: string[] | undefined;
    if (decision.outcome === 'needs_approval') {
      const registry = await this.control.approvers();
      const granted = new Set<string>();
      const rejected = new Set<string>();
      // The rejections this node was delivered count whatever the caller hands in (issue 15, item 6):
      // a server that leaves a signed reject out of `approvals` cannot turn it into a signature.
      const decisions = [...approvals, ...(await this.control.rejections(digest))];
      if (registry)
        for (const r of decision.approvals ?? []) {
          const tally = verifyApprovals(digest, decisions, registry, r);
          tally.approved.forEach((a) => granted.add(a));
          tally.rejected.forEach((a) => rejected.add(a));
        }
      if (rejected.size) throw new FleetkeyError('approval_rejected', `rejected by ${[...rejected].join(', ')}`, { details: { rejectedBy: [...rejected], requestDigest: digest } });
      if (granted.size) decision = await this.evaluate(policy, decoded.action, target.walletId, now, [...granted], req.requestId);
      approvedBy = [...granted].sort();
    }
    // Over a rolling limit only: the same code the atomic reservation answers with (429), so a
    // client sees one code for "limit reached" whichever check caught it first.
    this.onDecision?.(decision.outcome);
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

  /**
   * Decodes as every signer does; the wallet's own address is the sender, whatever the caller says.
   * Keeps only the signing payloads of the wallet's own scheme (what it signs is never another
   * scheme's digest or bytes); an agent gets none of the raw kinds' `any` and no partial sighash.
   */
  private decode(payload: Payload, target: AuthTarget, message: Uint8Array | undefined, by: 'owner' | 'agent'): Decoded {
    const from = payload.opts?.from;
    if (from !== undefined && from.toLowerCase() !== target.address.toLowerCase())
      throw new FleetkeyError('validation_failed', `payload.opts.from ${from} is not this wallet's address ${target.address}`, { details: { path: 'payload.opts.from' } });
    const decoded = decode(payload.kind, payload.data, { ...this.networkOpts(payload, target), from: target.address });
    if (!decoded.signingPayloads.length) throw new FleetkeyError('decode_failed', 'the payload has nothing to sign');
    const own = SIGNS[target.scheme];
    const keep = decoded.signingPayloads.map((_, i) => decoded.signing?.[i]).map((t) => t !== undefined && (t.scheme === own || (t.scheme === 'any' && by === 'owner')));
    const signingPayloads = decoded.signingPayloads.filter((_, i) => keep[i]);
    const signing = (decoded.signing ?? []).filter((_, i) => keep[i]);
    if (!signingPayloads.length) {
      const schemes = [...new Set((decoded.signing ?? []).map((t) => t.scheme))];
      throw new FleetkeyError('scheme_mismatch', `a ${target.scheme} wallet does not sign ${payload.kind} (signed with ${schemes.join(', ') || 'no known scheme'})`, { details: { kind: payload.kind, walletScheme: target.scheme, payloadSchemes: schemes } });
    }
    if (by === 'agent') {
      const partial = signing.filter((t) => t.sighashType !== undefined && !WHOLE_TX_SIGHASH.includes(t.sighashType));
      if (partial.length)
        throw new FleetkeyError('unsupported_sighash', `input ${partial[0].input} uses sighash type 0x${partial[0].sighashType!.toString(16).padStart(2, '0')}: agents sign only SIGHASH_DEFAULT / SIGHASH_ALL, which commit to every input and output`, {
          details: { inputs: partial.map((t) => ({ input: t.input ?? null, sighashType: t.sighashType! })) },
        });
    }
    if (message) {
      const hex = bytesToHex(message);
      if (!signingPayloads.some((p) => bytesToHex(p) === hex)) throw new FleetkeyError('forbidden', 'the message to sign is not what the request\'s payload commits to');
    }
    return { ...decoded, signingPayloads, signing };
  }

  /**
   * Decode options with the network taken from the wallet, not the caller. A Solana transaction does
   * not say which cluster it is for, and a PSBT's addresses are only read on the network given, so
   * a caller that could name the network could move a mainnet transfer under a devnet rule. The
   * caller may still name it (opts.network, or opts.chainId as the decoder reads it for these kinds),
   * but only as the wallet's own.
   */
  private networkOpts(payload: Payload, target: AuthTarget): Payload['opts'] {
    if (payload.kind !== 'solana_transaction' && payload.kind !== 'bitcoin_psbt') return payload.opts;
    const { chainId, network, ...rest } = payload.opts ?? {};
    if (target.network === undefined) throw new FleetkeyError('wrong_network', `wallet ${target.walletId} has no ${payload.kind === 'bitcoin_psbt' ? 'Bitcoin' : 'Solana'} network`, { details: { walletId: target.walletId, network: null } });
    for (const named of [network, chainId])
      if (named !== undefined && String(named) !== target.network)
        throw new FleetkeyError('wrong_network', `wallet ${target.walletId} is on ${target.network}, the request names ${String(named)}`, { details: { walletId: target.walletId, network: target.network, path: 'payload.opts' } });
    return { ...rest, network: target.network };
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
   * Two passes: the first (no usage) names the counters and windows the decision touches; the second
   * reads their totals, leaving out the request's own records (already counted by a receipt, or a
   * retry). Both passes ask for the same (counter, window) pairs: each window rule reserves exactly
   * what it reads, and the first pass (nothing used yet) reaches every window rule the second does.
   */
  private async evaluate(policy: CompiledPolicy, action: Action, walletId: string, now: number, approvals: string[], requestId: string): Promise<Decision> {
    // Fleet-wide limits count per fleet: the fleet is the root wallet (a wallet outside a fleet is its own).
    const fleet = splitWalletId(walletId).rootId;
    const first = evaluate(policy, action, { now, usage: NO_USAGE, approvals, fleet });
    if (first.outcome === 'deny' || !first.reservations.length) return first;
    const checks = first.reservations.flatMap((r) => r.checks.map((c) => ({ counterKey: r.counterKey, windowMs: c.windowMs })));
    const usage = await this.control.usageTotals(walletId, { now, checks, except: requestId });
    return evaluate(policy, action, { now, usage, approvals, fleet });
  }
}
