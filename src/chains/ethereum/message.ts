/**
 * EIP-191 personal messages (`personal_sign`). The payload is a string: 0x-hex is taken as raw bytes
 * (what wallets pass to personal_sign), anything else as UTF-8 text; or explicitly `{ raw: hex }` /
 * `{ text }`. The digest is viem's hashMessage over those bytes.
 */
import { getAddress, hashMessage } from 'viem';
import type { Action, Decoded } from '../types.ts';
import { attempt, describeMessage, hexToBytesStrict, isHex } from '../util.ts';
import type { EvmOptions } from './transaction.ts';

export type EvmMessagePayload = string | { raw: string } | { text: string };

export function decodeEvmMessage(payload: EvmMessagePayload, opts: EvmOptions = {}): Decoded {
  const bytes =
    typeof payload === 'string'
      ? payload.startsWith('0x') && isHex(payload)
        ? hexToBytesStrict(payload, 'evm_message')
        : new TextEncoder().encode(payload)
      : 'raw' in payload
        ? hexToBytesStrict(payload.raw, 'evm_message.raw')
        : new TextEncoder().encode(payload.text);
  const from = opts.from === undefined ? undefined : attempt('opts.from is not an EVM address', {}, () => getAddress(opts.from!));
  const message = describeMessage(bytes);
  const action: Action = {
    chain: 'ethereum',
    ...(opts.chainId === undefined ? {} : { chainId: opts.chainId }),
    kind: 'message',
    ...(from === undefined ? {} : { from }),
    effects: [],
    message,
  };
  if (message.text && /wants you to sign in with your Ethereum account/.test(message.text)) {
    action.notes = ['looks like a Sign-In with Ethereum (EIP-4361) message'];
  }
  return { action, signingPayloads: [hexToBytesStrict(hashMessage({ raw: bytes }), 'digest')], signing: [{ scheme: 'ecdsa-secp256k1' }] };
}
