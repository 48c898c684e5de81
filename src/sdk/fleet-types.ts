import type { DeviceDataVerdict } from '../identity/device-data.ts';
import type { Scheme } from './types.ts';

/** A device wallet's (or agent wallet's) status; `revoked` is final. */
export type DeviceStatus = 'active' | 'suspended' | 'revoked';

/** A fleet as the server shows it: the root wallet from one DKG and what its devices derive from. */
export type Fleet = {
  /** The fleet id is its root wallet id. */
  id: string;
  walletId: string;
  scheme: Scheme;
  publicKey: string;
  address: string;
  /** The DID its credentials and status lists are issued by (did:key of the root key). */
  issuerDid: string;
  label: string | null;
  threshold: number;
  signers: number;
  network: string | null;
  nextIndex: number;
  /** Hex; with `xpub` (secp256k1 schemes), what a watch-only deriver needs. Confidential like an xpub. */
  chainCode: string;
  xpub?: string;
  devices?: Record<DeviceStatus, number>;
  /** URL prefix of the fleet's public status lists: `${statusLists}/${purpose}/${k}`. */
  statusLists: string;
  createdAt: string;
};

/** A device wallet: the child `${fleet}.${index}` of the fleet root. */
export type Device = {
  fleet: string;
  index: number;
  walletId: string;
  scheme: Scheme;
  publicKey: string;
  address: string;
  /** The wallet's DID: did:pkh (eip155, bip122) or did:key (Ed25519). */
  did: string;
  /** did:key of the key generated on the device; null for an agent wallet. */
  deviceDid: string | null;
  status: DeviceStatus;
  enrolledAt: string;
};

export type CreateFleetParameters = { scheme: Scheme; threshold?: number; signers?: number; label?: string; network?: 'mainnet' | 'testnet' | 'regtest' };
export type EnrollDeviceParameters = { fleetId: string; deviceDid?: string };
export type EnrollDevicesParameters = { fleetId: string; count: number; deviceDids?: string[] };
export type EnrollDevicesReturnType = { fleet: string; from: number; count: number; enrolled: number; invalid: number[] };
export type ListDevicesParameters = { fleetId: string; after?: number; limit?: number };
export type ListDevicesReturnType = { devices: Device[]; next: number | null };
/** `walletId` is the device wallet id, `${fleetId}.${index}`. */
export type DeviceParameters = { walletId: string };
export type SetDeviceStatusParameters = { walletId: string; status: DeviceStatus };
export type IssueCredentialParameters = { walletId: string; firmwareHash: string; expiresAt?: string };
export type IssueCredentialReturnType = { credential: string; issuer: string; subject: string; walletId: string };
export type VerifyDataParameters = { reading: string; credential: string; statusLists?: string[] };
export type VerifyDataReturnType = DeviceDataVerdict & { wallet?: { id: string; index: number; address: string } };
