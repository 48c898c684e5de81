/**
 * The wallet schemes the cluster offers, behind one shape: how keys are generated and refreshed
 * (multi-round PartyProtocols the signer nodes run over the relay), how signing works, and how a
 * public key becomes an address. FROST signs in one round with preprocessed nonces; DKLs23
 * threshold ECDSA signs in an interactive three-round session.
 */
import * as dkls23 from './dkls23/index.ts';
import { deriveChildPublic as frostChildPublic, deriveChildShare as frostChildShare } from './derive.ts';
import { frostAddress, frostDkg, frostRefresh, isFrostScheme, type BitcoinNetwork, type FrostSchemeName } from './frost.ts';
import type { GroupPublic, KeyGenResult, PartyProtocol, SecretShare } from './types.ts';

import { schemeAddress, type SchemeName } from './public.ts';
export type { SchemeName } from './public.ts';
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
  /**
   * Non-hardened child `index` (0 ≤ index < 2^31) by a public tweak: BIP32 for the secp256k1 schemes
   * (for secp256k1-schnorr on the untweaked internal key, then BIP341-tweaked again), an additive
   * tweak for Ed25519 (src/crypto/derive.ts). Each signer derives its own child share locally.
   */
  deriveChildPublic(gp: GroupPublic, index: number): GroupPublic;
  deriveChildShare(gp: GroupPublic, share: SecretShare, index: number): { public: GroupPublic; share: SecretShare };
}

const frost = (name: FrostSchemeName): Scheme => ({
  name,
  signing: 'preprocessed',
  keygen: (p) => frostDkg(name, p),
  refresh: (p) => frostRefresh(name, p),
  address: (pk, network) => frostAddress(name, pk, network),
  deriveChildPublic: (gp, i) => frostChildPublic(name, gp, i),
  deriveChildShare: (gp, s, i) => frostChildShare(name, gp, s, i),
});

const ecdsa: Scheme = {
  name: 'ecdsa-secp256k1',
  signing: 'interactive',
  keygen: (p) => dkls23.dkg(p),
  refresh: (p) => dkls23.refresh(p),
  // EIP-55 checksummed address of the (uncompressed) group key, computed by viem.
  address: (pk) => schemeAddress('ecdsa-secp256k1', pk),
  deriveChildPublic: (gp, i) => dkls23.deriveChildPublic(gp, i),
  deriveChildShare: (gp, s, i) => dkls23.deriveChild(gp, s, i),
};

export { isScheme } from './public.ts';

export function schemeOf(name: string): Scheme {
  if (isFrostScheme(name)) return frost(name);
  if (name === 'ecdsa-secp256k1') return ecdsa;
  throw new Error(`unknown scheme ${name}`);
}
