/**
 * The raw kinds, signed exactly as given by whatever scheme the wallet has (`scheme: 'any'`), so only
 * the owner may have them signed (src/enforce/authorize.ts refuses them to agents with
 * `raw_signing_forbidden`): raw bytes may be a transaction (a Solana message) or a digest (an EVM
 * transaction hash, a taproot sighash) whatever they are called. An agent signs a message in its
 * wallet's message form instead: `evm_message` (EIP-191), `solana_message` (off-chain message),
 * `bitcoin_message` (BIP-322).
 *
 * - `raw_message`: opaque bytes, shown as a message.
 * - `raw_hash`: a bare 32-byte digest; what it authorises cannot be known, so it is kind 'unknown'.
 */
import type { Decoded } from './types.ts';
import { decodeFailed, describeMessage, hexToBytesStrict, toHex } from './util.ts';

export function decodeRawMessage(payload: string, opts: { from?: string } = {}): Decoded {
  const bytes = hexToBytesStrict(payload, 'raw_message');
  return {
    action: { chain: 'message', kind: 'message', ...(opts.from ? { from: opts.from } : {}), effects: [], message: describeMessage(bytes) },
    signingPayloads: [bytes],
    signing: [{ scheme: 'any' }],
  };
}

export function decodeRawHash(payload: string, opts: { from?: string } = {}): Decoded {
  const bytes = hexToBytesStrict(payload, 'raw_hash');
  if (bytes.length !== 32) decodeFailed(`raw_hash must be exactly 32 bytes, got ${bytes.length}`, { length: bytes.length });
  return {
    action: {
      chain: 'message',
      kind: 'unknown',
      ...(opts.from ? { from: opts.from } : {}),
      effects: [],
      notes: [`raw 32-byte digest ${toHex(bytes)}: what it authorises cannot be decoded (admin-only signing path)`],
    },
    signingPayloads: [bytes],
    signing: [{ scheme: 'any' }],
  };
}
