import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  address,
  appendTransactionMessageInstruction,
  appendTransactionMessageInstructions,
  blockhash,
  compileTransaction,
  compressTransactionMessageUsingAddressLookupTables,
  createKeyPairFromPrivateKeyBytes,
  createNoopSigner,
  createTransactionMessage,
  getAddressDecoder,
  getBase64EncodedWireTransaction,
  pipe,
  setTransactionMessageComputeUnitLimit,
  setTransactionMessageComputeUnitPrice,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  setTransactionMessageLifetimeUsingDurableNonce,
  setTransactionMessagePriorityFeeLamports,
  signTransaction,
  AccountRole,
  type Address,
  type Instruction,
} from '@solana/kit';
import { getTransferSolInstruction, SYSTEM_PROGRAM_ADDRESS } from '@solana-program/system';
import {
  getApproveCheckedInstruction,
  getApproveInstruction,
  getCreateAssociatedTokenIdempotentInstruction,
  getSetAuthorityInstruction,
  getTransferCheckedInstruction,
  getTransferInstruction,
  AuthorityType,
  TOKEN_PROGRAM_ADDRESS,
  ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
} from '@solana-program/token';
import { decode } from '../../src/chains/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const seed = new Uint8Array(32).fill(7);
const payer = getAddressDecoder().decode(ed25519.getPublicKey(seed)) as Address;
const payerSigner = createNoopSigner(payer);
const other = (n: number) => getAddressDecoder().decode(new Uint8Array(32).fill(n)) as Address;
const BOB = other(2);
const MINT = address('EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v');
const SOURCE_ATA = other(3);
const DEST_ATA = other(4);
const DELEGATE = other(5);
const COMPUTE_BUDGET = 'ComputeBudget111111111111111111111111111111';

function build(instructions: Instruction[], opts: { version?: 0 | 'legacy'; limit?: number; price?: bigint } = {}) {
  let msg = pipe(
    createTransactionMessage({ version: opts.version ?? 0 }),
    (m) => setTransactionMessageFeePayer(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash('EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N'), lastValidBlockHeight: 100n }, m),
  );
  if (opts.limit !== undefined) msg = setTransactionMessageComputeUnitLimit(opts.limit, msg);
  if (opts.price !== undefined) msg = setTransactionMessageComputeUnitPrice(opts.price, msg);
  const withIxs = appendTransactionMessageInstructions(instructions, msg);
  const tx = compileTransaction(withIxs);
  return { tx, wire: getBase64EncodedWireTransaction(tx) as string };
}

