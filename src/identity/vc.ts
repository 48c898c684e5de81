/**
 * W3C Verifiable Credentials as JWTs (VC Data Model 1.1 JWT encoding, the form did-jwt-vc
 * verifies), issued by a fleet key through an external signer callback.
 *
 * Claim mapping: iss = issuer DID, sub = credentialSubject.id, nbf = iat = issuanceDate,
 * exp = expirationDate, jti = credential id; `vc` holds @context, type, credentialSubject (without
 * id, carried by sub) and credentialStatus. Times are whole seconds.
 *
 * `@context` is the VCDM 1.1 base context, plus the Bitstring Status List context
 * (https://www.w3.org/ns/credentials/status/v1) when a credentialStatus is present. Application
 * claims (fleet, firmwareHash...) are not given JSON-LD terms: JWT VCs are verified as JWTs and are
 * not JSON-LD processed.
 *
 * Verification (`verifyCredentialJwt`) is offline: the issuer DID is resolved through the given
 * resolver (did:key / did:pkh resolve without network), the JWS is checked with @noble/curves, and
 * the result is a verdict, never a throw, for anything wrong with the token.
 */
import type { Resolvable } from 'did-resolver';
import { FleetkeyError } from '../errors.ts';
import { parseDidKeyUrl, didKeyVerificationMethodId, publicKeyFromDidKey } from './did-key.ts';
import { assertionVerifiers, decodeJws, signJws, verifyDecodedJws, type AssertionVerifier, type DecodedJws } from './jwt.ts';
import { parseDidPkh } from './did-pkh.ts';
import { algForKeyType, type SignCallback } from './keys.ts';

export const VC_CONTEXT_V1 = 'https://www.w3.org/2018/credentials/v1';
export const STATUS_LIST_CONTEXT = 'https://www.w3.org/ns/credentials/status/v1';

export type FleetAlg = 'EdDSA' | 'ES256K';

export interface BitstringStatusListEntry {
  id: string;
  type: 'BitstringStatusListEntry';
  statusPurpose: 'revocation' | 'suspension';
  statusListIndex: string;
  statusListCredential: string;
}

export interface IssueCredentialOptions {
  issuerDid: string;
  /** Verification method of the issuer used to sign; defaults to the did:key's own method. */
  kid?: string;
  alg: FleetAlg;
  /** The subject DID (e.g. the device's did:key). */
  subject: string;
  /** Extra types after 'VerifiableCredential'. */
  types: string[];
  /** credentialSubject claims (without `id`). */
  claims: Record<string, unknown>;
  issuanceDate: Date | string;
  expirationDate?: Date | string;
  credentialStatus?: BitstringStatusListEntry | BitstringStatusListEntry[];
  /** Credential id (jti), e.g. a urn:uuid. */
  id?: string;
  /** Extra @context entries appended after the defaults. */
  context?: string[];
}

