/** Request schemas of the public API: the routes validate with them and the OpenAPI file is built from them. */
import { z } from 'zod';
import { hex } from '../http/common.ts';
import { FleetkeyError } from '../errors.ts';

/**
 * Either the owner's signed order (`create`: a `wallet_create` document, src/control/schemas.ts) or,
 * on a server that holds the owner key (`fleetkey dev`), the fields it writes the order from.
 */
export const createWalletSchema = z
  .object({
    scheme: z.enum(['ed25519', 'secp256k1-schnorr', 'ecdsa-secp256k1']).optional(),
    threshold: z.number().int().min(1).max(64).optional(),
    signers: z.number().int().min(1).max(64).optional(),
    label: z.string().max(200).optional(),
    /** Bitcoin: mainnet (default), testnet, regtest; Solana (ed25519): mainnet-beta (default), devnet, testnet. */
    network: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
    create: z.object({ doc: z.unknown(), sig: z.string(), signer: z.string() }).optional(),
  })
  .strict();

/** What the coordinator is asked to create: the owner's document, or the fields with the cluster's defaults filled in. */
export function creationOf(b: z.infer<typeof createWalletSchema>, nodes: number, defaultThreshold: number) {
  if (b.create !== undefined) {
    for (const k of ['scheme', 'threshold', 'signers', 'network'] as const)
      if (b[k] !== undefined) throw new FleetkeyError('validation_failed', `${k} is set by the wallet_create document, not next to it`, { details: { path: k } });
    return { create: b.create, label: b.label };
  }
  if (b.scheme === undefined) throw new FleetkeyError('validation_failed', 'give scheme (or an owner-signed "create" document)', { details: { path: 'scheme' } });
  // Defaults: every signer node of the cluster, and the cluster's default threshold.
  const n = b.signers ?? nodes;
  return { scheme: b.scheme, threshold: b.threshold ?? Math.min(defaultThreshold, n), signers: n, label: b.label, network: b.network };
}

/** `message` (bytes, Ed25519 / BIP340) or `hash` (a 32-byte digest, threshold ECDSA): exactly one. */
export const signSchema = z
  .object({ message: hex().refine((s) => s.length <= 2 * 65536, 'message over 64 KiB').optional(), hash: hex(32).optional(), requestId: z.string().max(128).optional() })
  .strict()
  .refine((b) => (b.message === undefined) !== (b.hash === undefined), { message: 'give exactly one of message or hash' });


/**
 * `POST /v1/wallets/:id/reshare`: the owner's signed `wallet_reshare` order (`order`), which names the
 * new committee (signer node ids, in index order) and threshold; or, to a server that holds the owner
 * key (`fleetkey dev`), the committee and threshold (default: the current one, capped at the new n),
 * from which it writes the order itself. With an order, `to` / `threshold` may be sent too but must
 * be the order's.
 */
export const reshareSchema = z
  .object({
    to: z.array(z.string().regex(/^[\w-]{1,64}$/, 'not a node id')).min(2).max(64).optional(),
    threshold: z.number().int().min(2).max(64).optional(),
    order: z.unknown().optional(),
  })
  .strict()
  .refine((b) => b.to !== undefined || b.order !== undefined, { message: 'send the owner\'s order ("order") or the new committee ("to")', path: ['to'] });
