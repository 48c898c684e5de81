/**
 * Ethereum signing on top of a threshold-ECDSA wallet: transactions (EIP-1559, EIP-2930, legacy;
 * serialized or JSON), EIP-191 messages and EIP-712 typed data. Each payload is decoded and hashed
 * the standard way (src/chains, on viem), the digest is signed by the cluster, and the answer is
 * what viem's own local accounts return.
 */
import { z } from 'zod';
import { decode } from '../chains/index.ts';
import type { PayloadKind } from '../chains/types.ts';
import { FleetkeyError } from '../errors.ts';
import { asRequestId, type Coordinator } from './coordinator.ts';
import { evmSigned } from './requests.ts';

export const ethTransactionSchema = z.object({ transaction: z.union([z.string(), z.record(z.string(), z.unknown())]), requestId: z.string().max(128).optional() }).strict();
export const ethMessageSchema = z.object({ message: z.union([z.string(), z.object({ raw: z.string() }).strict()]), requestId: z.string().max(128).optional() }).strict();
export const ethTypedDataSchema = z.object({ typedData: z.record(z.string(), z.unknown()), requestId: z.string().max(128).optional() }).strict();

async function signDigest(coord: Coordinator, walletId: string, kind: PayloadKind, payload: unknown, requestId: string) {
  const w = await coord.wallet(walletId);
  if (w.scheme !== 'ecdsa-secp256k1') throw new FleetkeyError('unsupported', `wallet ${walletId} is ${w.scheme}; Ethereum signing needs an ecdsa-secp256k1 wallet`);
  const decoded = decode(kind, payload, { from: w.address });
  const digest = decoded.signingPayloads[0];
  if (!digest || digest.length !== 32) throw new FleetkeyError('decode_failed', 'payload has no 32-byte signing digest');
  // The owner authorizes the payload itself, so every signer decodes and logs what it signs.
  const rid = asRequestId(requestId);
  const { signature } = await coord.sign(walletId, digest, rid, coord.ownerAuth(walletId, rid, { kind, data: payload as never }));
  return { decoded, signature };
}

export async function signEthTransaction(coord: Coordinator, walletId: string, body: z.infer<typeof ethTransactionSchema>, requestId: string) {
  const { decoded, signature } = await signDigest(coord, walletId, 'evm_transaction', body.transaction, requestId);
  return { signature: '0x' + signature, ...evmSigned(decoded, body.transaction, signature) };
}

export async function signEthMessage(coord: Coordinator, walletId: string, body: z.infer<typeof ethMessageSchema>, requestId: string) {
  // As viem's signMessage: a string is UTF-8 text (even if it looks like hex); bytes come as { raw }.
  const payload = typeof body.message === 'string' ? { text: body.message } : body.message;
  const { signature } = await signDigest(coord, walletId, 'evm_message', payload, requestId);
  return { signature: '0x' + signature };
}

export async function signEthTypedData(coord: Coordinator, walletId: string, body: z.infer<typeof ethTypedDataSchema>, requestId: string) {
  // viem lets a caller leave `domain` out (an empty domain); so do we.
  const typedData = body.typedData.domain === undefined ? { ...body.typedData, domain: {} } : body.typedData;
  const { signature } = await signDigest(coord, walletId, 'evm_typed_data', typedData, requestId);
  return { signature: '0x' + signature };
}
