/**
 * @solana/kit signers on the agent path, against a real cluster: kit's own signTransactionMessageWithSigners
 * signs a SOL transfer through the fleetkey signer, and the signature verifies with @solana/kit and with
 * noble over the compiled message bytes; kit's signOffchainMessageWithSigners signs an off-chain message
 * that kit's verifier accepts. The policy's refusal and bare (non off-chain) bytes keep fleetkey's code.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { address, appendTransactionMessageInstruction, blockhash, compileTransaction, createSignableMessage, createTransactionMessage, getAddressDecoder, getPublicKeyFromAddress, pipe, setTransactionMessageFeePayerSigner, setTransactionMessageLifetimeUsingBlockhash, signOffchainMessageWithSigners, signTransactionMessageWithSigners, verifyOffchainMessageEnvelope, verifySignature, assertIsFullySignedTransaction, type Address } from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, createAgent, createClient } from 'fleetkey/sdk';
import { toSolanaSigner, type FleetkeySolanaSigner } from '../../src/sdk/solana-kit.ts';
import { startCluster } from '../helpers/cluster.ts';
import { SOL_ASSETS, SOL_DEST, grant, newAgent, publish } from '../helpers/agent.ts';

describe('@solana/kit TransactionPartialSigner + MessagePartialSigner over the agent path', { timeout: 300_000 }, () => {
  let c: LocalCluster | undefined;
  let walletId: string;
  let publicKey: Uint8Array;
  const agent = newAgent();

  before(async () => {
    c = await startCluster(3);
    const w = await createClient({ url: c.info.url, token: c.info.token }).createWallet({ scheme: 'ed25519', threshold: 2, signers: 3 });
    walletId = w.id;
    publicKey = hexToBytes(w.publicKey.replace(/^0x/, ''));
    const policy = {
      version: 1,
      assets: SOL_ASSETS,
      rules: [
        { type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] },
        { type: 'allow', kinds: ['message'] },
        { type: 'tx_cap', asset: 'SOL', max: '500000000' },
      ],
    };
    assert.equal((await publish(c, { kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() })).status, 200);
  });
  after(async () => c?.stop());

  const transfer = (signer: FleetkeySolanaSigner, lamports: bigint, to: Address = SOL_DEST) =>
    pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayerSigner(signer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash(getAddressDecoder().decode(new Uint8Array(32).fill(7))), lastValidBlockHeight: 100n }, m),
      (m) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: signer, destination: to, amount: lamports }), m),
    );

  test('kit signs a transfer and an off-chain message through fleetkey; both verify; refusals keep their code', async () => {
    const g = await grant(c!, agent, [walletId]);
    const signer = await toSolanaSigner(createAgent({ url: c!.info.url, grantId: g, secretKey: agent.secret }), walletId);

    const message = transfer(signer, 100_000_000n);
    const signed = await signTransactionMessageWithSigners(message);
    assertIsFullySignedTransaction(signed);
    const signature = signed.signatures[signer.address]!;
    const messageBytes = compileTransaction(message).messageBytes as unknown as Uint8Array;
    assert.deepEqual(new Uint8Array(signed.messageBytes), new Uint8Array(messageBytes), 'the signed transaction carries the compiled message');
    assert.ok(await verifySignature(await getPublicKeyFromAddress(signer.address), signature, messageBytes), '@solana/kit verifies it');
    assert.ok(ed25519.verify(signature as Uint8Array, messageBytes, publicKey, { zip215: false }), 'noble verifies it');
    assert.ok(!ed25519.verify(signature as Uint8Array, compileTransaction(transfer(signer, 100_000_001n)).messageBytes as unknown as Uint8Array, publicKey), 'and over nothing else');

    const envelope = await signOffchainMessageWithSigners({ version: 1, requiredSignatories: [signer], content: 'hello from a kit agent' });
    await verifyOffchainMessageEnvelope(envelope);

    await assert.rejects(signTransactionMessageWithSigners(transfer(signer, 600_000_000n)), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    await assert.rejects(signTransactionMessageWithSigners(transfer(signer, 1n, address('11111111111111111111111111111112'))), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    // Bare bytes could be a transaction message: never signed as a message.
    await assert.rejects(signer.signMessages([createSignableMessage(messageBytes)]), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'decode_failed');
  });
});
