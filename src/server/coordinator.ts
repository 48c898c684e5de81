/**
 * The coordinator: relays DKG / refresh rounds between signer nodes, keeps pools of signers' nonce
 * commitments so a signature takes one round trip, picks t healthy signers, aggregates, names
 * cheaters, and verifies every signature with a plain single-key verifier before returning it.
 *
 * It is untrusted for key safety: it never sees a share or a nonce, cannot forge or read
 * protocol messages, and cannot make a signer reuse a nonce.
 */
import { pausePoint } from '../pause.ts';
import { hexToBytes, bytesToHex } from '@noble/hashes/utils.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { frostAggregate, type BitcoinNetwork, type CommitmentJson, type FrostSchemeName } from '../crypto/frost.ts';
import { verifyPlain } from '../crypto/frost-group.ts';
import { isScheme, schemeOf, type SchemeName } from '../crypto/schemes.ts';
import { ProtocolError } from '../crypto/types.ts';
import { FleetkeyError } from '../errors.ts';
import { newId, type Logger } from '../http/common.ts';
import { publicHash, verifyEnvelope, type Envelope } from '../signer/envelope.ts';
import type { SharePublic } from '../signer/node.ts';
import type { Participant, PooledCommitment, ServerStore, WalletRecord } from '../store/server-store.ts';
import type { AuditLog } from '../store/audit-store.ts';
import type { Queryable } from '../store/db.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { SignerCallError, type SignerPool } from './signers.ts';
import type { SignPath } from '../http/metrics.ts';
import { controlDocDigest, signControlDoc, verifyControlDoc } from '../control/documents.ts';
import { parseOrThrow, signedControlDocSchema, walletCreateDocSchema, type ControlDoc, type Payload, type SignedApproval, type SignedControlDoc, type WalletCreateDoc } from '../control/schemas.ts';
import { chooseNetwork, walletNetworkOf } from '../enforce/wallet-create.ts';
import type { WalletPackage } from '../enforce/wallet-package.ts';
import type { PackageStore } from '../store/package-store.ts';
import { splitWalletId, type Authorizer, type SignAuth } from '../enforce/authorize.ts';
import type { ControlStore, DecisionPutResult, PutResult } from '../store/control-store.ts';
import { storedDocEntry } from '../enforce/audit-entries.ts';
import { bytesToHex as hexOf } from '@noble/hashes/utils.js';
import type { OwnerKey } from '../control/keys.ts';

const POOL_LOW = 8;
const POOL_BATCH = 32;
const SIGN_ATTEMPTS = 4;
/**
 * Longest one DKG or refresh round call may take. DKLs23's first rounds run κ = 256 verified base
 * OTs per ordered pair (src/crypto/dkls23/README.md): a 3-of-5 round took tens of seconds on a loaded
 * 2-core machine, so the budget is generous; a signer's session itself expires after 5 minutes.
 */
const KEY_ROUND_TIMEOUT_MS = 180_000;
/** Signatures in flight at once; the rest wait their turn here instead of timing out at the signers. */
const SIGN_CONCURRENCY = Math.max(1, Number(process.env.FLEETKEY_SIGN_CONCURRENCY ?? 8) || 8);
/**
 * How long a threshold-ECDSA signing waits for a signer subset none of whose node pairs is already in
 * a signing of the same wallet (a signer runs one DKLs23 signing per peer pair at a time, issue 16).
 */
const PAIR_WAIT_MS = 60_000;

/** An API request id as a control-plane request id (8-128 of A-Z a-z 0-9 _ -). */
export function asRequestId(id: string): string {
  return id.replace(/[^\w-]/g, '_').padEnd(8, '_').slice(0, 128);
}

/** A counting semaphore: `run(f)` starts f when fewer than `max` are running, in arrival order. */
class Slots {
  private running = 0;
  private waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

type StepAnswer = { messages: Envelope[]; result?: Envelope; public?: SharePublic };

export interface WalletView {
  id: string;
  scheme: string;
  publicKey: string;
  address: string;
  threshold: number;
  signers: number;
  participants: Participant[];
  label: string | null;
  network: string | null;
  epoch: number;
  internalKey?: string;
  createdAt: string;
}

export function walletView(w: WalletRecord): WalletView {
  const pub = JSON.parse(w.publicJson) as SharePublic;
  return {
    id: w.id,
    scheme: w.scheme,
    publicKey: w.publicKey,
    address: w.address,
    threshold: w.threshold,
    signers: w.participants.length,
    participants: w.participants,
    label: w.label,
    network: w.network,
    epoch: w.epoch,
    ...(pub.group.extra?.internalKey ? { internalKey: pub.group.extra.internalKey as string } : {}),
    createdAt: new Date(w.createdAt).toISOString(),
  };
}

/**
 * State across several API servers on one store (README, "Several API servers"). Shared, in the
 * store: wallets, preprocessed nonce commitments (ServerStore.takeCommitment hands each out once
 * across servers), agent requests and their leases, reservations, control documents, the audit
 * chains (one per server). Kept in this process's memory, because each is safe when stale or
 * local:
 * - `refills`: collapses concurrent refills of one pool in this process; two servers refilling the
 *   same pool at once only hold more commitments for a while.
 * - `children`: a child wallet derived from its root's public package at an epoch; keyed by epoch,
 *   and derivation is a pure function of immutable public data.
 * - `ownerAuths`: owner documents this server signed (development servers holding the owner key);
 *   another server signs its own, which the signers treat as a new request document.
 * - `apart`, `inflight`, `pairWaiters`: avoidance hints for subset choice. The signers enforce bans
 *   and one-signing-per-pair themselves and say so (409 bannedPeer, session_busy), which this
 *   server learns from.
 * - `receipts`: strict-counter receipts per request id; a signer answers a repeated reserve of the
 *   same request id with its first reservation, so another server collects the same counts again.
 */
export class Coordinator {
  private refills = new Map<string, Promise<void>>();

