import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';
import * as btc from '@scure/btc-signer';
import { taprootTweakPrivKey } from '@scure/btc-signer/utils.js';
import { decode } from '../../src/chains/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const trPriv = new Uint8Array(32).fill(1);
const wpkhPriv = new Uint8Array(32).fill(2);
const trPub = schnorr.getPublicKey(trPriv);
const wpkhPub = secp256k1.getPublicKey(wpkhPriv, true);
const own = btc.p2tr(trPub); // key-path only (BIP86)
const ownWpkh = btc.p2wpkh(wpkhPub);
const payee = btc.p2wpkh(secp256k1.getPublicKey(new Uint8Array(32).fill(3), true));

const txid = (n: number) => new Uint8Array(32).fill(n);

function psbt(opts: { sighashType?: number; withoutAmount?: boolean; network?: typeof btc.NETWORK } = {}) {
  const net = opts.network ?? btc.NETWORK;
  const tr = btc.p2tr(trPub, undefined, net);
  const tx = new btc.Transaction();
  tx.addInput({ txid: txid(1), index: 0, witnessUtxo: { script: tr.script, amount: 100_000n }, tapInternalKey: trPub, ...(opts.sighashType === undefined ? {} : { sighashType: opts.sighashType }) });
  tx.addInput({ txid: txid(2), index: 1, ...(opts.withoutAmount ? {} : { witnessUtxo: { script: ownWpkh.script, amount: 50_000n } }) });
  tx.addOutputAddress(btc.p2wpkh(secp256k1.getPublicKey(new Uint8Array(32).fill(3), true), net).address!, 120_000n, net);
  tx.addOutputAddress(tr.address!, 29_000n, net);
  return tx;
}

const isDecodeFailed = (e: unknown) => e instanceof FleetkeyError && e.code === 'decode_failed';

