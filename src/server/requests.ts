/**
 * Agent requests at the server: the fast, honest-path half of "policy before every signature".
 *
 * The server runs the same check every signer runs (src/enforce/authorize.ts) with its own copy of
 * the owner's documents and its own counters, so a request the policy forbids fails before any
 * signer is asked, a request that needs approval waits in a queue, and concurrent requests cannot
 * overshoot a limit (the server reserves atomically before it asks the signers, commits on success,
 * and on failure releases, or keeps counting what the signers may have counted: `giveUp`). None of this is what keeps a compromised server from getting a forbidden
 * signature: each signer checks the agent's signature, the grant and the policy again itself.
 *
 * Idempotent by request id: the same request again returns what the first one got (the signature,
 * or the pending state); another request under a used id is a conflict.
 *
 * Several servers on one store: a request being signed is leased to the server signing it
 * (`lease_until`, renewed while it works). If that server dies mid-request, the agent's retry of
 * the same signed request, at any server, finds the lease run out, takes the request over and
 * drives it again from the start: the server's reservation and every signer's counters are keyed by
 * the request id, so they count it once, and the request row settles once (the `signing` → `signed`
 * move is made only by the lease holder). Signature shares the dead server collected died with it;
 * the re-drive asks for fresh ones with fresh nonces, so the agent gets one signature.
 */
import { walletNetworkOf } from '../enforce/wallet-create.ts';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { keccak256, parseTransaction, serializeTransaction, type Hex, type TransactionSerializable } from 'viem';
import { z } from 'zod';
import type { Decoded } from '../chains/types.ts';
import { agentRequestSchema, approvalSchema, parseOrThrow, requestDigest, signatureSchema, signedAgentRequestSchema, signedApprovalSchema, verifyApprovals, type AgentRequest, type SignedApproval } from '../control/index.ts';
import { MAX_REQUEST_TTL_MS, type Authorized } from '../enforce/authorize.ts';
import { FleetkeyError, isFleetkeyError } from '../errors.ts';
import { newId, type Logger } from '../http/common.ts';
import { refusalError } from '../store/control-store.ts';
import { refusalEntry } from '../enforce/audit-entries.ts';
import type { AgentRequestRecord } from '../store/server-store.ts';
import type { Queryable } from '../store/db.ts';
import type { Coordinator } from './coordinator.ts';

/** The body of POST /v1/requests: the agent's signed request, and approvals gathered elsewhere (optional). */
export const submitSchema = z.strictObject({ request: z.unknown(), sig: z.string().max(200), approvals: z.array(z.unknown()).max(64).optional() });
export const approveSchema = z.strictObject({ approval: z.unknown(), sig: signatureSchema });

export type RequestView = {
  status: AgentRequestRecord['status'];
  requestId: string;
  requestDigest: string;
  walletId: string;
  grantId: string | null;
  expiresAt: string;
  approvals?: { rule: string; required: number; approvers: string[]; granted: string[] }[];
  approvedBy?: string[];
  error?: { code: string; message: string };
} & Record<string, unknown>;

const RESERVATION_TTL_MS = 3 * 60_000;
/**
 * How long a server's claim on a request it is signing lasts without renewal; renewed every third
 * of it. Long enough that a loaded server renews in time, short enough that an agent's retry after
 * a server died does not wait long (`in_progress`, 409, until then).
 */
const LEASE_MS = Math.max(1000, Number(process.env.FLEETKEY_REQUEST_LEASE_MS ?? 15_000) || 15_000);

/** A request left `signing` by a server whose lease ran out (it died or stalled): any server may take it over. */
function orphanedSigning(r: AgentRequestRecord | undefined, now = Date.now()): boolean {
  return r?.status === 'signing' && (r.leaseUntil ?? 0) <= now;
}

export class AgentDesk {
  /** This process's name on the leases it takes (random per start: a restarted server is another holder). */
  private readonly leaseOwner = newId('lease');

