/**
 * W3C Bitstring Status List v1.0 for revocation and suspension of device credentials.
 *
 * - The list is a bitstring of at least 131,072 bits (16 KiB, the spec's herd-privacy minimum),
 *   whole bytes; index 0 is the most significant (left-most) bit of the first byte.
 * - `encodedList` = 'u' + base64url-no-pad(GZIP(bitstring)): multibase base64url. GZIP is fflate (pure JS, so the
 *   SDK's device-data check runs in browsers and edge runtimes too);
 *   decoding caps the inflated size (`maxBytes`), so a hostile list cannot be a zip bomb.
 * - One list per purpose: a credential that can be both revoked and suspended carries two
 *   `BitstringStatusListEntry` items pointing at two lists. `statusSize` is 1 (the default); entries
 *   asking for more bits or for the `message` purpose are refused as unsupported.
 * - The `BitstringStatusListCredential` is a JWT-VC issued by the fleet through the same signer
 *   callback as device credentials; its jti / vc.id is the URL that entries name in
 *   `statusListCredential`, its subject is `<url>#list`.
 *
 * `checkStatus` verifies the status list credential's signature (offline, via the resolver), that it
 * is the list the entry names, has the entry's purpose, is issued by the credential's own issuer and
 * is within its validity window, then reads the bit. Problems are verdicts, not throws.
 */
import { Gunzip, gzipSync } from 'fflate';
import { base64urlnopad } from '@scure/base';
import type { Resolvable } from 'did-resolver';
import { FleetkeyError } from '../errors.ts';
import { signJws } from './jwt.ts';
import type { SignCallback } from './keys.ts';
import {
  STATUS_LIST_CONTEXT,
  VC_CONTEXT_V1,
  checkValidityWindow,
  issuerSigningKey,
  toSeconds,
  verifyCredentialJwt,
  verifyIssuedJwt,
  type BitstringStatusListEntry,
  type FleetAlg,
  type VerificationCache,
  type VerifiedCredential,
} from './vc.ts';

export type StatusPurpose = 'revocation' | 'suspension';

/** The spec's minimum bitstring length (16 KiB uncompressed). */
export const MIN_STATUS_LIST_BITS = 131_072;
/** Default cap on an inflated list: 16 MiB, i.e. 134,217,728 entries. */
export const MAX_STATUS_LIST_BYTES = 16 * 1024 * 1024;

function invalid(msg: string): never {
  throw new FleetkeyError('validation_failed', msg);
}

export class StatusList {
  readonly length: number;
  private readonly bits: Uint8Array;

  /** `bits` is the raw bitstring (copied). Use `createStatusList` / `decodeStatusList` normally. */
  constructor(bits: Uint8Array) {
    if (!(bits instanceof Uint8Array)) invalid('status list bitstring must be bytes');
    if (bits.length * 8 < MIN_STATUS_LIST_BITS) invalid(`status list must have at least ${MIN_STATUS_LIST_BITS} bits, got ${bits.length * 8}`);
    this.bits = Uint8Array.from(bits);
    this.length = bits.length * 8;
  }

