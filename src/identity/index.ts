/**
 * fleetkey identity core: device and fleet DIDs, fleet-issued JWT Verifiable Credentials, Bitstring
 * Status List revocation/suspension and signed device data. Pure and offline: no network, no
 * storage; the fleet key (a threshold cluster) and device keys (secure elements) are plugged in as
 * `sign(input) => Promise<signature>` callbacks, and replay state through an injected store.
 */
export {
  KEY_TYPES,
  algForKeyType,
  isJwsAlg,
  jwkToPublicKey,
  localSigner,
  normalizeSignature,
  parsePublicKey,
  publicKeyToJwk,
  signerInputFor,
  verifySignature,
  type JwsAlg,
  type KeyType,
  type PublicKey,
  type SignCallback,
  type SignContext,
} from './keys.ts';
export {
  didKeyDocument,
  didKeyFromPublicKey,
  didKeyVerificationMethodId,
  multibaseToPublicKey,
  parseDidKeyUrl,
  publicKeyFromDidKey,
  publicKeyToMultibase,
  type DidKeyDocumentOptions,
  type VerificationMethodFormat,
} from './did-key.ts';
export { caip10Of, didPkhDocument, didPkhFromAccount, parseDidPkh, type PkhAccount, type PkhNamespace } from './did-pkh.ts';
export { createResolver, getResolver, keyDidResolver, pkhDidResolver } from './resolver.ts';
export {
  MAX_JWS_LENGTH,
  assertionVerifiers,
  decodeJws,
  publicKeyOfVerificationMethod,
  signJws,
  verifierOfVerificationMethod,
  verifyDecodedJws,
  type AssertionVerifier,
  type DecodedJws,
  type JwsHeader,
} from './jwt.ts';
export {
  DEVICE_CREDENTIAL_TYPE,
  STATUS_LIST_CONTEXT,
  VC_CONTEXT_V1,
  createVerificationCache,
  issueCredential,
  issueDeviceCredential,
  verifyCredentialJwt,
  type BitstringStatusListEntry,
  type CredentialFailure,
  type CredentialVerdict,
  type DeviceCredentialOptions,
  type FleetAlg,
  type IssueCredentialOptions,
  type JwtCredentialPayload,
  type VerificationCache,
  type VerifiedCredential,
  type VerifyCredentialOptions,
} from './vc.ts';
export {
  MAX_STATUS_LIST_BYTES,
  MIN_STATUS_LIST_BITS,
  StatusList,
  checkStatus,
  createStatusList,
  decodeStatusList,
  encodeStatusList,
  issueStatusListCredential,
  statusListEntry,
  type CheckStatusOptions,
  type IssueStatusListOptions,
  type StatusFailure,
  type StatusPurpose,
  type StatusReading,
  type StatusVerdict,
} from './status-list.ts';
export {
  DEVICE_DATA_TYP,
  MAX_DEVICE_DATA_LENGTH,
  MemoryReplayStore,
  createMemoryReplayStore,
  signDeviceData,
  verifyDeviceData,
  type DeviceDataReason,
  type DeviceDataVerdict,
  type DeviceReading,
  type ReplayStore,
  type SignDeviceDataOptions,
  type VerifyDeviceDataOptions,
} from './device-data.ts';
