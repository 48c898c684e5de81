/**
 * Signed device data: one reading, signed on the device by its own key, verifiable offline by
 * anyone holding the device's fleet credential and the fleet's status list(s).
 *
 * Format: a compact JWS (RFC 7515)
 *   header  { alg: 'EdDSA' | 'ES256', typ: 'fleetkey-device-data+jws', kid: '<device did:key>#<key id>' }
 *   payload { deviceDid, fleet, ts, seq?, nonce, data }
 * `ts` is the device clock in epoch milliseconds, `seq` an optional counter, `nonce` 16 random
 * bytes base64url (or any 8-128 char base64url string the device chooses), `data` any JSON value.
 * Device keys are Ed25519 (EdDSA over the signing input) or P-256 (ES256: the signer is handed
 * SHA-256 of the signing input and returns r||s), matching what secure elements and TPMs offer.
 *
 * `verifyDeviceData` returns a verdict. Checks run cheapest first and the first failure is reported:
 *   malformed -> stale -> bad_signature -> credential_invalid / credential_expired -> wrong_device
 *   -> revoked / suspended -> replayed -> ok
 * The replay store is only written once everything else has passed, so forged or rejected messages
 * never consume a nonce. A reading is remembered until ts + maxAgeMs, after which it is stale anyway.
 */
import { randomBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import type { Resolvable } from 'did-resolver';
import { FleetkeyError } from '../errors.ts';
import { didKeyVerificationMethodId, publicKeyFromDidKey } from './did-key.ts';
import { decodeJws, signJws, verifyDecodedJws, type DecodedJws } from './jwt.ts';
import { algForKeyType, type PublicKey, type SignCallback } from './keys.ts';
import { checkStatus } from './status-list.ts';
import { DEVICE_CREDENTIAL_TYPE, verifyCredentialJwt, type VerificationCache } from './vc.ts';

export const DEVICE_DATA_TYP = 'fleetkey-device-data+jws';
/** Default cap on a signed reading, characters. */
export const MAX_DEVICE_DATA_LENGTH = 64 * 1024;

export interface DeviceReading {
  deviceDid: string;
  fleet: string;
  /** Device clock, epoch milliseconds. */
  ts: number;
  seq?: number;
  nonce: string;
  data: unknown;
}

export interface SignDeviceDataOptions {
  deviceDid: string;
  fleet: string;
  data: unknown;
  /** Epoch ms or Date; default the current time. */
  ts?: number | Date;
  seq?: number;
  /** Default: 16 random bytes, base64url. */
  nonce?: string;
}

const NONCE = /^[A-Za-z0-9_-]{8,128}$/;

function invalid(msg: string): never {
  throw new FleetkeyError('validation_failed', msg);
}

function deviceKey(deviceDid: string): PublicKey {
  const pk = publicKeyFromDidKey(deviceDid);
  if (pk.type !== 'Ed25519' && pk.type !== 'P-256') invalid(`device keys are Ed25519 or P-256, got ${pk.type}`);
  return pk;
}

/**
 * Device side: signs a reading with the device key through `sign` (the secure element / TPM).
 * The returned signature is checked against the device's did:key before the message is returned.
 */
export async function signDeviceData(opts: SignDeviceDataOptions, sign: SignCallback): Promise<string> {
  if (!opts || typeof opts !== 'object') invalid('options are required');
  const pk = deviceKey(opts.deviceDid);
  if (typeof opts.fleet !== 'string' || opts.fleet.length === 0) invalid('fleet must be a non-empty string');
  const ts = opts.ts === undefined ? Date.now() : opts.ts instanceof Date ? opts.ts.getTime() : opts.ts;
  if (!Number.isSafeInteger(ts) || ts < 0) invalid('ts must be epoch milliseconds (a non-negative integer)');
  if (opts.seq !== undefined && (!Number.isSafeInteger(opts.seq) || opts.seq < 0)) invalid('seq must be a non-negative integer');
  const nonce = opts.nonce ?? base64urlnopad.encode(randomBytes(16));
  if (!NONCE.test(nonce)) invalid('nonce must be 8-128 base64url characters');
  if (opts.data === undefined) invalid('data is required (any JSON value)');
  let data: unknown;
  try {
    data = JSON.parse(JSON.stringify(opts.data));
  } catch {
    invalid('data must be JSON-serialisable');
  }
  const payload: Record<string, unknown> = { deviceDid: opts.deviceDid, fleet: opts.fleet, ts, ...(opts.seq !== undefined ? { seq: opts.seq } : {}), nonce, data };
  const header = { alg: algForKeyType(pk.type), typ: DEVICE_DATA_TYP, kid: didKeyVerificationMethodId(opts.deviceDid) };
  const jws = await signJws(header, payload, sign, pk);
  if (jws.length > MAX_DEVICE_DATA_LENGTH) invalid(`signed reading is ${jws.length} characters; the limit is ${MAX_DEVICE_DATA_LENGTH}`);
  return jws;
}

/** Replay protection store, injected so a gateway can back it with Redis, SQLite... */
export interface ReplayStore {
  /**
   * Atomically: if `key` is recorded (and not expired at `nowMs`) return true; otherwise record it
   * until `expiresAtMs` and return false.
   */
  checkAndRemember(key: string, expiresAtMs: number, nowMs: number): boolean | Promise<boolean>;
}

/** Map-backed `ReplayStore` for tests and single-process gateways; expired keys are swept as it grows. */
export class MemoryReplayStore implements ReplayStore {
  private readonly seen = new Map<string, number>();
  private sweepAt = 1024;

  get size(): number {
    return this.seen.size;
  }

  checkAndRemember(key: string, expiresAtMs: number, nowMs: number): boolean {
    const until = this.seen.get(key);
    if (until !== undefined && until > nowMs) return true;
    this.seen.set(key, expiresAtMs);
    if (this.seen.size >= this.sweepAt) {
      for (const [k, t] of this.seen) if (t <= nowMs) this.seen.delete(k);
      this.sweepAt = Math.max(1024, this.seen.size * 2);
    }
    return false;
  }
}

export function createMemoryReplayStore(): MemoryReplayStore {
  return new MemoryReplayStore();
}

export type DeviceDataReason =
  | 'ok'
  | 'bad_signature'
  | 'wrong_device'
  | 'revoked'
  | 'suspended'
  | 'credential_invalid'
  | 'credential_expired'
  | 'replayed'
  | 'stale'
  | 'malformed';

export interface DeviceDataVerdict {
  trusted: boolean;
  reason: DeviceDataReason;
  /** The device DID the message claims (null when it cannot be read). Trust it only if `trusted`. */
  device: string | null;
  fleet: string | null;
  /** Human-readable explanation of a failure. */
  detail?: string;
  /** The reading, present when `trusted`. */
  reading?: DeviceReading;
}

export interface VerifyDeviceDataOptions {
  /** The device's FleetDeviceCredential (JWT-VC). */
  credentialJwt: string;
  /** The status list credential(s) the device credential's credentialStatus entries name. */
  statusListJwt?: string | readonly string[];
  resolver: Resolvable;
  /** The fleet key's DID; the device credential must be issued by it. */
  fleetIssuerDid: string;
  seen: ReplayStore;
  /** Verification time (Date or epoch ms); default now. */
  now?: Date | number;
  /** Oldest acceptable reading, ms before now; default 5 minutes. */
  maxAgeMs?: number;
  /** Newest acceptable reading, ms after now (device clock drift); default 30 seconds. */
  maxFutureSkewMs?: number;
  /** Tolerance on credential nbf / exp, seconds; default 0. */
  credentialSkewSeconds?: number;
  /** Refuse status lists issued longer ago than this, seconds (see CheckStatusOptions). */
  maxStatusListAgeSeconds?: number;
  /** Memo for credential / status list signatures (see createVerificationCache). */
  cache?: VerificationCache;
  maxLength?: number;
}

function verdict(reason: DeviceDataReason, device: string | null, fleet: string | null, detail?: string): DeviceDataVerdict {
  return { trusted: false, reason, device, fleet, ...(detail ? { detail } : {}) };
}

function readReading(decoded: DecodedJws<Record<string, unknown>>): { reading: DeviceReading; key: PublicKey } | string {
  const { header, payload: p } = decoded;
  if (header.typ !== DEVICE_DATA_TYP) return `typ must be ${DEVICE_DATA_TYP}`;
  if (typeof p.deviceDid !== 'string') return 'deviceDid is missing';
  if (typeof p.fleet !== 'string' || p.fleet.length === 0) return 'fleet is missing';
  if (typeof p.ts !== 'number' || !Number.isSafeInteger(p.ts) || p.ts < 0) return 'ts must be epoch milliseconds';
  if (p.seq !== undefined && (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0)) return 'seq must be a non-negative integer';
  if (typeof p.nonce !== 'string' || !NONCE.test(p.nonce)) return 'nonce must be 8-128 base64url characters';
  if (!('data' in p)) return 'data is missing';
  let key: PublicKey;
  try {
    key = deviceKey(p.deviceDid);
  } catch (e) {
    return (e as Error).message;
  }
  // The kid must be the device did:key's own method (or the bare DID); a string compare, no second decode.
  if (header.kid !== p.deviceDid && header.kid !== `${p.deviceDid}#${p.deviceDid.slice('did:key:'.length)}`) return 'kid does not name the deviceDid key';
  if (header.alg !== algForKeyType(key.type)) return `alg ${header.alg} does not match the ${key.type} device key`;
  const reading: DeviceReading = { deviceDid: p.deviceDid, fleet: p.fleet, ts: p.ts, ...(p.seq !== undefined ? { seq: p.seq as number } : {}), nonce: p.nonce, data: p.data };
  return { reading, key };
}

/** Offline verification of a signed reading. Throws only for missing options (`bad_request`). */
export async function verifyDeviceData(message: string, opts: VerifyDeviceDataOptions): Promise<DeviceDataVerdict> {
  if (!opts || typeof opts !== 'object') throw new FleetkeyError('bad_request', 'verification options are required');
  if (!opts.resolver || typeof opts.resolver.resolve !== 'function') throw new FleetkeyError('bad_request', 'a DID resolver is required');
  if (!opts.seen || typeof opts.seen.checkAndRemember !== 'function') throw new FleetkeyError('bad_request', 'a replay store (seen) is required');
  if (typeof opts.fleetIssuerDid !== 'string' || !opts.fleetIssuerDid.startsWith('did:')) throw new FleetkeyError('bad_request', 'fleetIssuerDid must be a DID');
  if (typeof opts.credentialJwt !== 'string') throw new FleetkeyError('bad_request', 'credentialJwt is required');
  const nowMs = opts.now === undefined ? Date.now() : opts.now instanceof Date ? opts.now.getTime() : opts.now;
  const now = new Date(nowMs);
  const maxAgeMs = opts.maxAgeMs ?? 5 * 60_000;
  const maxFutureSkewMs = opts.maxFutureSkewMs ?? 30_000;
  // A NaN here would make every time comparison false, i.e. let stale readings through.
  if (!Number.isFinite(nowMs)) throw new FleetkeyError('bad_request', 'now must be a valid Date or epoch milliseconds');
  for (const [name, v] of [['maxAgeMs', maxAgeMs], ['maxFutureSkewMs', maxFutureSkewMs]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new FleetkeyError('bad_request', `${name} must be a non-negative number`);
  }

  // 1. shape
  let decoded: DecodedJws<Record<string, unknown>>;
  try {
    decoded = decodeJws(message, opts.maxLength ?? MAX_DEVICE_DATA_LENGTH);
  } catch (e) {
    return verdict('malformed', null, null, (e as Error).message);
  }
  const read = readReading(decoded);
  if (typeof read === 'string') {
    const p = decoded.payload;
    return verdict('malformed', typeof p.deviceDid === 'string' ? p.deviceDid : null, typeof p.fleet === 'string' ? p.fleet : null, read);
  }
  const { reading, key } = read;
  const device = reading.deviceDid;
  const fleet = reading.fleet;

  // 2. freshness (cheap, before any signature work)
  if (nowMs - reading.ts > maxAgeMs) return verdict('stale', device, fleet, `reading is ${nowMs - reading.ts} ms old (limit ${maxAgeMs})`);
  if (reading.ts - nowMs > maxFutureSkewMs) return verdict('stale', device, fleet, `reading is ${reading.ts - nowMs} ms in the future (limit ${maxFutureSkewMs})`);

  // 3. device signature
  if (!verifyDecodedJws(decoded, key)) return verdict('bad_signature', device, fleet, 'signature does not verify under the device key');

  // 4. the device's fleet credential
  const vc = await verifyCredentialJwt(opts.credentialJwt, opts.resolver, {
    expectedIssuer: opts.fleetIssuerDid,
    now,
    skewSeconds: opts.credentialSkewSeconds,
    cache: opts.cache,
  });
  if (!vc.valid) return verdict(vc.reason === 'expired' ? 'credential_expired' : 'credential_invalid', device, fleet, `${vc.reason}: ${vc.detail}`);
  if (!vc.types.includes(DEVICE_CREDENTIAL_TYPE)) return verdict('credential_invalid', device, fleet, `credential is not a ${DEVICE_CREDENTIAL_TYPE}`);
  if (vc.subject !== device) return verdict('wrong_device', device, fleet, `credential is for ${vc.subject}`);
  if (vc.claims.fleet !== fleet) return verdict('wrong_device', device, fleet, `credential is for fleet ${String(vc.claims.fleet)}`);

  // 5. revocation / suspension
  if (vc.credentialStatus.length > 0) {
    const status = await checkStatus(vc, opts.statusListJwt ?? [], opts.resolver, {
      now,
      skewSeconds: opts.credentialSkewSeconds,
      maxListAgeSeconds: opts.maxStatusListAgeSeconds,
      cache: opts.cache,
    });
    if (!status.ok) return verdict('credential_invalid', device, fleet, `${status.reason}: ${status.detail}`);
    if (status.revoked) return verdict('revoked', device, fleet, 'device credential is revoked');
    if (status.suspended) return verdict('suspended', device, fleet, 'device credential is suspended');
  }

  // 6. replay (last: only fully valid readings consume their nonce)
  if (await opts.seen.checkAndRemember(`${device} ${reading.nonce}`, reading.ts + maxAgeMs, nowMs)) {
    return verdict('replayed', device, fleet, `nonce ${reading.nonce} was already accepted`);
  }
  return { trusted: true, reason: 'ok', device, fleet, reading };
}