  private children = new Map<string, WalletRecord>();
  private slots = new Slots(SIGN_CONCURRENCY);
  private ownerAuths = new Map<string, { auth: SignAuth; expiresAt: number }>();
  /** Node pairs kept apart per root wallet and epoch (keptApart). */
  private apart = new Map<string, Set<string>>();
  /** Node pairs in a DKLs23 signing now, per root wallet and epoch (pair → sessions); see holdPairs. */
  private inflight = new Map<string, Map<string, number>>();
  /** Waiters for any in-flight pair to be freed. */
  private pairWaiters: (() => void)[] = [];
  /** Reservation receipts collected per wallet, epoch and request id (strict counters). */
  private receipts = new Map<string, Map<string, unknown>>();
  readonly control: ControlStore;
  readonly authz: Authorizer;
  /** Observes every signing of a known wallet (metrics): scheme, path, result, seconds. Public values only. */
  onSigned?: (e: { scheme: string; path: SignPath; ok: boolean; seconds: number }) => void;
  private readonly ownerSecret?: Uint8Array;
  /** The pinned owner public keys: an owner's order (create, reshare) is checked here as the holders will, to fail early (they check it anyway). */
  readonly ownerKeys: readonly OwnerKey[];
  /** Each wallet's signed public package per epoch (GET /v1/public/wallets/:id). */
  readonly packages?: PackageStore;

  constructor(
    readonly store: ServerStore,
    readonly signers: SignerPool,
    readonly log: Logger,
    readonly audit: AuditLog,
    opts: { control: ControlStore; authz: Authorizer; ownerSecret?: Uint8Array; ownerKeys?: readonly OwnerKey[]; packages?: PackageStore },
  ) {
    this.control = opts.control;
    this.authz = opts.authz;
    this.ownerSecret = opts.ownerSecret;
    this.ownerKeys = opts.ownerKeys ?? [];
    this.packages = opts.packages;
  }

  // -------------------------------------------------------------------------------------------
  // The owner's control documents

  /** Whether this server holds the owner key (`fleetkey dev`: yes; a production server: no). */
  get holdsOwnerKey(): boolean {
    return this.ownerSecret !== undefined;
  }

  /** Signs a control document with the owner key this server holds (development set-ups only). */
  ownerSign<D extends ControlDoc>(doc: D): SignedControlDoc<D> {
    if (!this.ownerSecret) throw new FleetkeyError('owner_authorization_required', 'this server holds no owner key: sign the document with the owner key (fleetkey CLI --owner-key) and submit it');
    return signControlDoc(doc, this.ownerSecret);
  }

  /**
   * An owner authorization to sign `payload` with `walletId` (admin signing through a server that
   * holds the owner key). The same request id and payload get the same document while it is valid,
   * so a client's retry is the same request to every signer (a new document would be a conflict).
   */
  ownerAuth(walletId: string, requestId: string, payload: Payload, ttlMs = 5 * 60_000): SignAuth {
    const key = `${walletId}|${requestId}|${hexOf(sha256(new TextEncoder().encode(JSON.stringify(payload))))}`;
    const now = Date.now();
    const hit = this.ownerAuths.get(key);
    if (hit && hit.expiresAt - now > 60_000) return hit.auth;
    const auth = { owner: this.ownerSign({ kind: 'sign', walletId, requestId, payload, issuedAt: now, expiresAt: now + ttlMs }) };
    if (this.ownerAuths.size > 10_000) this.ownerAuths.clear();
    this.ownerAuths.set(key, { auth, expiresAt: now + ttlMs });
    return auth;
  }

  /**
   * Verifies and stores an owner-signed document, then forwards it to every signer node. A node
   * that is down gets it (in order) when it is back; the answer says which nodes have it now.
   */
  async submitControl(signed: unknown): Promise<PutResult & { delivered: string[]; pending: string[] }> {
    const r = await this.control.putControlDoc(signed);
    if (r.status === 'stored') await this.audit.append(storedDocEntry(r, signed));
    return { ...r, ...(await this.forward(signed, r.digest)) };
  }

  /**
   * An approver's signed decision (approve or reject), checked and stored here, then forwarded to
   * every signer exactly like an owner document (durable, in order, re-delivered to a node that was
   * down): each signer refuses a request it knows a valid reject of, whatever approvals it is handed.
   */
  async submitDecision(signed: SignedApproval): Promise<DecisionPutResult & { delivered: string[]; pending: string[] }> {
    // The server's own audit entry of the decision is written by the approval desk (with the request id).
    const r = await this.control.putDecision(signed);
    return { ...r, ...(await this.forward(signed, r.digest)) };
  }

  /** Sends a document to every signer; a node that does not take it now is owed it (deliverOwedControl). */
  private async forward(signed: unknown, digest: string): Promise<{ delivered: string[]; pending: string[] }> {
    const peers = this.signers.peers().map((p) => p.nodeId);
    const sent = await Promise.allSettled(peers.map((n) => this.signers.call(n, '/v1/control', signed, 5000)));
    const delivered: string[] = [];
    const pending: string[] = [];
    for (const [i, x] of sent.entries()) {
      // 'conflict' from a node: it already holds a newer or identical version; nothing is owed.
      if (x.status === 'fulfilled' || (x.reason instanceof SignerCallError && x.reason.remoteCode === 'conflict')) delivered.push(peers[i]);
      else {
        pending.push(peers[i]);
        await this.store.oweControl(peers[i], digest, JSON.stringify(signed));
      }
    }
    return { delivered, pending };
  }

