/**
 * The SDK as an agent uses it: its own session key, an owner-issued grant, no admin token. A viem
 * account built on the agent signs messages, typed data and transactions that viem verifies; what
 * the wallet's policy forbids, or a raw hash, is refused with a FleetkeyApiError.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseEther, recoverTransactionAddress, verifyMessage, verifyTypedData, type Hex } from 'viem';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, createAgent, createClient, toViemAccount } from 'fleetkey/sdk';
import { startCluster } from '../helpers/cluster.ts';
import { grant, publish } from '../helpers/agent.ts';

const TO = '0x2222222222222222222222222222222222222222';

describe('SDK agent: session key + grant, viem account', { timeout: 300_000 }, () => {
  let c: LocalCluster;
  let walletId: string;
  let address: string;
  const secretKey = ed25519.utils.randomSecretKey();

  before(async () => {
    c = await startCluster(3);
    const admin = createClient({ url: c.info.url, token: c.info.token });
    const w = await admin.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
    walletId = w.id;
    address = w.address;
    const policy = {
      version: 1,
      assets: { ETH: { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 } },
      rules: [
        { type: 'allow', chainIds: ['8453'], to: [TO] },
        { type: 'allow', kinds: ['message', 'typed_data'] },
        { type: 'tx_cap', asset: 'ETH', max: '100000000000000000' },
      ],
    };
    const r = await publish(c, { kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  after(async () => c?.stop());

  test('a viem account on an agent signs what the policy allows, and nothing else', async () => {
    const g = await grant(c, { secret: secretKey, publicKey: bytesToHex(ed25519.getPublicKey(secretKey)) }, [walletId]);
    const agent = createAgent({ url: c.info.url, grantId: g, secretKey });
    const account = await toViemAccount(agent, walletId);
    assert.equal(account.address.toLowerCase(), address.toLowerCase());
    const sig = await account.signMessage({ message: 'hello from an agent' });
    assert.ok(await verifyMessage({ address: account.address, message: 'hello from an agent', signature: sig }));
    const typedData = { domain: { name: 'Test', version: '1', chainId: 8453 }, types: { Mail: [{ name: 'contents', type: 'string' }] }, primaryType: 'Mail' as const, message: { contents: 'hi' } };
    const tsig = await account.signTypedData(typedData);
    assert.ok(await verifyTypedData({ address: account.address, ...typedData, signature: tsig }));
    const tx = { type: 'eip1559' as const, chainId: 8453, nonce: 0, to: TO as Hex, value: parseEther('0.05'), gas: 21000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n };
    const signed = await account.signTransaction(tx);
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as `0x02${string}` })).toLowerCase(), address.toLowerCase());
    await assert.rejects(account.signTransaction({ ...tx, value: parseEther('1') }), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    await assert.rejects(account.signTransaction({ ...tx, to: '0x000000000000000000000000000000000000dEaD' }), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    await assert.rejects(account.sign!({ hash: `0x${'11'.repeat(32)}` }), (e: unknown) => (e as { code?: string }).code === 'raw_signing_forbidden');
    // Another key cannot use the grant.
    const thief = createAgent({ url: c.info.url, grantId: g, secretKey: ed25519.utils.randomSecretKey() });
    await assert.rejects(thief.request(walletId, { kind: 'evm_message', data: { text: 'x' } }), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'bad_signature');
  });

  test('a capped request while a share holder is down: 503 without retries; with them, signed once the holder is back', async () => {
    // A rolling cap: the policy counts strictly, so every share holder must count the transfer first.
    const policy = {
      version: 2,
      assets: { ETH: { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 } },
      rules: [
        { type: 'allow', chainIds: ['8453'], to: [TO] },
        { type: 'tx_cap', asset: 'ETH', max: '100000000000000000' },
        { type: 'window_cap', asset: 'ETH', max: '1000000000000000000', window: '24h' },
      ],
    };
    assert.equal((await publish(c, { kind: 'policy', walletId, version: 2, policy, issuedAt: Date.now() })).status, 200);
    const g = await grant(c, { secret: secretKey, publicKey: bytesToHex(ed25519.getPublicKey(secretKey)) }, [walletId]);
    const tx = (nonce: number) => ({ type: 'eip1559' as const, chainId: 8453, nonce, to: TO as Hex, value: parseEther('0.05'), gas: 21000n, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n });
    await c.kill('signer-3');
    const impatient = await toViemAccount(createAgent({ url: c.info.url, grantId: g, secretKey, unavailableRetryMs: 0 }), walletId);
    await assert.rejects(impatient.signTransaction(tx(1)), (e: unknown) => e instanceof FleetkeyApiError && e.status === 503 && e.code === 'not_enough_signers');
    const patient = await toViemAccount(createAgent({ url: c.info.url, grantId: g, secretKey, unavailableRetryMs: 60_000 }), walletId);
    const back = new Promise<void>((resolve, reject) => setTimeout(() => c.restart('signer-3').then(resolve, reject), 1500));
    const signed = await patient.signTransaction(tx(2));
    await back;
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as `0x02${string}` })).toLowerCase(), address.toLowerCase());
  });
});