describe('Bitcoin PSBTs', () => {
  it('decodes outputs, change, fee and per-input sighashes of a taproot + p2wpkh PSBT', () => {
    const tx = psbt();
    const d = decode('bitcoin_psbt', Buffer.from(tx.toPSBT()).toString('base64'), { from: own.address! });
    assert.equal(d.action.chain, 'bitcoin');
    assert.equal(d.action.chainId, 'mainnet');
    assert.equal(d.action.kind, 'native_transfer');
    assert.equal(d.action.to, payee.address);
    assert.deepEqual(d.action.effects, [
      { type: 'transfer', asset: 'native', to: payee.address, amount: 120_000n },
      { type: 'transfer', asset: 'native', to: own.address, amount: 29_000n, change: true },
    ]);
    assert.equal(d.action.fee, 1_000n);
    assert.deepEqual(d.action.inputs, [
      { outpoint: `${'01'.repeat(32)}:0`, amount: 100_000n, address: own.address },
      { outpoint: `${'02'.repeat(32)}:1`, amount: 50_000n, address: ownWpkh.address },
    ]);
    assert.deepEqual(d.signing, [
      { scheme: 'schnorr-bip340', input: 0, sighashType: 0, taprootTweak: { internalKey: hex.encode(trPub), merkleRoot: '' } },
      { scheme: 'ecdsa-secp256k1', input: 1, sighashType: 1 },
    ]);
    // hex PSBTs decode the same
    assert.deepEqual(decode('bitcoin_psbt', hex.encode(tx.toPSBT()), { from: own.address! }), d);
  });

  it('the taproot sighash is what BIP341 key-path signing covers: our Schnorr signature finalizes, and btc-signer signs the same digest', () => {
    const tx = psbt();
    const d = decode('bitcoin_psbt', Buffer.from(tx.toPSBT()).toString('base64'));
    const [trSighash, wpkhSighash] = d.signingPayloads as [Uint8Array, Uint8Array];
    const outputKey = own.script.subarray(2); // the tweaked x-only key the output commits to

    // our signature over the decoded sighash, with the BIP86-tweaked key, is valid and finalizes
    const sig = schnorr.sign(trSighash, taprootTweakPrivKey(trPriv));
    assert.equal(schnorr.verify(sig, trSighash, outputKey), true);
    const ours = btc.Transaction.fromPSBT(tx.toPSBT());
    ours.updateInput(0, { tapKeySig: sig });
    ours.finalizeIdx(0);

    // btc-signer's own signatures verify against our digests
    const theirs = btc.Transaction.fromPSBT(tx.toPSBT());
    theirs.signIdx(trPriv, 0);
    theirs.signIdx(wpkhPriv, 1);
    assert.equal(schnorr.verify(theirs.getInput(0).tapKeySig!, trSighash, outputKey), true);
    const [[pub, ecdsaSig]] = theirs.getInput(1).partialSig!;
    assert.deepEqual(pub, wpkhPub);
    assert.equal(secp256k1.verify(ecdsaSig.subarray(0, -1), wpkhSighash, wpkhPub, { format: 'der', prehash: false }), true);
    theirs.finalize();
    assert.ok(theirs.extract().length > 0);
  });

  it('encodes addresses for the requested network', () => {
    const regtest = { ...btc.TEST_NETWORK, bech32: 'bcrt' };
    const d = decode('bitcoin_psbt', Buffer.from(psbt({ network: regtest }).toPSBT()).toString('base64'), { network: 'regtest' });
    assert.equal(d.action.chainId, 'regtest');
    assert.ok(d.action.effects.every((e) => e.type === 'transfer' && e.to.startsWith('bcrt1')));
    assert.throws(() => decode('bitcoin_psbt', Buffer.from(psbt().toPSBT()).toString('base64'), { network: 'regtest', from: own.address! }), isDecodeFailed);
  });

  it('notes what it cannot compute: unknown amounts, legacy inputs; SIGHASH_NONE makes the action unknown', () => {
    const noAmount = decode('bitcoin_psbt', Buffer.from(psbt({ withoutAmount: true }).toPSBT()).toString('base64'));
    assert.equal(noAmount.action.fee, undefined);
    assert.equal(noAmount.signingPayloads.length, 0); // taproot needs every prevout; input 1 has none
    assert.match(noAmount.action.notes!.join(' '), /fee not computed/);

    const none = decode('bitcoin_psbt', Buffer.from(psbt({ sighashType: btc.SigHash.NONE }).toPSBT()).toString('base64'));
    assert.equal(none.action.kind, 'unknown');
    assert.match(none.action.notes!.join(' '), /SIGHASH_NONE/);

    const legacyKey = secp256k1.getPublicKey(new Uint8Array(32).fill(4), true);
    const prev = new btc.Transaction();
    prev.addInput({ txid: txid(9), index: 0 });
    prev.addOutputAddress(btc.p2pkh(legacyKey).address!, 70_000n);
    const tx = new btc.Transaction();
    tx.addInput({ txid: prev.id, index: 0, nonWitnessUtxo: prev.unsignedTx });
    tx.addOutputAddress(payee.address!, 60_000n);
    const legacy = decode('bitcoin_psbt', Buffer.from(tx.toPSBT()).toString('base64'));
    assert.equal(legacy.action.fee, 10_000n);
    assert.equal(legacy.signingPayloads.length, 0);
    assert.match(legacy.action.notes!.join(' '), /legacy \(pre-segwit\)/);
  });

  it('rejects what is not a PSBT', () => {
    assert.throws(() => decode('bitcoin_psbt', 'cHNidP8='), isDecodeFailed);
    assert.throws(() => decode('bitcoin_psbt', '70736274ff00'), isDecodeFailed);
    assert.throws(() => decode('bitcoin_psbt', '%%%'), isDecodeFailed);
    const bytes = psbt().toPSBT();
    assert.throws(() => decode('bitcoin_psbt', Buffer.from(bytes.subarray(0, bytes.length - 5)).toString('base64')), isDecodeFailed);
  });
});
