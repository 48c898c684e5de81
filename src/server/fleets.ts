/**
 * Fleets, devices, DIDs, credentials and device data (issue #5): server side.
 *
 * A fleet is one root wallet from one DKG (the fleet id *is* the root wallet id); its device and
 * agent wallets are the children `${fleetId}.${index}`, derived by a public non-hardened tweak, so
 * enrolling a device needs no DKG and stores one small row (fleet-store.ts). The fleet key signs,
 * through the threshold cluster, the W3C credentials it issues to its devices and the Bitstring
 * Status Lists that revoke or suspend them; the identity core (src/identity) does the formats.
 * Signed device readings arrive by HTTP (`POST /v1/verify/data`) or MQTT and are checked against
 * the device key, its credential and the fleet's current status lists.
 */
import { join } from 'node:path';
import { hexToBytes } from '@noble/hashes/utils.js';
import { keyFile } from '../signer/seal.ts';
import type { Hono } from 'hono';
import { z } from 'zod';
import { HDKey } from '@scure/bip32';
import { secpNodeOf } from '../crypto/derive.ts';
import { schemeOf } from '../crypto/schemes.ts';
import { validatePolicy } from '../policy/index.ts';
import type { SharePublic } from '../signer/node.ts';
import { FleetkeyError } from '../errors.ts';
import { jsonBody, newId, parse, type Logger } from '../http/common.ts';
import {
  createResolver,
  createStatusList,
  createVerificationCache,
  decodeJws,
  didKeyFromPublicKey,
  didPkhFromAccount,
  issueDeviceCredential,
  issueStatusListCredential,
  publicKeyFromDidKey,
  statusListEntry,
  verifyDeviceData,
  type DeviceDataVerdict,
  type FleetAlg,
  type SignCallback,
  type StatusPurpose,
} from '../identity/index.ts';
import { FleetStore, type DeviceRecord, type DeviceStatus, type FleetRecord, type NewDevice } from '../store/fleet-store.ts';
import type { Device, Fleet, VerifyDataReturnType } from '../sdk/fleet-types.ts';
import type { Coordinator } from './coordinator.ts';
import { createWalletSchema, creationOf } from './schemas.ts';
import { DerivePool, deriveChildrenInline, type ChildKey, type FleetRoot } from './fleet-derive.ts';
import { intentSchema, submitIntent } from './fleet-intents.ts';
import { startMqttIngest, type IngestCounters, type MqttIngest } from './fleet-mqtt.ts';

/** Bits per status list; device `index` is bit `index mod LIST_BITS` of list `floor(index / LIST_BITS)`. */
export const LIST_BITS = 131_072;
/** Largest batch one request may enrol (the CLI splits bigger ones). */
export const MAX_BATCH = 100_000;
const MAX_INDEX = 0x7fffffff;

const BIP122_GENESIS: Record<string, string> = {
  mainnet: '000000000019d6689c085ae165831e93',
  testnet: '000000000933ea01ad0ee984209779ba',
  regtest: '0f9188f13cb7b2c71f2a335e3a4fc328',
};

const fleetIdSchema = z.string().regex(/^wal_[0-9a-f]{24}$/, 'not a fleet id');
const indexSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,9})$/, 'not a device index')
  .transform(Number)
  .refine((n) => n <= MAX_INDEX, 'index must be below 2^31');
const deviceDidSchema = z
  .string()
  .max(200)
  .refine((d) => {
    try {
      const t = publicKeyFromDidKey(d).type;
      return t === 'Ed25519' || t === 'P-256';
    } catch {
      return false;
    }
  }, 'must be the did:key of an Ed25519 or P-256 device key');

/**
 * A fleet is created as its root wallet is (the body of `POST /v1/wallets`), plus an optional
 * fleet policy: the root wallet's policy, which every device wallet inherits (a device's own
 * policy can only narrow it).
 */
