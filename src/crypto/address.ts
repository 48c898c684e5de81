/**
 * Scheme names, Bitcoin networks and the addresses a user funds: the public, signing-free part of
 * the FROST schemes, kept apart from frost.ts so that code which only shows or checks a wallet (the
 * SDK, the browser bundle) never loads the signing arithmetic (WebAssembly) behind frost.ts.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import * as btc from '@scure/btc-signer';

export type FrostSchemeName = 'ed25519' | 'secp256k1-schnorr';
export type BitcoinNetwork = 'mainnet' | 'testnet' | 'regtest';

export function isFrostScheme(s: string): s is FrostSchemeName {
  return s === 'ed25519' || s === 'secp256k1-schnorr';
}

const REGTEST = { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };
export const BTC_NETWORKS = { mainnet: btc.NETWORK, testnet: btc.TEST_NETWORK, regtest: REGTEST } as const;

/**
 * The address a user funds: Solana base58 of the Ed25519 key; for BIP340 keys, the taproot
 * (witness v1) address whose output key is the group key itself (already TapTweak'ed by the DKG).
 */
export function frostAddress(name: FrostSchemeName, publicKeyHex: string, network: BitcoinNetwork = 'mainnet'): string {
  const pk = hexToBytes(publicKeyHex);
  if (name === 'ed25519') return base58.encode(pk);
  return btc.Address(BTC_NETWORKS[network]).encode({ type: 'tr', pubkey: pk });
}
