/**
 * The wallet schemes the cluster offers, behind one shape: how keys are generated and refreshed
 * (multi-round PartyProtocols the signer nodes run over the relay), how signing works, and how a
 * public key becomes an address. FROST signs in one round with preprocessed nonces; DKLs23
 * threshold ECDSA signs in an interactive three-round session.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { publicKeyToAddress } from 'viem/accounts';
import { bytesToHex as viemHex } from 'viem';
import * as dkls23 from './dkls23/index.ts';
import { frostAddress, frostDkg, frostRefresh, isFrostScheme, type BitcoinNetwork, type FrostSchemeName } from './frost.ts';
import type { GroupPublic, KeyGenResult, PartyProtocol, SecretShare } from './types.ts';

export type SchemeName = FrostSchemeName | 'ecdsa-secp256k1';
export const SCHEMES: readonly SchemeName[] = ['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1'];

export interface KeygenParams {
  self: number;
  parties: number[];
  threshold: number;
  sessionId: string;
}

export interface Scheme {
  name: SchemeName;
  /** 'preprocessed': one-round FROST with stored nonces. 'interactive': a multi-round signing session. */
  signing: 'preprocessed' | 'interactive';
  keygen(p: KeygenParams): PartyProtocol<KeyGenResult>;
  refresh(p: { share: SecretShare; public: GroupPublic; sessionId: string }): PartyProtocol<KeyGenResult>;
  address(publicKeyHex: string, network?: BitcoinNetwork): string;
}

const frost = (name: FrostSchemeName): Scheme => ({
  name,
  signing: 'preprocessed',
  keygen: (p) => frostDkg(name, p),
  refresh: (p) => frostRefresh(name, p),
  address: (pk, network) => frostAddress(name, pk, network),
});

const ecdsa: Scheme = {
  name: 'ecdsa-secp256k1',
  signing: 'interactive',
  keygen: (p) => dkls23.dkg(p),
  refresh: (p) => dkls23.refresh(p),
  // EIP-55 checksummed address of the (uncompressed) group key, computed by viem.
  address: (pk) => publicKeyToAddress(viemHex(uncompressed(pk))),
};

function uncompressed(pkHex: string): Uint8Array {
  // viem wants the 65-byte SEC1 form; noble decompresses (and validates) the 33-byte key.
  return secp256k1.Point.fromHex(pkHex).toBytes(false);
}

export function isScheme(s: string): s is SchemeName {
  return isFrostScheme(s) || s === 'ecdsa-secp256k1';
}

export function schemeOf(name: string): Scheme {
  if (isFrostScheme(name)) return frost(name);
  if (name === 'ecdsa-secp256k1') return ecdsa;
  throw new Error(`unknown scheme ${name}`);
}
