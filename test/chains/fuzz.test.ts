/**
 * Property: whatever the input, decode either returns a well-formed Decoded or throws a FleetkeyError
 * with code 'decode_failed' raised on purpose (not by decode()'s last-resort catch). Random bytes,
 * arbitrary JSON, and valid payloads of every kind mutated byte by byte. FUZZ_RUNS=5000 for a long run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as btc from '@scure/btc-signer';
import { createNoopSigner, getAddressDecoder, pipe, createTransactionMessage, setTransactionMessageFeePayer, setTransactionMessageLifetimeUsingBlockhash, blockhash, appendTransactionMessageInstructions, compileTransaction, getBase64EncodedWireTransaction, type Address } from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';
import { getTransferCheckedInstruction } from '@solana-program/token';
import { encodeFunctionData, erc20Abi, serializeTransaction } from 'viem';
import { decode, PAYLOAD_KINDS } from '../../src/chains/index.ts';
import type { Decoded, PayloadKind } from '../../src/chains/types.ts';
import { FleetkeyError } from '../../src/errors.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 250);

function check(kind: PayloadKind, payload: unknown, opts?: Parameters<typeof decode>[2]): void {
  let d: Decoded;
  try {
    d = decode(kind, payload, opts);
  } catch (e) {
    if (!(e instanceof FleetkeyError && e.code === 'decode_failed')) throw e;
    // every failure is an anticipated one with its own message, not decode()'s last-resort catch
    assert.doesNotMatch(e.message, /could not be decoded/, JSON.stringify(e.details));
    return;
  }
  assert.ok(Array.isArray(d.action.effects));
  for (const e of d.action.effects) assert.ok(typeof e.amount === 'bigint' && e.amount >= 0n);
  assert.ok(d.signingPayloads.every((p) => p instanceof Uint8Array));
  assert.equal(d.signing?.length ?? d.signingPayloads.length, d.signingPayloads.length);
  if (d.action.chain === 'ethereum') assert.ok(d.signingPayloads.every((p) => p.length === 32));
}

// ---- one valid payload per binary kind, to mutate ----
const BOB = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const evmTx = Buffer.from(
  serializeTransaction({ type: 'eip1559', chainId: 1, nonce: 1, gas: 60_000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: BOB, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [BOB, 5n] }) }).slice(2),
  'hex',
);
const sol = (() => {
  const a = (n: number) => getAddressDecoder().decode(new Uint8Array(32).fill(n)) as Address;
  const m = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayer(a(1), m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash('EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N'), lastValidBlockHeight: 1n }, m),
    (m) =>
      appendTransactionMessageInstructions(
        [
          getTransferSolInstruction({ source: createNoopSigner(a(1)), destination: a(2), amount: 5n }),
          getTransferCheckedInstruction({ source: a(3), mint: a(4), destination: a(5), authority: createNoopSigner(a(1)), amount: 7n, decimals: 6 }),
        ],
        m,
      ),
  );
  return Buffer.from(getBase64EncodedWireTransaction(compileTransaction(m)), 'base64');
})();
const psbt = (() => {
  const pub = secp256k1.getPublicKey(new Uint8Array(32).fill(2), true);
  const tx = new btc.Transaction();
  tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: btc.p2wpkh(pub).script, amount: 10_000n } });
  tx.addInput({ txid: new Uint8Array(32).fill(2), index: 0, witnessUtxo: { script: btc.p2tr(pub.subarray(1)).script, amount: 10_000n }, tapInternalKey: pub.subarray(1) });
  tx.addOutputAddress(btc.p2wpkh(pub).address!, 9_000n);
  return Buffer.from(tx.toPSBT());
})();

/** Mutations: overwrite bytes, truncate, or insert bytes. */
const mutated = (base: Buffer) =>
  fc.oneof(
    fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
      const b = Buffer.from(base);
      for (const [i, v] of edits) b[i] = v;
      return b;
    }),
    fc.nat(base.length - 1).map((n) => base.subarray(0, n)),
    fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, ins]) => Buffer.concat([base.subarray(0, i), ins, base.subarray(i)])),
  );

describe('fuzz: decode only ever throws decode_failed', () => {
  it('random bytes for every kind, as hex and as base64', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PAYLOAD_KINDS), fc.uint8Array({ maxLength: 300 }), fc.boolean(), (kind, bytes, asHex) => {
        check(kind, asHex ? `0x${Buffer.from(bytes).toString('hex')}` : Buffer.from(bytes).toString('base64'));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('arbitrary JSON values and options for every kind', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PAYLOAD_KINDS), fc.jsonValue({ maxDepth: 3 }), fc.dictionary(fc.constantFrom('chainId', 'from', 'network', 'x'), fc.jsonValue({ maxDepth: 0 })), (kind, payload, opts) => {
        check(kind, payload, opts as never);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('mutated EVM transactions', () => {
    fc.assert(fc.property(mutated(evmTx), (b) => check('evm_transaction', `0x${b.toString('hex')}`)), { numRuns: RUNS });
  });

  it('mutated Solana transactions', () => {
    fc.assert(fc.property(mutated(sol), (b) => check('solana_transaction', b.toString('base64'))), { numRuns: RUNS });
  });

  it('mutated PSBTs', () => {
    fc.assert(fc.property(mutated(psbt), (b) => check('bitcoin_psbt', b.toString('base64'))), { numRuns: RUNS });
  });

  it('mutated JSON transaction requests and typed data', () => {
    const request = { to: BOB, value: '1', chainId: '1', nonce: '0', gas: '21000', maxFeePerGas: '2', maxPriorityFeePerGas: '1' };
    const permit = {
      domain: { name: 'Permit2', chainId: 1, verifyingContract: '0x000000000022D473030F116dDEE9F6B43aC78BA3' },
      types: { PermitTransferFrom: [ { name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' } ], TokenPermissions: [ { name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' } ] },
      primaryType: 'PermitTransferFrom',
      message: { permitted: { token: BOB, amount: '1' }, spender: BOB, nonce: '0', deadline: '1' },
    };
    const replaceAt = (obj: Record<string, unknown>, path: string[], v: unknown): Record<string, unknown> => {
      const [head, ...rest] = path as [string, ...string[]];
      const cur = obj[head];
      return { ...obj, [head]: rest.length && cur && typeof cur === 'object' && !Array.isArray(cur) ? replaceAt(cur as Record<string, unknown>, rest, v) : v };
    };
    const value = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constant(undefined), fc.bigInt().map(String), fc.uint8Array({ maxLength: 40 }).map((b) => `0x${Buffer.from(b).toString("hex")}`));
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(request)), value, (k, v) => check('evm_transaction', { ...request, [k]: v })),
      { numRuns: RUNS },
    );
    const paths = [['domain', 'name'], ['domain', 'chainId'], ['domain', 'verifyingContract'], ['primaryType'], ['message', 'permitted', 'amount'], ['message', 'permitted', 'token'], ['message', 'spender'], ['message', 'deadline'], ['types', 'TokenPermissions'], ['message', 'permitted']];
    fc.assert(
      fc.property(fc.constantFrom(...paths), value, (path, v) => check('evm_typed_data', replaceAt(permit, path, v))),
      { numRuns: RUNS },
    );
  });
});
