/**
 * What a verifier needs of each scheme, and nothing that signs: the address of a group key and the
 * public key of a derived child. schemes.ts gives the same functions beside key generation and
 * signing; this module exists so the SDK can check a wallet package without loading either.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { publicKeyToAddress } from 'viem/accounts';
import { bytesToHex as viemHex } from 'viem';
import { deriveChildPublic as frostChildPublic } from './derive.ts';
import { deriveChildPublic as ecdsaChildPublic } from './dkls23/derive.ts';
import { frostAddress, isFrostScheme, type BitcoinNetwork, type FrostSchemeName } from './address.ts';
import type { GroupPublic } from './types.ts';

export type SchemeName = FrostSchemeName | 'ecdsa-secp256k1';

export function isScheme(s: string): s is SchemeName {
  return isFrostScheme(s) || s === 'ecdsa-secp256k1';
}

/** The address of a group key: Solana base58, taproot, or the EIP-55 address viem computes. */
export function schemeAddress(name: SchemeName, publicKeyHex: string, network?: BitcoinNetwork): string {
  if (isFrostScheme(name)) return frostAddress(name, publicKeyHex, network);
  // viem wants the 65-byte SEC1 form; noble decompresses (and validates) the 33-byte key.
  return publicKeyToAddress(viemHex(secp256k1.Point.fromHex(publicKeyHex).toBytes(false)));
}

/** Non-hardened child `index` of a group key (src/crypto/derive.ts, src/crypto/dkls23/derive.ts). */
export function schemeChildPublic(name: SchemeName, gp: GroupPublic, index: number): GroupPublic {
  return isFrostScheme(name) ? frostChildPublic(name, gp, index) : ecdsaChildPublic(gp, index);
}
