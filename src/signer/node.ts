/**
 * One signer node: holds its key shares sealed, runs its side of DKG / refresh / signing, and
 * checks everything it is sent itself. It trusts no relay: every protocol message must be signed
 * by a pinned peer, bound to this session and round, and arrive exactly once; every nonce is
 * consumed durably before any value derived from it leaves the node.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { frostCommit, frostSignShare, frostSignSingle, isFrostScheme, type CommitmentJson, type NonceJson } from '../crypto/frost.ts';
import * as dkls23 from '../crypto/dkls23/index.ts';
import { isScheme, schemeOf, type SchemeName } from '../crypto/schemes.ts';
import { ProtocolError, type GroupPublic, type Json, type KeyGenResult, type PartyProtocol, type RoundInput, type RoundOutput, type SecretShare } from '../crypto/types.ts';
import { FleetkeyError } from '../errors.ts';
import type { Logger } from '../http/common.ts';
import type { Participant } from '../store/server-store.ts';
import type { SignerStore } from '../store/signer-store.ts';
import { AuditLog } from '../store/audit-store.ts';
import { ed25519CheckpointSigner } from '../audit/index.ts';
import { newNodeKeys, openDirect, publicHash, publicOf, sealDirect, signEnvelope, verifyEnvelope, type Envelope, type NodeKeys, type PeerInfo } from './envelope.ts';
import type { Sealer } from './seal.ts';
import type { NonceLedger } from './nonce-ledger.ts';
import { Authorizer, signAuthSchema, splitWalletId, type Authorized, type SignAuth } from '../enforce/authorize.ts';
import { ControlStore, refusalError } from '../store/control-store.ts';
import { decisionEntry, refusalEntry, storedDocEntry } from '../enforce/audit-entries.ts';
import type { Queryable } from '../store/db.ts';
import type { BitcoinNetwork } from '../crypto/frost.ts';
import { checkReceipts, signReceipt, type Receipt } from '../enforce/receipts.ts';
import { Dkls23Guard } from './dkls23-guard.ts';
import { checkCreateDoc, walletNetworkOf } from '../enforce/wallet-create.ts';
import { checkReshareOrder } from '../enforce/wallet-reshare.ts';
import { CreateLog } from '../store/create-log.ts';
import { reshare } from '../crypto/reshare.ts';
import { custodyBody, custodySession, previousKey, takeCustody, type PreviousCommittee } from './custody.ts';
import { pausePoint } from '../pause.ts';
import { sealShare, shareScalar, scalarBytes, signBox } from '../crypto/export.ts';
import { controlDocDigest, verifyControlDoc, DEFAULT_CLOCK_SKEW_MS } from '../control/index.ts';
import type { ExportDoc } from '../control/schemas.ts';
import { checkReshareStart, reshareStartSchema, type retireSchema } from './reshare.ts';
import type { OwnerKey } from '../control/keys.ts';

const SESSION_TTL_MS = 5 * 60_000;
const SESSION_KINDS = ['dkg', 'refresh', 'sign', 'reshare', 'pairs'] as const;
type SessionKind = (typeof SESSION_KINDS)[number];
/**
 * How long an interactive session's reservation holds before it stops counting by itself: longer
 * than the session can live, so a relay that stalls a DKLs23 session cannot let its amounts lapse
 * while the session can still complete (issue 15, item 3). The commit re-checks the caps anyway
 * (commitSession), so a lapsed reservation is never counted for good over a limit.
 */
const RESERVATION_TTL_MS = SESSION_TTL_MS + 60_000;

/** What a session step answers: the next round's envelopes, or the signed result. */
export type StepAnswer = { messages: Envelope[]; result?: Envelope; public?: SharePublic };
const MAX_NONCE_BATCH = 256;

/** What a signer stores next to each share: the public facts every participant agreed on. */
export interface SharePublic {
  scheme: SchemeName;
  walletId: string;
  epoch: number;
  threshold: number;
  participants: Participant[];
  group: GroupPublic;
  /** The wallet's network, from the owner's wallet_create document (absent: ecdsa-secp256k1, or created before networks were recorded). */
  network?: string;
  /** controlDocDigest of the owner's wallet_create document this key was generated under; kept across refreshes. */
  createDigest?: string;
  [k: string]: Json | Participant[] | GroupPublic | undefined;
}

interface Session {
  id: string;
  kind: SessionKind;
  walletId: string;
  scheme: SchemeName;
  epoch: number;
  threshold: number;
  /** The parties of this session: every share holder for DKG and refresh, the t signers for 'sign'. */
  participants: Participant[];
  self: number;
  proto: PartyProtocol<unknown>;
  messageHash?: string;
  /** For 'reshare': the new committee (the session's participants also count dealers who leave). */
  holders?: Participant[];
  /** For 'reshare' of ecdsa-secp256k1: the share is staged until the new pairs run 'pairs'. */
  staged?: boolean;
  /** For 'dkg' and 'refresh': what goes into the public package besides the key (SharePublic). */
  network?: string;
  createDigest?: string;
  /** For 'sign': the authorized request whose reservation is committed before the last round's messages leave. */
  authorized?: Authorized;
  committed?: boolean;
  /** The last round whose messages were delivered to this node (0 = none yet). */
  delivered: number;
  expires: number;
}

export const participantsSchema = z
  .array(z.object({ index: z.number().int().min(1).max(255), nodeId: z.string().min(1).max(64) }))
  .min(1)
  .max(64);

const walletIdSchema = z.string().regex(/^[\w-]{3,80}(\.\d{1,10})?$/);
export const startSchema = z.object({
  session: z.string().regex(/^[\w-]{8,80}$/),
  kind: z.enum(SESSION_KINDS),
  walletId: walletIdSchema,
  scheme: z.string(),
  threshold: z.number().int().min(1).max(64),
  participants: participantsSchema,
  /** For refresh and sign: the wallet's current epoch. For DKG: 0. */
  epoch: z.number().int().min(0),
  /** For sign: the party indexes that sign (at least the threshold, including this node). */
  signers: z.array(z.number().int().min(1).max(255)).max(64).optional(),
  /** For sign: the 32-byte digest to sign (interactive schemes only). */
  messageHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** For sign: the owner's authorization or the agent's signed request (checked here, never trusted). */
  auth: signAuthSchema.optional(),
  /** The wallet's network as the server knows it; a signer uses its own record and refuses another (wrong_network). */
  network: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
  /** For dkg: the owner-signed wallet_create document (src/enforce/wallet-create.ts), checked here. */
  create: z.unknown().optional(),
  /** For reshare: who deals, the new committee, and (for a node that holds no share yet) the current public package. */
  reshare: reshareStartSchema.optional(),
  /** For reshare: the owner-signed wallet_reshare order (src/enforce/wallet-reshare.ts), checked here by every dealer and new holder. */
  order: z.unknown().optional(),
});

