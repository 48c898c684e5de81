/** Request schemas of the public API: the routes validate with them and the OpenAPI file is built from them. */
import { z } from 'zod';
import { hex } from '../http/common.ts';

export const createWalletSchema = z
  .object({
    scheme: z.enum(['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1']),
    threshold: z.number().int().min(1).max(64).optional(),
    signers: z.number().int().min(1).max(64).optional(),
    label: z.string().max(200).optional(),
    network: z.enum(['mainnet', 'testnet', 'regtest']).optional(),
  })
  .strict();

/** `message` (bytes, Ed25519 / BIP340) or `hash` (a 32-byte digest, threshold ECDSA): exactly one. */
export const signSchema = z
  .object({ message: hex().refine((s) => s.length <= 2 * 65536, 'message over 64 KiB').optional(), hash: hex(32).optional(), requestId: z.string().max(128).optional() })
  .strict()
  .refine((b) => (b.message === undefined) !== (b.hash === undefined), { message: 'give exactly one of message or hash' });

