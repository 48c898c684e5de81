/**
 * Threshold ECDSA (DKLs23) through the cluster: real signer processes, real HTTP. Every signature
 * is checked with viem and with ethers: it recovers to the wallet's address and is low-s.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes, randomBytes, bytesToHex } from '@noble/hashes/utils.js';
import { recoverAddress, recoverTransactionAddress, verifyMessage, verifyTypedData, parseTransaction, type Hex } from 'viem';
import { recoverAddress as ethersRecover, Signature as EthersSignature } from 'ethers';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { api, startCluster } from '../helpers/cluster.ts';

async function checkSig(hash: Uint8Array, sigHex: string, address: string) {
  const sig = hexToBytes(sigHex);
  assert.equal(sig.length, 65);
  assert.ok(sig[64] === 27 || sig[64] === 28, 'v is 27 or 28');
  assert.ok(!secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact').hasHighS(), 'low-s');
  assert.equal(await recoverAddress({ hash: ('0x' + bytesToHex(hash)) as Hex, signature: ('0x' + sigHex) as Hex }), address, 'viem recovers the wallet address');
  assert.equal(ethersRecover('0x' + bytesToHex(hash), EthersSignature.from('0x' + sigHex)), address, 'ethers recovers the wallet address');
}

describe('ecdsa-secp256k1 wallets (DKLs23) in a 5-signer cluster', () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  before(async () => {
    c = await startCluster(5);
    A = api(c);
  });
  after(async () => c?.stop());

  for (const [t, n, count] of [[2, 3, 8], [3, 5, 4]]) {
    test(`${t}-of-${n}: random digests recover to the address with viem and ethers`, async () => {
      const w = await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: t, signers: n });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      assert.match(w.body.address, /^0x[0-9a-fA-F]{40}$/);
      assert.equal(w.body.publicKey.length, 66);
      for (let i = 0; i < count; i++) {
        const hash = randomBytes(32);
        const r = await A('POST', `/v1/wallets/${w.body.id}/sign`, { hash: bytesToHex(hash) });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.signers.length, t);
        await checkSig(hash, r.body.signature, w.body.address);
      }
    });
  }

  test('Ethereum payloads: transaction, EIP-191 message, EIP-712 typed data', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    const address = w.address as Hex;
    const tx = await A('POST', `/v1/wallets/${w.id}/sign/transaction`, {
      transaction: { type: 'eip1559', chainId: 31337, nonce: 0, to: '0x000000000000000000000000000000000000dEaD', value: '1000000000000000', gas: '21000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000000' },
    });
    assert.equal(tx.status, 200, JSON.stringify(tx.body));
    assert.equal(await recoverTransactionAddress({ serializedTransaction: tx.body.serializedTransaction }), address);
    const parsed = parseTransaction(tx.body.serializedTransaction);
    assert.equal(parsed.to?.toLowerCase(), '0x000000000000000000000000000000000000dead');
    assert.equal(parsed.value, 1000000000000000n);
    const legacy = await A('POST', `/v1/wallets/${w.id}/sign/transaction`, { transaction: { type: 'legacy', chainId: 1, nonce: 3, to: '0x000000000000000000000000000000000000dEaD', value: '1', gas: '21000', gasPrice: '1000000000' } });
    assert.equal(legacy.status, 200, JSON.stringify(legacy.body));
    assert.equal(await recoverTransactionAddress({ serializedTransaction: legacy.body.serializedTransaction }), address);
    const msg = await A('POST', `/v1/wallets/${w.id}/sign/message`, { message: 'hello fleetkey' });
    assert.ok(await verifyMessage({ address, message: 'hello fleetkey', signature: msg.body.signature }));
    const raw = await A('POST', `/v1/wallets/${w.id}/sign/message`, { message: { raw: '0xdeadbeef' } });
    assert.ok(await verifyMessage({ address, message: { raw: '0xdeadbeef' }, signature: raw.body.signature }));
    const typedData = {
      domain: { name: 'Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
      types: { Person: [{ name: 'name', type: 'string' }, { name: 'wallet', type: 'address' }], Mail: [{ name: 'from', type: 'Person' }, { name: 'to', type: 'Person' }, { name: 'contents', type: 'string' }] },
      primaryType: 'Mail',
      message: { from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' }, to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' }, contents: 'Hello, Bob!' },
    } as const;
    const td = await A('POST', `/v1/wallets/${w.id}/sign/typed-data`, { typedData });
    assert.equal(td.status, 200, JSON.stringify(td.body));
    assert.ok(await verifyTypedData({ address, ...typedData, signature: td.body.signature }));
    // Wrong shapes: a hash for a FROST wallet, a message for an ECDSA wallet, a short hash.
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { message: '00' })).body.error.code, 'validation_failed');
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign`, { hash: '00' })).body.error.code, 'validation_failed');
    assert.equal((await A('POST', `/v1/wallets/${w.id}/sign/transaction`, { transaction: '0x1234' })).body.error.code, 'decode_failed');
  });

  test('a signer SIGKILLed: signing goes on with others; refresh keeps the address', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
    await c.kill('signer-1');
    const hash = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(hash) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await checkSig(hash, r.body.signature, w.address);
    await c.restart('signer-1');
    const f = await A('POST', `/v1/wallets/${w.id}/refresh`);
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.equal(f.body.address, w.address);
    assert.equal(f.body.epoch, 1);
    const h2 = randomBytes(32);
    const r2 = await A('POST', `/v1/wallets/${w.id}/sign`, { hash: bytesToHex(h2) });
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    await checkSig(h2, r2.body.signature, w.address);
  });
});
