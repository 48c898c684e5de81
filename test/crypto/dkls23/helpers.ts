import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { recoverAddress } from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import { SigningKey, computeAddress, Signature as EthersSignature } from 'ethers';
import { dkg, sign, runInProcess, type SignResult } from '../../../src/crypto/dkls23/index.ts';
import type { KeyGenResult } from '../../../src/crypto/types.ts';

export const Q = secp256k1.Point.Fn.ORDER;

export function runDkg(parties: number[], threshold: number, sessionId = 'dkg-' + bytesToHex(randomBytes(8))): Record<number, KeyGenResult> {
  return runInProcess(Object.fromEntries(parties.map((i) => [i, dkg({ self: i, parties, threshold, sessionId })])));
}

export function runSign(keys: Record<number, KeyGenResult>, signers: number[], hash: Uint8Array, sessionId = 'sign-' + bytesToHex(randomBytes(8))): Record<number, SignResult> {
  return runInProcess(Object.fromEntries(signers.map((i) => [i, sign({ share: keys[i].share, public: keys[i].public, signers, messageHash: hash, sessionId })])));
}

export function addressOf(publicKeyHex: string): `0x${string}` {
  return publicKeyToAddress(`0x${bytesToHex(secp256k1.Point.fromHex(publicKeyHex).toBytes(false))}`);
}

/** Every check a wallet would do: noble verify (prehash false, low-s), viem + ethers recovery. */
export async function assertValidSignature(res: SignResult, hash: Uint8Array, publicKeyHex: string): Promise<void> {
  const sig = hexToBytes(res.signature);
  assert.equal(res.signature, res.r + res.s);
  assert.ok(BigInt('0x' + res.s) <= Q >> 1n, 'low-s');
  assert.ok(secp256k1.verify(sig, hash, hexToBytes(publicKeyHex), { prehash: false }), 'noble verify');
  assert.ok(res.v === 0 || res.v === 1);
  const addr = addressOf(publicKeyHex);
  const viemAddr = await recoverAddress({ hash: `0x${bytesToHex(hash)}`, signature: `0x${res.signature}${res.v ? '1c' : '1b'}` });
  assert.equal(viemAddr, addr, 'viem recoverAddress');
  const es = EthersSignature.from({ r: '0x' + res.r, s: '0x' + res.s, v: 27 + res.v });
  const pk = SigningKey.recoverPublicKey('0x' + bytesToHex(hash), es);
  assert.equal(computeAddress(pk), addr, 'ethers recoverPublicKey');
}

export function subsets<T>(xs: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (xs.length < k) return [];
  const [h, ...rest] = xs;
  return [...subsets(rest, k - 1).map((s) => [h, ...s]), ...subsets(rest, k)];
}