  private check(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.length) {
      throw new FleetkeyError('bad_request', `status list index ${String(index)} is outside 0..${this.length - 1}`);
    }
  }

  get(index: number): boolean {
    this.check(index);
    return (this.bits[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  set(index: number, value = true): this {
    this.check(index);
    if (value) this.bits[index >> 3]! |= 0x80 >> (index & 7);
    else this.bits[index >> 3]! &= ~(0x80 >> (index & 7));
    return this;
  }

  clear(index: number): this {
    return this.set(index, false);
  }

  /** A copy of the raw bitstring. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bits);
  }

  /** The `encodedList` value: 'u' + base64url-no-pad(gzip(bits)). */
  encode(): string {
    return 'u' + base64urlnopad.encode(gzipSync(this.bits));
  }
}

/** A fresh all-zero list of `sizeBits` bits (a multiple of 8, at least 131072). */
export function createStatusList(sizeBits = MIN_STATUS_LIST_BITS): StatusList {
  if (!Number.isSafeInteger(sizeBits) || sizeBits < MIN_STATUS_LIST_BITS || sizeBits % 8 !== 0) {
    invalid(`status list size must be a multiple of 8 and at least ${MIN_STATUS_LIST_BITS} bits, got ${String(sizeBits)}`);
  }
  if (sizeBits / 8 > MAX_STATUS_LIST_BYTES) invalid(`status list size must be at most ${MAX_STATUS_LIST_BYTES * 8} bits`);
  return new StatusList(new Uint8Array(sizeBits / 8));
}

export function encodeStatusList(list: StatusList): string {
  return list.encode();
}

/** Decodes an `encodedList`. Throws `validation_failed` for a bad prefix, encoding, GZIP or size. */
export function decodeStatusList(encodedList: string, maxBytes = MAX_STATUS_LIST_BYTES): StatusList {
  if (typeof encodedList !== 'string' || encodedList[0] !== 'u') invalid('encodedList must be multibase base64url (start with "u")');
  let gz: Uint8Array;
  try {
    gz = base64urlnopad.decode(encodedList.slice(1));
  } catch {
    invalid('encodedList is not unpadded base64url');
  }
  let bits: Uint8Array;
  try {
    bits = gunzipCapped(gz, maxBytes);
  } catch (e) {
    invalid(`encodedList is not a GZIP stream of at most ${maxBytes} bytes: ${(e as Error).message}`);
  }
  return new StatusList(bits);
}

/**
 * Inflates a GZIP stream, refusing one that inflates past `maxBytes`. The input is fed 1 KiB at a time: DEFLATE
 * expands at most ~1032x, so no step allocates more than ~1 MiB past the cap before the count stops it. fflate does not
 * check the GZIP CRC-32; the list's integrity comes from the status list credential's signature, checked before this.
 */
function gunzipCapped(gz: Uint8Array, maxBytes: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  let done = false;
  const stream = new Gunzip((chunk, final) => {
    total += chunk.length;
    if (total > maxBytes) throw new Error(`inflates past ${maxBytes} bytes`);
    parts.push(chunk);
    if (final) done = true;
  });
  const STEP = 1024;
  for (let i = 0; i < gz.length; i += STEP) stream.push(gz.subarray(i, i + STEP), i + STEP >= gz.length);
  if (gz.length === 0) stream.push(gz, true);
  if (!done) throw new Error('truncated stream');
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** A `BitstringStatusListEntry` for a device credential. */
export function statusListEntry(opts: { statusListCredential: string; statusListIndex: number; statusPurpose: StatusPurpose }): BitstringStatusListEntry {
  const { statusListCredential, statusListIndex, statusPurpose } = opts;
  if (typeof statusListCredential !== 'string' || !/^[a-z][a-z0-9+.-]*:\S+$/i.test(statusListCredential) || statusListCredential.includes('#')) {
    invalid('statusListCredential must be an absolute URL without a fragment');
  }
  if (!Number.isSafeInteger(statusListIndex) || statusListIndex < 0) invalid('statusListIndex must be a non-negative integer');
  if (statusPurpose !== 'revocation' && statusPurpose !== 'suspension') invalid('statusPurpose must be revocation or suspension');
  return {
    id: `${statusListCredential}#${statusListIndex}`,
    type: 'BitstringStatusListEntry',
    statusPurpose,
    statusListIndex: String(statusListIndex),
    statusListCredential,
  };
}

export interface IssueStatusListOptions {
  issuerDid: string;
  kid?: string;
  alg: FleetAlg;
  /** The URL the list is published at; entries name it in statusListCredential. */
  id: string;
  statusPurpose: StatusPurpose;
  list: StatusList;
  validFrom: Date | string;
  validUntil?: Date | string;
  /** Suggested cache time for verifiers, milliseconds. */
  ttl?: number;
}

/** Issues the `BitstringStatusListCredential` JWT through the fleet's signer callback. */
export async function issueStatusListCredential(opts: IssueStatusListOptions, sign: SignCallback): Promise<string> {
  const { kid, verifier } = issuerSigningKey(opts.issuerDid, opts.alg, opts.kid);
  statusListEntry({ statusListCredential: opts.id, statusListIndex: 0, statusPurpose: opts.statusPurpose });
  if (!(opts.list instanceof StatusList)) invalid('list must be a StatusList');
  if (opts.ttl !== undefined && (!Number.isSafeInteger(opts.ttl) || opts.ttl < 0)) invalid('ttl must be a non-negative integer (ms)');
  const nbf = toSeconds(opts.validFrom, 'validFrom');
  const exp = opts.validUntil === undefined ? undefined : toSeconds(opts.validUntil, 'validUntil');
  if (exp !== undefined && exp <= nbf) invalid('validUntil must be after validFrom');
  const subjectId = `${opts.id}#list`;
  const payload = {
    iss: opts.issuerDid,
    sub: subjectId,
    jti: opts.id,
    nbf,
    iat: nbf,
    ...(exp !== undefined ? { exp } : {}),
    vc: {
      '@context': [VC_CONTEXT_V1, STATUS_LIST_CONTEXT],
      id: opts.id,
      type: ['VerifiableCredential', 'BitstringStatusListCredential'],
      credentialSubject: {
        type: 'BitstringStatusList',
        statusPurpose: opts.statusPurpose,
        encodedList: opts.list.encode(),
        ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}),
      },
    },
  };
  return signJws({ alg: opts.alg, typ: 'JWT', kid }, payload, sign, verifier ?? undefined);
}

export type StatusFailure =
  | 'credential_invalid'
  | 'status_list_invalid'
  | 'status_list_missing'
  | 'status_list_expired'
  | 'unsupported_status';

export interface StatusReading {
  purpose: StatusPurpose;
  index: number;
  statusListCredential: string;
  /** The bit: true = revoked / suspended. */
  set: boolean;
}

export type StatusVerdict =
  | { ok: true; revoked: boolean; suspended: boolean; statuses: StatusReading[] }
  | { ok: false; reason: StatusFailure; detail: string };

export interface CheckStatusOptions {
  now?: Date;
  skewSeconds?: number;
  /**
   * Refuse status lists issued (nbf/iat) longer ago than this, seconds. Without it an attacker who
   * kept an old list from before a revocation could present it; set it to the fleet's republication
   * interval (plus slack), or issue lists with a short validUntil. Default: no limit.
   */
  maxListAgeSeconds?: number;
  cache?: VerificationCache;
  maxBytes?: number;
}

interface VerifiedList {
  issuer: string;
  purpose: StatusPurpose;
  list: StatusList;
}

const decodedLists = new WeakMap<object, StatusList>();

async function verifyStatusListJwt(
  jwt: string,
  resolver: Resolvable,
  opts: CheckStatusOptions,
): Promise<{ ok: true; url: string; value: VerifiedList } | { ok: false; reason: StatusFailure; detail: string }> {
  const checked = await verifyIssuedJwt(jwt, resolver, opts.cache);
  if (!checked.ok) return { ok: false, reason: 'status_list_invalid', detail: `status list credential: ${checked.detail}` };
  const p = checked.decoded.payload;
  const vc = p.vc as Record<string, unknown> | undefined;
  const subject = vc?.credentialSubject as Record<string, unknown> | undefined;
  const types = vc?.type;
  if (!vc || !subject || !Array.isArray(types) || !types.includes('BitstringStatusListCredential') || subject.type !== 'BitstringStatusList') {
    return { ok: false, reason: 'status_list_invalid', detail: 'not a BitstringStatusListCredential' };
  }
  const url = typeof vc.id === 'string' ? vc.id : p.jti;
  if (typeof url !== 'string') return { ok: false, reason: 'status_list_invalid', detail: 'status list credential has no id' };
  if (p.jti !== undefined && p.jti !== url) return { ok: false, reason: 'status_list_invalid', detail: 'status list credential jti and vc.id differ' };
  const purpose = subject.statusPurpose;
  if (purpose !== 'revocation' && purpose !== 'suspension') {
    return { ok: false, reason: 'unsupported_status', detail: `status list purpose ${JSON.stringify(purpose)} is not supported` };
  }
  const window = checkValidityWindow(p, opts.now ?? new Date(), opts.skewSeconds ?? 0);
  if (window) {
    return { ok: false, reason: window.reason === 'expired' ? 'status_list_expired' : 'status_list_invalid', detail: `status list credential: ${window.detail}` };
  }
  if (opts.maxListAgeSeconds !== undefined) {
    const issuedAt = typeof p.iat === 'number' ? p.iat : typeof p.nbf === 'number' ? p.nbf : undefined;
    const t = Math.floor((opts.now ?? new Date()).getTime() / 1000);
    if (!Number.isFinite(opts.maxListAgeSeconds) || opts.maxListAgeSeconds < 0) throw new FleetkeyError('bad_request', 'maxListAgeSeconds must be a non-negative number');
    if (issuedAt === undefined || t - issuedAt > opts.maxListAgeSeconds) {
      return { ok: false, reason: 'status_list_expired', detail: `status list is older than ${opts.maxListAgeSeconds} s` };
    }
  }
  // The decoded list is memoised on the (cached) decoded token, so inflating happens once per token.
  let list = decodedLists.get(checked.decoded);
  if (!list) {
    try {
      list = decodeStatusList(subject.encodedList as string, opts.maxBytes);
    } catch (e) {
      return { ok: false, reason: 'status_list_invalid', detail: (e as Error).message };
    }
    if (opts.cache) decodedLists.set(checked.decoded, list);
  }
  return { ok: true, url, value: { issuer: p.iss as string, purpose, list } };
}

/**
 * Reads every status entry of a credential against the given status list credential(s).
 * `credential` is a JWT-VC (verified here) or the result of `verifyCredentialJwt`. Each entry must
 * find its list among `statusListJwts` (by URL); a credential without entries is simply not revoked.
 */
export async function checkStatus(
  credential: string | VerifiedCredential,
  statusListJwts: string | readonly string[],
  resolver: Resolvable,
  opts: CheckStatusOptions = {},
): Promise<StatusVerdict> {
  if (!resolver || typeof resolver.resolve !== 'function') throw new FleetkeyError('bad_request', 'a DID resolver is required');
  let vc: VerifiedCredential;
  if (typeof credential === 'string') {
    const v = await verifyCredentialJwt(credential, resolver, { now: opts.now, skewSeconds: opts.skewSeconds, cache: opts.cache });
    if (!v.valid) return { ok: false, reason: 'credential_invalid', detail: `${v.reason}: ${v.detail}` };
    vc = v;
  } else {
    vc = credential;
  }
  const jwts = typeof statusListJwts === 'string' ? [statusListJwts] : statusListJwts;
  const lists = new Map<string, VerifiedList>();
  for (const jwt of jwts) {
    const r = await verifyStatusListJwt(jwt, resolver, opts);
    if (!r.ok) return r;
    lists.set(r.url, r.value);
  }
  const statuses: StatusReading[] = [];
  for (const entry of vc.credentialStatus) {
    if (!entry || entry.type !== 'BitstringStatusListEntry') {
      return { ok: false, reason: 'unsupported_status', detail: `credentialStatus type ${JSON.stringify(entry?.type)} is not supported` };
    }
    const size = (entry as { statusSize?: unknown }).statusSize;
    if (size !== undefined && size !== 1) return { ok: false, reason: 'unsupported_status', detail: 'statusSize other than 1 is not supported' };
    if (entry.statusPurpose !== 'revocation' && entry.statusPurpose !== 'suspension') {
      return { ok: false, reason: 'unsupported_status', detail: `statusPurpose ${JSON.stringify(entry.statusPurpose)} is not supported` };
    }
    const index = typeof entry.statusListIndex === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(entry.statusListIndex) ? Number(entry.statusListIndex) : NaN;
    if (!Number.isSafeInteger(index)) return { ok: false, reason: 'credential_invalid', detail: 'statusListIndex is not a non-negative integer string' };
    const found = lists.get(entry.statusListCredential);
    if (!found) return { ok: false, reason: 'status_list_missing', detail: `no status list credential given for ${entry.statusListCredential}` };
    if (found.purpose !== entry.statusPurpose) {
      return { ok: false, reason: 'status_list_invalid', detail: `list ${entry.statusListCredential} is for ${found.purpose}, entry is for ${entry.statusPurpose}` };
    }
    if (found.issuer !== vc.issuer) {
      return { ok: false, reason: 'status_list_invalid', detail: `status list issued by ${found.issuer}, credential by ${vc.issuer}` };
    }
    if (index >= found.list.length) {
      return { ok: false, reason: 'status_list_invalid', detail: `statusListIndex ${index} is outside the list (${found.list.length} bits)` };
    }
    statuses.push({ purpose: entry.statusPurpose, index, statusListCredential: entry.statusListCredential, set: found.list.get(index) });
  }
  return {
    ok: true,
    revoked: statuses.some((s) => s.purpose === 'revocation' && s.set),
    suspended: statuses.some((s) => s.purpose === 'suspension' && s.set),
    statuses,
  };
}
