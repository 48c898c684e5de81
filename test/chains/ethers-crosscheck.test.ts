/**
 * The EVM digests agree with an independent implementation: ethers v6 (unsignedHash, TypedDataEncoder,
 * hashMessage) over the same payloads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Transaction, TypedDataEncoder, hashMessage } from 'ethers';
import { encodeFunctionData, erc20Abi, serializeTransaction, type TransactionSerializable } from 'viem';
import { decode, PERMIT2_ADDRESS } from '../../src/chains/index.ts';

const BOB = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const USDC = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const hexOf = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}`;

describe('EVM digests match ethers', () => {
  it('transactions: keccak of the unsigned serialization = ethers unsignedHash', () => {
    const data = encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [BOB, 10n ** 30n] });
    const txs: TransactionSerializable[] = [
      { type: 'eip1559', chainId: 8453, nonce: 12, gas: 80_000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 10n ** 9n, to: USDC, data },
      { type: 'eip2930', chainId: 1, nonce: 0, gas: 21_000n, gasPrice: 3n, to: BOB, value: 5n, accessList: [] },
      { type: 'legacy', chainId: 137, nonce: 9, gas: 21_000n, gasPrice: 30n, to: BOB, value: 10n ** 18n },
    ];
    for (const tx of txs) {
      const hex = serializeTransaction(tx);
      assert.equal(hexOf(decode('evm_transaction', hex).signingPayloads[0]!), Transaction.from(hex).unsignedHash);
    }
    const request = decode('evm_transaction', { to: BOB, value: '0x10', chainId: 10, nonce: 3, gas: '21000', maxFeePerGas: '100', maxPriorityFeePerGas: '1' });
    assert.equal(hexOf(request.signingPayloads[0]!), Transaction.from(request.encoded!).unsignedHash);
  });

  it('typed data and personal messages', () => {
    const td = {
      domain: { name: 'Permit2', chainId: 1, verifyingContract: PERMIT2_ADDRESS },
      types: {
        PermitSingle: [ { name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' } ],
        PermitDetails: [ { name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' } ],
      },
      primaryType: 'PermitSingle',
      message: { details: { token: USDC, amount: '1000', expiration: '1800000000', nonce: '0' }, spender: BOB, sigDeadline: '1700000000' },
    };
    assert.equal(hexOf(decode('evm_typed_data', td).signingPayloads[0]!), TypedDataEncoder.hash(td.domain, td.types, td.message));
    assert.equal(hexOf(decode('evm_message', 'gm ✨').signingPayloads[0]!), hashMessage('gm ✨'));
    assert.equal(hexOf(decode('evm_message', { raw: '0x00ff' }).signingPayloads[0]!), hashMessage(new Uint8Array([0, 255])));
  });
});
