/**
 * Plain messages for an Ed25519 (Solana) wallet, signed in Solana's off-chain message format, as
 * `@solana/kit` encodes it (`getOffchainMessageEncoder`): the signed bytes are
 * `"\xffsolana offchain" ‖ version ‖ header ‖ text`.
 *
 * Why this form and never the bare text: an Ed25519 signature over bytes M is a valid transaction
 * signature when M is a transaction message. A Solana message begins with its header's signer count
 * (< 0x80, legacy) or 0x80 | version (0x80 v0, 0x81 v1), never 0xff, so a signature over an off-chain
 * message can never be a transaction signature, on any version; and its fixed 16-byte prefix keeps it
 * apart from a bare 32-byte digest too (what NEAR, Stellar and others sign with Ed25519).
 *
 * Payload: a string or `{ text }` (UTF-8 text: signed as a version 1 message whose one required
 * signatory is the wallet), or `{ encoded }`, a complete off-chain message (base64, version 0 or 1) made
 * elsewhere (a dApp's application domain, several signatories), which must name the wallet as a
 * signatory and be in canonical form (re-encoding gives the same bytes).
 */
import { address, getOffchainMessageDecoder, getOffchainMessageEncoder, type OffchainMessage } from '@solana/kit';
import type { Action, Decoded } from '../types.ts';
import { attempt, base64ToBytesStrict, decodeFailed, describeMessage, toHex } from '../util.ts';

export type SolanaMessagePayload = string | { text: string } | { encoded: string };

export function decodeSolanaMessage(payload: SolanaMessagePayload, opts: { from?: string } = {}): Decoded {
  let bytes: Uint8Array;
  let message: OffchainMessage;
  if (typeof payload === 'string' || 'text' in payload) {
    const text = typeof payload === 'string' ? payload : payload.text;
    if (opts.from === undefined) decodeFailed('solana_message text needs the signing address (opts.from) as its signatory', { field: 'from' });
    const signer = attempt('opts.from is not a Solana address', { from: opts.from }, () => address(opts.from!));
    message = { version: 1, requiredSignatories: [{ address: signer }], content: text } as OffchainMessage;
    bytes = Uint8Array.from(attempt('text cannot be a Solana off-chain message', {}, () => getOffchainMessageEncoder().encode(message)) as ArrayLike<number>);
  } else {
    bytes = base64ToBytesStrict(payload.encoded, 'solana_message.encoded');
    const [m, read] = attempt('not a Solana off-chain message', {}, () => getOffchainMessageDecoder().read(bytes, 0));
    if (read !== bytes.length) decodeFailed('trailing bytes after the Solana off-chain message', { length: bytes.length, read });
    const again = Uint8Array.from(attempt('Solana off-chain message does not re-encode', {}, () => getOffchainMessageEncoder().encode(m)) as ArrayLike<number>);
    if (toHex(again) !== toHex(bytes)) decodeFailed('Solana off-chain message is not in canonical form (signatories unsorted or a header field inconsistent)', {});
    message = m;
  }
  const signatories = message.requiredSignatories.map((s) => s.address as string);
  if (opts.from !== undefined && !signatories.includes(opts.from)) decodeFailed(`${opts.from} is not a signatory of this off-chain message`, { from: opts.from, signatories });
  const text = typeof message.content === 'string' ? message.content : message.content.text;
  const notes = [`Solana off-chain message, version ${message.version}`];
  if (message.version === 0) notes.push(`application domain ${message.applicationDomain}`);
  if (signatories.length > 1) notes.push(`signatories: ${signatories.join(', ')}`);
  const action: Action = {
    chain: 'solana',
    kind: 'message',
    from: opts.from ?? signatories[0],
    effects: [],
    message: describeMessage(new TextEncoder().encode(text)),
    notes,
  };
  return { action, signingPayloads: [bytes], signing: [{ scheme: 'ed25519' }] };
}