  /** Delivers control documents a node missed, oldest first. Idempotent. */
  async deliverOwedControl(): Promise<void> {
    for (const o of await this.store.owedControl()) {
      if (!this.signers.isUp(o.nodeId)) continue;
      try {
        await this.signers.call(o.nodeId, '/v1/control', JSON.parse(o.signedJson), 5000);
      } catch (e) {
        if (!(e instanceof SignerCallError && e.remoteCode === 'conflict')) {
          this.log.error('control delivery failed', { nodeId: o.nodeId, code: (e as FleetkeyError).code });
          continue;
        }
      }
      await this.store.controlDelivered(o.nodeId, o.digest);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Key generation and refresh: relay rounds, then commit once every party agrees.

  /**
   * Creates a wallet (or a fleet root) as the owner ordered it: `create` is the owner-signed
   * `wallet_create` document (scheme, threshold, holders, network, wallet id), which every holder
   * checks before it takes part (src/enforce/wallet-create.ts). Without one, a server that holds the
   * owner key (`fleetkey dev`) writes and signs it itself from the other fields; any other server
   * answers `owner_authorization_required`.
   */
  async createWallet(o: { create?: unknown; scheme?: string; threshold?: number; signers?: number; label?: string; network?: string }): Promise<WalletView> {
    const signed = o.create !== undefined ? this.checkCreate(o.create) : await this.ownerCreate(o);
    const doc = signed.doc;
    const scheme = schemeOf(doc.scheme);
    const participants: Participant[] = doc.holders.map((nodeId, i) => ({ index: i + 1, nodeId }));
    const known = new Set(this.signers.peers().map((p) => p.nodeId));
    const unknown = doc.holders.filter((n) => !known.has(n));
    if (unknown.length) throw new FleetkeyError('unknown_node', `not signer nodes of this cluster: ${unknown.join(', ')}`, { details: { nodeIds: unknown } });
    await Promise.all(doc.holders.filter((n) => !this.signers.isUp(n)).map((n) => this.signers.probe(n, 800)));
    const down = doc.holders.filter((n) => !this.signers.isUp(n));
    if (down.length) throw new FleetkeyError('not_enough_signers', `holders named by the wallet_create document are down: ${down.join(', ')}`, { details: { down } });
    if (await this.store.getWallet(doc.walletId)) throw new FleetkeyError('conflict', `wallet ${doc.walletId} exists`);
    const walletId = doc.walletId;
    const { pub, results } = await this.runKeyProtocol('dkg', { walletId, scheme: doc.scheme, threshold: doc.threshold, participants, epoch: 0, ...(doc.network ? { network: doc.network } : {}), create: signed });
    // The holders must have put the owner's order into what they signed; otherwise the package shows nothing checkable.
    if (pub.createDigest !== controlDocDigest(doc) || (pub.network ?? null) !== (doc.network ?? null))
      throw new FleetkeyError('cheating_signer', 'the holders signed a package without the owner\'s wallet_create document');
    const now = Date.now();
    const rec: WalletRecord = {
      id: walletId,
      scheme: doc.scheme,
      label: o.label ?? null,
      threshold: doc.threshold,
      participants,
      publicKey: pub.group.publicKey,
      address: scheme.address(pub.group.publicKey, doc.scheme === 'secp256k1-schnorr' ? (doc.network as BitcoinNetwork) : undefined),
      network: doc.network ?? null,
      publicJson: JSON.stringify(pub),
      epoch: 0,
      createdAt: now,
      updatedAt: now,
    };
    await this.packages?.put(walletId, 0, { public: pub as unknown as WalletPackage['public'], signatures: results as WalletPackage['signatures'], create: signed });
    await this.store.createWallet(rec);
    await this.audit.append({ type: 'admin', outcome: 'wallet_created', data: { walletId, scheme: doc.scheme, threshold: doc.threshold, participants, publicKey: rec.publicKey, address: rec.address, network: rec.network, createDigest: pub.createDigest } });
    this.log.info('wallet created', { walletId, scheme: doc.scheme, threshold: doc.threshold, signers: participants.length });
    return walletView(rec);
  }

  /** An owner's create document sent by the caller: checked here as every holder will check it. */
  private checkCreate(create: unknown): SignedControlDoc<WalletCreateDoc> {
    const env = parseOrThrow(signedControlDocSchema, create, 'create');
    const doc = parseOrThrow(walletCreateDocSchema, env.doc, 'create.doc');
    if (this.ownerKeys.length) verifyControlDoc(env, this.ownerKeys);
    const now = Date.now();
    if (now >= doc.expiresAt) throw new FleetkeyError('request_expired', 'the wallet_create document has expired', { details: { walletId: doc.walletId } });
    return { doc, sig: env.sig, signer: env.signer };
  }

  /** `fleetkey dev`: the server holds the owner key, so it writes the order from the request (defaults as before) and signs it. */
  private async ownerCreate(o: { scheme?: string; threshold?: number; signers?: number; network?: string }): Promise<SignedControlDoc<WalletCreateDoc>> {
    if (!this.ownerSecret)
      throw new FleetkeyError('owner_authorization_required', 'this server holds no owner key: send an owner-signed wallet_create document as "create" (the fleetkey CLI signs it with --owner-key)');
    if (!o.scheme || !isScheme(o.scheme)) throw new FleetkeyError('unsupported', `scheme ${o.scheme} is not available (ed25519, secp256k1-schnorr, ecdsa-secp256k1)`);
    const n = o.signers ?? this.signers.peers().length;
    const t = o.threshold ?? Math.min(2, n);
    if (o.scheme === 'ecdsa-secp256k1' && t < 2) throw new FleetkeyError('validation_failed', 'ecdsa-secp256k1 needs a threshold of at least 2', { details: { field: 'threshold' } });
    if (t > n) throw new FleetkeyError('validation_failed', `threshold ${t} exceeds signers ${n}`, { details: { field: 'threshold' } });
    if (t === 1 && n > 1) throw new FleetkeyError('validation_failed', 'threshold 1 is only allowed as 1-of-1: a 1-of-n key would be whole on every node', { details: { field: 'threshold' } });
    const network = chooseNetwork(o.scheme, o.network);
    const peers = this.signers.peers();
    if (peers.filter((p) => this.signers.isUp(p.nodeId)).length < n) await Promise.all(peers.filter((p) => !this.signers.isUp(p.nodeId)).map((p) => this.signers.probe(p.nodeId, 800)));
    const up = peers.filter((p) => this.signers.isUp(p.nodeId));
    if (up.length < n) throw new FleetkeyError('not_enough_signers', `need ${n} healthy signers, ${up.length} of ${peers.length} are up`);
    const now = Date.now();
    return this.ownerSign({
      kind: 'wallet_create',
      walletId: newId('wal'),
      scheme: o.scheme,
      threshold: t,
      holders: up.slice(0, n).map((p) => p.nodeId),
      ...(network ? { network } : {}),
      issuedAt: now,
      expiresAt: now + 30 * 60_000,
    });
  }

  async refreshWallet(walletId: string): Promise<WalletView> {
    const w = await this.wallet(walletId);
    // Refresh needs every share holder: ask each one now rather than trust a cached status.
    await Promise.all(w.participants.map((p) => this.signers.probe(p.nodeId, 800)));
    const stillDown = w.participants.filter((p) => !this.signers.isUp(p.nodeId));
    if (stillDown.length) throw new FleetkeyError('not_enough_signers', `refresh needs every share holder; down: ${stillDown.map((p) => p.nodeId).join(', ')}`);
    await this.deliverOwedCommits(walletId);
    const { pub, results } = await this.runKeyProtocol('refresh', { walletId, scheme: w.scheme as SchemeName, threshold: w.threshold, participants: w.participants, epoch: w.epoch }, false);
    if (pub.group.publicKey !== w.publicKey) throw new FleetkeyError('internal', 'refresh changed the public key; not committed');
    // The new epoch's package, signed again by every holder, with the owner's original order.
    const before = await this.packages?.get(walletId, w.epoch);
    await this.packages?.put(walletId, w.epoch + 1, { public: pub as unknown as WalletPackage['public'], signatures: results as WalletPackage['signatures'], ...(before?.create !== undefined ? { create: before.create } : {}) });
    const evidence = JSON.stringify({ walletId, epoch: w.epoch + 1, results });
    // Record the new epoch and every commit still owed in one transaction, then deliver.
    if (!(await this.store.advanceEpoch(walletId, w.epoch, JSON.stringify(pub), w.participants.map((p) => ({ nodeId: p.nodeId, evidence })))))
      throw new FleetkeyError('conflict', 'wallet changed during refresh');
    await this.store.dropPools(walletId);
    await this.audit.append({ type: 'admin', outcome: 'wallet_refreshed', data: { walletId, epoch: w.epoch + 1, publicKey: w.publicKey } });
    await this.deliverOwedCommits(walletId);
    this.log.info('wallet refreshed', { walletId, epoch: w.epoch + 1 });
    return walletView((await this.store.getWallet(walletId))!);
  }

  /** Sends commits a signer missed (it was down or crashed after a refresh). Idempotent. */
  async deliverOwedCommits(walletId?: string): Promise<void> {
    for (const o of await this.store.pendingCommits(walletId)) {
      if (!this.signers.isUp(o.nodeId)) continue;
      try {
        // A node that left the committee in a reshare is owed a retirement instead (src/server/reshare.ts).
        const ev = JSON.parse(o.evidence) as { retire?: boolean; walletId: string; epoch: number; custodyFrom?: string[] };
        if (ev.retire) await this.signers.call(o.nodeId, '/v1/retire', { ...ev, retire: undefined });
        else if (ev.custodyFrom) {
          // A new holder of a reshared wallet activates only with the old holders' custody reports (src/signer/custody.ts).
          const reports = await Promise.allSettled(ev.custodyFrom.filter((n) => this.signers.isUp(n)).map((n) => this.signers.call(n, '/v1/custody', { walletId: ev.walletId, epoch: ev.epoch })));
          const custody = reports.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          await this.signers.call(o.nodeId, '/v1/commit', { ...ev, custodyFrom: undefined, custody });
        } else await this.signers.call(o.nodeId, '/v1/commit', ev);
        await this.store.commitDelivered(o.walletId, o.epoch, o.nodeId);
      } catch (e) {
        this.log.error('commit delivery failed', { walletId: o.walletId, nodeId: o.nodeId, code: (e as FleetkeyError).code });
      }
    }
  }

  private async runKeyProtocol(
    kind: 'dkg' | 'refresh',
    s: { walletId: string; scheme: SchemeName; threshold: number; participants: Participant[]; epoch: number; network?: string; create?: SignedControlDoc },
    commit = true,
  ): Promise<{ pub: SharePublic; results: Envelope[] }> {
    const nodes = s.participants.map((p) => p.nodeId);
    const { answers, results } = await this.runSession(nodes, { kind, ...s }, KEY_ROUND_TIMEOUT_MS);
    if (answers.some((a) => !a.public)) throw new FleetkeyError('internal', 'a signer finished without a public package');
    const pub = answers[0].public!;
    const hash = publicHash(pub);
    for (const [i, r] of results.entries())
      if ((r.body as { publicHash?: string }).publicHash !== hash) throw new FleetkeyError('cheating_signer', `signer ${nodes[i]} ended with a different public key package`, { details: { nodeId: nodes[i] } });
    if (commit) await this.all(nodes, (n) => this.signers.call(n, '/v1/commit', { walletId: s.walletId, epoch: pub.epoch, results }));
    return { pub, results };
  }

  /**
   * Relays one session among `nodes` until every node has answered with a result, then checks
   * each result is signed by the node that sent it. The relay delivers each node the broadcasts
   * of the others and the direct messages addressed to it, nothing else.
   */
  async runSession(nodes: string[], start: Record<string, unknown>, timeoutMs: number): Promise<{ answers: StepAnswer[]; results: Envelope[] }> {
    const session = newId('ses');
    let answers: StepAnswer[];
    try {
      answers = await this.all(nodes, (n) => this.signers.call<StepAnswer>(n, '/v1/sessions', { session, ...start }, timeoutMs));
      for (let round = 1; answers.some((a) => !a.result); round++) {
        if (round > 16 || answers.some((a) => a.result)) throw new FleetkeyError('internal', 'signers finished in different rounds');
        await pausePoint('server', `${String(start.kind)}:${round}`);
        const sent = answers.flatMap((a) => a.messages);
        answers = await this.all(nodes, (n) =>
          this.signers.call<StepAnswer>(n, `/v1/sessions/${session}/round`, { round, messages: sent.filter((e) => e.from !== n && (e.to === undefined || e.to === n)) }, timeoutMs),
        );
      }
    } catch (e) {
      // Tell the others the session is over, so it does not hold their peer-pair slots until it expires.
      await Promise.allSettled(nodes.map((n) => this.signers.call(n, `/v1/sessions/${session}/abort`, {}, 5_000)));
      throw e;
    }
    const results = answers.map((a, i) => {
      verifyEnvelope(a.result!, this.signers.peer(nodes[i]));
      if (a.result!.from !== nodes[i]) throw new FleetkeyError('bad_signature', `result from ${nodes[i]} is signed as ${a.result!.from}`);
      return a.result!;
    });
    return { answers, results };
  }

  /** All calls in parallel; the first failure (after all settle) is thrown, naming its node. */
  private async all<T>(nodes: string[], f: (n: string) => Promise<T>): Promise<T[]> {
    const r = await Promise.allSettled(nodes.map(f));
    const bad = r.find((x) => x.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;
    return r.map((x) => (x as PromiseFulfilledResult<T>).value);
  }

  // -------------------------------------------------------------------------------------------
  // Signing

  /**
   * A wallet record; for a child id `<root>.<index>` the record of the derived child (public key,
   * address and group package derived from the root's by the public tweak; the root's signers).
   */
  async wallet(id: string): Promise<WalletRecord> {
    const { rootId, index } = splitWalletId(id);
    const w = await this.store.getWallet(rootId);
    if (!w) throw new FleetkeyError('not_found', `no wallet ${rootId}`);
    if (index === undefined) return w;
    const key = `${id}|${w.epoch}`;
    const hit = this.children.get(key);
    if (hit) return hit;
    const pub = JSON.parse(w.publicJson) as SharePublic;
    const scheme = schemeOf(w.scheme);
    const group = scheme.deriveChildPublic(pub.group, index);
    const child: WalletRecord = { ...w, id, publicKey: group.publicKey, address: scheme.address(group.publicKey, (w.network ?? undefined) as BitcoinNetwork | undefined), publicJson: JSON.stringify({ ...pub, group }) };
    if (this.children.size > 100_000) this.children.clear();
    this.children.set(key, child);
    return child;
  }

  /**
   * Signs `message` with a wallet: t signers, one round trip. A signer that is down, slow or
   * fails mid-round is skipped and the attempt is retried with others (every retry uses fresh
   * nonces for everyone: a nonce touched once is never offered again). A cheating signer is
   * named and excluded.
   */
  async sign(
    walletId: string,
    message: Uint8Array,
    requestId = newId('req'),
    auth?: SignAuth,
    opts: {
      strict?: boolean;
      path?: SignPath;
      /** A write that commits with the signature's audit entry (an agent request settled as signed): one commit for both. */
      settle?: (q: Queryable, r: { signature: string; signers: string[] }) => Promise<unknown>;
    } = {},
  ): Promise<{ signature: string; signers: string[] }> {
    const requestDigest = bytesToHex(sha256(message));
    const started = performance.now();
    const path: SignPath = opts.path ?? (auth && 'agent' in auth ? 'agent' : 'admin');
    let scheme: string | undefined;
    let r: { signature: string; signers: string[] };
    try {
      const w = await this.wallet(walletId);
      scheme = w.scheme;
      if (!auth) {
        // Admin signing: the owner authorizes exactly these bytes (the server must hold the owner key).
        const raw = schemeOf(w.scheme).signing === 'interactive';
        auth = this.ownerAuth(walletId, asRequestId(requestId), { kind: raw ? 'raw_hash' : 'raw_message', data: hexOf(message) });
        requestId = ((auth as { owner: SignedControlDoc }).owner.doc as { requestId: string }).requestId;
      }
      const a = auth;
      r = await this.slots.run(() => this.signInner(w, message, requestDigest, requestId, a, opts.strict === true));
    } catch (e) {
      const err = e as FleetkeyError;
      if (err.code !== 'not_found' && err.code !== 'validation_failed')
        await this.audit.append({ type: 'signature', requestDigest, outcome: err.code ?? 'failed', data: { walletId, requestId, ...(err.details ?? {}) } });
      if (scheme) this.onSigned?.({ scheme, path, ok: false, seconds: (performance.now() - started) / 1000 });
      throw e;
    }
    // Fail closed: the signature is returned only once its audit entry is durable.
    const settle = opts.settle;
    await this.audit.append({ type: 'signature', requestDigest, outcome: 'signed', data: { walletId, requestId, signers: r.signers } }, settle && ((q) => settle(q, r)));
    this.onSigned?.({ scheme: scheme!, path, ok: true, seconds: (performance.now() - started) / 1000 });
    return r;
  }

  private async signInner(w: WalletRecord, message: Uint8Array, requestDigest: string, requestId: string, auth: SignAuth, strict: boolean): Promise<{ signature: string; signers: string[] }> {
    const walletId = w.id;
    const pub = JSON.parse(w.publicJson) as SharePublic;
    const scheme = schemeOf(w.scheme);
    if (scheme.signing === 'interactive' && message.length !== 32) throw new FleetkeyError('validation_failed', `${scheme.name} signs a 32-byte hash`, { details: { field: 'hash' } });
    // Strict counters: receipts from the holders outside each attempt's signing set (collected once per holder and request).
    let counting = strict && 'agent' in auth;
    const excluded = new Set<string>();
    const apart = this.keptApart(w);
    const interactive = scheme.signing === 'interactive';
    // DKLs23: a signer runs one signing per peer pair and wallet at a time, so a subset must also avoid
    // the pairs of signings in flight here, and pairs a signer reported busy (session_busy).
    const busy = new Set<string>();
    const candidates = () => w.participants.filter((p) => !excluded.has(p.nodeId) && this.signers.isUp(p.nodeId));
    const pick = () => firstCompatible(candidates(), w.threshold, interactive ? new Set([...apart, ...busy, ...this.inflightPairs(w)]) : apart);
    const waitUntil = Date.now() + PAIR_WAIT_MS;
    for (let attempt = 0; attempt < SIGN_ATTEMPTS; attempt++) {
      let chosen = pick();
      if (!chosen) {
        // Maybe a node came back: probe the rest once before giving up.
        await Promise.all(w.participants.filter((p) => !excluded.has(p.nodeId) && !this.signers.isUp(p.nodeId)).map((p) => this.signers.probe(p.nodeId, 500)));
        chosen = pick();
      }
      if (!chosen && interactive && Date.now() < waitUntil && firstCompatible(candidates(), w.threshold, apart)) {
        // Only busy pairs stand in the way: wait for a signing to end (not an attempt), then look again.
        await this.pairFreed(250);
        busy.clear();
        attempt--;
        continue;
      }
      if (!chosen) break;
      // FROST: the signing set's commitments are taken while the holders outside it count (a commit
      // here overlapping their round trip); if they refuse, the taken commitments are simply never used.
      let picked: Promise<PooledCommitment[]> | undefined;
      if (counting && 'agent' in auth) {
        if (!interactive && w.threshold > 1) (picked = this.takeCommitments(w, chosen.map((p) => p.nodeId))).catch(() => undefined);
        auth = await this.withReceipts(w, auth, message, requestId, outside(w, chosen));
      }
      try {
        if (interactive) {
          const release = this.holdPairs(w, chosen);
          try {
            const signature = await this.signSession(w, chosen, message, auth);
            return { signature: bytesToHex(signature), signers: chosen.map((p) => p.nodeId) };
          } finally {
            release();
          }
        }
        // A 1-of-n signer's signature is checked here with the plain verifier; an aggregate already was,
        // inside frostAggregate (against pub.group.publicKey, which is this wallet's key).
        const single = w.threshold === 1;
        const signature = single ? await this.signSingle(w, chosen[0], message, requestId, auth) : await this.signRound(w, pub, chosen, message, requestId, auth, picked);
        if (single && !verifyPlain(scheme.name as FrostSchemeName, hexToBytes(w.publicKey), message, signature)) throw new FleetkeyError('internal', 'signature failed verification');
        return { signature: bytesToHex(signature), signers: chosen.map((p) => p.nodeId) };
      } catch (e) {
        if (e instanceof SignerCallError) {
          if (e.remoteCode === 'bad_share') {
            // An accusation, not evidence: the reporter may be lying, or its own state corrupted (it
            // cannot tell). So the pair is kept apart for this wallet until a refresh, as the reporter
            // itself does, and nobody is quarantined; the signing goes on with another subset.
            const culprit = e.remoteDetails?.culprit as string | undefined;
            await this.audit.append({ type: 'signature', requestDigest, outcome: 'accusation', data: { walletId, requestId, reportedBy: e.nodeId, culprit: culprit ?? null, message: e.message.slice(0, 500) } });
            this.log.error('a signer reported an invalid protocol message', { walletId, requestId, reportedBy: e.nodeId, culprit });
            if (!culprit || culprit === e.nodeId)
              throw new FleetkeyError('cheating_signer', `signer ${e.nodeId} reported an invalid protocol message naming no other signer`, { details: { reportedBy: e.nodeId } });
            apart.add(pairKey(e.nodeId, culprit));
            continue;
          }
          // A signer counts strictly where we did not expect it (e.g. it has a newer policy): collect the receipts and go again.
          if (e.remoteCode === 'reservation_missing' && 'agent' in auth && !counting) counting = true;
          else if (e.remoteCode === 'session_busy' && typeof e.remoteDetails?.busyPeer === 'string') {
            // Another signing of this wallet holds that pair at the signer (e.g. another server): try
            // another subset, or wait; not an attempt, as nothing was tried.
            busy.add(pairKey(e.nodeId, e.remoteDetails.busyPeer));
            if (Date.now() < waitUntil) attempt--;
          }
          else if (e.remoteCode === 'protocol_state' && typeof e.remoteDetails?.bannedPeer === 'string') apart.add(pairKey(e.nodeId, e.remoteDetails.bannedPeer));
          else if (e.remoteCode === 'protocol_state' && typeof e.remoteDetails?.epoch === 'number' && e.remoteDetails.epoch < w.epoch) await this.deliverOwedCommits(walletId);
          else if (e.unavailable || e.remoteCode === 'not_found' || e.remoteCode === 'protocol_state') excluded.add(e.nodeId);
          else if (e.remoteCode === 'nonce_consumed' || e.remoteCode === 'nonce_unknown')
            // The signer no longer holds a nonce this pool offered (e.g. it was restored from a backup,
            // which refuses every nonce pooled before): the rest of its pool is likely stale too. Dropping is always safe.
            await this.store.dropPool(this.poolKey(w, e.nodeId));
          else throw e;
          continue;
        }
        throw e instanceof FleetkeyError && e.code === 'cheating_signer' ? this.cheater(e, walletId, requestId) : e;
      }
    }
    throw new FleetkeyError('not_enough_signers', `fewer than ${w.threshold} signers of wallet ${walletId} answered`, { details: { excluded: [...excluded] } });
  }

  /**
   * Strict counters (src/enforce/receipts.ts): every holder in `from` (the holders outside this
   * attempt's signing set) counts the request and signs a receipt before any share is asked for;
   * the signing set counts in the transactions that issue its shares. All of `from` must answer:
   * one that is down means `not_enough_signers` (503; the same request can be sent again), one that
   * refuses means its refusal (e.g. `limit_exceeded`). Receipts are kept per request id and holder,
   * for retries with another subset and for the other payloads of the same request.
   */
  private async withReceipts(w: WalletRecord, auth: Extract<SignAuth, { agent: unknown }>, message: Uint8Array, requestId: string, from: readonly string[]): Promise<SignAuth> {
    const key = `${w.id}|${w.epoch}|${requestId}`;
    const have = this.receipts.get(key) ?? new Map<string, unknown>();
    const ask = from.filter((n) => !have.has(n));
    if (ask.length) {
      const body = { requestId, walletId: w.id, epoch: w.epoch, message: bytesToHex(message), auth: { agent: auth.agent, ...(auth.approvals ? { approvals: auth.approvals } : {}) }, ...this.net(w) };
      const answers = await Promise.allSettled(ask.map((n) => this.signers.call<{ receipt: unknown }>(n, '/v1/reserve', body)));
      const refused = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected' && !(a.reason instanceof SignerCallError && a.reason.unavailable));
      if (refused) throw refused.reason;
      const down = ask.filter((_, i) => answers[i].status === 'rejected');
      if (down.length)
        throw new FleetkeyError('not_enough_signers', `this wallet's policy counts limits at every share holder (counters: "strict"), and ${down.join(', ')} did not answer; send the same request again`, { details: { down } });
      ask.forEach((n, i) => have.set(n, (answers[i] as PromiseFulfilledResult<{ receipt: unknown }>).value.receipt));
      if (this.receipts.size > 10_000) this.receipts.clear();
      this.receipts.set(key, have);
    }
    return { ...auth, receipts: [...have.values()].filter((r) => r !== null) };
  }

  /**
   * Pairs of nodes that must not sign this wallet together until it is refreshed (an abort one of
   * them blamed on the other). Keyed by root wallet and epoch: a refresh starts clean, as the
   * signers' own bans do; a restarted server learns them again from the signers' 409 bannedPeer.
   */
  private keptApart(w: WalletRecord): Set<string> {
    const key = `${splitWalletId(w.id).rootId}|${w.epoch}`;
    let set = this.apart.get(key);
    if (!set) this.apart.set(key, (set = new Set()));
    return set;
  }

  private inflightKey(w: WalletRecord): string {
    return `${splitWalletId(w.id).rootId}|${w.epoch}`;
  }

  /** The node pairs of this wallet's DKLs23 signings in flight from this server. */
  private inflightPairs(w: WalletRecord): Iterable<string> {
    return this.inflight.get(this.inflightKey(w))?.keys() ?? [];
  }

  /** Marks every pair of `chosen` in flight for the wallet; returns the function that frees them (and wakes waiters). */
  private holdPairs(w: WalletRecord, chosen: Participant[]): () => void {
    const key = this.inflightKey(w);
    const pairs: string[] = [];
    for (let i = 0; i < chosen.length; i++) for (let j = i + 1; j < chosen.length; j++) pairs.push(pairKey(chosen[i].nodeId, chosen[j].nodeId));
    const m = this.inflight.get(key) ?? new Map<string, number>();
    this.inflight.set(key, m);
    for (const p of pairs) m.set(p, (m.get(p) ?? 0) + 1);
    return () => {
      for (const p of pairs) {
        const n = (m.get(p) ?? 1) - 1;
        if (n > 0) m.set(p, n);
        else m.delete(p);
      }
      if (!m.size) this.inflight.delete(key);
      for (const wake of this.pairWaiters.splice(0)) wake();
    };
  }

  /** Resolves when some in-flight pair is freed, or after `ms` (a pair a signer reported busy is not tracked here). */
  private pairFreed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.pairWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Logs and quarantines the node a cheating_signer error names (evidence the server checked itself); returns the error to throw. */
  private cheater(e: FleetkeyError, walletId: string, requestId: string): FleetkeyError {
    this.log.error('cheating signer', { walletId, requestId, nodeId: e.details?.nodeId, reportedBy: e.details?.reportedBy });
    if (typeof e.details?.nodeId === 'string') this.signers.quarantine(e.details.nodeId);
    return e;
  }

  /**
   * Threshold ECDSA: one three-round DKLs23 session among the chosen signers. Every signer ends
   * with the signature; all must agree, and it must verify (low-s, prehashed) under the group key
   * before it is returned as r‖s‖v with v = 27 + recovery id.
   */
  private async signSession(w: WalletRecord, chosen: Participant[], hash: Uint8Array, auth: SignAuth): Promise<Uint8Array> {
    const { results } = await this.runSession(
      chosen.map((p) => p.nodeId),
      { kind: 'sign', walletId: w.id, scheme: w.scheme, threshold: w.threshold, participants: w.participants, epoch: w.epoch, signers: chosen.map((p) => p.index), messageHash: bytesToHex(hash), auth, ...this.net(w) },
      20_000,
    );
    const bodies = results.map((r) => r.body as { signature: string; v: number; messageHash: string });
    if (new Set(bodies.map((b) => `${b.signature}/${b.v}/${b.messageHash}`)).size !== 1)
      throw new FleetkeyError('cheating_signer', 'signers ended with different signatures', { details: { nodeIds: chosen.map((p) => p.nodeId) } });
    const { signature, v } = bodies[0];
    const sig = secp256k1.Signature.fromBytes(hexToBytes(signature), 'compact');
    if (sig.hasHighS() || !secp256k1.verify(hexToBytes(signature), hash, hexToBytes(w.publicKey), { prehash: false, lowS: true }) || (v !== 0 && v !== 1))
      throw new FleetkeyError('internal', 'threshold ECDSA signature failed verification');
    if (bytesToHex(sig.addRecoveryBit(v).recoverPublicKey(hash).toBytes(true)) !== w.publicKey) throw new FleetkeyError('internal', 'recovery id does not recover the wallet key');
    const out = new Uint8Array(65);
    out.set(hexToBytes(signature), 0);
    out[64] = 27 + v;
    return out;
  }

  private net(w: WalletRecord): { network?: string } {
    const network = walletNetworkOf(w.scheme, w.network);
    return network ? { network } : {};
  }

  /** A wallet's signed public package at its current epoch (a child's is its root's), or null for a wallet created before packages were kept. */
  async publicPackage(id: string): Promise<WalletPackage | null> {
    const w = await this.wallet(id);
    return (await this.packages?.get(splitWalletId(w.id).rootId, w.epoch)) ?? null;
  }

  private async signSingle(w: WalletRecord, p: Participant, message: Uint8Array, requestId: string, auth: SignAuth): Promise<Uint8Array> {
    const r = await this.signers.call<{ signature: string }>(p.nodeId, '/v1/sign', { requestId, walletId: w.id, epoch: w.epoch, message: bytesToHex(message), auth, ...this.net(w) });
    return hexToBytes(r.signature);
  }

  /** One FROST round among `chosen`, with commitments `taken` already (or taken now). */
  private async signRound(w: WalletRecord, pub: SharePublic, chosen: Participant[], message: Uint8Array, requestId: string, auth: SignAuth, taken?: Promise<PooledCommitment[]>): Promise<Uint8Array> {
    const picked = await (taken ?? this.takeCommitments(w, chosen.map((p) => p.nodeId)));
    const commitments: Record<number, CommitmentJson> = {};
    chosen.forEach((p, i) => (commitments[p.index] = { hiding: picked[i].hiding, binding: picked[i].binding }));
    const msgHex = bytesToHex(message);
    const shares = await this.all(
      chosen.map((p) => p.nodeId),
      (n) => this.signers.call<{ index: number; share: string }>(n, '/v1/sign', { requestId, walletId: w.id, epoch: w.epoch, message: msgHex, nonceId: picked[chosen.findIndex((p) => p.nodeId === n)].id, commitments, auth, ...this.net(w) }),
    );
    const byIndex: Record<number, string> = {};
    chosen.forEach((p, i) => (byIndex[p.index] = shares[i].share));
    try {
      return frostAggregate(pub.scheme as FrostSchemeName, pub.group, commitments, message, byIndex);
    } catch (e) {
      if (e instanceof ProtocolError && e.culprit !== undefined) {
        const nodeId = chosen.find((p) => p.index === e.culprit)?.nodeId;
        throw new FleetkeyError('cheating_signer', `signer ${nodeId} sent an invalid signature share`, { details: { nodeId } });
      }
      throw e;
    }
  }

  /** Nonces belong to the root wallet's shares: a child wallet signs with its root's pool. */
  private poolKey(w: WalletRecord, nodeId: string): string {
    return `${splitWalletId(w.id).rootId}|${w.epoch}|${nodeId}`;
  }

  /**
   * One commitment of each of `nodeIds` for this wallet, taken from the shared pools for good, in one
   * store transaction; a pool that is empty is refilled from its signer and taken from again, and
   * pools running low are refilled in the background.
   */
  private async takeCommitments(w: WalletRecord, nodeIds: readonly string[]): Promise<PooledCommitment[]> {
    const keys = nodeIds.map((n) => this.poolKey(w, n));
    const first = await this.store.takeCommitments(keys);
    const picked = await Promise.all(
      nodeIds.map(async (nodeId, i) => {
        let c = first[i];
        if (!c) {
          await this.refill(w, nodeId);
          c = await this.store.takeCommitment(keys[i]);
        }
        if (!c) throw new SignerCallError(nodeId, 'signer_unavailable', `signer ${nodeId} gave no nonce commitments`);
        return c;
      }),
    );
    for (const [i, key] of keys.entries())
      void this.store
        .poolDepth(key)
        .then((n) => (n < POOL_LOW ? this.refill(w, nodeIds[i]) : undefined))
        .catch(() => undefined);
    return picked;
  }

  private refill(w: WalletRecord, nodeId: string): Promise<void> {
    const key = this.poolKey(w, nodeId);
    const running = this.refills.get(key);
    if (running) return running;
    const p = this.signers
      .call<{ commitments: PooledCommitment[] }>(nodeId, '/v1/nonces', { walletId: splitWalletId(w.id).rootId, epoch: w.epoch, count: POOL_BATCH })
      .then((r) => this.store.addCommitments(key, r.commitments))
      .finally(() => this.refills.delete(key));
    this.refills.set(key, p);
    return p;
  }

  /** Preprocessed commitments in the store now, summed over wallets, per signer node (metrics). */
  async poolDepth(): Promise<Map<string, number>> {
    const depth = new Map<string, number>();
    for (const [key, n] of await this.store.poolDepths()) {
      const nodeId = key.slice(key.lastIndexOf('|') + 1);
      depth.set(nodeId, (depth.get(nodeId) ?? 0) + n);
    }
    return depth;
  }

  /** Warms every signer's nonce pool for a wallet (used after creation and by benchmarks). */
  async warm(walletId: string): Promise<void> {
    const w = await this.wallet(walletId);
    if (w.threshold < 2) return;
    await Promise.all(w.participants.filter((p) => this.signers.isUp(p.nodeId)).map((p) => this.refill(w, p.nodeId).catch(() => undefined)));
  }
}

/** The holders of `w` outside a signing set: under strict counters, they count before any share is issued. */
function outside(w: WalletRecord, chosen: readonly Participant[]): string[] {
  return w.participants.filter((p) => !chosen.some((c) => c.nodeId === p.nodeId)).map((p) => p.nodeId);
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/**
 * The first `t` of `candidates` (in their order) with no two of them kept apart, or undefined.
 * Depth-first over combinations; the search is capped, as n is small and bans are few.
 */
function firstCompatible(candidates: Participant[], t: number, apart: ReadonlySet<string>): Participant[] | undefined {
  if (!apart.size) return candidates.length >= t ? candidates.slice(0, t) : undefined;
  let steps = 0;
  const pick: Participant[] = [];
  const walk = (from: number): boolean => {
    if (pick.length === t) return true;
    for (let i = from; i <= candidates.length - (t - pick.length); i++) {
      if (++steps > 100_000) return false;
      const c = candidates[i];
      if (pick.some((p) => apart.has(pairKey(p.nodeId, c.nodeId)))) continue;
      pick.push(c);
      if (walk(i + 1)) return true;
      pick.pop();
    }
    return false;
  };
  return walk(0) ? pick : undefined;
}