const envelopeSchema = z.object({
  v: z.literal(1),
  session: z.string().max(80),
  kind: z.enum([...SESSION_KINDS, 'result', 'custody']),
  round: z.number().int().min(0).max(64),
  from: z.string().max(64),
  to: z.string().max(64).optional(),
  body: z.any(),
  sig: z.string().max(200),
});
export const roundSchema = z.object({ round: z.number().int().min(1).max(64), messages: z.array(envelopeSchema).max(256) });
export const commitSchema = z.object({
  walletId: z.string().max(80),
  epoch: z.number().int().min(0),
  results: z.array(envelopeSchema).max(64),
  /** After a reshare, for a new holder: old holders' custody reports (src/signer/custody.ts). */
  custody: z.array(envelopeSchema).max(64).optional(),
});
export const custodyRequestSchema = z.object({ walletId: z.string().min(1).max(80), epoch: z.number().int().min(1) });
export const noncesSchema = z.object({ walletId: z.string().max(80), epoch: z.number().int().min(0), count: z.number().int().min(1).max(MAX_NONCE_BATCH) });
const hex = z.string().regex(/^([0-9a-f]{2})*$/);
export const signSchema = z.object({
  requestId: z.string().min(1).max(128),
  walletId: walletIdSchema,
  auth: signAuthSchema,
  network: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
  epoch: z.number().int().min(0),
  message: hex.max(2 * 65536),
  nonceId: z.string().max(80).optional(),
  commitments: z.record(z.string().regex(/^\d{1,3}$/), z.object({ hiding: hex.max(130), binding: hex.max(130) })).optional(),
});

/** POST /v1/reserve: count a request at this holder and answer with a signed receipt (strict counters). */
export const reserveSchema = signSchema.pick({ requestId: true, walletId: true, auth: true, network: true, epoch: true, message: true });

export class SignerNode {
  private sessions = new Map<string, Session>();
  /** Bans on abort and one in-flight DKLs23 signing per peer pair (issue 16). */
  private readonly dkls = new Dkls23Guard();
  /** This node's own audit chain, checkpoints signed with its identity key. */
  readonly audit: AuditLog;
  private peersCache: { mtime: number; peers: Map<string, PeerInfo> } | undefined;

  /** The owner's documents this node accepted, its request log and its own spend counters. */
  readonly control: ControlStore;
  readonly authz: Authorizer;
  /** The owner's wallet_create documents this node acted on (one key generation per wallet id, ever). */
  readonly creates: CreateLog;

  constructor(
    readonly store: SignerStore,
    private readonly sealer: Sealer,
    readonly keys: NodeKeys,
    private readonly peersFile: string,
    private readonly log: Logger,
    private readonly ownerKeys: readonly OwnerKey[],
    /** Which nonces may still be used, kept in the data dir beside the KEK (src/signer/nonce-ledger.ts). */
    private readonly ledger: NonceLedger,
  ) {
    this.creates = new CreateLog(store.db);
    this.audit = new AuditLog(store.db, ed25519CheckpointSigner(keys.signSecret), keys.nodeId);
    this.control = new ControlStore(store.db, { ownerPublicKeys: ownerKeys });
    this.authz = new Authorizer(this.control, ownerKeys);
    this.publicIdentity = publicOf(keys);
  }

  /**
   * This node's identity keys, created (sealed under the KEK) the first time: by `fleetkey signer
   * init` on the host, or at first start. Never leaves the store unsealed.
   */
  static async identity(store: SignerStore, sealer: Sealer): Promise<NodeKeys> {
    await store.init();
    const fresh = newNodeKeys(`node_${bytesToHex(randomBytes(6))}`);
    const sealed = sealer.seal(utf8ToBytes(JSON.stringify({ nodeId: fresh.nodeId, sign: bytesToHex(fresh.signSecret), enc: bytesToHex(fresh.encSecret) })), 'identity');
    const stored = await store.initMeta('identity', sealed);
    const id = JSON.parse(new TextDecoder().decode(sealer.open(stored, 'identity')));
    return { nodeId: id.nodeId, signSecret: hexToBytes(id.sign), encSecret: hexToBytes(id.enc) };
  }

  /** Loads this node's identity, or creates it (sealed) on first start. `ownerKeys`: the pinned owner public keys (hex Ed25519 or passkeys). */
  static async open(store: SignerStore, sealer: Sealer, peersFile: string, log: Logger, ownerKeys: readonly OwnerKey[], ledger: NonceLedger): Promise<SignerNode> {
    const keys = await SignerNode.identity(store, sealer);
    const node = new SignerNode(store, sealer, keys, peersFile, log, ownerKeys, ledger);
    await node.pruneLedger();
    await node.audit.init();
    await node.control.init();
    await node.creates.init();
    return node;
  }

  /** This node's public identity, derived once: the signer answers it on every request. */
  private readonly publicIdentity: ReturnType<typeof publicOf>;
  identity() {
    return this.publicIdentity;
  }

  /** The pinned peer list, re-read when the file changes (the operator's cluster membership). */
  peers(): Map<string, PeerInfo> {
    if (!existsSync(this.peersFile)) return new Map();
    const mtime = statSync(this.peersFile).mtimeMs;
    if (this.peersCache?.mtime !== mtime) {
      const list = JSON.parse(readFileSync(this.peersFile, 'utf8')) as PeerInfo[];
      this.peersCache = { mtime, peers: new Map(list.map((p) => [p.nodeId, p])) };
    }
    return this.peersCache.peers;
  }

  private peer(nodeId: string): PeerInfo {
    const p = this.peers().get(nodeId);
    if (!p) throw new FleetkeyError('unknown_node', `node ${nodeId} is not in this signer's peer list`, { details: { nodeId } });
    return p;
  }