export interface JwtCredentialPayload {
  iss: string;
  sub: string;
  nbf: number;
  iat: number;
  exp?: number;
  jti?: string;
  vc: {
    '@context': string[];
    type: string[];
    credentialSubject: Record<string, unknown>;
    credentialStatus?: BitstringStatusListEntry | BitstringStatusListEntry[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

function invalid(msg: string): never {
  throw new FleetkeyError('validation_failed', msg);
}

/** Whole seconds since the epoch of a Date or an ISO-8601 date-time string. */
export function toSeconds(v: Date | string, what: string): number {
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;
  const ms = d?.getTime();
  if (ms === undefined || !Number.isFinite(ms)) invalid(`${what} must be a Date or an ISO-8601 date-time`);
  return Math.floor(ms / 1000);
}

function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/**
 * What the cluster's signature can be checked against before a token leaves: the key of a did:key
 * issuer, or the account of a did:pkh eip155 issuer (ES256K only). Checks alg/key agreement and the
 * kid. Other DID methods: a kid is required and nothing is checked locally (verifier null).
 */
export function issuerSigningKey(issuerDid: string, alg: FleetAlg, kid?: string): { kid: string; verifier: AssertionVerifier | null } {
  if (!isNonEmptyString(issuerDid) || !issuerDid.startsWith('did:')) invalid('issuerDid must be a DID');
  if (alg !== 'EdDSA' && alg !== 'ES256K') invalid(`alg must be EdDSA or ES256K, got ${String(alg)}`);
  if (issuerDid.startsWith('did:pkh:eip155:')) {
    const { address } = parseDidPkh(issuerDid);
    if (alg !== 'ES256K') invalid('a did:pkh eip155 issuer signs ES256K');
    const vm = `${issuerDid}#blockchainAccountId`;
    if (kid !== undefined && kid !== vm) invalid(`kid must be ${vm}`);
    return { kid: vm, verifier: { eip155Address: address } };
  }
  if (!issuerDid.startsWith('did:key:')) {
    if (!isNonEmptyString(kid)) invalid('kid is required for an issuer that is not a did:key or did:pkh:eip155');
    return { kid, verifier: null };
  }
  const publicKey = publicKeyFromDidKey(issuerDid);
  if (algForKeyType(publicKey.type) !== alg) invalid(`issuer key is ${publicKey.type}; it signs ${algForKeyType(publicKey.type)}, not ${alg}`);
  const vm = didKeyVerificationMethodId(issuerDid);
  if (kid !== undefined && parseDidKeyUrl(kid).did !== issuerDid) invalid('kid must be a verification method of issuerDid');
  return { kid: kid ?? vm, verifier: { key: publicKey } };
}

function checkStatusEntry(e: BitstringStatusListEntry): void {
  if (!e || e.type !== 'BitstringStatusListEntry') invalid('credentialStatus entries must be BitstringStatusListEntry');
  if (e.statusPurpose !== 'revocation' && e.statusPurpose !== 'suspension') invalid('statusPurpose must be revocation or suspension');
  if (!/^(0|[1-9][0-9]*)$/.test(e.statusListIndex)) invalid('statusListIndex must be a non-negative integer string');
  if (!isNonEmptyString(e.statusListCredential)) invalid('statusListCredential must be a URL');
}

/** Issues a JWT-VC signed by the fleet through `sign`. See the module comment for the layout. */
export async function issueCredential(opts: IssueCredentialOptions, sign: SignCallback): Promise<string> {
  if (!opts || typeof opts !== 'object') invalid('options are required');
  const { kid, verifier } = issuerSigningKey(opts.issuerDid, opts.alg, opts.kid);
  if (!isNonEmptyString(opts.subject) || !/^[a-z][a-z0-9+.-]*:\S+$/i.test(opts.subject)) invalid('subject must be a DID or URI');
  if (!Array.isArray(opts.types) || !opts.types.every(isNonEmptyString)) invalid('types must be an array of strings');
  if (!opts.claims || typeof opts.claims !== 'object' || Array.isArray(opts.claims)) invalid('claims must be an object');
  if ('id' in opts.claims) invalid('claims must not contain id; the subject is given by `subject`');
  if (Object.keys(opts.claims).length === 0) invalid('claims must not be empty');
  const nbf = toSeconds(opts.issuanceDate, 'issuanceDate');
  const exp = opts.expirationDate === undefined ? undefined : toSeconds(opts.expirationDate, 'expirationDate');
  if (exp !== undefined && exp <= nbf) invalid('expirationDate must be after issuanceDate');
  const statuses = opts.credentialStatus === undefined ? [] : Array.isArray(opts.credentialStatus) ? opts.credentialStatus : [opts.credentialStatus];
  statuses.forEach(checkStatusEntry);
  const context = [VC_CONTEXT_V1, ...(statuses.length ? [STATUS_LIST_CONTEXT] : []), ...(opts.context ?? [])];
  const payload: JwtCredentialPayload = {
    iss: opts.issuerDid,
    sub: opts.subject,
    nbf,
    iat: nbf,
    ...(exp !== undefined ? { exp } : {}),
    ...(opts.id !== undefined ? { jti: opts.id } : {}),
    vc: {
      '@context': [...new Set(context)],
      type: ['VerifiableCredential', ...opts.types.filter((t) => t !== 'VerifiableCredential')],
      credentialSubject: { ...opts.claims },
      ...(opts.credentialStatus !== undefined ? { credentialStatus: opts.credentialStatus } : {}),
    },
  };
  return signJws({ alg: opts.alg, typ: 'JWT', kid }, payload, sign, verifier ?? undefined);
}

export interface DeviceCredentialOptions {
  issuerDid: string;
  kid?: string;
  alg: FleetAlg;
  /** The device's did:key (its key was generated on the device). */
  deviceDid: string;
  fleet: string;
  /** Hex digest of the firmware image the device was enrolled with. */
  firmwareHash: string;
  enrolledAt: Date | string;
  issuanceDate?: Date | string;
  expirationDate?: Date | string;
  credentialStatus?: BitstringStatusListEntry | BitstringStatusListEntry[];
  id?: string;
}

export const DEVICE_CREDENTIAL_TYPE = 'FleetDeviceCredential';

/** "Device D is a member of fleet F, enrolled at T with firmware H", signed by the fleet. */
export async function issueDeviceCredential(opts: DeviceCredentialOptions, sign: SignCallback): Promise<string> {
  publicKeyFromDidKey(opts.deviceDid);
  if (!isNonEmptyString(opts.fleet)) invalid('fleet must be a non-empty string');
  if (!/^[0-9a-f]{64,128}$/.test(opts.firmwareHash)) invalid('firmwareHash must be a lower-case hex digest (32 to 64 bytes)');
  const enrolledAt = new Date(toSeconds(opts.enrolledAt, 'enrolledAt') * 1000).toISOString();
  return issueCredential(
    {
      issuerDid: opts.issuerDid,
      kid: opts.kid,
      alg: opts.alg,
      subject: opts.deviceDid,
      types: [DEVICE_CREDENTIAL_TYPE],
      claims: { fleet: opts.fleet, firmwareHash: opts.firmwareHash, enrolledAt },
      issuanceDate: opts.issuanceDate ?? opts.enrolledAt,
      expirationDate: opts.expirationDate,
      credentialStatus: opts.credentialStatus,
      id: opts.id,
    },
    sign,
  );
}

// ---------------------------------------------------------------------------------------------
// Verification

export type CredentialFailure = 'malformed' | 'bad_signature' | 'unknown_key' | 'wrong_issuer' | 'not_yet_valid' | 'expired';

export interface VerifiedCredential {
  valid: true;
  issuer: string;
  subject: string;
  types: string[];
  claims: Record<string, unknown>;
  credentialStatus: BitstringStatusListEntry[];
  notBefore: number;
  expiresAt?: number;
  payload: JwtCredentialPayload;
}

export type CredentialVerdict = VerifiedCredential | { valid: false; reason: CredentialFailure; detail: string };

export interface VerifyCredentialOptions {
  /** Reject unless iss equals this DID. */
  expectedIssuer?: string;
  /** Verification time; default now. */
  now?: Date;
  /** Tolerance on nbf / exp, seconds; default 0. */
  skewSeconds?: number;
  /** Memo of signatures already checked (see `createVerificationCache`). */
  cache?: VerificationCache;
}

/**
 * Remembers JWTs whose signatures verified (by exact token string), so a gateway checking many
 * readings against the same credential and status list pays for each signature once. Only the
 * signature/resolution outcome is cached; time and status checks run on every call. It assumes
 * DID resolution is stable for the cache's lifetime (true for did:key and did:pkh).
 */
export interface VerificationCache {
  get(jwt: string): DecodedJws<unknown> | undefined;
  set(jwt: string, decoded: DecodedJws<unknown>): void;
}

/** A bounded in-memory `VerificationCache` (oldest entry evicted first). */
export function createVerificationCache(maxEntries = 1024): VerificationCache {
  const map = new Map<string, DecodedJws<unknown>>();
  return {
    get: (jwt) => map.get(jwt),
    set: (jwt, decoded) => {
      if (map.size >= maxEntries) map.delete(map.keys().next().value as string);
      map.set(jwt, decoded);
    },
  };
}

function fail(reason: CredentialFailure, detail: string): CredentialVerdict {
  return { valid: false, reason, detail };
}

/**
 * Decodes a JWT and checks its signature against the issuer's assertionMethod keys (resolved via
 * `resolver`). Returns the decoded token, or a failure verdict. Shared by credentials and status lists.
 */
export async function verifyIssuedJwt(
  jwt: string,
  resolver: Resolvable,
  cache?: VerificationCache,
): Promise<{ ok: true; decoded: DecodedJws<Record<string, unknown>> } | { ok: false; reason: CredentialFailure; detail: string }> {
  const cached = cache?.get(jwt);
  if (cached) return { ok: true, decoded: cached as DecodedJws<Record<string, unknown>> };
  let decoded: DecodedJws<Record<string, unknown>>;
  try {
    decoded = decodeJws(jwt);
  } catch (e) {
    return { ok: false, reason: 'malformed', detail: (e as Error).message };
  }
  const iss = decoded.payload.iss;
  if (!isNonEmptyString(iss)) return { ok: false, reason: 'malformed', detail: 'iss is missing' };
  let verifiers: AssertionVerifier[];
  try {
    verifiers = await assertionVerifiers(resolver, iss, decoded.header.kid);
  } catch (e) {
    return { ok: false, reason: 'unknown_key', detail: (e as Error).message };
  }
  if (!verifiers.some((v) => verifyDecodedJws(decoded, v))) {
    return { ok: false, reason: 'bad_signature', detail: `signature does not verify under a key of ${iss}` };
  }
  cache?.set(jwt, decoded);
  return { ok: true, decoded };
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Checks nbf / exp of a decoded JWT payload at `now`. */
export function checkValidityWindow(payload: Record<string, unknown>, now: Date, skewSeconds: number): { reason: CredentialFailure; detail: string } | null {
  const t = Math.floor(now.getTime() / 1000);
  // A NaN here would make every comparison false, i.e. accept expired tokens.
  if (!Number.isFinite(t)) throw new FleetkeyError('bad_request', 'now must be a valid Date');
  if (!Number.isFinite(skewSeconds) || skewSeconds < 0) throw new FleetkeyError('bad_request', 'skewSeconds must be a non-negative number');
  const { nbf, exp } = payload;
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isInteger(nbf))) return { reason: 'malformed', detail: 'nbf must be an integer' };
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isInteger(exp))) return { reason: 'malformed', detail: 'exp must be an integer' };
  if (typeof nbf === 'number' && nbf > t + skewSeconds) return { reason: 'not_yet_valid', detail: `not valid before ${new Date(nbf * 1000).toISOString()}` };
  if (typeof exp === 'number' && exp <= t - skewSeconds) return { reason: 'expired', detail: `expired at ${new Date(exp * 1000).toISOString()}` };
  return null;
}

