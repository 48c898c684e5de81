/**
 * Why agents sign PSBT inputs only with SIGHASH_DEFAULT / ALL (issue #15 item 2), shown with real
 * BIP340 signatures over the sighash our decoder returns: under SIGHASH_SINGLE, input 0's signature
 * commits to output 0 only, so the change output can be sent elsewhere after signing and the
 * signature still verifies; under SIGHASH_DEFAULT it does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import * as btc from '@scure/btc-signer';
import { taprootTweakPrivKey } from '@scure/btc-signer/utils.js';
import { decode } from '../../src/chains/index.ts';

const priv = new Uint8Array(32).fill(7);
const own = btc.p2tr(schnorr.getPublicKey(priv));
const payee = btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(8)));
const thief = btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(9)));

/** Pays 60,000 sat to the payee (output 0) and 39,000 sat of change to `change` (output 1). */
function spend(change: Uint8Array, sighashType: number) {
  const tx = new btc.Transaction({ allowUnknownOutputs: true });
  tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: own.script, amount: 100_000n }, tapInternalKey: schnorr.getPublicKey(priv), sighashType });
  tx.addOutput({ script: payee.script, amount: 60_000n });
  tx.addOutput({ script: change, amount: 39_000n });
  return tx;
}

describe('PSBT sighash types', () => {
  for (const [name, type, redirectable] of [
    ['SIGHASH_SINGLE', btc.SigHash.SINGLE, true],
    ['SIGHASH_DEFAULT', btc.SigHash.DEFAULT, false],
    ['SIGHASH_ALL', btc.SigHash.ALL, false],
  ] as const) {
    it(`${name}: the change output ${redirectable ? 'can' : 'cannot'} be redirected after signing`, () => {
      const honest = spend(own.script, type);
      const d = decode('bitcoin_psbt', Buffer.from(honest.toPSBT()).toString('base64'), { from: own.address! });
      assert.equal(d.action.kind, redirectable ? 'unknown' : 'native_transfer');
      assert.ok(d.action.effects.some((e) => e.type === 'transfer' && e.change), 'output 1 is the change');
      // What a signer would return: a BIP340 signature, by the taproot output key, over the decoded sighash.
      const sig = schnorr.sign(d.signingPayloads[0], taprootTweakPrivKey(priv));
      // The same spend with the change rewritten to pay someone else, its sighash computed by btc-signer.
      const stolen = spend(thief.script, type).preimageWitnessV1(0, [own.script], type, [100_000n]);
      assert.equal(schnorr.verify(sig, stolen, own.tweakedPubkey), redirectable);
    });
  }
});
