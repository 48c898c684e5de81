import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeFunctionData,
  erc20Abi,
  getContractAddress,
  keccak256,
  maxUint256,
  parseAbi,
  parseEther,
  parseSignature,
  recoverTransactionAddress,
  serializeTransaction,
  verifyMessage,
  verifyTypedData,
  type Hex,
  type TransactionSerializable,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { decode, PERMIT2_ADDRESS } from '../../src/chains/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const account = privateKeyToAccount('0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318');
const USDC = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const BOB = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const SPENDER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';

const hexOf = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}` as Hex;

/** Sign the returned digest with a local key, attach it with viem, and recover the sender. */
async function signAndRecover(tx: TransactionSerializable, digest: Uint8Array): Promise<string> {
  const signature = await account.sign({ hash: hexOf(digest) });
  const signed = serializeTransaction(tx, parseSignature(signature));
  return recoverTransactionAddress({ serializedTransaction: signed as never });
}

const eip1559 = (over: Partial<TransactionSerializable> = {}) =>
  ({ type: 'eip1559', chainId: 1, nonce: 7, gas: 60_000n, maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, ...over }) as TransactionSerializable;

function decodeFailedWith(fn: () => unknown, re?: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof FleetkeyError && e.code === 'decode_failed' && (!re || re.test(e.message)));
}

describe('EVM transactions', () => {
  it('decodes an EIP-1559 ETH transfer and its digest recovers to the signer', async () => {
    const tx = eip1559({ to: BOB, value: parseEther('1.5') });
    const d = decode('evm_transaction', serializeTransaction(tx), { from: account.address });
    assert.equal(d.action.chain, 'ethereum');
    assert.equal(d.action.chainId, '1');
    assert.equal(d.action.kind, 'native_transfer');
    assert.equal(d.action.to, BOB);
    assert.equal(d.action.from, account.address);
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: 'native', to: BOB, amount: 1_500_000_000_000_000_000n }]);
    assert.equal(d.action.fee, 60_000n * 30_000_000_000n);
    assert.equal(d.signingPayloads.length, 1);
    assert.deepEqual(d.signing, [{ scheme: 'ecdsa-secp256k1' }]);
    assert.equal(await signAndRecover(tx, d.signingPayloads[0]!), account.address);
  });

  it('decodes ERC-20 transfer, approve and transferFrom as token effects on the contract', () => {
    const transfer = decode('evm_transaction', serializeTransaction(eip1559({ to: USDC, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [BOB, 2_500_000n] }) })));
    assert.equal(transfer.action.kind, 'token_transfer');
    assert.equal(transfer.action.contract, USDC);
    assert.equal(transfer.action.to, BOB);
    assert.deepEqual(transfer.action.function, { selector: '0xa9059cbb', name: 'transfer', args: { to: BOB, amount: 2_500_000n } });
    assert.deepEqual(transfer.action.effects, [{ type: 'transfer', asset: USDC, to: BOB, amount: 2_500_000n }]);

    const approve = decode('evm_transaction', serializeTransaction(eip1559({ to: USDC, data: encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [SPENDER, maxUint256] }) })));
    assert.equal(approve.action.kind, 'token_approval');
    assert.equal(approve.action.function?.selector, '0x095ea7b3');
    assert.deepEqual(approve.action.effects, [{ type: 'approval', asset: USDC, spender: SPENDER, amount: maxUint256 }]);

    const from = decode('evm_transaction', serializeTransaction(eip1559({ to: USDC, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transferFrom', args: [SPENDER, BOB, 7n] }) })));
    assert.equal(from.action.kind, 'token_transfer');
    assert.deepEqual(from.action.effects, [{ type: 'transfer', asset: USDC, from: SPENDER, to: BOB, amount: 7n }]);
    assert.match(from.action.notes?.join(' ') ?? '', /ERC-721/);
  });

  it('reads setApprovalForAll and Permit2 approve as approvals', () => {
    const nft = '0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D';
    const all = decode('evm_transaction', serializeTransaction(eip1559({ to: nft, data: encodeFunctionData({ abi: parseAbi(['function setApprovalForAll(address,bool)']), args: [SPENDER, true] }) })));
    assert.equal(all.action.kind, 'token_approval');
    assert.deepEqual(all.action.effects, [{ type: 'approval', asset: nft, spender: SPENDER, amount: maxUint256 }]);
    const p2 = decode('evm_transaction', serializeTransaction(eip1559({ to: PERMIT2_ADDRESS, data: encodeFunctionData({ abi: parseAbi(['function approve(address,address,uint160,uint48)']), args: [USDC, SPENDER, 1000n, 1_900_000_000] }) })));
    assert.deepEqual(p2.action.effects, [{ type: 'approval', asset: USDC, spender: SPENDER, amount: 1000n, expiry: 1_900_000_000 }]);
  });

  it('reads any other call as contract_call with its selector, and value as a native transfer', () => {
    const data = encodeFunctionData({ abi: parseAbi(['function deposit(uint256 x)']), args: [5n] });
    const d = decode('evm_transaction', serializeTransaction(eip1559({ to: USDC, value: 9n, data })));
    assert.equal(d.action.kind, 'contract_call');
    assert.equal(d.action.contract, USDC);
    assert.deepEqual(d.action.function, { selector: data.slice(0, 10) });
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: 'native', to: USDC, amount: 9n }]);
  });

  it('reads a transaction without `to` as contract_deploy at the CREATE address', () => {
    const d = decode('evm_transaction', serializeTransaction(eip1559({ data: '0x6080604052', value: 3n })), { from: account.address });
    const created = getContractAddress({ from: account.address, nonce: 7n });
    assert.equal(d.action.kind, 'contract_deploy');
    assert.equal(d.action.to, created);
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: 'native', to: created, amount: 3n }]);
  });

  it('decodes legacy EIP-155 and EIP-2930 transactions with recoverable digests', async () => {
    const legacy: TransactionSerializable = { type: 'legacy', chainId: 8453, nonce: 1, gas: 21_000n, gasPrice: 5n, to: BOB, value: 10n };
    const l = decode('evm_transaction', serializeTransaction(legacy));
    assert.equal(l.action.chainId, '8453');
    assert.equal(l.action.fee, 105_000n);
    assert.equal(await signAndRecover(legacy, l.signingPayloads[0]!), account.address);

    const al: TransactionSerializable = { type: 'eip2930', chainId: 10, nonce: 2, gas: 30_000n, gasPrice: 7n, to: BOB, value: 1n, accessList: [{ address: USDC, storageKeys: [keccak256('0x01')] }] };
    const a = decode('evm_transaction', serializeTransaction(al));
    assert.equal(a.action.chainId, '10');
    assert.equal(await signAndRecover(al, a.signingPayloads[0]!), account.address);
  });

  it('notes a legacy transaction without chain id (replayable on every chain)', () => {
    const d = decode('evm_transaction', serializeTransaction({ type: 'legacy', nonce: 0, gas: 21_000n, gasPrice: 1n, to: BOB, value: 1n }));
    assert.equal(d.action.chainId, undefined);
    assert.match(d.action.notes?.join(' ') ?? '', /every EVM chain/);
  });

  it('serializes a JSON transaction request (decimal/hex strings) and returns the encoding it hashed', async () => {
    const data = encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [BOB, 1_000_000n] });
    const d = decode('evm_transaction', { to: USDC, value: '0', data, chainId: '0x1', nonce: '7', gas: '0xea60', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '0x3b9aca00' });
    const expected = eip1559({ to: USDC, value: 0n, data });
    assert.equal(d.encoded, serializeTransaction(expected));
    assert.equal(hexOf(d.signingPayloads[0]!), keccak256(serializeTransaction(expected)));
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: USDC, to: BOB, amount: 1_000_000n }]);
    assert.equal(await signAndRecover(expected, d.signingPayloads[0]!), account.address);

    const legacy = decode('evm_transaction', { to: BOB, value: '5', nonce: 1, gas: 21000, gasPrice: '2' }, { chainId: 137 });
    assert.equal(legacy.action.chainId, '137');
    assert.equal(legacy.encoded, serializeTransaction({ type: 'legacy', chainId: 137, nonce: 1, gas: 21_000n, gasPrice: 2n, to: BOB, value: 5n }));
  });

  it('decodes an EIP-7702 transaction but judges it unknown, naming the delegations', async () => {
    const auth = await account.signAuthorization({ contractAddress: SPENDER, chainId: 1, nonce: 0 });
    const d = decode('evm_transaction', serializeTransaction({ type: 'eip7702', chainId: 1, nonce: 1, gas: 100_000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: account.address, authorizationList: [auth] }));
    assert.equal(d.action.kind, 'unknown');
    assert.match(d.action.notes!.join(' '), new RegExp(`EIP-7702.*${SPENDER}`));
  });

  it('rejects signed transactions, chain id mismatches, bad requests and non-canonical bytes', async () => {
    const tx = eip1559({ to: BOB, value: 1n });
    const signed = await account.signTransaction(tx as never);
    decodeFailedWith(() => decode('evm_transaction', signed), /already signed/);
    decodeFailedWith(() => decode('evm_transaction', serializeTransaction(tx), { chainId: 8453 }), /chainId/);
    decodeFailedWith(() => decode('evm_transaction', { to: BOB, nonce: 1, gas: 21000, maxFeePerGas: 1 }), /chainId/);
    decodeFailedWith(() => decode('evm_transaction', { to: BOB, nonce: 1, gas: 21000, maxFeePerGas: 1, chainId: 1, blobs: [] }));
    decodeFailedWith(() => decode('evm_transaction', { to: BOB, nonce: -1, gas: 21000, gasPrice: 1, chainId: 1 }));
    decodeFailedWith(() => decode('evm_transaction', serializeTransaction(tx) + '00'));
    decodeFailedWith(() => decode('evm_transaction', '0xzz'));
    decodeFailedWith(() => decode('evm_transaction', { to: BOB, nonce: 1, gas: 1, gasPrice: 1, chainId: 1, from: BOB }, { from: account.address }), /from/);
  });
});

// ---- EIP-712 ----

const permitTypes = {
  Permit: [
    { name: 'owner', type: 'address' },
    { name: 'spender', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

const tokenPermissions = [
  { name: 'token', type: 'address' },
  { name: 'amount', type: 'uint256' },
] as const;
const permitDetails = [
  { name: 'token', type: 'address' },
  { name: 'amount', type: 'uint160' },
  { name: 'expiration', type: 'uint48' },
  { name: 'nonce', type: 'uint48' },
] as const;
const permit2Domain = { name: 'Permit2', chainId: 1, verifyingContract: PERMIT2_ADDRESS } as const;
const DAI = '0x6B175474E89094C44Da98b954EedeAC495271d0F';

/** JSON as a dApp sends it to eth_signTypedData_v4: bigints as decimal strings. */
const asJson = (td: unknown) => JSON.parse(JSON.stringify(td, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));

async function verifies(td: Parameters<typeof verifyTypedData>[0] extends infer P ? Omit<P & object, 'address' | 'signature'> : never, digest: Uint8Array) {
  const signature = await account.sign({ hash: hexOf(digest) });
  return verifyTypedData({ ...(td as object), address: account.address, signature } as never);
}

describe('EIP-712 typed data', () => {
  it('reads an ERC-2612 Permit as an approval, and its digest verifies', async () => {
    const td = {
      domain: { name: 'USD Coin', version: '2', chainId: 1, verifyingContract: USDC },
      types: permitTypes,
      primaryType: 'Permit',
      message: { owner: account.address, spender: SPENDER, value: 5_000_000n, nonce: 0n, deadline: 1_900_000_000n },
    } as const;
    const d = decode('evm_typed_data', asJson(td), { from: account.address, chainId: '1' });
    assert.equal(d.action.kind, 'token_approval');
    assert.equal(d.action.chainId, '1');
    assert.equal(d.action.to, SPENDER);
    assert.equal(d.action.contract, USDC);
    assert.deepEqual(d.action.effects, [{ type: 'approval', asset: USDC, spender: SPENDER, amount: 5_000_000n, expiry: 1_900_000_000 }]);
    assert.equal(d.action.typedData?.primaryType, 'Permit');
    assert.equal(await verifies(td as never, d.signingPayloads[0]!), true);
    // the same typed data as a JSON string
    assert.deepEqual(decode('evm_typed_data', JSON.stringify(asJson(td))).signingPayloads, d.signingPayloads);
  });

  it('reads a DAI-style permit as an unlimited approval', () => {
    const td = {
      domain: { name: 'Dai Stablecoin', version: '1', chainId: 1, verifyingContract: DAI },
      types: { Permit: [ { name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' } ] },
      primaryType: 'Permit',
      message: { holder: account.address, spender: SPENDER, nonce: 0, expiry: 0, allowed: true },
    };
    const d = decode('evm_typed_data', td);
    assert.deepEqual(d.action.effects, [{ type: 'approval', asset: DAI, spender: SPENDER, amount: maxUint256 }]);
  });

  it('reads Permit2 PermitSingle and PermitBatch as allowances per token', async () => {
    const single = {
      domain: permit2Domain,
      types: { PermitSingle: [ { name: 'details', type: 'PermitDetails' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' } ], PermitDetails: permitDetails },
      primaryType: 'PermitSingle',
      message: { details: { token: USDC, amount: 10n ** 18n, expiration: 1_800_000_000, nonce: 3 }, spender: SPENDER, sigDeadline: 1_700_000_000n },
    } as const;
    const s = decode('evm_typed_data', asJson(single));
    assert.equal(s.action.kind, 'token_approval');
    assert.deepEqual(s.action.effects, [{ type: 'approval', asset: USDC, spender: SPENDER, amount: 10n ** 18n, expiry: 1_800_000_000 }]);
    assert.ok(!s.action.notes?.some((n) => /not the canonical/.test(n)));
    const impostor = decode('evm_typed_data', asJson({ ...single, domain: { ...permit2Domain, verifyingContract: BOB } }));
    assert.match(impostor.action.notes!.join(' '), /not the canonical Permit2/);
    assert.equal(await verifies(single as never, s.signingPayloads[0]!), true);

    const batch = {
      domain: permit2Domain,
      types: { PermitBatch: [ { name: 'details', type: 'PermitDetails[]' }, { name: 'spender', type: 'address' }, { name: 'sigDeadline', type: 'uint256' } ], PermitDetails: permitDetails },
      primaryType: 'PermitBatch',
      message: { details: [ { token: USDC, amount: 1n, expiration: 10, nonce: 0 }, { token: DAI, amount: 2n, expiration: 20, nonce: 0 } ], spender: SPENDER, sigDeadline: 1n },
    } as const;
    const b = decode('evm_typed_data', asJson(batch));
    assert.deepEqual(b.action.effects, [
      { type: 'approval', asset: USDC, spender: SPENDER, amount: 1n, expiry: 10 },
      { type: 'approval', asset: DAI, spender: SPENDER, amount: 2n, expiry: 20 },
    ]);
    assert.equal(await verifies(batch as never, b.signingPayloads[0]!), true);
  });

  it('reads Permit2 PermitTransferFrom as a one-time approval to the spender', async () => {
    const td = {
      domain: permit2Domain,
      types: { PermitTransferFrom: [ { name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' } ], TokenPermissions: tokenPermissions },
      primaryType: 'PermitTransferFrom',
      message: { permitted: { token: DAI, amount: 123n }, spender: SPENDER, nonce: 9n, deadline: 1_750_000_000n },
    } as const;
    const d = decode('evm_typed_data', asJson(td));
    assert.deepEqual(d.action.effects, [{ type: 'approval', asset: DAI, spender: SPENDER, amount: 123n, expiry: 1_750_000_000 }]);
    assert.equal(await verifies(td as never, d.signingPayloads[0]!), true);
  });

  it('reads other typed data as typed_data, and rejects malformed typed data', async () => {
    const td = {
      domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
      types: { Person: [ { name: 'name', type: 'string' }, { name: 'wallet', type: 'address' } ], Mail: [ { name: 'from', type: 'Person' }, { name: 'to', type: 'Person' }, { name: 'contents', type: 'string' } ] },
      primaryType: 'Mail',
      message: { from: { name: 'Cow', wallet: BOB }, to: { name: 'Bob', wallet: SPENDER }, contents: 'Hello, Bob!' },
    } as const;
    const d = decode('evm_typed_data', td);
    assert.equal(d.action.kind, 'typed_data');
    assert.deepEqual(d.action.effects, []);
    assert.equal(await verifies(td as never, d.signingPayloads[0]!), true);
    decodeFailedWith(() => decode('evm_typed_data', { ...td, primaryType: 'Nope' }));
    decodeFailedWith(() => decode('evm_typed_data', { ...td, message: { from: { name: 'x', wallet: 'not-an-address' } } }));
    decodeFailedWith(() => decode('evm_typed_data', '{not json'));
    decodeFailedWith(() => decode('evm_typed_data', td, { chainId: 5 }), /chainId/);
  });
});

describe('EIP-712: what is shown is what is signed', () => {
  const permit = {
    domain: { name: 'USD Coin', version: '2', chainId: 1, verifyingContract: USDC },
    types: permitTypes,
    primaryType: 'Permit',
    message: { owner: account.address, spender: SPENDER, value: '5', nonce: '0', deadline: '1' },
  };

  it('rejects a domain whose fields the declared EIP712Domain type leaves out of the hash', () => {
    const EIP712Domain = [ { name: 'name', type: 'string' }, { name: 'version', type: 'string' }, { name: 'chainId', type: 'uint256' } ];
    decodeFailedWith(() => decode('evm_typed_data', { ...permit, types: { ...permit.types, EIP712Domain } }), /EIP712Domain/);
    decodeFailedWith(() => decode('evm_typed_data', { ...permit, domain: { ...permit.domain, extra: 'x' } }));
    const full = [...EIP712Domain, { name: 'verifyingContract', type: 'address' }];
    assert.equal(decode('evm_typed_data', { ...permit, types: { ...permit.types, EIP712Domain: full } }).action.kind, 'token_approval');
  });

  it('a permit-named type with non-standard fields is unknown, not guessed at', () => {
    const types = { Permit: [ { name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' } ] };
    const d = decode('evm_typed_data', { ...permit, types });
    assert.equal(d.action.kind, 'unknown');
    assert.deepEqual(d.action.effects, []);
  });

  it('recognises PermitWitnessTransferFrom (UniswapX-style orders)', () => {
    const td = {
      domain: permit2Domain,
      types: {
        PermitWitnessTransferFrom: [ { name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }, { name: 'witness', type: 'Order' } ],
        TokenPermissions: tokenPermissions,
        Order: [ { name: 'minOut', type: 'uint256' } ],
      },
      primaryType: 'PermitWitnessTransferFrom',
      message: { permitted: { token: USDC, amount: '77' }, spender: SPENDER, nonce: '1', deadline: '2', witness: { minOut: '5' } },
    };
    const d = decode('evm_typed_data', td);
    assert.equal(d.action.kind, 'token_approval');
    assert.deepEqual(d.action.effects, [{ type: 'approval', asset: USDC, spender: SPENDER, amount: 77n, expiry: 2 }]);
  });
});

describe('EIP-191 messages', () => {
  it('hashes text and raw hex messages as personal_sign does', async () => {
    const text = decode('evm_message', 'hello fleetkey', { from: account.address });
    assert.equal(text.action.kind, 'message');
    assert.deepEqual(text.action.message, { hex: '0x68656c6c6f20666c6565746b6579', text: 'hello fleetkey' });
    const sig = await account.sign({ hash: hexOf(text.signingPayloads[0]!) });
    assert.equal(await verifyMessage({ address: account.address, message: 'hello fleetkey', signature: sig }), true);

    const raw = decode('evm_message', { raw: '0xdeadbeef' });
    const sig2 = await account.sign({ hash: hexOf(raw.signingPayloads[0]!) });
    assert.equal(await verifyMessage({ address: account.address, message: { raw: '0xdeadbeef' }, signature: sig2 }), true);
    assert.deepEqual(decode('evm_message', '0xdeadbeef').signingPayloads, raw.signingPayloads);
  });
});