export const createFleetSchema = createWalletSchema.extend({ policy: z.record(z.string(), z.unknown()).optional() });
export const enrollSchema = z.object({ deviceDid: deviceDidSchema.optional() }).strict();
export const enrollBatchSchema = z
  .object({ count: z.number().int().min(1).max(MAX_BATCH), deviceDids: z.array(deviceDidSchema).max(MAX_BATCH).optional() })
  .strict()
  .refine((b) => b.deviceDids === undefined || b.deviceDids.length === b.count, { message: 'deviceDids must have count entries', path: ['deviceDids'] })
  .refine((b) => b.deviceDids === undefined || new Set(b.deviceDids).size === b.deviceDids.length, { message: 'deviceDids must be distinct', path: ['deviceDids'] });
export const credentialSchema = z
  .object({
    firmwareHash: z.string().regex(/^[0-9a-f]{64,128}$/, 'a lower-case hex digest of 32 to 64 bytes'),
    expiresAt: z.iso.datetime().optional(),
  })
  .strict();
const jwtSchema = z.string().max(1 << 20);
export const verifyDataSchema = z
  .object({ reading: z.string().max(64 * 1024), credential: jwtSchema, statusLists: z.array(jwtSchema).max(8).optional() })
  .strict();

/** The API's views are the SDK's types (one definition for both ends). */
export type FleetView = Fleet;
export type DeviceView = Device;

/** What `POST /v1/verify/data` answers: the identity core's verdict and, when known, the wallet. */
export type DataVerdict = VerifyDataReturnType;

/** One fleet service per coordinator: initFleets creates it, the routes find it here. */
const services = new WeakMap<Coordinator, Promise<FleetService>>();

export class FleetService {
  readonly pool = new DerivePool();
  private readonly resolver = createResolver();
  private readonly cache = createVerificationCache(4096);
  private readonly lists = new Map<string, Promise<unknown>>();
  private readonly roots = new Map<string, { root: FleetRoot; network: string | null; threshold: number; signers: number; address: string }>();
  mqtt: MqttIngest | undefined;
  /** The server's intent-agent key (fleet-intents.ts), set by initFleets from the data dir. */
  agentSecret: Uint8Array | undefined;

  constructor(
    readonly coord: Coordinator,
    readonly store: FleetStore,
    private readonly log: Logger,
  ) {}

  // -------------------------------------------------------------------------------------------
  // Fleets

  async createFleet(o: z.infer<typeof createFleetSchema>, origin: string): Promise<FleetView> {
    // Checked before the DKG, so a bad policy costs nothing; it is an owner-signed document.
    const policy = o.policy === undefined ? undefined : validatePolicy(o.policy);
    if (policy && !this.coord.holdsOwnerKey)
      throw new FleetkeyError('owner_authorization_required', 'this server holds no owner key: create the fleet without a policy, then submit the owner-signed policy for its id (fleetkey policy …)');
    const { policy: _policy, ...body } = o;
    const w = await this.coord.createWallet(creationOf(body, this.coord.signers.peers().length, Number(process.env.FLEETKEY_DEFAULT_THRESHOLD ?? 2) || 2));
    const base = (process.env.FLEETKEY_PUBLIC_URL ?? origin).replace(/\/+$/, '');
    const f = await this.store.createFleet({
      id: w.id,
      scheme: w.scheme,
      label: o.label ?? null,
      issuerDid: issuerDidOf(w.scheme, w.publicKey, w.address, w.network),
      statusBase: `${base}/fleets/${w.id}/status`,
      createdAt: Date.now(),
    });
    if (policy) await this.coord.submitControl(this.coord.ownerSign({ kind: 'policy', walletId: f.id, version: policy.version, policy: o.policy as never, issuedAt: Date.now() }));
    this.log.info('fleet created', { fleet: f.id, scheme: f.scheme, policy: policy?.version ?? null });
    return this.fleetView(f);
  }

  async fleet(id: string): Promise<FleetRecord> {
    const f = await this.store.getFleet(id);
    if (!f) throw new FleetkeyError('not_found', `no fleet ${id}`);
    return f;
  }