describe('Solana transactions', () => {
  it('decodes a SOL transfer with compute budget, and the message bytes are what Ed25519 signs', async () => {
    const { tx, wire } = build([getTransferSolInstruction({ source: payerSigner, destination: BOB, amount: 1_500_000n })], { limit: 1000, price: 2_000_000n });
    const d = decode('solana_transaction', wire, { network: 'mainnet-beta' });
    assert.equal(d.action.chain, 'solana');
    assert.equal(d.action.chainId, 'mainnet-beta');
    assert.equal(d.action.kind, 'native_transfer');
    assert.equal(d.action.from, payer);
    assert.equal(d.action.to, BOB);
    assert.equal(d.action.contract, SYSTEM_PROGRAM_ADDRESS);
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: 'native', to: BOB, amount: 1_500_000n }]);
    assert.deepEqual(new Set(d.action.programs), new Set([COMPUTE_BUDGET, SYSTEM_PROGRAM_ADDRESS]));
    assert.deepEqual(new Set(d.action.calls?.map((c) => c.function.selector)), new Set(['computeBudget:SetComputeUnitLimit', 'computeBudget:SetComputeUnitPrice', 'system:TransferSol']));
    assert.equal(d.action.fee, 5000n + 2000n); // 1 signature + 2 lamports/CU × 1000 CU
    assert.deepEqual(d.signing, [{ scheme: 'ed25519' }]);

    const message = d.signingPayloads[0]!;
    assert.deepEqual(message, Uint8Array.from(tx.messageBytes));
    const signature = ed25519.sign(message, seed);
    assert.equal(ed25519.verify(signature, message, ed25519.getPublicKey(seed)), true);
    // kit's own signer produces the same (deterministic) signature over the same bytes
    const keyPair = await createKeyPairFromPrivateKeyBytes(seed);
    const signed = await signTransaction([keyPair], tx);
    assert.deepEqual(Uint8Array.from(signed.signatures[payer]!), signature);
  });

  it('decodes SPL TransferChecked (with ATA creation) as a token transfer of the mint', () => {
    const { wire } = build(
      [
        getCreateAssociatedTokenIdempotentInstruction({ payer: payerSigner, ata: DEST_ATA, owner: BOB, mint: MINT }),
        getTransferCheckedInstruction({ source: SOURCE_ATA, mint: MINT, destination: DEST_ATA, authority: payerSigner, amount: 2_500_000n, decimals: 6 }),
      ],
      { version: 'legacy' },
    );
    const d = decode('solana_transaction', wire, { from: payer });
    assert.equal(d.action.kind, 'token_transfer');
    assert.equal(d.action.to, DEST_ATA);
    assert.equal(d.action.contract, TOKEN_PROGRAM_ADDRESS);
    assert.equal(d.action.function?.selector, 'token:TransferChecked');
    assert.deepEqual(d.action.calls?.map((c) => c.function.selector), ['associatedToken:CreateAssociatedTokenIdempotent', 'token:TransferChecked']);
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: MINT, to: DEST_ATA, amount: 2_500_000n, from: SOURCE_ATA }]);
    assert.deepEqual(d.action.programs, [ASSOCIATED_TOKEN_PROGRAM_ADDRESS, TOKEN_PROGRAM_ADDRESS]);
    assert.equal(d.action.calls?.length, 2);
    assert.equal(d.action.fee, 5000n); // no priority fee
  });

  it('decodes SPL Transfer (no mint) with an unknown asset, and Approve / ApproveChecked as approvals', () => {
    const t = decode('solana_transaction', build([getTransferInstruction({ source: SOURCE_ATA, destination: DEST_ATA, authority: payerSigner, amount: 42n })]).wire);
    assert.equal(t.action.kind, 'token_transfer');
    assert.deepEqual(t.action.effects, [{ type: 'transfer', asset: 'unknown', to: DEST_ATA, amount: 42n, from: SOURCE_ATA }]);
    assert.match(t.action.notes?.join(' ') ?? '', /names no mint/);

    const a = decode('solana_transaction', build([getApproveInstruction({ source: SOURCE_ATA, delegate: DELEGATE, owner: payerSigner, amount: 9_000n })]).wire);
    assert.equal(a.action.kind, 'token_approval');
    assert.equal(a.action.to, DELEGATE);
    assert.deepEqual(a.action.effects, [{ type: 'approval', asset: 'unknown', spender: DELEGATE, amount: 9_000n }]);

    const c = decode('solana_transaction', build([getApproveCheckedInstruction({ source: SOURCE_ATA, mint: MINT, delegate: DELEGATE, owner: payerSigner, amount: 5n, decimals: 6 })]).wire);
    assert.deepEqual(c.action.effects, [{ type: 'approval', asset: MINT, spender: DELEGATE, amount: 5n }]);
  });

  it('reads other instructions as contract calls to their program, and they lead the kind', () => {
    const program = other(9);
    const custom: Instruction = { programAddress: program, accounts: [{ address: payer, role: AccountRole.WRITABLE_SIGNER }], data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    const d = decode('solana_transaction', build([getTransferSolInstruction({ source: payerSigner, destination: BOB, amount: 1n }), custom]).wire);
    assert.equal(d.action.kind, 'contract_call');
    assert.equal(d.action.contract, program);
    assert.deepEqual(d.action.function, { selector: '0x0102030405060708' });
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: 'native', to: BOB, amount: 1n }]);
    assert.ok(d.action.programs?.includes(program));

    const auth = decode('solana_transaction', build([getSetAuthorityInstruction({ owned: SOURCE_ATA, owner: payerSigner, authorityType: AuthorityType.AccountOwner, newAuthority: BOB })]).wire);
    assert.equal(auth.action.kind, 'contract_call');
    assert.equal(auth.action.function?.name, 'token:SetAuthority');
  });

  it('decodes v1 messages (priority fee in the config), Token-2022 transfers and memos', () => {
    const TOKEN_2022 = address('TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb');
    const memo: Instruction = { programAddress: address('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr'), data: new TextEncoder().encode('invoice 42') };
    const msg = pipe(
      createTransactionMessage({ version: 1 }),
      (m) => setTransactionMessageFeePayer(payer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash('EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N'), lastValidBlockHeight: 1n }, m),
      (m) => setTransactionMessagePriorityFeeLamports(1234n, m),
      (m) =>
        appendTransactionMessageInstructions(
          [getTransferCheckedInstruction({ source: SOURCE_ATA, mint: MINT, destination: DEST_ATA, authority: payerSigner, amount: 7n, decimals: 6 }, { programAddress: TOKEN_2022 }), memo],
          m,
        ),
    );
    const d = decode('solana_transaction', getBase64EncodedWireTransaction(compileTransaction(msg)));
    assert.equal(d.action.kind, 'token_transfer');
    assert.equal(d.action.contract, TOKEN_2022);
    assert.deepEqual(d.action.effects, [{ type: 'transfer', asset: MINT, to: DEST_ATA, amount: 7n, from: SOURCE_ATA }]);
    assert.equal(d.action.fee, 5000n + 1234n);
    assert.deepEqual(d.action.calls?.[1]?.function.args, { text: 'invoice 42' });
    assert.match(d.action.notes!.join(' '), /Token-2022/);
  });

  it('notes a durable-nonce transaction (it does not expire with a blockhash)', () => {
    const msg = pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayer(payer, m),
      (m) => setTransactionMessageLifetimeUsingDurableNonce({ nonce: 'EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N' as never, nonceAccountAddress: other(12), nonceAuthorityAddress: payer }, m),
      (m) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: payerSigner, destination: BOB, amount: 3n }), m),
    );
    const d = decode('solana_transaction', getBase64EncodedWireTransaction(compileTransaction(msg)));
    assert.equal(d.action.kind, 'native_transfer');
    assert.equal(d.action.calls?.[0]?.function.selector, 'system:AdvanceNonceAccount');
    assert.match(d.action.notes!.join(' '), /durable nonce/);
  });

  it('reports a v0 message using address lookup tables as unknown', () => {
    const table = other(11);
    const base = pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayer(payer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash('EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N'), lastValidBlockHeight: 1n }, m),
      (m) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: payerSigner, destination: BOB, amount: 1n }), m),
    );
    const compressed = compressTransactionMessageUsingAddressLookupTables(base, { [table]: [BOB] });
    const d = decode('solana_transaction', getBase64EncodedWireTransaction(compileTransaction(compressed)));
    assert.equal(d.action.kind, 'unknown');
    assert.deepEqual(d.action.programs, [SYSTEM_PROGRAM_ADDRESS]);
    assert.match(d.action.notes?.join(' ') ?? '', new RegExp(table));
    assert.equal(d.signingPayloads.length, 1);
  });

  it('rejects a signer that is not in the message, trailing bytes and bad base64', () => {
    const { wire } = build([getTransferSolInstruction({ source: payerSigner, destination: BOB, amount: 1n })]);
    const isDecodeFailed = (e: unknown) => e instanceof FleetkeyError && e.code === 'decode_failed';
    assert.throws(() => decode('solana_transaction', wire, { from: BOB }), isDecodeFailed);
    const bytes = Buffer.from(wire, 'base64');
    assert.throws(() => decode('solana_transaction', Buffer.concat([bytes, Buffer.from([0])]).toString('base64')), isDecodeFailed);
    assert.throws(() => decode('solana_transaction', 'not base64!'), isDecodeFailed);
    assert.throws(() => decode('solana_transaction', bytes.subarray(0, 40).toString('base64')), isDecodeFailed);
  });
});
