/**
 * `@fleetkey/sdk/psbt`: signs the taproot key-path inputs of a PSBT owned by a `secp256k1-schnorr`
 * fleetkey wallet through the agent path (the agent's session key under an owner-issued grant, judged
 * by the wallet's policy on every signer, which reads the PSBT's outputs on the wallet's own network).
 * On @scure/btc-signer; loads no EVM or Solana framework.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { OutScript, SigHash, Transaction } from '@scure/btc-signer';
import { FleetkeyError } from '../errors.ts';
import type { FleetkeyAgent } from './agent.ts';

/**
 * Returns a copy of `psbt` with `tapKeySig` set on each input the cluster signed (every taproot
 * key-path input paying from the wallet's address, SIGHASH_DEFAULT or ALL). Each signature is checked
 * against the output key over the input's BIP341 sighash before it is set; finalize and extract as
 * usual. A refusal throws `FleetkeyApiError` (`policy_denied`, …) and nothing is set.
 *
 * @example
 * const signed = await signPsbtWithFleetkey(agent, 'wal_…', psbtBytes)
 * signed.finalize(); const rawTx = signed.extract()
 */
export async function signPsbtWithFleetkey(agent: FleetkeyAgent, walletId: string, psbt: Uint8Array | Transaction): Promise<Transaction> {
  const wallet = await agent.wallet(walletId);
  if (wallet.scheme !== 'secp256k1-schnorr') throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: a taproot PSBT needs a secp256k1-schnorr wallet`);
  const tx = Transaction.fromPSBT(psbt instanceof Transaction ? psbt.toPSBT() : psbt);
  const view = await agent.request(walletId, { kind: 'bitcoin_psbt', data: base64.encode(tx.toPSBT()) });
  const sigs = view.signatures ?? [];
  if (sigs.length === 0) throw new FleetkeyError('internal', `wallet ${walletId}: the cluster signed no input of this PSBT`);
  const prevOuts = Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i).witnessUtxo);
  if (prevOuts.some((p) => p === undefined)) throw new FleetkeyError('validation_failed', 'every input needs its witnessUtxo (BIP341 sighashes commit to all previous outputs)');
  const scripts = prevOuts.map((p) => p!.script);
  const amounts = prevOuts.map((p) => p!.amount);
  for (const { input, signature } of sigs) {
    if (input === undefined || !Number.isInteger(input) || input < 0 || input >= tx.inputsLength) throw new FleetkeyError('internal', `the cluster answered a signature for input ${String(input)}, not in this PSBT`);
    const out = OutScript.decode(scripts[input]);
    if (out.type !== 'tr') throw new FleetkeyError('internal', `input ${input} is not a taproot output`);
    const hashType = tx.getInput(input).sighashType ?? SigHash.DEFAULT;
    const sig = hexToBytes(signature.replace(/^0x/, ''));
    if (sig.length !== 64 || !schnorr.verify(sig, tx.preimageWitnessV1(input, scripts, hashType, amounts), out.pubkey))
      throw new FleetkeyError('internal', `input ${input}: the cluster's signature does not verify over its BIP341 sighash`);
    tx.updateInput(input, { tapKeySig: hashType === SigHash.DEFAULT ? sig : Uint8Array.from([...sig, hashType]) });
  }
  return tx;
}
