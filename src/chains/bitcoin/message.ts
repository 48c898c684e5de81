/**
 * Plain messages for a BIP340 (taproot) wallet, signed as BIP-322 "simple" signatures
 * (https://github.com/bitcoin/bips/blob/master/bip-0322.mediawiki), built with @scure/btc-signer:
 *
 *   message_hash = tagged_hash("BIP0322-signed-message", message)
 *   to_spend     = version 0, one input 000…000:0xFFFFFFFF with scriptSig OP_0 PUSH32[message_hash],
 *                  sequence 0; one output of 0 sat to the signer's scriptPubKey; locktime 0
 *   to_sign      = version 0, one input to_spend:0 with sequence 0; one output of 0 sat to OP_RETURN
 *
 * and the signed digest is the BIP341 key-path sighash (SIGHASH_DEFAULT) of to_sign's input. The
 * simple signature is to_sign's witness: base64(0x01 0x40 ‖ signature).
 *
 * Why this form and never the bare bytes: a BIP340 wallet signs 32-byte digests, and a taproot
 * sighash is one; signing a caller's 32 bytes would sign whatever transaction they are the sighash
 * of. This digest is the sighash of a transaction that spends an output of `to_spend`, which has a
 * null prevout and no BIP34 height, so it can never be mined, and which moves 0 sat to OP_RETURN;
 * its message enters only through a tagged hash. Wallets and libraries verify it (Sparrow,
 * bip322-js, btcd/bip322).
 */
import { Address, OutScript, RawTx, SigHash, Transaction } from '@scure/btc-signer';
import { sha256x2, tagSchnorr } from '@scure/btc-signer/utils.js';
import type { Action, Decoded } from '../types.ts';
import { attempt, decodeFailed, describeMessage, hexToBytesStrict } from '../util.ts';
import { bitcoinNetwork } from './psbt.ts';

export type BitcoinMessagePayload = string | { text: string } | { raw: string };

/** BIP-322's virtual transactions for `message` signed by the owner of `script`; `sighash` is what a taproot key signs. */
export function bip322(message: Uint8Array, script: Uint8Array): { messageHash: Uint8Array; toSpendId: Uint8Array; toSign: Transaction; sighash: Uint8Array } {
  const messageHash = tagSchnorr('BIP0322-signed-message', message);
  const toSpend = RawTx.encode({
    version: 0,
    segwitFlag: false,
    inputs: [{ txid: new Uint8Array(32), index: 0xffffffff, finalScriptSig: Uint8Array.of(0x00, 0x20, ...messageHash), sequence: 0 }],
    outputs: [{ amount: 0n, script }],
    witnesses: [],
    lockTime: 0,
  });
  const toSpendId = sha256x2(toSpend).reverse(); // txid, in the display (big-endian) order btc-signer takes
  const toSign = new Transaction({ version: 0, lockTime: 0, allowUnknownOutputs: true });
  toSign.addInput({ txid: toSpendId, index: 0, sequence: 0, witnessUtxo: { script, amount: 0n } });
  toSign.addOutput({ script: Uint8Array.of(0x6a), amount: 0n });
  const sighash = toSign.preimageWitnessV1(0, [script], SigHash.DEFAULT, [0n]);
  return { messageHash, toSpendId, toSign, sighash };
}

export function decodeBitcoinMessage(payload: BitcoinMessagePayload, opts: { from?: string; network?: string } = {}): Decoded {
  const { name, net } = bitcoinNetwork(opts.network);
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : 'raw' in payload ? hexToBytesStrict(payload.raw, 'bitcoin_message.raw') : new TextEncoder().encode(payload.text);
  if (opts.from === undefined) decodeFailed('bitcoin_message needs the signing address (opts.from): BIP-322 commits to its script', { field: 'from' });
  const decoded = attempt(`opts.from is not a ${name} address`, { from: opts.from }, () => Address(net).decode(opts.from!));
  if (decoded.type !== 'tr') decodeFailed('bitcoin_message signs for taproot (key-path) addresses only', { from: opts.from, type: decoded.type });
  const { sighash } = bip322(bytes, OutScript.encode(decoded));
  const action: Action = { chain: 'bitcoin', chainId: name, kind: 'message', from: opts.from, effects: [], message: describeMessage(bytes), notes: ['BIP-322 simple signature: the witness is base64(0x01 0x40 ‖ signature)'] };
  return { action, signingPayloads: [sighash], signing: [{ scheme: 'schnorr-bip340', sighashType: SigHash.DEFAULT }] };
}