  private async rootOf(f: FleetRecord) {
    let r = this.roots.get(f.id);
    if (!r) {
      const w = await this.coord.wallet(f.id);
      const pub = JSON.parse(w.publicJson) as SharePublic;
      r = { root: { scheme: w.scheme, group: pub.group }, network: w.network, threshold: w.threshold, signers: w.participants.length, address: w.address };
      this.roots.set(f.id, r);
    }
    return r;
  }

  async fleetView(f: FleetRecord, counts = false): Promise<FleetView> {
    const r = await this.rootOf(f);
    return {
      id: f.id,
      walletId: f.id,
      scheme: f.scheme as Fleet['scheme'],
      publicKey: r.root.group.publicKey,
      address: r.address,
      issuerDid: f.issuerDid,
      label: f.label,
      threshold: r.threshold,
      signers: r.signers,
      network: r.network,
      nextIndex: f.nextIndex,
      chainCode: String(r.root.group.extra?.chainCode ?? ''),
      ...(f.scheme === 'ed25519' ? {} : { xpub: xpubOf(r.root) }),
      ...(counts ? { devices: await this.store.countDevices(f) } : {}),
      statusLists: f.statusBase,
      createdAt: new Date(f.createdAt).toISOString(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Devices

  async deviceView(f: FleetRecord, d: DeviceRecord): Promise<DeviceView> {
    const { network } = await this.rootOf(f);
    const address = await this.addressOf(f, d);
    return {
      fleet: f.id,
      index: d.index,
      walletId: `${f.id}.${d.index}`,
      scheme: f.scheme as Device['scheme'],
      publicKey: d.publicKey,
      address,
      did: walletDidOf(f.scheme, d.publicKey, address, network),
      deviceDid: d.deviceDid,
      status: d.status,
      enrolledAt: new Date(d.enrolledAt).toISOString(),
    };
  }

  /** A device wallet's address in its chain's form. */
  private async addressOf(f: FleetRecord, d: DeviceRecord): Promise<string> {
    const { network } = await this.rootOf(f);
    return schemeOf(f.scheme).address(d.publicKey, (network ?? 'mainnet') as 'mainnet');
  }

  async device(f: FleetRecord, index: number): Promise<DeviceRecord> {
    const d = await this.store.getDevice(f, index);
    if (!d) throw new FleetkeyError('not_found', `no device ${index} in fleet ${f.id}`);
    return d;
  }

  /** One device (or agent wallet without a device key): the next free index, derived at once. */
  async enroll(f: FleetRecord, deviceDid: string | null): Promise<DeviceView> {
    const { root } = await this.rootOf(f);
    for (;;) {
      const index = await this.store.reserveIndexes(f.id, 1);
      const [child] = deriveChildrenInline(root, index, 1);
      if (!child) continue; // BIP32-invalid index: take the next one
      await insertOrConflict(() => this.store.insertDevices(f, [{ ...child, deviceDid }], Date.now()));
      this.log.info('device enrolled', { fleet: f.id, index });
      return this.deviceView(f, (await this.store.getDevice(f, index))!);
    }
  }

  /**
   * `count` device wallets at consecutive indexes. Without device keys, each derived chunk is
   * stored as soon as it is ready (one transaction per chunk); with device keys, all rows go in
   * one transaction, so a key that is already enrolled leaves nothing behind.
   */
  async enrollBatch(f: FleetRecord, count: number, deviceDids?: string[]): Promise<{ fleet: string; from: number; count: number; enrolled: number; invalid: number[] }> {
    const { root } = await this.rootOf(f);
    const from = await this.store.reserveIndexes(f.id, count);
    const at = Date.now();
    let enrolled = 0;
    const got = new Uint8Array(count); // 1 where a key was derived; BIP32-invalid indexes stay 0
    const held: NewDevice[] = [];
    await this.pool.derive(root, from, count, async (keys: ChildKey[]) => {
      const rows = keys.map((k) => ({ ...k, deviceDid: deviceDids ? deviceDids[k.index - from] : null }));
      for (const k of keys) got[k.index - from] = 1;
      if (deviceDids) held.push(...rows);
      else await this.store.insertDevices(f, rows, at);
      enrolled += rows.length;
    });
    if (deviceDids) await insertOrConflict(() => this.store.insertDevices(f, held, at));
    this.log.info('devices enrolled', { fleet: f.id, from, count, enrolled });
    const invalid: number[] = [];
    got.forEach((x, i) => x || invalid.push(from + i));
    return { fleet: f.id, from, count, enrolled, invalid };
  }

  /**
   * Revoke, suspend or resume a device: the registry row first (so this server refuses it at
   * once), then the owner-signed `wallet_status` document that every signer enforces, then the
   * fleet-signed status list that third parties check.
   */
  async setStatus(f: FleetRecord, index: number, status: DeviceStatus): Promise<DeviceView & { signers: { delivered: string[]; pending: string[] } }> {
    // Signers take only owner-signed documents: without the owner key nothing is changed here either.
    if (!this.coord.holdsOwnerKey)
      throw new FleetkeyError('owner_authorization_required', 'this server holds no owner key: a device status change is an owner-signed wallet_status document');
    const before = await this.device(f, index);
    if (before.status === 'revoked') {
      if (status !== 'revoked') throw new FleetkeyError('conflict', `device ${index} of fleet ${f.id} is revoked; revocation is final`);
      return { ...(await this.deviceView(f, before)), signers: { delivered: [], pending: [] } };
    }
    const d = (await this.store.setStatus(f, index, status))!;
    const walletId = `${f.id}.${index}`;
    const r = await this.coord.submitControl(this.coord.ownerSign({ kind: 'wallet_status', walletId, status: d.status, seq: d.statusSeq, issuedAt: Date.now() }));
    const k = Math.floor(index / LIST_BITS);
    const touched: StatusPurpose[] = status === 'revoked' ? ['revocation', ...(before.status === 'suspended' ? (['suspension'] as const) : [])] : ['suspension'];
    for (const purpose of touched) await this.publishList(f, purpose, k);
    this.log.info('device status', { fleet: f.id, index, status: d.status, delivered: r.delivered.length, pending: r.pending.length });
    return { ...(await this.deviceView(f, d)), signers: { delivered: r.delivered, pending: r.pending } };
  }

  // -------------------------------------------------------------------------------------------
  // Credentials and status lists

  private signer(f: FleetRecord): { alg: FleetAlg; sign: SignCallback } {
    if (f.scheme === 'secp256k1-schnorr')
      throw new FleetkeyError('unsupported', 'a secp256k1-schnorr (BIP340) fleet cannot issue JWT credentials: JOSE has no BIP340 algorithm; use an ed25519 (EdDSA) or ecdsa-secp256k1 (ES256K) fleet');
    const ecdsa = f.scheme === 'ecdsa-secp256k1';
    return {
      alg: ecdsa ? 'ES256K' : 'EdDSA',
      // EdDSA: the cluster signs the JWS signing input itself. ES256K: `input` is its SHA-256,
      // which threshold ECDSA signs as a hash; the answer is r‖s‖v and the JWS takes r‖s.
      sign: async (input) => {
        const sig = hexToBytes((await this.coord.sign(f.id, input, newId('req'), undefined, { path: 'fleet' })).signature);
        return ecdsa ? sig.slice(0, 64) : sig;
      },
    };
  }

  listUrl(f: FleetRecord, purpose: StatusPurpose, k: number): string {
    return `${f.statusBase}/${purpose}/${k}`;
  }

  async issueCredential(f: FleetRecord, index: number, o: z.infer<typeof credentialSchema>): Promise<{ credential: string; issuer: string; subject: string; walletId: string }> {
    const d = await this.device(f, index);
    if (!d.deviceDid) throw new FleetkeyError('validation_failed', `device ${index} has no device key (an agent wallet); enrol it with a deviceDid to issue a credential`);
    if (d.status === 'revoked') throw new FleetkeyError('conflict', `device ${index} is revoked`);
    const { alg, sign } = this.signer(f);
    const k = Math.floor(index / LIST_BITS);
    const entries = (['revocation', 'suspension'] as const).map((purpose) => statusListEntry({ statusListCredential: this.listUrl(f, purpose, k), statusListIndex: index % LIST_BITS, statusPurpose: purpose }));
    // Publish the lists first: a credential never names a list a verifier cannot fetch.
    for (const purpose of ['revocation', 'suspension'] as const) await this.statusList(f, purpose, k);
    const credential = await issueDeviceCredential(
      {
        issuerDid: f.issuerDid,
        alg,
        deviceDid: d.deviceDid,
        fleet: f.id,
        firmwareHash: o.firmwareHash,
        enrolledAt: new Date(d.enrolledAt),
        issuanceDate: new Date(),
        ...(o.expiresAt ? { expirationDate: o.expiresAt } : {}),
        credentialStatus: entries,
        id: `urn:fleetkey:${f.id}:${index}:${newId('vc')}`,
      },
      sign,
    );
    return { credential, issuer: f.issuerDid, subject: d.deviceDid, walletId: `${f.id}.${index}` };
  }

  /** The current status list credential (issued on first use). */
  async statusList(f: FleetRecord, purpose: StatusPurpose, k: number): Promise<string> {
    const stored = await this.store.getStatusList(f.id, purpose, k);
    if (stored) return stored.jwt;
    await this.publishList(f, purpose, k);
    return (await this.store.getStatusList(f.id, purpose, k))!.jwt;
  }

  /**
   * Re-signs list (purpose, k) from the registry, so the latest state wins: one at a time per list
   * in this process, and across servers on one store by compare-and-set on the list's version. A
   * publish reads the version, then the registry, signs, and stores version + 1 only if nobody
   * stored it meanwhile; if somebody did, it starts over from a fresh read. Every status change is
   * committed before its publish starts, so the last publish to store has read every change (a
   * list built from an older registry can never overwrite a newer one).
   */
  private publishList(f: FleetRecord, purpose: StatusPurpose, k: number): Promise<void> {
    const key = `${f.id}/${purpose}/${k}`;
    const run = async () => {
      const { alg, sign } = this.signer(f);
      for (let attempt = 1; ; attempt++) {
        const version = ((await this.store.getStatusList(f.id, purpose, k))?.version ?? 0) + 1;
        const list = createStatusList(LIST_BITS);
        for (const i of await this.store.indexesWithStatus(f, purpose === 'revocation' ? 'revoked' : 'suspended', k * LIST_BITS, (k + 1) * LIST_BITS)) list.set(i - k * LIST_BITS);
        const now = new Date();
        const jwt = await issueStatusListCredential({ issuerDid: f.issuerDid, alg, id: this.listUrl(f, purpose, k), statusPurpose: purpose, list, validFrom: now, ttl: 60_000 }, sign);
        if (await this.store.putStatusList(f.id, purpose, k, version, jwt, now.getTime())) return;
        if (attempt >= 8) throw new FleetkeyError('in_progress', `status list ${purpose}/${k} of fleet ${f.id} is being republished by other servers; try again`, { details: { fleet: f.id, purpose, k } });
      }
    };
    const prev = this.lists.get(key) ?? Promise.resolve();
    const next = prev.then(run, run);
    this.lists.set(key, next.catch(() => undefined));
    return next;
  }

  // -------------------------------------------------------------------------------------------
  // Device data

  /**
   * Checks a signed reading: the device signature, its fleet credential (issued by this fleet,
   * for this device), the fleet's current status lists, and this server's registry (a device
   * revoked or suspended here is refused even before its list is republished); then the nonce,
   * once, in the durable replay log.
   */
  async verifyData(reading: string, credential: string, statusLists?: string[]): Promise<DataVerdict> {
    let claimed: { fleet?: unknown; deviceDid?: unknown };
    try {
      claimed = decodeJws(reading, 64 * 1024).payload;
    } catch (e) {
      return { trusted: false, reason: 'malformed', device: null, fleet: null, detail: (e as Error).message };
    }
    const device = typeof claimed.deviceDid === 'string' ? claimed.deviceDid : null;
    const fleetId = typeof claimed.fleet === 'string' ? claimed.fleet : null;
    const f = fleetId && fleetIdSchema.safeParse(fleetId).success ? await this.store.getFleet(fleetId) : undefined;
    if (!f) return { trusted: false, reason: 'wrong_device', device, fleet: fleetId, detail: `no fleet ${String(fleetId)} on this server` };
    const found = device ? await this.store.deviceByDid(device) : undefined;
    if (!found || found.fleet.id !== f.id) return { trusted: false, reason: 'wrong_device', device, fleet: f.id, detail: 'no device with this key is enrolled in this fleet' };
    const d = found.device;
    const k = Math.floor(d.index / LIST_BITS);
    const lists = statusLists ?? (await Promise.all((['revocation', 'suspension'] as const).map((p) => this.statusList(f, p, k))));
    const v = await verifyDeviceData(reading, {
      credentialJwt: credential,
      statusListJwt: lists,
      resolver: this.resolver,
      fleetIssuerDid: f.issuerDid,
      cache: this.cache,
      seen: {
        // The registry is checked last but before the nonce is spent, so a refused reading keeps it.
        checkAndRemember: async (key, expiresAt, now) => {
          if (d.status !== 'active') throw new RegistryRefusal(d.status);
          return this.store.checkAndRemember(key, expiresAt, now);
        },
      },
    }).catch((e) => {
      if (e instanceof RegistryRefusal) return { trusted: false, reason: e.status === 'revoked' ? 'revoked' : 'suspended', device, fleet: f.id, detail: `device is ${e.status} in the fleet registry` } as DeviceDataVerdict;
      throw e;
    });
    return { ...v, wallet: { id: `${f.id}.${d.index}`, index: d.index, address: await this.addressOf(f, d) } };
  }

  /** A device's signed EIP-712 intent, turned into a transaction under its wallet's policy (fleet-intents.ts). */
  async intent(f: FleetRecord, index: number, body: z.infer<typeof intentSchema>) {
    if (!this.agentSecret) throw new FleetkeyError('unsupported', 'this server has no intent-agent key (no data dir)');
    const d = await this.device(f, index);
    const address = await this.addressOf(f, d);
    return submitIntent({ coord: this.coord, store: this.store, log: this.log, agentSecret: this.agentSecret }, f, d, address as `0x${string}`, body);
  }

  async close(): Promise<void> {
    await this.mqtt?.close();
    await this.pool.close();
  }
}

class RegistryRefusal extends Error {
  constructor(readonly status: DeviceStatus) {
    super(status);
  }
}

async function insertOrConflict(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505') throw new FleetkeyError('conflict', 'a device key in the request is already enrolled');
    throw e;
  }
}

/** The fleet's issuer DID: the did:key of its root key (Ed25519, or secp256k1 for ES256K), did:pkh bip122 for BIP340 fleets (which cannot issue). */
export function issuerDidOf(scheme: string, publicKey: string, address: string, network: string | null): string {
  if (scheme === 'ed25519') return didKeyFromPublicKey('Ed25519', hexToBytes(publicKey));
  if (scheme === 'ecdsa-secp256k1') return didKeyFromPublicKey('secp256k1', hexToBytes(publicKey));
  return walletDidOf(scheme, publicKey, address, network);
}

/** A wallet's DID: did:pkh:eip155:1 (ECDSA), did:pkh:bip122 (taproot), did:key (Ed25519; also its Solana address). */
export function walletDidOf(scheme: string, publicKey: string, address: string, network: string | null): string {
  if (scheme === 'ed25519') return didKeyFromPublicKey('Ed25519', hexToBytes(publicKey));
  if (scheme === 'ecdsa-secp256k1') return didPkhFromAccount({ namespace: 'eip155', reference: '1', address });
  return didPkhFromAccount({ namespace: 'bip122', reference: BIP122_GENESIS[network ?? 'mainnet'], address });
}

function xpubOf(root: FleetRoot): string {
  const chainCode = hexToBytes(String(root.group.extra?.chainCode ?? ''));
  const publicKey = root.scheme === 'ecdsa-secp256k1' ? hexToBytes(root.group.publicKey) : secpNodeOf(root.group).bip32Key;
  return new HDKey({ publicKey, chainCode }).publicExtendedKey;
}

function service(coord: Coordinator, log: Logger): Promise<FleetService> {
  let s = services.get(coord);
  if (!s) {
    s = (async () => {
      const store = new FleetStore(coord.store.db);
      await store.init();
      return new FleetService(coord, store, log);
    })();
    services.set(coord, s);
  }
  return s;
}

/** Creates this module's tables and background work (MQTT ingest) once the server's store is open. */
export async function initFleets(coord: Coordinator, opts: { dataDir: string; log: Logger }): Promise<{ close(): Promise<void> }> {
  const svc = await service(coord, opts.log);
  svc.agentSecret = keyFile(join(opts.dataDir, 'intent-agent.key'));
  const url = process.env.FLEETKEY_MQTT_URL;
  if (url) svc.mqtt = await startMqttIngest(svc, { url, prefix: process.env.FLEETKEY_MQTT_PREFIX ?? 'fleetkey', log: opts.log });
  const sweep = setInterval(() => void svc.store.sweepSeen(Date.now()).catch(() => undefined), 60_000).unref();
  return {
    async close() {
      clearInterval(sweep);
      await svc.close();
    },
  };
}

/** Mounts this module's routes under /v1 (the admin bearer check already applies to /v1/*), and the public status-list and DID routes. */
export function fleetRoutes(app: Hono<any>, coord: Coordinator, log: Logger): void {
  const svc = () => service(coord, log);
  const fleetOf = async (id: string) => (await svc()).fleet(parse(fleetIdSchema, id, 'id'));
  const idx = (v: string) => parse(indexSchema, v, 'index');
  const page = (v: string | undefined, max: number) => Math.min(Number(v ?? 100) || 100, max);

  app.post('/v1/fleets', async (c) => {
    const b = parse(createFleetSchema, await jsonBody(c));
    return c.json(await (await svc()).createFleet(b, new URL(c.req.url).origin), 201);
  });
  app.get('/v1/fleets', async (c) => {
    const s = await svc();
    const limit = page(c.req.query('limit'), 1000);
    const list = await s.store.listFleets(limit, c.req.query('after') ?? '');
    return c.json({ fleets: await Promise.all(list.map((f) => s.fleetView(f))), next: list.length === limit ? list[list.length - 1].id : null });
  });
  app.get('/v1/fleets/:id', async (c) => c.json(await (await svc()).fleetView(await fleetOf(c.req.param('id')), true)));
  app.post('/v1/fleets/:id/devices', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const b = parse(enrollSchema, await jsonBody(c));
    return c.json(await (await svc()).enroll(f, b.deviceDid ?? null), 201);
  });
  app.post('/v1/fleets/:id/devices/batch', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const b = parse(enrollBatchSchema, await jsonBody(c));
    return c.json(await (await svc()).enrollBatch(f, b.count, b.deviceDids), 201);
  });
  app.get('/v1/fleets/:id/devices', async (c) => {
    const s = await svc();
    const f = await fleetOf(c.req.param('id'));
    const limit = page(c.req.query('limit'), 5000);
    const after = c.req.query('after');
    const list = await s.store.listDevices(f, limit, after === undefined ? -1 : idx(after));
    return c.json({ devices: await Promise.all(list.map((d) => s.deviceView(f, d))), next: list.length === limit ? list[list.length - 1].index : null });
  });
  app.get('/v1/fleets/:id/devices/:index', async (c) => {
    const s = await svc();
    const f = await fleetOf(c.req.param('id'));
    return c.json(await s.deviceView(f, await s.device(f, idx(c.req.param('index')))));
  });
  // A device found by its device key's DID (the console's search), in this fleet only.
  app.get('/v1/fleets/:id/devices/by-did/:did', async (c) => {
    const s = await svc();
    const f = await fleetOf(c.req.param('id'));
    const hit = await s.store.deviceByDid(parse(deviceDidSchema, c.req.param('did'), 'did'));
    if (!hit || hit.fleet.id !== f.id) throw new FleetkeyError('not_found', `no device of fleet ${f.id} has that device DID`);
    return c.json(await s.deviceView(f, hit.device));
  });
  for (const [verb, status] of [['revoke', 'revoked'], ['suspend', 'suspended'], ['resume', 'active']] as const) {
    app.post(`/v1/fleets/:id/devices/:index/${verb}`, async (c) => {
      const f = await fleetOf(c.req.param('id'));
      return c.json(await (await svc()).setStatus(f, idx(c.req.param('index')), status));
    });
  }
  app.post('/v1/fleets/:id/devices/:index/credential', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const b = parse(credentialSchema, await jsonBody(c));
    return c.json(await (await svc()).issueCredential(f, idx(c.req.param('index')), b), 201);
  });
  app.get('/v1/fleets/:id/readings', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    return c.json({ readings: await (await svc()).store.listReadings(f.id, page(c.req.query('limit'), 1000)) });
  });
  app.get('/v1/fleets/:id/ingest', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const s = await svc();
    const zero: IngestCounters = { received: 0, accepted: 0, rejected: 0, reasons: {} };
    return c.json({ topic: s.mqtt?.topicOf(f.id) ?? null, connected: s.mqtt?.connected() ?? false, ...((await s.mqtt?.counters(f.id)) ?? zero) });
  });
  app.post('/v1/verify/data', async (c) => {
    const b = parse(verifyDataSchema, await jsonBody(c));
    return c.json(await (await svc()).verifyData(b.reading, b.credential, b.statusLists));
  });

  // Intents are authenticated by the device key's signature, not by the admin token.
  app.post('/fleets/:id/devices/:index/intents', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const r = await (await svc()).intent(f, idx(c.req.param('index')), parse(intentSchema, await jsonBody(c)));
    const { httpStatus, ...view } = r;
    return c.json(view, httpStatus as 200);
  });

  // DID resolution (pure: did:key and did:pkh documents are functions of the DID), with and
  // without the token; the public form is the Universal Resolver's path.
  const resolver = createResolver();
  const resolve = async (did: string) => {
    const r = await resolver.resolve(did);
    if (r.didResolutionMetadata.error) throw new FleetkeyError('validation_failed', `${r.didResolutionMetadata.error}: ${String(r.didResolutionMetadata.message ?? did)}`);
    return r;
  };
  app.get('/v1/dids/:did', async (c) => c.json(await resolve(c.req.param('did'))));
  app.get('/1.0/identifiers/:did', async (c) => c.json(await resolve(c.req.param('did'))));
  // Status lists are public: anyone holding a device credential must be able to check it.
  app.get('/fleets/:id/status/:purpose/:k', async (c) => {
    const f = await fleetOf(c.req.param('id'));
    const purpose = parse(z.enum(['revocation', 'suspension']), c.req.param('purpose'), 'purpose');
    const k = idx(c.req.param('k'));
    if (k > MAX_INDEX / LIST_BITS) throw new FleetkeyError('not_found', `no status list ${k}`);
    return c.body(await (await svc()).statusList(f, purpose, k), 200, { 'content-type': 'application/jwt' });
  });
}
