/**
 * Issue #15 items 1 and 2 through POST /v1/requests on a real cluster (3 signer processes, 2-of-3):
 * under a policy that allows only messages, an agent cannot get a transaction signed by calling it a
 * message — not an EVM transaction's digest (ECDSA), a taproot sighash (BIP340) or a Solana
 * transaction message (Ed25519) — and its messages are signed in forms that verify as messages and
 * not as the transaction. A PSBT input with a sighash type other than DEFAULT / ALL is refused.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import * as btc from '@scure/btc-signer';
import { keccak256, parseSignature, recoverTransactionAddress, serializeTransaction, verifyMessage, type Hex } from 'viem';
import { decode } from '../../src/chains/index.ts';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import type { Payload } from '../../src/control/index.ts';
import { api, call, startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, solTransfer, type Agent } from '../helpers/agent.ts';

type Wallet = { id: string; address: string; publicKey: string; scheme: string; participants: { index: number; nodeId: string }[] };

describe('raw messages and partial sighashes under a message-only policy (3 signer processes)', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let agent: Agent;
  let g: string;
  const w: Record<'ecdsa' | 'schnorr' | 'ed25519', Wallet> = {} as never;
  const send = (wallet: Wallet, payload: Payload) => A('POST', '/v1/requests', request(agent, g, wallet.id, payload));

  before(async () => {
    c = await startCluster(3);
    A = api(c);
    for (const [k, scheme] of [['ecdsa', 'ecdsa-secp256k1'], ['schnorr', 'secp256k1-schnorr'], ['ed25519', 'ed25519']] as const) {
      const r = await A('POST', '/v1/wallets', { scheme, threshold: 2, signers: 3 });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      w[k] = r.body;
      const p = await publish(c, { kind: 'policy', walletId: r.body.id, version: 1, policy: { version: 1, rules: [{ type: 'allow', kinds: ['message'] }] }, issuedAt: Date.now() });
      assert.equal(p.status, 200, JSON.stringify(p.body));
    }
    agent = newAgent();
    g = await grant(c, agent, Object.values(w).map((x) => x.id));
  });
  after(async () => c?.stop());

  test('ECDSA: the digest of an unsigned EIP-1559 transaction is refused as raw bytes; as an EIP-191 message its signature is not the transaction\'s', async () => {
    const tx = { type: 'eip1559', chainId: 1, nonce: 0, to: `0x${'ab'.repeat(20)}`, value: 10n ** 18n, gas: 21000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n } as const;
    const digest = keccak256(serializeTransaction(tx));
    const raw = await send(w.ecdsa, { kind: 'raw_message', data: digest.slice(2) });
    assert.equal(raw.status, 403, JSON.stringify(raw.body));
    assert.equal(raw.body.error.code, 'raw_signing_forbidden');
    assert.equal(raw.body.signature, undefined);

    const msg = await send(w.ecdsa, { kind: 'evm_message', data: { raw: digest } });
    assert.equal(msg.status, 200, JSON.stringify(msg.body));
    const signature = msg.body.signature as Hex;
    assert.ok(await verifyMessage({ address: w.ecdsa.address as Hex, message: { raw: digest }, signature }), 'a valid EIP-191 signature');
    const asTx = await recoverTransactionAddress({ serializedTransaction: serializeTransaction(tx, parseSignature(signature)) });
    assert.notEqual(asTx.toLowerCase(), w.ecdsa.address.toLowerCase(), 'not a signature of the transaction');
  });

  test('BIP340: a taproot sighash is refused as raw bytes; as a BIP-322 message its signature does not verify over the sighash', async () => {
    const key = hexToBytes(w.schnorr.publicKey);
    const own = btc.OutScript.encode(btc.Address(btc.NETWORK).decode(w.schnorr.address));
    const tx = new btc.Transaction();
    tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: own, amount: 100_000n } });
    tx.addOutputAddress(btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(8))).address!, 99_000n);
    const sighash = decode('bitcoin_psbt', Buffer.from(tx.toPSBT()).toString('base64'), { from: w.schnorr.address }).signingPayloads[0];
    const raw = await send(w.schnorr, { kind: 'raw_message', data: bytesToHex(sighash) });
    assert.equal(raw.status, 403, JSON.stringify(raw.body));
    assert.equal(raw.body.error.code, 'raw_signing_forbidden');

    const msg = await send(w.schnorr, { kind: 'bitcoin_message', data: { raw: bytesToHex(sighash) } });
    assert.equal(msg.status, 200, JSON.stringify(msg.body));
    const sig = hexToBytes(msg.body.signature);
    assert.ok(schnorr.verify(sig, decode('bitcoin_message', { raw: bytesToHex(sighash) }, { from: w.schnorr.address }).signingPayloads[0], key), 'a valid BIP-322 signature');
    assert.ok(!schnorr.verify(sig, sighash, key), 'not a signature of the spend');
    assert.equal(msg.body.bip322, Buffer.concat([Buffer.of(1, 64), sig]).toString('base64'), 'the BIP-322 simple signature');
  });

  test('Ed25519: a Solana transaction message is refused as raw bytes; as an off-chain message its signature does not verify over the transaction', async () => {
    const key = hexToBytes(w.ed25519.publicKey);
    const wire = solTransfer(w.ed25519.address, 10n ** 9n);
    const message = decode('solana_transaction', wire, { from: w.ed25519.address }).signingPayloads[0];
    const raw = await send(w.ed25519, { kind: 'raw_message', data: bytesToHex(message) });
    assert.equal(raw.status, 403, JSON.stringify(raw.body));
    assert.equal(raw.body.error.code, 'raw_signing_forbidden');

    const text = Buffer.from(message).toString('base64');
    const msg = await send(w.ed25519, { kind: 'solana_message', data: text });
    assert.equal(msg.status, 200, JSON.stringify(msg.body));
    const sig = hexToBytes(msg.body.signature);
    const offchain = decode('solana_message', text, { from: w.ed25519.address }).signingPayloads[0];
    assert.ok(ed25519.verify(sig, offchain, key, { zip215: false }), 'a valid off-chain message signature');
    assert.ok(!ed25519.verify(sig, message, key, { zip215: false }), 'not a signature of the transaction');
    assert.equal(msg.body.offchainMessage, Buffer.from(offchain).toString('base64'), 'the signed off-chain message comes back');
  });

  test('a compromised server that sends the raw requests to every signer directly gets no share from any', async () => {
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    const tx = serializeTransaction({ type: 'eip1559', chainId: 1, nonce: 1, to: `0x${'cd'.repeat(20)}`, value: 10n ** 18n, gas: 21000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n });
    const own = btc.OutScript.encode(btc.Address(btc.NETWORK).decode(w.schnorr.address));
    const spend = new btc.Transaction();
    spend.addInput({ txid: new Uint8Array(32).fill(3), index: 0, witnessUtxo: { script: own, amount: 100_000n } });
    spend.addOutputAddress(btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(8))).address!, 99_000n);
    const targets: [Wallet, Uint8Array][] = [
      [w.ecdsa, hexToBytes(keccak256(tx).slice(2))],
      [w.schnorr, decode('bitcoin_psbt', Buffer.from(spend.toPSBT()).toString('base64'), { from: w.schnorr.address }).signingPayloads[0]],
      [w.ed25519, decode('solana_transaction', solTransfer(w.ed25519.address, 10n ** 9n, undefined, 7), { from: w.ed25519.address }).signingPayloads[0]],
    ];
    for (const [wallet, bytes] of targets) {
      const signed = request(agent, g, wallet.id, { kind: 'raw_message', data: bytesToHex(bytes) });
      for (const [i, node] of c.info.signers.entries()) {
        const me = wallet.participants.find((p) => p.nodeId === node.nodeId)!;
        const other = wallet.participants.find((p) => p.nodeId !== node.nodeId)!;
        const r =
          wallet.scheme === 'ecdsa-secp256k1'
            ? await call(node.url, token, 'POST', '/v1/sessions', { session: `sess_raw_${i}_${Date.now()}`, kind: 'sign', walletId: wallet.id, scheme: wallet.scheme, threshold: 2, participants: wallet.participants, epoch: 0, signers: [me.index, other.index], messageHash: bytesToHex(bytes), auth: { agent: signed } })
            : await call(node.url, token, 'POST', '/v1/sign', { requestId: signed.request.requestId, walletId: wallet.id, epoch: 0, message: bytesToHex(bytes), nonceId: 'x', commitments: {}, auth: { agent: signed } });
        assert.equal(r.body.error?.code, 'raw_signing_forbidden', `${wallet.scheme} at ${node.nodeId}: ${JSON.stringify(r.body)}`);
      }
    }
  });

  test('a message of another wallet scheme is refused (the decoder cannot even read the wallet as its signer)', async () => {
    const r = await send(w.ed25519, { kind: 'bitcoin_message', data: 'gm' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'decode_failed');
  });

  test('a PSBT whose input signs with SIGHASH_SINGLE, NONE or ANYONECANPAY is refused (unsupported_sighash) even when the policy allows spending', async () => {
    const p = await publish(c, { kind: 'policy', walletId: w.schnorr.id, version: 2, policy: { version: 2, rules: [{ type: 'allow', kinds: ['message', 'native_transfer', 'unknown'] }] }, issuedAt: Date.now() });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const own = btc.OutScript.encode(btc.Address(btc.NETWORK).decode(w.schnorr.address));
    const psbt = (sighashType: number) => {
      const tx = new btc.Transaction({ allowUnknownOutputs: true });
      tx.addInput({ txid: new Uint8Array(32).fill(2), index: 0, witnessUtxo: { script: own, amount: 100_000n }, sighashType });
      tx.addOutputAddress(btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(8))).address!, 60_000n);
      tx.addOutput({ script: own, amount: 39_000n }); // change: what SIGHASH_SINGLE on input 0 leaves uncommitted
      return Buffer.from(tx.toPSBT()).toString('base64');
    };
    for (const t of [btc.SigHash.SINGLE, btc.SigHash.NONE, btc.SigHash.ALL_ANYONECANPAY, btc.SigHash.SINGLE_ANYONECANPAY]) {
      const r = await send(w.schnorr, { kind: 'bitcoin_psbt', data: psbt(t) });
      assert.equal(r.status, 403, `0x${t.toString(16)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'unsupported_sighash', `0x${t.toString(16)}`);
    }
    const ok = await send(w.schnorr, { kind: 'bitcoin_psbt', data: psbt(btc.SigHash.DEFAULT) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
});
