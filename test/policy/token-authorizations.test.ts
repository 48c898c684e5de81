/**
 * Signatures that move or allow tokens without a transaction: EIP-3009 transfer authorizations
 * (what an x402 `exact` EVM payment signs) and Permit2 permits. Each is decoded as the transfer or
 * approval it is, and the policy judges it as such: per-token caps, rolling limits and recipient
 * or spender allow-lists apply; unknown typed data stays denied by default. Digests are checked
 * against viem's verifier over a real signature.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex } from '@noble/hashes/utils.js';
import { verifyTypedData, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { decode, PERMIT2_ADDRESS } from '../../src/chains/index.ts';
import { assetKey, evaluate, memoryUsage, sumKey, validatePolicy } from '../../src/policy/index.ts';

const account = privateKeyToAccount(generatePrivateKey());
const USDC = '0x036CbD53842c5426634e7929541eC2318f3dCF7e';
const PAYEE = '0x209693Bc6afc0C5328bA36FaF03C514EF312287C';
const OTHER = '0x1111111111111111111111111111111111111111';
const SPENDER = '0x2222222222222222222222222222222222222222';
const NOW = 1_800_000_000_000;

/** EIP-3009's field list, as `type name`. */
const EIP3009 = ['address from', 'address to', 'uint256 value', 'uint256 validAfter', 'uint256 validBefore', 'bytes32 nonce'].map((f) => ({ type: f.split(' ')[0], name: f.split(' ')[1] }));
const authorization = (primaryType: 'TransferWithAuthorization' | 'ReceiveWithAuthorization', to: string, value: bigint, fields = EIP3009) => ({
  domain: { name: 'USDC', version: '2', chainId: 84532, verifyingContract: USDC },
  types: { [primaryType]: fields },
  primaryType,
  message: { from: account.address, to, value: value.toString(), validAfter: '0', validBefore: '1900000000', nonce: `0x${'ab'.repeat(32)}` },
});
const permitTransferFrom = (spender: string, amount: bigint) => ({
  domain: { name: 'Permit2', chainId: 84532, verifyingContract: PERMIT2_ADDRESS },
  types: {
    PermitTransferFrom: [ { name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' } ],
    TokenPermissions: [ { name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' } ],
  },
  primaryType: 'PermitTransferFrom',
  message: { permitted: { token: USDC, amount: amount.toString() }, spender, nonce: '1', deadline: '1900000000' },
});
const permitSingle = (spender: string, amount: bigint) => ({
  domain: { name: 'Permit2', chainId: 84532, verifyingContract: PERMIT2_ADDRESS },
  types: {
    PermitSingle: [ { name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' } ],
    PermitDetails: [ { name: 'token', type: 'address' }, { name: 'amount', type: 'uint160' }, { name: 'expiration', type: 'uint48' }, { name: 'nonce', type: 'uint48' } ],
  },
  primaryType: 'PermitSingle',
  message: { details: { token: USDC, amount: amount.toString(), expiration: 1_850_000_000, nonce: 0 }, spender, sigDeadline: '1900000000' },
});

const policy = validatePolicy({
  version: 1,
  assets: { USDC: { chainId: '84532', asset: USDC, symbol: 'USDC', decimals: 6 } },
  rules: [
    { id: 'pay', type: 'allow', chainIds: ['84532'], kinds: ['token_transfer'], assets: ['USDC'], to: [PAYEE] },
    { id: 'permit', type: 'allow', chainIds: ['84532'], kinds: ['token_approval'], assets: ['USDC'], to: [SPENDER] },
    { id: 'per-payment', type: 'tx_cap', asset: 'USDC', max: '5000000' },
    { id: 'daily', type: 'window_cap', asset: 'USDC', max: '10000000', window: '24h' },
    { id: 'allowances', type: 'approval_limit', asset: 'USDC', max: '20000000' },
  ],
});
const judge = (td: unknown, used = 0n) =>
  evaluate(policy, decode('evm_typed_data', td, { from: account.address }).action, { now: NOW, usage: memoryUsage(used ? [{ key: sumKey('wallet', assetKey('84532', USDC)), amount: used, at: NOW - 1000 }] : [], NOW) });
const codes = (d: ReturnType<typeof judge>) => d.reasons.filter((r) => d.outcome === 'allow' || r.code !== 'allowed_by_rule').map((r) => r.code).sort();

describe('EIP-3009 authorizations read as token transfers', () => {
  for (const primaryType of ['TransferWithAuthorization', 'ReceiveWithAuthorization'] as const) {
    it(`${primaryType}: token, recipient, amount, validity; the digest is what the token verifies`, async () => {
      const td = authorization(primaryType, PAYEE, 1_000_000n);
      const d = decode('evm_typed_data', td, { from: account.address });
      assert.equal(d.action.kind, 'token_transfer');
      assert.equal(d.action.chainId, '84532');
      assert.equal(d.action.to, PAYEE);
      assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: USDC, to: PAYEE, amount: 1_000_000n }]);
      assert.match(d.action.notes!.join(' '), /valid after 0 and before 1900000000/);
      const signature = await account.sign({ hash: `0x${bytesToHex(d.signingPayloads[0]!)}` as Hex });
      assert.equal(await verifyTypedData({ ...(td as object), address: account.address, signature } as never), true);
    });
  }

  it('an authorization whose types are not the standard ones is unknown, and denied', () => {
    const odd = authorization('TransferWithAuthorization', PAYEE, 1n, [...EIP3009.slice(0, 5), { name: 'nonce', type: 'uint256' }]);
    const d = decode('evm_typed_data', { ...odd, message: { ...odd.message, nonce: '1' } });
    assert.equal(d.action.kind, 'unknown');
    assert.equal(judge({ ...odd, message: { ...odd.message, nonce: '1' } }).outcome, 'deny');
  });

  it('an authorization from another address is noted: it would not be valid for the signer', () => {
    const td = authorization('TransferWithAuthorization', PAYEE, 1n);
    const d = decode('evm_typed_data', { ...td, message: { ...td.message, from: OTHER } }, { from: account.address });
    assert.match(d.action.notes!.join(' '), /is not the signer/);
  });
});

describe('the policy judges them as transfers and approvals', () => {
  it('EIP-3009 within the per-payment cap and the daily limit, to an allowed payee: allowed, reserving the amount', () => {
    const d = judge(authorization('TransferWithAuthorization', PAYEE, 1_000_000n), 8_000_000n);
    assert.equal(d.outcome, 'allow', JSON.stringify(d.reasons));
    assert.deepEqual(d.reservations.map((r) => [r.counterKey, r.amount]), [[sumKey('wallet', assetKey('84532', USDC)), 1_000_000n]]);
  });

  it('EIP-3009 over the per-payment cap, over the rolling limit, or to another payee: denied with the reasons', () => {
    assert.deepEqual(codes(judge(authorization('TransferWithAuthorization', PAYEE, 6_000_000n))), ['tx_cap_exceeded']);
    assert.deepEqual(codes(judge(authorization('ReceiveWithAuthorization', PAYEE, 3_000_000n), 8_000_000n)), ['window_cap_exceeded']);
    const elsewhere = judge(authorization('TransferWithAuthorization', OTHER, 1n));
    assert.equal(elsewhere.outcome, 'deny');
    assert.ok(elsewhere.reasons.some((r) => r.code === 'no_allow_rule'), JSON.stringify(elsewhere.reasons));
  });

  it('Permit2 PermitTransferFrom and PermitSingle: approvals to the spender, within the approval limit', () => {
    assert.equal(judge(permitTransferFrom(SPENDER, 1_000_000n)).outcome, 'allow');
    assert.equal(judge(permitSingle(SPENDER, 20_000_000n)).outcome, 'allow');
    assert.equal(judge(permitSingle(SPENDER, 20_000_001n)).outcome, 'deny');
    assert.equal(judge(permitTransferFrom(OTHER, 1n)).outcome, 'deny', 'a spender not on the list');
  });

  it('unknown typed data stays denied by default', () => {
    const mail = { domain: { name: 'Mail', version: '1', chainId: 84532 }, types: { Mail: [{ name: 'contents', type: 'string' }] }, primaryType: 'Mail', message: { contents: 'hi' } };
    const d = judge(mail);
    assert.equal(d.outcome, 'deny');
    assert.ok(d.reasons.some((r) => r.code === 'no_allow_rule'), JSON.stringify(d.reasons));
  });
});