  constructor(
    private readonly coord: Coordinator,
    private readonly log: Logger,
  ) {}

  /** POST /v1/requests. Answers 200 signed, 202 pending_approval, or throws a stable 4xx. */
  async submit(body: z.infer<typeof submitSchema>): Promise<{ status: number; view: RequestView }> {
    const signed = parseOrThrow(signedAgentRequestSchema, { request: body.request, sig: body.sig }, 'body');
    const req = parseOrThrow(agentRequestSchema, signed.request, 'request');
    const digest = requestDigest(signed as never);
    const existing = await this.coord.store.getRequest(req.requestId);
    if (existing) {
      if (existing.requestDigest !== digest) throw new FleetkeyError('conflict', `request id ${req.requestId} was already used for another request`, { details: { requestId: req.requestId } });
      const orphaned = orphanedSigning(existing);
      if (existing.status === 'signing' && !orphaned) throw inProgress(req.requestId);
      if (existing.status !== 'failed' && !orphaned) return { status: existing.status === 'pending_approval' ? 202 : 200, view: await this.view(existing) };
    }
    // A re-drive of an orphaned request keeps the approvals it had gathered.
    const approvals = body.approvals ?? (existing?.status === 'signing' ? existing.approvals : []);
    let a: Authorized;
    try {
      a = await this.authorize(signed, approvals);
    } catch (e) {
      if (isFleetkeyError(e) && e.code === 'approval_required') return this.queue(signed, req, digest, e.details ?? {}, approvals);
      if (orphanedSigning(existing)) await this.settleOrphan(req.requestId, e);
      await this.logRefusal(e, req, digest);
      throw e;
    }
    return { status: 200, view: await this.signNow(signed, req, a, approvals, existing) };
  }

  /**
   * A re-drive of a request a dead server left `signing` was refused this time (a cap now reached, a
   * grant revoked or expired): the request ends `failed` with that error, not `signing` for ever.
   * Claimed first, so one server settles it. The dead server's reservation under its id stays
   * counted (committed): it may have reached the signers, who count what they took part in for good.
   */
  private async settleOrphan(requestId: string, e: unknown): Promise<void> {
    if (!(await this.coord.store.claimRequest(requestId, 'failed', this.leaseOwner, LEASE_MS))) return;
    if (await this.coord.store.updateRequest(requestId, ['signing'], 'failed', () => ({ detail: { error: errorOf(e) } }), this.leaseOwner)) await this.coord.control.commit(requestId);
  }

  /**
   * A request that reached the signers and failed there (a holder down or too slow: 503, "send the
   * same request again"). Under strict counters the holders that answered the reserve round counted
   * it for good (src/enforce/receipts.ts), and one that timed out may have too, so this server keeps
   * counting it as well: committed, and the agent's retry of the same request replays it here and at
   * every holder. Released instead, its place would go to the next request, which the holders that
   * counted the failed one refuse while a holder that had not counted it counts the newcomer for
   * good; the retry is then refused there, and less than the limit is ever signed (seen: 99 of 100
   * under 1,000 concurrent requests). Per-signer counters release: each signer counts what it signs,
   * and the server picks signers that still have room.
   */
  private async giveUp(a: Pick<Authorized, 'requestId' | 'strict'>): Promise<void> {
    if (a.strict) await this.coord.control.commit(a.requestId);
    else await this.coord.control.release(a.requestId);
  }

  /** GET /v1/requests/:id */
  async get(requestId: string): Promise<RequestView> {
    const r = await this.coord.store.getRequest(requestId);
    if (!r) throw new FleetkeyError('not_found', `no request ${requestId}`);
    return this.view(await this.expireIfDue(r));
  }

  /** GET /v1/approvals: requests waiting for approval (expired ones are marked on the way). */
  async pending(): Promise<RequestView[]> {
    const out: RequestView[] = [];
    for (const r of await this.coord.store.listRequests('pending_approval', 1000)) {
      const cur = await this.expireIfDue(r);
      if (cur.status === 'pending_approval') out.push(await this.view(cur));
    }
    return out;
  }