/** Offline verification of a JWT-VC. Returns a verdict; throws only on missing arguments. */
export async function verifyCredentialJwt(jwt: string, resolver: Resolvable, opts: VerifyCredentialOptions = {}): Promise<CredentialVerdict> {
  if (!resolver || typeof resolver.resolve !== 'function') throw new FleetkeyError('bad_request', 'a DID resolver is required');
  const checked = await verifyIssuedJwt(jwt, resolver, opts.cache);
  if (!checked.ok) return fail(checked.reason, checked.detail);
  const payload = checked.decoded.payload as JwtCredentialPayload;
  const vc = payload.vc;
  if (!vc || typeof vc !== 'object') return fail('malformed', 'vc claim is missing');
  if (!isStringArray(vc['@context']) || vc['@context'][0] !== VC_CONTEXT_V1) return fail('malformed', `@context must start with ${VC_CONTEXT_V1}`);
  if (!isStringArray(vc.type) || !vc.type.includes('VerifiableCredential')) return fail('malformed', 'type must include VerifiableCredential');
  if (!vc.credentialSubject || typeof vc.credentialSubject !== 'object') return fail('malformed', 'credentialSubject is missing');
  if (!isNonEmptyString(payload.sub)) return fail('malformed', 'sub is missing');
  if (opts.expectedIssuer !== undefined && payload.iss !== opts.expectedIssuer) {
    return fail('wrong_issuer', `issued by ${payload.iss}, expected ${opts.expectedIssuer}`);
  }
  const window = checkValidityWindow(payload, opts.now ?? new Date(), opts.skewSeconds ?? 0);
  if (window) return fail(window.reason, window.detail);
  const rawStatus = vc.credentialStatus;
  const credentialStatus = rawStatus === undefined ? [] : Array.isArray(rawStatus) ? rawStatus : [rawStatus];
  return {
    valid: true,
    issuer: payload.iss,
    subject: payload.sub,
    types: vc.type,
    claims: { ...vc.credentialSubject },
    credentialStatus,
    notBefore: payload.nbf,
    ...(payload.exp !== undefined ? { expiresAt: payload.exp } : {}),
    payload,
  };
}
