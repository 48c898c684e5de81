/**
 * The message forms agents sign (issue #15 item 1): a Solana off-chain message for Ed25519 wallets,
 * a BIP-322 simple signature for taproot wallets (EIP-191 is in ethereum.test.ts). Neither can be a
 * transaction's signature or a bare digest's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import * as btc from '@scure/btc-signer';
import { getAddressDecoder, getCompiledTransactionMessageDecoder, getOffchainMessageDecoder } from '@solana/kit';
import { bip322 } from '../../src/chains/bitcoin/message.ts';
import { decode } from '../../src/chains/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const isDecodeFailed = (re: RegExp) => (e: unknown) => e instanceof FleetkeyError && e.code === 'decode_failed' && re.test(e.message);
const solAddr = getAddressDecoder().decode(ed25519.getPublicKey(new Uint8Array(32).fill(4)));
const other = getAddressDecoder().decode(ed25519.getPublicKey(new Uint8Array(32).fill(5)));

describe('solana_message: Solana off-chain messages', () => {
  it('text is signed as a version 1 off-chain message naming the wallet, which no transaction decoder reads', () => {
    const d = decode('solana_message', 'Sign in to example.com', { from: solAddr });
    const bytes = d.signingPayloads[0];
    assert.deepEqual(d.signing, [{ scheme: 'ed25519' }]);
    assert.equal(d.action.chain, 'solana');
    assert.equal(d.action.kind, 'message');
    assert.equal(d.action.message?.text, 'Sign in to example.com');
    assert.equal(Buffer.from(bytes.subarray(0, 16)).toString('latin1'), '\xffsolana offchain');
    const m = getOffchainMessageDecoder().decode(bytes);
    assert.equal(m.version, 1);
    assert.deepEqual(m.requiredSignatories.map((s) => s.address), [solAddr]);
    // 0xff is neither a legacy header (signer count < 0x80) nor a version prefix (0x80 | 0..1).
    assert.throws(() => getCompiledTransactionMessageDecoder().decode(bytes));
    assert.deepEqual(decode('solana_message', { text: 'Sign in to example.com' }, { from: solAddr }).signingPayloads, [bytes]);
  });

  it('a complete encoded message is signed as given when canonical and naming the wallet', () => {
    const bytes = decode('solana_message', 'gm', { from: solAddr }).signingPayloads[0];
    const encoded = Buffer.from(bytes).toString('base64');
    assert.deepEqual(decode('solana_message', { encoded }, { from: solAddr }).signingPayloads, [bytes]);
    assert.throws(() => decode('solana_message', { encoded }, { from: other }), isDecodeFailed(/not a signatory/));
    // A version 1 message's text runs to the end; kit's UTF-8 decoder drops NUL characters, so these bytes do not re-encode.
    assert.throws(() => decode('solana_message', { encoded: Buffer.from([...bytes, 0]).toString('base64') }, { from: solAddr }), isDecodeFailed(/canonical/));
    assert.throws(() => decode('solana_message', { encoded: Buffer.from(bytes.subarray(16)).toString('base64') }, { from: solAddr }), isDecodeFailed(/not a Solana off-chain message/));
    assert.throws(() => decode('solana_message', 'gm'), isDecodeFailed(/opts.from/));
    assert.throws(() => decode('solana_message', ''), isDecodeFailed(/./));
  });
});

describe('bitcoin_message: BIP-322 simple', () => {
  // BIP-322's published vectors (bip-0322/basic-test-vectors.json).
  const vectors = [
    { message: '', messageHash: 'c90c269c4f8fcbe6880f72a721ddfbf1914268a794cbb21cfafee13770ae19f1', toSpend: 'c5680aa69bb8d860bf82d4e9cd3504b55dde018de765a91bb566283c545a99a7', toSign: '1e9654e951a5ba44c8604c4de6c67fd78a27e81dcadcfe1edf638ba3aaebaed6' },
    { message: 'Hello World', messageHash: 'f0eb03b1a75ac6d9847f55c624a99169b5dccba2a31f5b23bea77ba270de0a7a', toSpend: 'b79d196740ad5217771c1098fc4a4b51e0535c32236c71f1ea4d61a2d603352b', toSign: '88737ae86f2077145f93cc4b153ae9a1cb8d56afa511988c149c5c8c9d93bddf' },
  ];

  it('builds the message hash and the to_spend / to_sign transactions of the BIP-322 vectors', () => {
    const script = btc.OutScript.encode(btc.Address(btc.NETWORK).decode('bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l'));
    for (const v of vectors) {
      const r = bip322(new TextEncoder().encode(v.message), script);
      assert.equal(bytesToHex(r.messageHash), v.messageHash);
      assert.equal(bytesToHex(r.toSpendId), v.toSpend);
      assert.equal(r.toSign.id, v.toSign);
    }
  });

  it("signs the digest under which BIP-322's published P2TR signature verifies", () => {
    const address = 'bc1pss0zhytly75awhm6x2hhvd5lnzv3vssgrf9axfheq8ldyzn88ges79fler';
    const witness = Buffer.from('AUCJYOwOjxYAvatTAGYaVlNXBVyFuc4MwNQkOuK2tl8xhfKDONd0NjfYyNSYcRqeCp8hsAnCEPHAVEkO9h6vbQ/R', 'base64');
    assert.deepEqual([witness[0], witness[1]], [1, 64], 'one witness item of 64 bytes: SIGHASH_DEFAULT');
    const d = decode('bitcoin_message', 'No prefix fallback', { from: address });
    assert.deepEqual(d.signing, [{ scheme: 'schnorr-bip340', sighashType: 0 }]);
    const outputKey = (btc.Address(btc.NETWORK).decode(address) as { pubkey: Uint8Array }).pubkey;
    assert.ok(schnorr.verify(witness.subarray(2), d.signingPayloads[0], outputKey));
    assert.ok(!schnorr.verify(witness.subarray(2), decode('bitcoin_message', 'No prefix fallbacK', { from: address }).signingPayloads[0], outputKey));
    assert.equal(d.action.kind, 'message');
    assert.equal(d.action.message?.text, 'No prefix fallback');
  });

  it('needs a taproot address of the network', () => {
    assert.throws(() => decode('bitcoin_message', 'gm'), isDecodeFailed(/opts.from/));
    assert.throws(() => decode('bitcoin_message', 'gm', { from: 'bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l' }), isDecodeFailed(/taproot/));
    assert.throws(() => decode('bitcoin_message', 'gm', { from: 'bc1pss0zhytly75awhm6x2hhvd5lnzv3vssgrf9axfheq8ldyzn88ges79fler', network: 'regtest' }), isDecodeFailed(/regtest address/));
    assert.equal(decode('bitcoin_message', { raw: '00ff' }, { from: 'bc1pss0zhytly75awhm6x2hhvd5lnzv3vssgrf9axfheq8ldyzn88ges79fler' }).action.message?.hex, '0x00ff');
  });
});