  /**
   * POST /v1/approvals/:requestId: one approver's signed approve or reject. A valid reject from an
   * eligible approver ends the request; at M approvals it is signed at once.
   */
  async decide(requestId: string, body: z.infer<typeof approveSchema>): Promise<RequestView> {
    const rec = await this.coord.store.getRequest(requestId);
    if (!rec) throw new FleetkeyError('not_found', `no request ${requestId}`);
    const cur = await this.expireIfDue(rec);
    if (cur.status !== 'pending_approval') throw new FleetkeyError('conflict', `request ${requestId} is ${cur.status}, not waiting for approval`, { details: { status: cur.status } });
    const env = parseOrThrow(signedApprovalSchema, body, 'body') as SignedApproval;
    const approval = parseOrThrow(approvalSchema, env.approval, 'approval');
    const registry = await this.coord.control.approvers();
    if (!registry) throw new FleetkeyError('forbidden', 'no approver registry has been set');
    const requirements = (cur.detail?.approvals as { rule: string; required: number; approvers: string[] }[] | undefined) ?? [];
    const tally = verifyApprovals(cur.requestDigest, [env], registry, { required: 1, approvers: [...new Set(requirements.flatMap((r) => r.approvers))] });
    if (tally.ignored.length) throw new FleetkeyError('forbidden', `approval not accepted: ${tally.ignored[0].reason}`, { details: { reason: tally.ignored[0].reason } });
    const all = [...cur.approvals.filter((x) => (x as SignedApproval).approval?.approver !== approval.approver), env];
    // Every signer gets the decision itself, not only the approvals a later signing hands it: a
    // reject then stops the request at each signer even if a compromised server leaves it out.
    await this.coord.submitDecision({ approval, sig: env.sig });
    await this.coord.audit.append({ type: 'approval', requestDigest: cur.requestDigest, outcome: approval.decision, data: { requestId, walletId: cur.walletId, approver: approval.approver } });
    if (approval.decision === 'reject') {
      await this.coord.store.updateRequest(requestId, ['pending_approval'], 'rejected', () => ({ approvals: all, detail: { ...cur.detail, rejectedBy: approval.approver } }));
      return this.get(requestId);
    }
    // Merged with the row as it is now (locked), not as read above: an approval filed at the same
    // time at another server is kept.
    let merged = all;
    await this.coord.store.updateRequest(requestId, ['pending_approval'], 'pending_approval', (now) => ({
      approvals: (merged = [...now.approvals.filter((x) => (x as SignedApproval).approval?.approver !== approval.approver), env]),
    }));
    const signed = cur.signed as { request: AgentRequest; sig: string };
    let a: Authorized;
    try {
      a = await this.authorize(signed, merged);
    } catch (e) {
      if (isFleetkeyError(e) && e.code === 'approval_required') {
        await this.coord.store.updateRequest(requestId, ['pending_approval'], 'pending_approval', () => ({ detail: { ...cur.detail, ...e.details } }));
        return this.get(requestId);
      }
      await this.coord.store.updateRequest(requestId, ['pending_approval'], 'failed', () => ({ detail: { ...cur.detail, error: errorOf(e) } }));
      await this.logRefusal(e, signed.request, cur.requestDigest);
      throw e;
    }
    if (!(await this.coord.store.claimRequest(requestId, 'pending_approval', this.leaseOwner, LEASE_MS))) return this.get(requestId);
    return this.signNow(signed, signed.request, a, merged, { ...cur, status: 'signing', leaseOwner: this.leaseOwner });
  }

