import type { Resolvable } from 'did-resolver';
import { verifyDeviceData as verifyCore, MemoryReplayStore, type ReplayStore } from '../identity/device-data.ts';
import type { DeviceDataVerdict } from '../identity/device-data.ts';
import { createResolver } from '../identity/resolver.ts';
import { createVerificationCache, type VerificationCache } from '../identity/vc.ts';

export type VerifyDeviceDataParameters = {
  /** The device's FleetDeviceCredential (JWT-VC). */
  credential: string;
  /** The fleet's status list credentials the credential names (fetch them from its `statusListCredential` URLs). */
  statusLists: string[];
  /** The fleet's issuer DID (`Fleet.issuerDid`). */
  fleetIssuerDid: string;
  /** Replay store; default one per process (a reading is accepted once). */
  seen?: ReplayStore;
  resolver?: Resolvable;
  /** Memo of credential and status-list signatures already checked; default one per process. */
  cache?: VerificationCache;
  now?: Date | number;
  maxAgeMs?: number;
};

const processSeen = new MemoryReplayStore();
const processCache = createVerificationCache(1024);
/** did:key / did:pkh resolution is pure: one resolver per process. */
const processResolver = createResolver();

/**
 * Checks a signed device reading offline, with no call to fleetkey: the device signature, the
 * credential's signature by the fleet and its subject and fleet, the status lists (revoked,
 * suspended), freshness and replay. Answers `{ trusted, reason, device, fleet, reading? }`.
 */
export function verifyDeviceData(reading: string, p: VerifyDeviceDataParameters): Promise<DeviceDataVerdict> {
  return verifyCore(reading, {
    credentialJwt: p.credential,
    statusListJwt: p.statusLists,
    fleetIssuerDid: p.fleetIssuerDid,
    resolver: p.resolver ?? processResolver,
    seen: p.seen ?? processSeen,
    cache: p.cache ?? processCache,
    ...(p.now !== undefined ? { now: p.now } : {}),
    ...(p.maxAgeMs !== undefined ? { maxAgeMs: p.maxAgeMs } : {}),
  });
}
