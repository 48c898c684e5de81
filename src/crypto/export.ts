/**
 * The owner-only recovery export (issue 11), its cryptographic part: what a holder puts in the box
 * (its Shamir share as a scalar, nothing else: never DKLs23's pairwise OT state), and what the
 * offline CLI does with t of them — Lagrange interpolation at zero over the curve's scalar field
 * (noble's `Point.Fn`), a check that the result's public key is the wallet's, and the chain's usual
 * export formats. Encryption to the owner's X25519 recovery key is libsodium's sealed box
 * (`crypto_box_seal`: ephemeral X25519 + XSalsa20-Poly1305), from libsodium-wrappers-sumo.
 *
 * Every scheme here is a (t, n) Shamir sharing of the key at party indexes 1..n: FROST (RFC 9591
 * §4.1: the identifier of party i is the scalar i) and DKLs23 (src/crypto/dkls23/share.ts: `x` is a
 * Shamir share; its verifying shares interpolate to the key). So t shares give the key.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base58, base58check } from '@scure/base';
import sodium from 'libsodium-wrappers-sumo';
import { privateKeyToAddress } from 'viem/accounts';
import { canonicalJson } from '../audit/canonical.ts';
import { FleetkeyError } from '../errors.ts';
import type { SchemeName } from './schemes.ts';
import type { SecretShare } from './types.ts';

await sodium.ready;

/** What one holder seals to the recovery key. `scalar`: its share, 32 bytes big-endian hex. */
export interface ExportedShare {
  v: 1;
  scheme: SchemeName;
  walletId: string;
  epoch: number;
  index: number;
  scalar: string;
  /** controlDocDigest of the owner's export document: the CLI checks every box answers its own order. */
  order: string;
}

const fieldOf = (scheme: SchemeName) => (scheme === 'ed25519' ? ed25519.Point.Fn : secp256k1.Point.Fn);

/** A holder's share as a scalar (the FROST signing share or DKLs23's x; nothing else of the share). */
export function shareScalar(scheme: SchemeName, share: SecretShare): bigint {
  const sec = share.secret as Record<string, unknown>;
  const hex = scheme === 'ecdsa-secp256k1' ? sec.x : sec.signingShare;
  if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) throw new FleetkeyError('internal', 'malformed secret share');
  // FROST's scalar encoding is the suite's (little-endian for Ed25519); DKLs23's is big-endian.
  return fieldOf(scheme).fromBytes(hexToBytes(hex));
}

/** A scalar as 32 bytes big-endian (the box's encoding, whatever the scheme's own). */
export function scalarBytes(scheme: SchemeName, s: bigint): Uint8Array {
  const b = fieldOf(scheme).toBytes(s);
  return scheme === 'ed25519' ? b.reverse() : b;
}

/** The inverse of scalarBytes, refusing a value outside the field. */
export function scalarFrom(scheme: SchemeName, hex: string): bigint {
  const Fn = fieldOf(scheme);
  const b = hexToBytes(hex);
  return Fn.fromBytes(scheme === 'ed25519' ? b.reverse() : b);
}

export function sealShare(s: ExportedShare, recipientHex: string): string {
  return bytesToHex(sodium.crypto_box_seal(new TextEncoder().encode(JSON.stringify(s)), hexToBytes(recipientHex)));
}

export function openShare(boxHex: string, recipientPub: Uint8Array, recipientSecret: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(sodium.crypto_box_seal_open(hexToBytes(boxHex), recipientPub, recipientSecret)));
  } catch {
    throw new FleetkeyError('decrypt_failed', 'an exported share does not open under this recovery key');
  }
}

/**
 * What a holder signs, with its node identity key (the Ed25519 key pinned in the cluster manifest),
 * over the box it hands back: the owner's export document (its digest), the wallet, the wallet's
 * public key, its own node id, party index and epoch, and the SHA-256 of the sealed box. A sealed
 * box says nothing about who made it (anyone can seal to a public key), so this signature is what
 * lets the offline CLI refuse a box the server made, moved from another export, or copied twice.
 */
export interface BoxStatement {
  order: string;
  walletId: string;
  publicKey: string;
  nodeId: string;
  index: number;
  epoch: number;
  box: string;
}

const BOX_DOMAIN = utf8ToBytes('fleetkey/v1/export-box\0');

export function boxStatementDigest(s: BoxStatement): Uint8Array {
  const { box, ...rest } = s;
  return sha256(concatBytes(BOX_DOMAIN, utf8ToBytes(canonicalJson({ v: 1, ...rest, boxDigest: bytesToHex(sha256(hexToBytes(box))) }))));
}