  private async authorize(signed: unknown, approvals: unknown[]): Promise<Authorized> {
    const req = (signed as { request: AgentRequest }).request;
    const w = await this.coord.wallet(req.walletId);
    const network = walletNetworkOf(w.scheme, w.network);
    return this.coord.authz.authorize({ agent: signed as never, approvals }, { walletId: w.id, scheme: w.scheme, address: w.address, ...(network ? { network } : {}) });
  }

  private async queue(signed: unknown, req: AgentRequest, digest: string, detail: Record<string, unknown>, approvals: unknown[]): Promise<{ status: number; view: RequestView }> {
    const now = Date.now();
    const rec: AgentRequestRecord = {
      requestId: req.requestId,
      walletId: req.walletId,
      grantId: req.grantId,
      requestDigest: digest,
      status: 'pending_approval',
      signed,
      approvals,
      detail: { approvals: detail.approvals, policyVersion: detail.policyVersion },
      result: null,
      createdAt: now,
      expiresAt: Math.min(req.expiresAt, now + MAX_REQUEST_TTL_MS),
    };
    if (!(await this.coord.store.insertRequest(rec))) await this.coord.store.updateRequest(req.requestId, ['failed'], 'pending_approval', () => ({ detail: rec.detail, approvals }));
    await this.coord.audit.append({ type: 'request', requestDigest: digest, outcome: 'pending_approval', policyVersion: detail.policyVersion as string | number | undefined, data: { requestId: req.requestId, walletId: req.walletId, grantId: req.grantId } });
    this.log.info('request waits for approval', { requestId: req.requestId, walletId: req.walletId });
    return { status: 202, view: await this.view((await this.coord.store.getRequest(req.requestId))!) };
  }

  /** Reserve on the server, sign every payload through the signers, commit; on failure, `giveUp`. */
  private async signNow(signed: unknown, req: AgentRequest, a: Authorized, approvals: unknown[], existing?: AgentRequestRecord): Promise<RequestView> {
    const now = Date.now();
    const owner = this.leaseOwner;
    // A new request's row is written in the reservation's transaction (signLeased): one commit.
    let fresh: AgentRequestRecord | undefined;
    if (!existing) {
      fresh = {
        requestId: req.requestId, walletId: req.walletId, grantId: req.grantId, requestDigest: a.requestDigest, status: 'signing', signed, approvals,
        detail: null, result: null, createdAt: now, expiresAt: req.expiresAt, leaseOwner: owner, leaseUntil: now + LEASE_MS,
      };
    } else if (existing.leaseOwner !== owner || existing.status !== 'signing') {
      // A failed attempt, or a `signing` one whose server's lease ran out: take it (atomically; one server wins).
      if (!(await this.coord.store.claimRequest(req.requestId, 'failed', owner, LEASE_MS))) throw inProgress(req.requestId);
      if (existing.status === 'signing') this.log.info('request taken over after its lease ran out', { requestId: req.requestId, from: existing.leaseOwner ?? null });
    }
    const renew = setInterval(() => void this.coord.store.renewLease(req.requestId, owner, LEASE_MS).catch(() => undefined), LEASE_MS / 3);
    try {
      return await this.signLeased(signed, req, a, approvals, now, fresh);
    } catch (e) {
      if (!(e instanceof Taken)) throw e;
      // Another submission of the same request id got its row in first.
      const other = (await this.coord.store.getRequest(req.requestId))!;
      if (other.status === 'signing') throw inProgress(req.requestId);
      return this.view(other);
    } finally {
      clearInterval(renew);
    }
  }