  private gc(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) if (s.expires < now) this.drop(s);
  }

  /** Forgets an open session (and frees its peer-pair slot). */
  /**
   * Drops live ledger entries whose nonce rows are gone (used, erased by a refresh, or lost in a
   * crash before the ledger write): removing is always safe. Seqs allocated after the read are kept.
   */
  private async pruneLedger(): Promise<void> {
    const below = this.ledger.nextSeq;
    this.ledger.retain(await this.store.nonceSeqs(), below);
    await this.ledger.persist();
  }

  private drop(s: Session): void {
    this.sessions.delete(s.id);
    this.dkls.release(s.id);
  }

  // -------------------------------------------------------------------------------------------
  // DKG and refresh

  async startSession(req: z.infer<typeof startSchema>): Promise<StepAnswer> {
    this.gc();
    if (!isScheme(req.scheme)) throw new FleetkeyError('unsupported', `scheme ${req.scheme} is not supported`);
    if (this.sessions.has(req.session)) throw new FleetkeyError('session_reused', `session ${req.session} is already open; session ids are used once`, { details: { session: req.session, kind: req.kind } });
    let participants = [...req.participants].sort((a, b) => a.index - b.index);
    if (new Set(participants.map((p) => p.index)).size !== participants.length || new Set(participants.map((p) => p.nodeId)).size !== participants.length)
      throw new FleetkeyError('validation_failed', 'participants must have distinct indexes and nodes');
    if (req.threshold > participants.length) throw new FleetkeyError('validation_failed', 'threshold exceeds the number of participants');
    const me = participants.find((p) => p.nodeId === this.keys.nodeId);
    if (!me) throw new FleetkeyError('forbidden', 'this node is not a participant of the session');
    for (const p of participants) if (p.nodeId !== this.keys.nodeId) this.peer(p.nodeId);
    const scheme = schemeOf(req.scheme);
    const sessionId = req.session;
    let proto: PartyProtocol<unknown>;
    let epoch = 0;
    let authorized: Authorized | undefined;
    let slot = false; // a DKLs23 peer-pair slot is held for this session id
    let network: string | undefined;
    let createDigest: string | undefined;
    let holders: Participant[] | undefined;
    let staged = false;
    try {
      if (req.kind !== 'sign' && splitWalletId(req.walletId).index !== undefined)
        throw new FleetkeyError('validation_failed', 'a child wallet is derived from its root; it has no key generation or refresh of its own', { details: { path: 'walletId' } });
      if (req.kind === 'dkg') {
        if (await this.store.getActiveShare(req.walletId)) throw new FleetkeyError('conflict', `wallet ${req.walletId} already has a key on this node`);
        // The owner, not the server, says what this wallet is; the document is used once, durably, before anything leaves.
        const created = checkCreateDoc(req.create, this.ownerKeys, { walletId: req.walletId, scheme: scheme.name, threshold: req.threshold, participants, network: req.network }, Date.now());
        // The claim and this node's audit entry of the owner's order commit together.
        await this.store.db.tx(async (q) => {
          await this.creates.claim(req.walletId, created.digest, Date.now(), q);
          const { walletId, scheme: s, threshold, holders, network: net } = created.doc;
          await this.audit.appendIn(q, { type: 'admin', outcome: 'wallet_create_accepted', data: { kind: 'wallet_create', digest: created.digest, walletId, scheme: s, threshold, holders, ...(net !== undefined ? { network: net } : {}) } });
        });
        network = created.doc.network;
        createDigest = created.digest;
        this.log.info('wallet_create accepted', { walletId: req.walletId, digest: created.digest });
        proto = scheme.keygen({ self: me.index, parties: participants.map((p) => p.index), threshold: req.threshold, sessionId });
      } else if (req.kind === 'reshare') {
        // Redistribution to a new committee (src/crypto/reshare.ts, src/signer/reshare.ts).
        if (!req.reshare) throw new FleetkeyError('validation_failed', 'reshare needs the dealers and the new committee', { details: { path: 'reshare' } });
        const own = await this.store.getActiveShare(req.walletId);
        const ownPub = own ? (JSON.parse(own.publicJson) as SharePublic) : undefined;
        const r = checkReshareStart(req.reshare, { walletId: req.walletId, scheme: scheme.name, epoch: req.epoch, threshold: req.threshold, participants, self: this.keys.nodeId, own: ownPub });
        // The owner, not the server, orders the move: same wallet, epoch, committee and threshold, not expired.
        const ordered = checkReshareOrder(req.order, this.ownerKeys, { walletId: req.walletId, epoch: r.current.epoch, threshold: req.threshold, holders: r.holders }, Date.now());
        await this.audit.append({ type: 'admin', outcome: 'wallet_reshare_accepted', data: { kind: 'wallet_reshare', digest: ordered.digest, orderId: ordered.doc.orderId, walletId: req.walletId, epoch: ordered.doc.epoch, threshold: ordered.doc.threshold, holders: ordered.doc.holders, dealer: r.dealer !== undefined } });
        const share = r.dealer ? (await this.activeShare(req.walletId, req.epoch)).share : undefined;
        proto = reshare({ scheme: scheme.name, self: me.index, plan: r.plan, old: r.current.group, share, sessionId });
        epoch = req.epoch + 1;
        network = r.current.network;
        createDigest = r.current.createDigest;
        holders = r.holders;
        staged = scheme.name === 'ecdsa-secp256k1';
        // A new holder remembers whom it received the share from: only their custody reports can activate it (commit).
        if (!ownPub && r.holders.some((h) => h.nodeId === this.keys.nodeId)) {
          const prev: PreviousCommittee = { epoch: req.epoch, threshold: r.current.threshold, nodes: r.current.participants.map((p) => p.nodeId) };
          await this.store.setMeta(previousKey(req.walletId, req.epoch + 1), JSON.stringify(prev));
        }
      } else if (req.kind === 'pairs') {
        // DKLs23 pairwise set-up of a new committee after a reshare: the staged share of the pending epoch.
        const rec = await this.store.getShare(req.walletId, req.epoch);
        const pub = rec ? (JSON.parse(rec.publicJson) as SharePublic) : undefined;
        if (!rec || rec.status !== 'pending' || !pub?.staged) throw new FleetkeyError('protocol_state', `no staged reshare of wallet ${req.walletId} at epoch ${req.epoch} on this node`);
        if (JSON.stringify(pub.participants) !== JSON.stringify(participants) || pub.threshold !== req.threshold || pub.scheme !== scheme.name)
          throw new FleetkeyError('validation_failed', 'participants, threshold or scheme differ from the staged reshare');
        const share = JSON.parse(new TextDecoder().decode(this.sealer.open(rec.sealed, shareContext(req.walletId, rec.epoch)))) as SecretShare;
        proto = dkls23.pairSetup({ share, public: pub.group, sessionId });
        epoch = req.epoch;
        network = pub.network;
        createDigest = pub.createDigest;
      } else {
        const { share, pub } = await this.activeShare(req.walletId, req.epoch);
        if (JSON.stringify(pub.participants) !== JSON.stringify(participants) || pub.threshold !== req.threshold || pub.scheme !== scheme.name)
          throw new FleetkeyError('validation_failed', 'participants, threshold or scheme differ from the wallet');
        if (req.kind === 'refresh') {
          proto = scheme.refresh({ share, public: pub.group, sessionId });
          epoch = req.epoch + 1;
          network = pub.network;
          createDigest = pub.createDigest;
        } else {
          // An interactive signing session among the chosen signers (admin raw-hash signing).
          if (scheme.signing !== 'interactive') throw new FleetkeyError('unsupported', `${scheme.name} signs with /v1/sign, not a session`);
          const signers = [...new Set(req.signers ?? [])].sort((a, b) => a - b);
          if (!req.messageHash) throw new FleetkeyError('validation_failed', 'messageHash is required to sign');
          if (signers.length < pub.threshold || !signers.includes(me.index) || signers.some((i) => !participants.some((p) => p.index === i)))
            throw new FleetkeyError('validation_failed', `signers must be at least ${pub.threshold} of the wallet's parties, including this node`);
          participants = participants.filter((p) => signers.includes(p.index));
          epoch = req.epoch;
          // DKLs23's checks can leak a bit of this node's long-lived OT state per abort a peer causes
          // (src/crypto/dkls23/README.md): after an abort blamed on a peer, no signing with it until a
          // refresh, and at most one signing per peer pair and wallet root at a time (dkls23-guard.ts).
          const rootId = splitWalletId(req.walletId).rootId;
          await this.dkls.flush(this.store);
          const durableBans = await this.store.bannedPeers(rootId, req.epoch);
          this.dkls.claim(req.session, rootId, req.epoch, participants.filter((p) => p.nodeId !== me.nodeId).map((p) => p.nodeId), durableBans);
          slot = true;
          if (!req.auth) throw new FleetkeyError('owner_authorization_required', 'signing needs an owner authorization or an agent request');
          const a = await this.authorizeSign(req.auth, req.walletId, pub, hexToBytes(req.messageHash), req.network, { signingSet: signers });
          // Reserve now; commit before this node's last-round message (the one that completes the signature) leaves.
          // The session id is used up in the same transaction: a repeat is refused forever (session_reused).
          const r = await this.control.reserve(a.requestId, a.reservations, { walletId: req.walletId, requestDigest: a.requestDigest, now: Date.now(), ttlMs: RESERVATION_TTL_MS, grant: a.grant }, this.store.claimSessionHook(req.kind, sessionId, req.walletId));
          if (!r.ok) {
            const err = refusalError(r);
            await this.logRefusal(err, req.auth, req.walletId);
            throw err;
          }
          authorized = a;
          proto = dkls23.sign({ share, public: pub.group, signers, messageHash: req.messageHash, sessionId });
          // A ban that arrived while this start awaited the store revokes it here, before round 1.
          this.dkls.assertLive(req.session);
        }
      }
      // DKG and refresh: the session id is used up durably before the first message leaves.
      if (req.kind !== 'sign') await this.store.claimSession(req.kind, sessionId, req.walletId);
    } catch (e) {
      if (slot) this.dkls.release(req.session);
      if (authorized) void this.control.release(authorized.requestId).catch(() => undefined);
      throw asFleetkeyError(e, participants);
    }
    const s: Session = { id: req.session, kind: req.kind, walletId: req.walletId, scheme: scheme.name, epoch, threshold: req.threshold, participants, holders, staged, self: me.index, proto, messageHash: req.messageHash, network, createDigest, authorized, delivered: 0, expires: Date.now() + SESSION_TTL_MS };
    if (proto.rounds === 0) return this.finishSession(s, { broadcast: {}, direct: {} });
    this.sessions.set(s.id, s);
    await pausePoint(this.keys.nodeId, `${s.kind}:start`);
    return { messages: this.wrap(s, 1, await this.step(s, () => proto.round(1, { broadcast: {}, direct: {} }))) };
  }

  async deliverRound(sessionId: string, req: z.infer<typeof roundSchema>): Promise<StepAnswer> {
    const s = this.sessions.get(sessionId);
    if (!s || s.expires < Date.now()) throw new FleetkeyError('not_found', `no open session ${sessionId}`);
    if (req.round <= s.delivered) throw new FleetkeyError('replayed_message', `round ${req.round} was already delivered`, { details: { session: s.id, round: req.round } });
    if (req.round !== s.delivered + 1) throw new FleetkeyError('protocol_state', `expected round ${s.delivered + 1}, got ${req.round}`);
    await pausePoint(this.keys.nodeId, `${s.kind}:${req.round}`);
    let input: RoundInput;
    try {
      if (s.kind === 'sign') this.dkls.assertLive(s.id); // defence in depth: a ban abandons such sessions at once
      input = this.open(s, req.round, req.messages as Envelope[]);
    } catch (e) {
      await this.abandon(s); // a session that saw a bad message is over
      throw e;
    }
    s.delivered = req.round;
    if (req.round < s.proto.rounds) {
      const out = await this.step(s, () => s.proto.round(req.round + 1, input));
      if (req.round + 1 === s.proto.rounds && s.authorized && !s.committed) await this.commitSession(s);
      return { messages: this.wrap(s, req.round + 1, out) };
    }
    return this.finishSession(s, input);
  }

  /**
   * The last round's message completes the signature: the reservation counts for good (and is
   * logged) first. Not a bare status flip: the reservation is taken again against the counters as
   * they are now, in the commit's transaction (a live one is a replay and counts nothing twice; a
   * lapsed or released one is checked afresh and refused with `limit_exceeded` if it no longer fits,
   * `grant_revoked` / `grant_exhausted` likewise), so no stall of the relay can make two requests
   * share one limit's room.
   */
  private async commitSession(s: Session): Promise<void> {
    const a = s.authorized!;
    const count = this.control.reserveAndCommitHook(a.requestId, a.reservations, { walletId: s.walletId, requestDigest: a.requestDigest, now: Date.now(), ttlMs: RESERVATION_TTL_MS, grant: a.grant });
    try {
      await this.store.db.tx(async (q) => {
        await count(q);
        await this.audit.appendIn(q, this.allowedEntry(a, s.walletId, { session: s.id }));
      });
    } catch (e) {
      this.drop(s);
      if (e instanceof FleetkeyError) await this.audit.append(refusalEntry(e, { walletId: s.walletId, by: a.by, requestId: a.requestId, grantId: a.grant?.id })).catch(() => undefined);
      throw e;
    }
    s.committed = true;
  }

  /**
   * Ends a failed session; a reservation that never got committed stops counting. A signing abort
   * blamed on a peer bans it until refresh (issue 16): in memory before this function first awaits
   * (so before any other input is handled), with every other open session of the wallet root that
   * involves it abandoned; then the durable write is awaited — if it fails, this node signs threshold
   * ECDSA with nobody until it succeeds (Dkls23Guard).
   */
  private async abandon(s: Session, e?: unknown): Promise<void> {
    this.drop(s);
    let written: Promise<boolean> | undefined;
    if (s.kind === 'sign' && e instanceof ProtocolError && e.culprit !== undefined) {
      const culprit = s.participants.find((p) => p.index === e.culprit)?.nodeId;
      if (culprit && culprit !== this.keys.nodeId) {
        const rootId = splitWalletId(s.walletId).rootId;
        for (const id of this.dkls.ban(rootId, s.epoch, culprit)) {
          const other = this.sessions.get(id);
          if (!other) continue;
          this.drop(other);
          if (other.authorized && !other.committed) void this.control.release(other.authorized.requestId).catch(() => undefined);
          this.log.error('session abandoned: a peer in it was banned', { session: id, walletId: other.walletId, culprit });
        }
        written = this.dkls.record(this.store, rootId, s.epoch, culprit, e.message);
        this.log.error('signing aborted; peer banned for this wallet until refresh', { walletId: s.walletId, culprit });
      }
    }
    if (s.authorized && !s.committed) void this.control.release(s.authorized.requestId).catch(() => undefined);
    if (written && !(await written)) this.log.error('could not record a peer ban durably; refusing all threshold ECDSA signing until it is recorded', { walletId: s.walletId });
  }

  /** Runs one protocol step; on a protocol error the session is abandoned (and a ban recorded) before the error is thrown. */
  private async step(s: Session, f: () => RoundOutput): Promise<RoundOutput> {
    try {
      return f();
    } catch (e) {
      await this.abandon(s, e);
      throw asFleetkeyError(e, s.participants);
    }
  }

  /** A relay gives up on a session (another participant failed): forget it here too, so its peer-pair slot is free. */
  async abortSession(sessionId: string): Promise<{ status: 'aborted' | 'unknown' }> {
    const s = this.sessions.get(sessionId);
    if (!s) return { status: 'unknown' };
    await this.abandon(s);
    return { status: 'aborted' };
  }

  private async finishSession(s: Session, input: RoundInput): Promise<StepAnswer> {
    this.drop(s);
    let finished: unknown;
    try {
      finished = s.proto.finish(input);
    } catch (e) {
      await this.abandon(s, e);
      throw asFleetkeyError(e, s.participants);
    }
    if (s.kind === 'sign') {
      const r = finished as dkls23.SignResult;
      await this.audit.append({ type: 'signature', requestDigest: r.messageHash, outcome: 'signed', data: { walletId: s.walletId, session: s.id } });
      const body = { walletId: s.walletId, epoch: s.epoch, messageHash: r.messageHash, signature: r.signature, v: r.v };
      return { messages: [], result: signEnvelope({ v: 1, session: s.id, kind: 'result', round: 0, from: this.keys.nodeId, body }, this.keys) };
    }
    const out = finished as { public: GroupPublic; share?: SecretShare };
    const pub: SharePublic = {
      scheme: s.scheme,
      walletId: s.walletId,
      epoch: s.epoch,
      threshold: s.threshold,
      participants: s.holders ?? s.participants,
      group: out.public,
      ...(s.network !== undefined ? { network: s.network } : {}),
      ...(s.createDigest !== undefined ? { createDigest: s.createDigest } : {}),
      ...(s.staged ? { staged: true } : {}),
    };
    const hash = publicHash(pub);
    // A dealer that leaves the committee keeps nothing: it signs the package it computed, and erases its share on /v1/retire.
    if (out.share) await this.store.putPendingShare({
      walletId: s.walletId,
      epoch: s.epoch,
      scheme: s.scheme,
      sealed: this.sealer.seal(utf8ToBytes(JSON.stringify(out.share)), shareContext(s.walletId, s.epoch)),
      publicJson: JSON.stringify(pub),
      publicHash: hash,
    });
    const result = signEnvelope({ v: 1, session: s.id, kind: 'result', round: 0, from: this.keys.nodeId, body: { walletId: s.walletId, epoch: s.epoch, publicHash: hash } }, this.keys);
    this.log.info('key generated', { session: s.id, kind: s.kind, walletId: s.walletId, epoch: s.epoch });
    return { messages: [], result, public: pub };
  }

  /** Checks and opens the messages of one round: signed, bound, complete, each exactly once. */
  private open(s: Session, round: number, messages: Envelope[]): RoundInput {
    const byNode = new Map(s.participants.map((p) => [p.nodeId, p.index]));
    const input: RoundInput = { broadcast: {}, direct: {} };
    for (const e of messages) {
      if (e.session !== s.id) throw new FleetkeyError('wrong_session', `message belongs to session ${String(e.session).slice(0, 80)}, not ${s.id}`, { details: { from: e.from } });
      if (e.kind !== s.kind) throw new FleetkeyError('wrong_session', `message is for a ${e.kind} session`, { details: { from: e.from } });
      if (e.round !== round) throw new FleetkeyError(e.round < round ? 'replayed_message' : 'protocol_state', `message is from round ${e.round}, expected ${round}`, { details: { from: e.from } });
      const idx = byNode.get(e.from);
      if (idx === undefined || e.from === this.keys.nodeId) throw new FleetkeyError('unknown_node', `message from ${e.from}, who is not a peer in this session`, { details: { from: e.from } });
      const peer = this.peer(e.from);
      verifyEnvelope(e, peer);
      if (e.to === undefined) {
        if (idx in input.broadcast) throw new FleetkeyError('replayed_message', `second broadcast from ${e.from} in round ${round}`, { details: { from: e.from } });
        input.broadcast[idx] = e.body;
      } else {
        if (e.to !== this.keys.nodeId) throw new FleetkeyError('wrong_session', `direct message for ${e.to} delivered to ${this.keys.nodeId}`, { details: { from: e.from } });
        if (idx in input.direct) throw new FleetkeyError('replayed_message', `second direct message from ${e.from} in round ${round}`, { details: { from: e.from } });
        input.direct[idx] = openDirect(e, this.keys, peer);
      }
    }
    return input;
  }

  private wrap(s: Session, round: number, out: RoundOutput): Envelope[] {
    const envs: Envelope[] = [];
    const nodeOf = new Map(s.participants.map((p) => [p.index, p.nodeId]));
    if (out.broadcast !== undefined) envs.push(signEnvelope({ v: 1, session: s.id, kind: s.kind, round, from: this.keys.nodeId, body: out.broadcast }, this.keys));
    for (const [idx, body] of Object.entries(out.direct ?? {})) {
      const to = nodeOf.get(Number(idx))!;
      const sealed = sealDirect(body, { session: s.id, kind: s.kind, round, to }, this.keys, this.peer(to));
      envs.push(signEnvelope({ v: 1, session: s.id, kind: s.kind, round, from: this.keys.nodeId, to, body: sealed }, this.keys));
    }
    return envs;
  }

  /**
   * Activates a generated share once every participant has signed that it ended with the same
   * public package. A relay cannot activate a key the parties disagree on.
   */
  async commit(req: z.infer<typeof commitSchema>): Promise<{ status: string }> {
    const rec = await this.store.getShare(req.walletId, req.epoch);
    if (!rec) throw new FleetkeyError('not_found', `no share for wallet ${req.walletId} epoch ${req.epoch}`);
    const pub = JSON.parse(rec.publicJson) as SharePublic;
    const seen = new Set<string>();
    for (const e of req.results as Envelope[]) {
      if (e.kind !== 'result') throw new FleetkeyError('validation_failed', 'results must be result envelopes');
      if (!pub.participants.some((p) => p.nodeId === e.from)) throw new FleetkeyError('unknown_node', `result from non-participant ${e.from}`);
      if (e.from !== this.keys.nodeId) verifyEnvelope(e, this.peer(e.from));
      else verifyEnvelope(e, { ...this.identity(), url: '' });
      const b = e.body as { walletId?: string; epoch?: number; publicHash?: string };
      if (b.walletId !== req.walletId || b.epoch !== req.epoch || b.publicHash !== rec.publicHash)
        throw new FleetkeyError('conflict', `participant ${e.from} ended with a different public package`, { details: { from: e.from } });
      seen.add(e.from);
    }
    for (const p of pub.participants) if (!seen.has(p.nodeId)) throw new FleetkeyError('validation_failed', `missing result from participant ${p.nodeId}`);
    if (pub.staged) throw new FleetkeyError('protocol_state', `wallet ${req.walletId} epoch ${req.epoch} is a staged reshare: the new committee's pairwise set-up must run first`);
    const prevJson = rec.status === 'pending' ? await this.store.getMeta(previousKey(req.walletId, req.epoch)) : undefined;
    if (prevJson) {
      // A new holder: the wallet's documents and counters first, from the committee it received the share from.
      const got = await takeCustody(this.control, { walletId: req.walletId, epoch: req.epoch, prev: JSON.parse(prevJson) as PreviousCommittee, reports: (req.custody ?? []) as Envelope[], peer: (n) => this.peer(n) });
      await this.audit.append({ type: 'admin', outcome: 'custody_received', data: { walletId: req.walletId, epoch: req.epoch, ...got } });
    }
    const r = await this.store.activateShare(req.walletId, req.epoch, rec.publicHash, (q) =>
      this.audit.appendIn(q, { type: 'admin', outcome: 'key_activated', data: { walletId: req.walletId, epoch: req.epoch, publicHash: rec.publicHash, scheme: pub.scheme } }),
    );
    if (r === 'mismatch' || r === 'missing') throw new FleetkeyError('conflict', `cannot activate: ${r}`);
    if (r === 'activated') {
      // The old epoch's nonces were erased with its share: their ledger entries go too, so none can be put back.
      await this.pruneLedger();
    }
    return { status: r };
  }

  /**
   * This node's custody report on a wallet (src/signer/custody.ts), signed with its identity key,
   * for the new holders of `epoch`. It reads documents and counters only: no share, no nonce.
   */
  async custodyReport(req: z.infer<typeof custodyRequestSchema>): Promise<Envelope> {
    const body = await custodyBody(this.control, req.walletId);
    return signEnvelope({ v: 1, session: custodySession(req.walletId, req.epoch), kind: 'custody', round: 0, from: this.keys.nodeId, body: body as unknown as Json }, this.keys);
  }

  /**
   * Leaves a wallet's committee: once every holder of the new epoch has signed the same public package
   * (same wallet, same key, an epoch above this node's, a committee without this node), this node's
   * share and its nonces are erased in one transaction with the audit entry that says so. From then
   * on its share cannot sign: it no longer exists here.
   */
  async retire(req: z.infer<typeof retireSchema>): Promise<{ status: 'retired' | 'already' }> {
    const own = await this.store.getActiveShare(req.walletId);
    if (!own) return { status: 'already' };
    const mine = JSON.parse(own.publicJson) as SharePublic;
    const next = req.public as unknown as SharePublic;
    if (next.walletId !== req.walletId || next.epoch !== req.epoch || req.epoch <= own.epoch || next.scheme !== mine.scheme || next.group?.publicKey !== mine.group.publicKey || next.staged)
      throw new FleetkeyError('conflict', 'the new package is not a later epoch of the same key');
    if (!Array.isArray(next.participants) || next.participants.some((p) => p.nodeId === this.keys.nodeId))
      throw new FleetkeyError('conflict', 'this node is in the new committee: it activates, it does not retire');
    const hash = publicHash(next);
    const seen = new Set<string>();
    for (const e of req.results as Envelope[]) {
      if (!next.participants.some((p) => p.nodeId === e.from)) throw new FleetkeyError('unknown_node', `result from non-participant ${String(e.from).slice(0, 64)}`);
      verifyEnvelope(e, this.peer(e.from));
      const b = e.body as { walletId?: string; epoch?: number; publicHash?: string };
      if (e.kind !== 'result' || b.walletId !== req.walletId || b.epoch !== req.epoch || b.publicHash !== hash)
        throw new FleetkeyError('conflict', `participant ${e.from} signed a different package`, { details: { from: e.from } });
      seen.add(e.from);
    }
    for (const p of next.participants) if (!seen.has(p.nodeId)) throw new FleetkeyError('validation_failed', `missing result from new holder ${p.nodeId}`);
    await this.store.retireWallet(req.walletId, (q) =>
      this.audit.appendIn(q, { type: 'admin', outcome: 'key_retired', data: { walletId: req.walletId, epoch: own.epoch, successorEpoch: req.epoch, publicHash: hash, holders: next.participants.map((p) => p.nodeId) } }),
    );
    await this.pruneLedger();
    this.log.info('share retired', { walletId: req.walletId, epoch: own.epoch, successorEpoch: req.epoch });
    return { status: 'retired' };
  }

  // -------------------------------------------------------------------------------------------
  // Signing

  /**
   * This node's share of a wallet at `epoch`, unsealed. For a child wallet (`<root>.<index>`) the
   * child share is derived here, locally, from the root share (Scheme.deriveChildShare).
   */
  private async activeShare(walletId: string, epoch: number): Promise<{ share: SecretShare; pub: SharePublic }> {
    const { rec, rootId, index, pub } = await this.activeRecord(walletId, epoch);
    const share = JSON.parse(new TextDecoder().decode(this.sealer.open(rec.sealed, shareContext(rootId, rec.epoch)))) as SecretShare;
    if (index === undefined) return { share, pub };
    try {
      const child = schemeOf(pub.scheme).deriveChildShare(pub.group, share, index);
      return { share: child.share, pub: { ...pub, group: child.public } };
    } catch (e) {
      throw asFleetkeyError(e, pub.participants);
    }
  }

  /** The public facts of a wallet's share at `epoch` (a child's derived by the public tweak), without opening the share. */
  private async activePublic(walletId: string, epoch: number): Promise<SharePublic> {
    const { index, pub } = await this.activeRecord(walletId, epoch);
    if (index === undefined) return pub;
    try {
      return { ...pub, group: schemeOf(pub.scheme).deriveChildPublic(pub.group, index) };
    } catch (e) {
      throw asFleetkeyError(e, pub.participants);
    }
  }

  /** The root wallet's active share record at `epoch` (a child id names its root's), and its public facts. */
  private async activeRecord(walletId: string, epoch: number) {
    const { rootId, index } = splitWalletId(walletId);
    const rec = await this.store.getActiveShare(rootId);
    if (!rec) throw new FleetkeyError('not_found', `no active share for wallet ${rootId} on this node`);
    if (rec.epoch !== epoch) throw new FleetkeyError('protocol_state', `wallet ${rootId} is at epoch ${rec.epoch} here, request names ${epoch}`, { details: { epoch: rec.epoch } });
    return { rec, rootId, index, pub: JSON.parse(rec.publicJson) as SharePublic };
  }

  // -------------------------------------------------------------------------------------------
  // Policy before every signature

  /** Stores an owner-signed control document (verified against the pinned owner keys) and logs it. */
  async putControl(signed: unknown) {
    const r = await this.control.putControlDoc(signed);
    if (r.status === 'stored') await this.audit.append(storedDocEntry(r, signed));
    return r;
  }

  /** Stores an approver's signed decision the server forwards (a reject stops the request here for good) and logs it. */
  async putDecision(signed: unknown) {
    const r = await this.control.putDecision(signed);
    if (r.status === 'stored') await this.audit.append(decisionEntry(r));
    return r;
  }

  /**
   * Checks the signing request itself (src/enforce/authorize.ts): owner authorization, or agent
   * request + grant + policy + approvals, against this node's own documents; the message must be
   * what the payload commits to. A refusal is logged in this node's audit chain.
   */
  private async authorizeSign(auth: SignAuth, walletId: string, pub: SharePublic, message: Uint8Array, asked: string | undefined, counting: { signingSet: readonly number[] } | { receipts: false }): Promise<Authorized> {
    try {
      // The wallet's network is this node's own record of it (fixed at creation), never the server's word.
      const network = walletNetworkOf(pub.scheme, pub.network);
      if (asked !== undefined && asked !== network)
        throw new FleetkeyError('wrong_network', `wallet ${walletId} is on ${network ?? 'no network'}, the request names ${asked}`, { details: { walletId, network: network ?? null } });
      const address = schemeOf(pub.scheme).address(pub.group.publicKey, pub.scheme === 'secp256k1-schnorr' ? (network as BitcoinNetwork) : undefined);
      const a = await this.authz.authorize(auth, { walletId, scheme: pub.scheme, address, network }, message);
      // Strict counters: every holder outside the signing set must already have counted this request;
      // the signing set counts in its share transactions (src/enforce/receipts.ts).
      if ('signingSet' in counting && a.strict)
        checkReceipts('agent' in auth ? auth.receipts : undefined, {
          walletId,
          requestId: a.requestId,
          requestDigest: a.requestDigest,
          holders: pub.participants.filter((p) => p.nodeId !== this.keys.nodeId && !counting.signingSet.includes(p.index)).map((p) => p.nodeId),
          keyOf: (n) => this.peers().get(n)?.signPub,
          now: Date.now(),
        });
      return a;
    } catch (e) {
      if (e instanceof FleetkeyError) await this.logRefusal(e, auth, walletId);
      throw e;
    }
  }

  private async logRefusal(e: FleetkeyError, auth: SignAuth, walletId: string): Promise<void> {
    const req = 'agent' in auth ? (auth.agent.request as { requestId?: unknown; grantId?: unknown }) : ((auth.owner.doc as { requestId?: unknown }) ?? {});
    await this.audit.append(refusalEntry(e, { walletId, by: 'agent' in auth ? 'agent' : 'owner', requestId: req.requestId, grantId: 'grantId' in req ? req.grantId : undefined }));
  }

  /** The audit entry of an allowed request whose share this node issues (written in the same transaction). */
  private allowedEntry(a: Authorized, walletId: string, extra: Record<string, Json>) {
    return {
      type: 'signature' as const,
      requestDigest: a.requestDigest,
      outcome: 'share_issued',
      ...(a.decision ? { policyVersion: a.decision.policyVersion, decision: { outcome: a.decision.outcome, reasons: a.decision.reasons.map((r) => r.code) } } : {}),
      data: {
        walletId,
        requestId: a.requestId,
        by: a.by,
        payloadKind: a.payload.kind,
        ...(a.grant ? { grantId: a.grant.id } : {}),
        ...(a.approvedBy?.length ? { approvedBy: a.approvedBy } : {}),
        reservations: a.reservations.map((r) => ({ counterKey: r.counterKey, amount: r.amount.toString() })),
        ...extra,
      },
    };
  }

  /** Reserve and commit `a`'s amounts and log the share, inside the transaction that consumes the nonce. */
  private shareHook(a: Authorized, walletId: string, extra: Record<string, Json>): (q: Queryable) => Promise<void> {
    const reserve = this.control.reserveAndCommitHook(a.requestId, a.reservations, { walletId, requestDigest: a.requestDigest, now: Date.now(), ttlMs: RESERVATION_TTL_MS, grant: a.grant });
    return async (q) => {
      await reserve(q);
      await this.audit.appendIn(q, this.allowedEntry(a, walletId, extra));
    };
  }

  /**
   * Strict counters, step 1 (src/enforce/receipts.ts): checks the request as if to sign it, then
   * reserves and commits its amounts and logs that, in one transaction, and answers with a receipt
   * signed by this node's identity key. The same request again counts nothing again and gets a
   * receipt again. `receipt: null` when the request counts nothing strictly (no rolling limit, no
   * use cap, or a per-signer policy).
   */
  async reserve(req: z.infer<typeof reserveSchema>): Promise<{ receipt: Receipt | null }> {
    const pub = await this.activePublic(req.walletId, req.epoch);
    const a = await this.authorizeSign(req.auth, req.walletId, pub, hexToBytes(req.message), req.network, { receipts: false });
    if (a.requestId !== req.requestId) throw new FleetkeyError('validation_failed', 'requestId differs from the authorized request', { details: { path: 'requestId' } });
    if (!a.strict) return { receipt: null };
    const now = Date.now();
    const count = this.control.reserveAndCommitHook(a.requestId, a.reservations, { walletId: req.walletId, requestDigest: a.requestDigest, now, ttlMs: RESERVATION_TTL_MS, grant: a.grant });
    const counted = await this.refusalsLogged(req.auth, req.walletId, () =>
      this.store.db.tx(async (q) => {
        const r = await count(q);
        await this.audit.appendIn(q, { ...this.allowedEntry(a, req.walletId, {}), type: 'decision', outcome: 'counted' });
        return r;
      }),
    );
    // A request counted before answers with the time it was counted, not now: a receipt's age is the count's age.
    const committedAt = counted.reservedAt;
    return { receipt: signReceipt({ kind: 'reservation', nodeId: this.keys.nodeId, walletId: req.walletId, requestId: a.requestId, requestDigest: a.requestDigest, committedAt }, this.keys.signSecret) };
  }

  /** RFC 9591 §5.1 ahead of time: `count` fresh nonce pairs, stored sealed; only commitments leave. */
  async makeNonces(req: z.infer<typeof noncesSchema>): Promise<{ index: number; commitments: ({ id: string } & CommitmentJson)[] }> {
    const { share, pub } = await this.activeShare(req.walletId, req.epoch);
    if (!isFrostScheme(pub.scheme)) throw new FleetkeyError('unsupported', `${pub.scheme} does not use pre-generated nonces`);
    if (pub.threshold < 2) throw new FleetkeyError('unsupported', '1-of-1 wallets sign without pre-generated nonces');
    const list = [];
    const out = [];
    const first = this.ledger.allocate(req.count);
    for (let i = 0; i < req.count; i++) {
      const id = `non_${bytesToHex(randomBytes(12))}`;
      const seq = first + i;
      const { nonces, commitment } = frostCommit(pub.scheme, share);
      list.push({ id, walletId: req.walletId, epoch: req.epoch, seq, sealed: this.sealer.seal(utf8ToBytes(JSON.stringify(nonces)), this.ledger.context(id, req.walletId, req.epoch, seq)), commitment: JSON.stringify(commitment) });
      out.push({ id, ...commitment });
    }
    await this.store.putNonces(list);
    // The new seqs are live on disk before any commitment leaves (a nonce not live there is refused).
    await this.ledger.persist();
    return { index: share.index, commitments: out };
  }

  /**
   * RFC 9591 §5.2 for this node. The nonce is deleted and logged as consumed (durably) before the
   * signature share is computed, so no crash or retry can make this node use it twice.
   */
  async sign(req: z.infer<typeof signSchema>): Promise<{ index: number; share?: string; signature?: string }> {
    const { rootId } = splitWalletId(req.walletId);
    const { share, pub } = await this.activeShare(req.walletId, req.epoch);
    if (!isFrostScheme(pub.scheme)) throw new FleetkeyError('unsupported', `${pub.scheme} signs in a session (POST /v1/sessions kind "sign")`);
    const message = hexToBytes(req.message);
    // The signing set is the commitment list's (a 1-of-n wallet signs alone); the list is checked in full below.
    const signingSet = pub.threshold === 1 ? [share.index] : Object.keys(req.commitments ?? {}).map(Number);
    const a = await this.authorizeSign(req.auth, req.walletId, pub, message, req.network, { signingSet });
    if (a.requestId !== req.requestId) throw new FleetkeyError('validation_failed', 'requestId differs from the authorized request', { details: { path: 'requestId' } });
    if (pub.threshold === 1) {
      await this.refusalsLogged(req.auth, req.walletId, () => this.store.db.tx(this.shareHook(a, req.walletId, {})));
      return { index: share.index, signature: bytesToHex(frostSignSingle(pub.scheme, share, message)) };
    }
    if (!req.nonceId || !req.commitments) throw new FleetkeyError('validation_failed', 'nonceId and commitments are required');
    const commitments: Record<number, CommitmentJson> = {};
    const indexes = new Set(pub.participants.map((p) => p.index));
    for (const [k, v] of Object.entries(req.commitments)) {
      if (!indexes.has(Number(k))) throw new FleetkeyError('validation_failed', `commitment for non-participant ${k}`);
      commitments[Number(k)] = v;
    }
    const n = Object.keys(commitments).length;
    if (n < pub.threshold || n > pub.participants.length) throw new FleetkeyError('validation_failed', `need ${pub.threshold}..${pub.participants.length} commitments, got ${n}`);
    if (!(share.index in commitments)) throw new FleetkeyError('validation_failed', 'commitments do not include this node');
    // One transaction: the nonce is consumed, the amounts reserved and committed, the share logged.
    const taken = await this.refusalsLogged(req.auth, req.walletId, () => this.store.consumeNonce(req.nonceId!, rootId, req.requestId, this.shareHook(a, req.walletId, { nonceId: req.nonceId! })));
    if (!taken.ok)
      throw taken.reason === 'consumed'
        ? new FleetkeyError('nonce_consumed', `nonce ${req.nonceId} was already used`, { details: { nonceId: req.nonceId } })
        : new FleetkeyError('nonce_unknown', `nonce ${req.nonceId} is not known for this wallet`, { details: { nonceId: req.nonceId } });
    // The database said "unused"; the ledger decides (src/signer/nonce-ledger.ts). The row must open
    // under the seq it names, that seq must still be live, and its spending must be on disk before
    // anything is computed from the nonce: a nonce row restored in the database is refused here.
    const seq = taken.nonce.seq;
    if (seq === null || seq === undefined) throw new FleetkeyError('nonce_consumed', `nonce ${req.nonceId} predates this node's nonce ledger and is not used`, { details: { nonceId: req.nonceId } });
    const nonces = JSON.parse(new TextDecoder().decode(this.sealer.open(taken.nonce.sealed, this.ledger.context(taken.nonce.id, rootId, taken.nonce.epoch, seq)))) as NonceJson;
    if (!this.ledger.spend(seq)) {
      this.log.error('a nonce the database offered as unused was already spent: refused (database rolled back or tampered with)', { walletId: rootId, nonceId: taken.nonce.id });
      throw new FleetkeyError('nonce_consumed', `nonce ${req.nonceId} was already used`, { details: { nonceId: req.nonceId } });
    }
    // The file saying so is written off the event loop while the share is computed; the share
    // leaves only once that file is on disk (and not at all if the write fails).
    const spent = this.ledger.persist();
    let out: { index: number; share: string } | FleetkeyError;
    const mine = JSON.parse(taken.nonce.commitment) as CommitmentJson;
    if (mine.hiding !== commitments[share.index].hiding || mine.binding !== commitments[share.index].binding)
      out = new FleetkeyError('validation_failed', 'the commitment listed for this node is not the one it issued for that nonce');
    else
      try {
        out = { index: share.index, share: frostSignShare(pub.scheme, share, pub.group, nonces, commitments, message) };
      } catch (e) {
        out = new FleetkeyError('validation_failed', `cannot sign with these commitments: ${(e as Error).message}`);
      }
    await spent;
    if (out instanceof FleetkeyError) throw out;
    return out;
  }

  /**
   * The owner-only recovery export (issue 11): this holder's share, sealed to the owner's X25519
   * recovery key named in an owner-signed `export` document. Checked here, whatever the server says:
   * the document (pinned owner key, not expired), the wallet (a root this node holds), and the
   * latest policy this node holds for it must say `"exportable": true`. The export is logged in
   * this node's audit chain, durably, before the sealed share leaves; a refusal is logged too. The
   * box holds the Shamir scalar only (src/crypto/export.ts), never DKLs23's pairwise state, and
   * comes with this node's signature over {order, wallet, public key, node, index, epoch, box}.
   */
  async exportShare(signed: unknown): Promise<{ nodeId: string; index: number; epoch: number; box: string; sig: string }> {
    let walletId = '';
    const refuse = async (e: FleetkeyError): Promise<never> => {
      await this.audit.append({ type: 'admin', outcome: 'key_export_refused', data: { walletId, code: e.code, message: e.message.slice(0, 300) } });
      throw e;
    };
    let doc: ExportDoc;
    try {
      const d = verifyControlDoc(signed, this.ownerKeys);
      if (d.kind !== 'export') throw new FleetkeyError('validation_failed', 'an export needs the owner\'s export document', { details: { path: 'doc.kind' } });
      doc = d;
    } catch (e) {
      return e instanceof FleetkeyError ? refuse(e) : Promise.reject(e);
    }
    walletId = doc.walletId;
    const now = Date.now();
    if (now >= doc.expiresAt || doc.issuedAt > now + DEFAULT_CLOCK_SKEW_MS) return refuse(new FleetkeyError('request_expired', 'the export document is expired or not yet valid', { details: { path: 'doc.expiresAt' } }));
    if (splitWalletId(walletId).index !== undefined)
      return refuse(new FleetkeyError('unsupported', 'a derived wallet has no share of its own: export its root (the child key is the root key plus the public derivation tweak)', { details: { path: 'doc.walletId' } }));
    const rec = await this.store.getActiveShare(walletId);
    if (!rec) return refuse(new FleetkeyError('not_found', `no active share for wallet ${walletId} on this node`));
    const policy = await this.control.latestPolicy(walletId);
    if ((policy?.doc.policy as { exportable?: boolean } | undefined)?.exportable !== true)
      return refuse(new FleetkeyError('policy_denied', `wallet ${walletId}'s policy does not allow export (it needs "exportable": true)`, { details: { walletId } }));
    const pub = JSON.parse(rec.publicJson) as SharePublic;
    const share = JSON.parse(new TextDecoder().decode(this.sealer.open(rec.sealed, shareContext(walletId, rec.epoch)))) as SecretShare;
    const order = controlDocDigest(doc);
    await this.audit.append({ type: 'admin', outcome: 'key_exported', data: { walletId, epoch: rec.epoch, recipient: doc.recipient, order, policyVersion: policy!.version, expiresAt: doc.expiresAt } });
    const box = sealShare({ v: 1, scheme: pub.scheme, walletId, epoch: rec.epoch, index: share.index, scalar: bytesToHex(scalarBytes(pub.scheme, shareScalar(pub.scheme, share))), order }, doc.recipient);
    // Signed with this node's identity key: the CLI checks it against the manifest's pinned key.
    const sig = signBox({ order, walletId, publicKey: pub.group.publicKey, nodeId: this.keys.nodeId, index: share.index, epoch: rec.epoch, box }, this.keys.signSecret);
    return { nodeId: this.keys.nodeId, index: share.index, epoch: rec.epoch, box, sig };
  }

  /** Runs `f`; a refusal it raises (limit, revocation, used-up grant) is logged before it is thrown. */
  private async refusalsLogged<T>(auth: SignAuth, walletId: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof FleetkeyError && ['limit_exceeded', 'grant_revoked', 'grant_exhausted', 'conflict'].includes(e.code)) await this.logRefusal(e, auth, walletId);
      throw e;
    }
  }
}

function shareContext(walletId: string, epoch: number): string {
  return `share|${walletId}|${epoch}`;
}

/** A protocol failure becomes a 4xx that names the culprit node (never a share or a nonce). */
function asFleetkeyError(e: unknown, participants: Participant[]): unknown {
  if (e instanceof ProtocolError) {
    const nodeOf = new Map(participants.map((p) => [p.index, p.nodeId]));
    const culprit = e.culprit === undefined ? undefined : nodeOf.get(e.culprit);
    // "party 2" in the protocol's message becomes "party 2 (node_…)" for the operator.
    const message = e.message.replace(/party (\d+)/g, (m, i) => (nodeOf.has(Number(i)) ? `${m} (${nodeOf.get(Number(i))})` : m));
    return new FleetkeyError('bad_share', message, { details: culprit ? { culprit } : undefined });
  }
  return e;
}
