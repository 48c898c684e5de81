/**
 * The ethers v6 signer on the agent path, against a real cluster and a real Hardhat node: ethers'
 * own sendTransaction fills and broadcasts a transfer that the chain mines with the exact balance
 * change; ethers' verifyMessage / verifyTypedData recover the wallet's address; what the policy
 * refuses surfaces as fleetkey's code, and nothing reaches the chain.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { JsonRpcProvider, Transaction, Wallet, parseEther, verifyMessage, verifyTypedData } from 'ethers';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, createAgent, createClient } from 'fleetkey/sdk';
import { toEthersSigner } from '../../src/sdk/ethers.ts';
import { startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, publish } from '../helpers/agent.ts';
import { HARDHAT_KEY_0, startHardhat, stopProcess } from '../helpers/hardhat.ts';

const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'; // Hardhat's account #1

describe('ethers v6 Signer over the agent path, on Hardhat', { timeout: 600_000 }, () => {
  let node: Awaited<ReturnType<typeof startHardhat>> | undefined;
  let c: LocalCluster | undefined;
  let provider: JsonRpcProvider;
  let walletId: string;
  let address: string;
  const agent = newAgent();

  before(async () => {
    await Promise.all([startHardhat().then((n) => (node = n)), startCluster(3).then((x) => (c = x))]);
    // cacheTimeout -1: ethers otherwise answers an identical call made within 250 ms from its cache, so a
    // balance read right after the receipt could be the one read before the transfer (seen on an idle machine).
    provider = new JsonRpcProvider(node!.url, 31337, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
    const admin = createClient({ url: c!.info.url, token: c!.info.token });
    const w = await admin.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
    walletId = w.id;
    address = w.address;
    await (await new Wallet(HARDHAT_KEY_0, provider).sendTransaction({ to: address, value: parseEther('10') })).wait();
    const policy = {
      version: 1,
      assets: { ETH: { chainId: '31337', asset: 'native', symbol: 'ETH', decimals: 18 } },
      rules: [
        { type: 'allow', chainIds: ['31337'], to: [TO] },
        { type: 'allow', kinds: ['message', 'typed_data'] },
        { type: 'tx_cap', asset: 'ETH', max: parseEther('1').toString() },
      ],
    };
    assert.equal((await publish(c!, { kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() })).status, 200);
  });
  after(async () => {
    provider?.destroy();
    await Promise.all([c?.stop(), stopProcess(node?.child)]);
  });

  test('sendTransaction is mined with the exact balance change; messages and typed data recover the address; a refusal keeps its code', async () => {
    const g = await grant(c!, agent, [walletId]);
    const signer = await toEthersSigner(createAgent({ url: c!.info.url, grantId: g, secretKey: agent.secret }), walletId, provider);
    assert.equal(await signer.getAddress(), address);

    const before = { from: await provider.getBalance(address), to: await provider.getBalance(TO) };
    const value = parseEther('0.25');
    const sent = await signer.sendTransaction({ to: TO, value });
    const receipt = await sent.wait();
    assert.equal(receipt!.status, 1);
    assert.equal(receipt!.from, address);
    const fee = receipt!.gasUsed * receipt!.gasPrice;
    assert.equal(await provider.getBalance(TO), before.to + value);
    assert.equal(await provider.getBalance(address), before.from - value - fee);

    const text = 'hello from an ethers agent';
    assert.equal(verifyMessage(text, await signer.signMessage(text)), address);
    const bytes = new Uint8Array([0, 1, 2, 0xff]);
    assert.equal(verifyMessage(bytes, await signer.signMessage(bytes)), address);
    const domain = { name: 'Test', version: '1', chainId: 31337, verifyingContract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' };
    const types = { Mail: [{ name: 'to', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'contents', type: 'string' }] };
    const mail = { to: TO, amount: 12345678901234567890n, contents: 'hi' };
    assert.equal(verifyTypedData(domain, types, mail, await signer.signTypedData(domain, types, mail)), address);

    // Signed offline, then checked by ethers' own parser.
    const nonce = await provider.getTransactionCount(address);
    const raw = await signer.signTransaction({ type: 2, chainId: 31337, nonce, to: TO, value: 1n, gasLimit: 21000, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 1n });
    assert.equal(Transaction.from(raw).from, address);

    // Over the per-transaction cap, and to a payee the policy does not list: refused with fleetkey's code, nothing sent.
    const count = await provider.getTransactionCount(address);
    await assert.rejects(signer.sendTransaction({ to: TO, value: parseEther('2') }), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    await assert.rejects(signer.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: 1n }), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
    await assert.rejects(signer.signTransaction({ from: TO, to: TO, value: 1n, chainId: 31337 }), (e: unknown) => (e as { code?: string }).code === 'validation_failed');
    assert.equal(await provider.getTransactionCount(address), count);
  });
});