  /** signNow, once this server holds the request's lease (or, `fresh`, takes it by writing the row with the reservation). */
  private async signLeased(signed: unknown, req: AgentRequest, a: Authorized, approvals: unknown[], now: number, fresh?: AgentRequestRecord): Promise<RequestView> {
    const owner = this.leaseOwner;
    // The decision is logged in the reservation's transaction: a request the reservation refuses
    // (a limit reached meanwhile) leaves only its refusal in the log.
    const logged = async (q: Queryable) => {
      if (fresh && !(await this.coord.store.insertRequestIn(q, fresh))) throw new Taken();
      return this.coord.audit.appendIn(q, {
        type: 'decision', requestDigest: a.requestDigest, outcome: 'allow', policyVersion: a.decision?.policyVersion,
        decision: { outcome: a.decision?.outcome ?? 'allow', reasons: a.decision?.reasons.map((r) => r.code) ?? [] },
        data: { requestId: req.requestId, walletId: req.walletId, grantId: req.grantId, payloadKind: req.payload.kind, ...(a.approvedBy?.length ? { approvedBy: a.approvedBy } : {}) },
      });
    };
    const reserved = await this.coord.control.reserve(a.requestId, a.reservations, { walletId: req.walletId, requestDigest: a.requestDigest, now, ttlMs: RESERVATION_TTL_MS, grant: a.grant }, logged);
    if (!reserved.ok) {
      const err = refusalError(reserved);
      // The refusal rolled the new row back with the reservation: the request is recorded as failed now.
      if (fresh) {
        if (!(await this.coord.store.insertRequest({ ...fresh, status: 'failed', detail: { error: errorOf(err) }, leaseOwner: undefined, leaseUntil: 0 }))) throw new Taken();
      } else await this.coord.store.updateRequest(req.requestId, ['signing'], 'failed', () => ({ detail: { error: errorOf(err) } }), owner);
      await this.logRefusal(err, req, a.requestDigest);
      throw err;
    }
    try {
      // The reservation counts for good (whoever holds the lease now), and, in the same transaction,
      // only the lease holder settles the request: a server that stalled past its lease while
      // another took over answers with what the row says (the other's signature once it is done).
      // That transaction is the last signature's audit entry's (one commit for the three).
      await this.signPayloads(signed, req, a, approvals, (result) =>
        this.coord.store.updateRequestHook(req.requestId, ['signing'], 'signed', () => ({ result, detail: a.approvedBy?.length ? { approvedBy: a.approvedBy } : null }), owner, this.coord.control.commitHook(a.requestId)),
      );
      return this.get(req.requestId);
    } catch (e) {
      // Settled only if this server still holds the request: another's reservation under the same id is its own.
      if (await this.coord.store.updateRequest(req.requestId, ['signing'], 'failed', () => ({ detail: { error: errorOf(e) } }), owner)) await this.giveUp(a);
      throw e;
    }
  }

  /** Signs every payload; `settle(result)` is written in the last signature's audit transaction. */
  private async signPayloads(signed: unknown, req: AgentRequest, a: Authorized, approvals: unknown[], settle: (result: Record<string, unknown>) => (q: Queryable) => Promise<unknown>): Promise<void> {
    const w = await this.coord.wallet(req.walletId);
    const auth = { agent: signed as never, ...(approvals.length ? { approvals } : {}) };
    const sigs: { input?: number; signature: string }[] = [];
    const payloads = a.decoded.signingPayloads;
    const add = (i: number, r: { signature: string }) =>
      (sigs[i] = { ...(a.decoded.signing?.[i]?.input !== undefined ? { input: a.decoded.signing[i].input } : {}), signature: w.scheme === 'ecdsa-secp256k1' ? '0x' + r.signature : r.signature });
    const result = (signers: string[]) => ({ signature: sigs[0].signature, signatures: sigs, signers, ...(req.payload.kind === 'evm_transaction' ? evmSigned(a.decoded, req.payload.data, sigs[0].signature) : {}), ...messageForm(req.payload.kind, a.decoded, sigs[0].signature) });
    for (const [i, p] of payloads.entries()) {
      const last = i === payloads.length - 1;
      const r = await this.coord.sign(req.walletId, p, req.requestId, auth, {
        strict: a.strict,
        ...(last ? { settle: (q: Queryable, r: { signature: string; signers: string[] }) => (add(i, r), settle(result(r.signers))(q)) } : {}),
      });
      if (!last) add(i, r);
    }
  }