export function signBox(s: BoxStatement, nodeSignSecret: Uint8Array): string {
  return bytesToHex(ed25519.sign(boxStatementDigest(s), nodeSignSecret));
}

/** Whether `sig` is the signature of the node whose pinned identity key is `nodeSignPub` over `s`. */
export function boxSignedBy(s: BoxStatement, sig: string, nodeSignPub: string): boolean {
  try {
    return /^[0-9a-f]{128}$/.test(sig) && ed25519.verify(hexToBytes(sig), boxStatementDigest(s), hexToBytes(nodeSignPub), { zip215: false });
  } catch {
    return false;
  }
}

/** A fresh X25519 recovery key pair (the owner keeps the secret offline). */
export function newRecoveryKey(): { publicKey: string; secretKey: string } {
  const kp = sodium.crypto_box_keypair();
  return { publicKey: bytesToHex(kp.publicKey), secretKey: bytesToHex(kp.privateKey) };
}

export function recoveryPublicOf(secret: Uint8Array): Uint8Array {
  return sodium.crypto_scalarmult_base(secret);
}

/** Lagrange interpolation at zero of t shares (distinct indexes), in the scheme's scalar field. */
export function interpolate(scheme: SchemeName, shares: { index: number; scalar: bigint }[]): bigint {
  const Fn = fieldOf(scheme);
  let acc = Fn.ZERO;
  for (const { index: i, scalar } of shares) {
    let num = Fn.ONE;
    let den = Fn.ONE;
    for (const { index: j } of shares) {
      if (j === i) continue;
      num = Fn.mul(num, BigInt(j));
      den = Fn.mul(den, Fn.sub(BigInt(j), BigInt(i)));
    }
    acc = Fn.add(acc, Fn.mul(scalar, Fn.div(num, den)));
  }
  return acc;
}

/** Whether `secret` is the key of `publicKeyHex` (compressed, or x-only for BIP340). */
export function matchesPublicKey(scheme: SchemeName, secret: bigint, publicKeyHex: string): boolean {
  if (secret === 0n) return false;
  if (scheme === 'ed25519') return ed25519.Point.BASE.multiply(secret).toHex() === publicKeyHex.toLowerCase();
  const P = secp256k1.Point.BASE.multiply(secret).toHex(true);
  return P === publicKeyHex.toLowerCase() || P.slice(2) === publicKeyHex.toLowerCase();
}

/**
 * The key in the chain's usual form, as honestly as the scheme allows:
 * - ecdsa-secp256k1: the 0x private key (and its Ethereum address, computed by viem).
 * - secp256k1-schnorr: the key is already the BIP341-tweaked output key Q of the bc1p address
 *   (src/crypto/frost.ts), so its secret spends the address directly: hex, WIF, and the descriptor
 *   `rawtr(WIF)` (not `tr(…)`, which would tweak it a second time).
 * - ed25519: a FROST key is a scalar, not an RFC 8032 seed (no seed exists, so no Solana 64-byte
 *   keypair file can be made honestly). It is printed as the scalar (32 bytes little-endian, as in
 *   RFC 8032's expanded key) and as a 64-byte expanded secret `scalar ‖ prefix` for libraries that
 *   sign with an expanded key; the prefix (the deterministic-nonce key) is SHA-512 of a label and
 *   the scalar, first 32 bytes: any prefix gives valid signatures.
 */
export function formatKey(scheme: SchemeName, secret: bigint, network?: string): Record<string, string> {
  if (scheme === 'ed25519') {
    const scalar = ed25519.Point.Fn.toBytes(secret);
    const prefix = sha512(concatBytes(new TextEncoder().encode('fleetkey export ed25519 prefix v1'), scalar)).subarray(0, 32);
    return { format: 'ed25519-scalar', scalar: bytesToHex(scalar), expandedSecret: bytesToHex(concatBytes(scalar, prefix)), publicKey: ed25519.Point.BASE.multiply(secret).toHex(), solanaAddress: base58.encode(ed25519.Point.BASE.multiply(secret).toBytes()) };
  }
  const key = secp256k1.Point.Fn.toBytes(secret);
  if (scheme === 'ecdsa-secp256k1') return { format: 'hex', privateKey: `0x${bytesToHex(key)}`, ethereumAddress: privateKeyToAddress(`0x${bytesToHex(key)}`) };
  const wif = base58check(sha256).encode(concatBytes(Uint8Array.of(network === 'mainnet' || network === undefined ? 0x80 : 0xef), key, Uint8Array.of(1)));
  return { format: 'wif', privateKey: bytesToHex(key), wif, descriptor: `rawtr(${wif})` };
}
