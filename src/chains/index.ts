/**
 * Transaction understanding: `decode(kind, payload, opts)` turns a signing request's payload into the
 * normalised Action that policies judge, and the exact bytes or digest that will be signed.
 *
 * Pure: no network, no clock, no key. A malformed payload throws FleetkeyError('decode_failed'); a
 * well-formed payload whose meaning is not understood decodes to an Action of kind 'unknown' (or a
 * contract_call for opaque calls) with notes. Nothing else is ever thrown.
 */
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import { decodeBitcoinMessage } from './bitcoin/message.ts';
import { decodeBitcoinPsbt } from './bitcoin/psbt.ts';
import { decodeEvmMessage } from './ethereum/message.ts';
import { decodeEvmTransaction } from './ethereum/transaction.ts';
import { decodeEvmTypedData } from './ethereum/typed-data.ts';
import { decodeRawHash, decodeRawMessage } from './plain.ts';
import { decodeSolanaMessage } from './solana/message.ts';
import { decodeSolanaTransaction } from './solana/transaction.ts';
import type { Decoded, PayloadKind } from './types.ts';
import { decodeFailed } from './util.ts';

export type * from './types.ts';
export { NATIVE_ASSET, UNKNOWN_ASSET } from './types.ts';
export { PERMIT2_ADDRESS } from './ethereum/calldata.ts';
export { BITCOIN_NETWORKS } from './bitcoin/psbt.ts';

export interface DecodeOptions {
  /** Expected EVM chain id (a payload naming another fails); fills in a JSON request without one. */
  chainId?: string | number;
  /** The signing address: EVM sender, Solana signer (must sign the message), Bitcoin own/change address. */
  from?: string;
  /** Bitcoin network ('mainnet' default, 'testnet', 'signet', 'regtest'); Solana cluster name, reported only. */
  network?: string;
}

export const PAYLOAD_KINDS = [
  'evm_transaction',
  'evm_message',
  'evm_typed_data',
  'solana_transaction',
  'solana_message',
  'bitcoin_psbt',
  'bitcoin_message',
  'raw_message',
  'raw_hash',
] as const satisfies readonly PayloadKind[];

const KiB = 1024;
const text = (max: number) => z.string().min(1).max(max);
const json = z.record(z.string(), z.unknown());

const PayloadSchemas = {
  evm_transaction: z.union([text(1024 * KiB), json]),
  evm_message: z.union([z.string().max(256 * KiB), z.strictObject({ raw: text(512 * KiB) }), z.strictObject({ text: z.string().max(256 * KiB) })]),
  evm_typed_data: z.union([text(256 * KiB), json]),
  solana_transaction: text(64 * KiB),
  solana_message: z.union([z.string().max(64 * KiB), z.strictObject({ text: z.string().max(64 * KiB) }), z.strictObject({ encoded: text(96 * KiB) })]),
  bitcoin_psbt: text(2048 * KiB),
  bitcoin_message: z.union([z.string().max(256 * KiB), z.strictObject({ text: z.string().max(256 * KiB) }), z.strictObject({ raw: z.string().max(512 * KiB) })]),
  raw_message: z.string().max(1024 * KiB), // may be empty: signing the empty message is legitimate
  raw_hash: text(66),
} satisfies Record<PayloadKind, z.ZodType>;

export const DecodeOptionsSchema = z.strictObject({
  chainId: z.union([z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), z.number().int().positive().max(Number.MAX_SAFE_INTEGER)]).optional(),
  from: z.string().min(1).max(128).optional(),
  network: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
});

/** Decode a payload of the given kind. Throws only FleetkeyError('decode_failed'). */
export function decode(kind: PayloadKind, payload: unknown, opts: DecodeOptions = {}): Decoded {
  try {
    const k = z.enum(PAYLOAD_KINDS).safeParse(kind);
    if (!k.success) decodeFailed(`unknown payload kind ${String(kind)}`, { kind: String(kind), kinds: PAYLOAD_KINDS });
    const o = DecodeOptionsSchema.safeParse(opts ?? {});
    if (!o.success) decodeFailed('invalid decode options', { issues: issues(o.error) });
    const p = PayloadSchemas[k.data].safeParse(payload);
    if (!p.success) decodeFailed(`invalid ${k.data} payload`, { kind: k.data, issues: issues(p.error) });
    const { from, network } = o.data;
    const chainId = o.data.chainId === undefined ? undefined : String(o.data.chainId);
    const value = p.data as never;
    switch (k.data) {
      case 'evm_transaction':
        return decodeEvmTransaction(value, { chainId, from });
      case 'evm_message':
        return decodeEvmMessage(value, { chainId, from });
      case 'evm_typed_data':
        return decodeEvmTypedData(value, { chainId, from });
      case 'solana_transaction':
        return decodeSolanaTransaction(value, { chainId, from, network });
      case 'solana_message':
        return decodeSolanaMessage(value, { from });
      case 'bitcoin_psbt':
        return decodeBitcoinPsbt(value, { from, network: network ?? chainId });
      case 'bitcoin_message':
        return decodeBitcoinMessage(value, { from, network: network ?? chainId });
      case 'raw_message':
        return decodeRawMessage(value, { from });
      case 'raw_hash':
        return decodeRawHash(value, { from });
    }
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    throw new FleetkeyError('decode_failed', `${String(kind)} payload could not be decoded`, {
      details: { kind: String(kind), reason: e instanceof Error ? e.message.split('\n')[0] : String(e) },
      cause: e,
    });
  }
}

function issues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}