  private async expireIfDue(r: AgentRequestRecord): Promise<AgentRequestRecord> {
    if (r.status !== 'pending_approval' || Date.now() < r.expiresAt) return r;
    if (await this.coord.store.updateRequest(r.requestId, ['pending_approval'], 'expired')) {
      await this.coord.audit.append({ type: 'request', requestDigest: r.requestDigest, outcome: 'expired', data: { requestId: r.requestId, walletId: r.walletId } });
    }
    return (await this.coord.store.getRequest(r.requestId))!;
  }

  private async view(r: AgentRequestRecord): Promise<RequestView> {
    const d = r.detail ?? {};
    return {
      status: r.status,
      requestId: r.requestId,
      requestDigest: r.requestDigest,
      walletId: r.walletId,
      grantId: r.grantId,
      expiresAt: new Date(r.expiresAt).toISOString(),
      ...(d.approvals ? { approvals: d.approvals as RequestView['approvals'] } : {}),
      ...(r.approvals.length ? { approvedBy: r.approvals.map((x) => (x as SignedApproval).approval?.approver).filter(Boolean) as string[] } : {}),
      ...(d.error ? { error: d.error as RequestView['error'] } : {}),
      ...(d.rejectedBy ? { rejectedBy: d.rejectedBy } : {}),
      ...(r.result ?? {}),
    };
  }

  private async logRefusal(e: unknown, req: AgentRequest, digest: string): Promise<void> {
    if (isFleetkeyError(e)) await this.coord.audit.append(refusalEntry(e, { walletId: req.walletId, requestId: req.requestId, grantId: req.grantId, requestDigest: digest }));
  }
}

/** Thrown inside a reservation's transaction when the request's row is already there (rolls the reservation back). */
class Taken extends Error {}

function inProgress(requestId: string): FleetkeyError {
  return new FleetkeyError('in_progress', `request ${requestId} is being signed; send it again to get its result`, { details: { requestId } });
}

function errorOf(e: unknown): { code: string; message: string } {
  return isFleetkeyError(e) ? { code: e.code, message: e.message } : { code: 'internal', message: 'signing failed' };
}

/** An EVM transaction, signed: the exact unsigned serialization that was hashed, re-serialized with r, s, v by viem. */
export function evmSigned(decoded: Decoded, data: unknown, signature: string): { serializedTransaction: Hex; hash: Hex } {
  const unsigned = (decoded.encoded ?? data) as Hex;
  if (typeof unsigned !== 'string') throw new FleetkeyError('internal', 'decoder gave no serialization');
  const sig = hexToBytes(signature.replace(/^0x/, ''));
  const yParity = sig[64] - 27;
  const tx = parseTransaction(unsigned) as TransactionSerializable;
  const r = ('0x' + bytesToHex(sig.subarray(0, 32))) as Hex;
  const s = ('0x' + bytesToHex(sig.subarray(32, 64))) as Hex;
  // viem derives the EIP-155 v for legacy transactions from v = 27 + yParity and the chain id.
  const signedTx = serializeTransaction(tx, { r, s, v: BigInt(27 + yParity), yParity });
  return { serializedTransaction: signedTx, hash: keccak256(signedTx) };
}

/**
 * What a verifier of a message signature needs besides the signature: a Solana off-chain message's
 * signed bytes (`offchainMessage`, base64), or a BIP-322 simple signature (`bip322`: the to_sign
 * witness, base64 of 0x01 0x40 ‖ signature).
 */
export function messageForm(kind: string, decoded: Decoded, signature: string): Record<string, string> {
  if (kind === 'solana_message') return { offchainMessage: Buffer.from(decoded.signingPayloads[0]).toString('base64') };
  if (kind === 'bitcoin_message') return { bip322: Buffer.concat([Buffer.of(0x01, 0x40), Buffer.from(signature, 'hex')]).toString('base64') };
  return {};
}
