/**
 * Ethereum end to end: a real local chain (a Hardhat 2 node this test starts), a real fleetkey
 * cluster (server and 3 signer processes), and viem clients whose account is a 2-of-3
 * threshold-ECDSA wallet through `toViemAccount`. What the chain accepts and mines is the proof:
 * it recovers the sender from each signature, so a wrong signature, hash or encoding never lands.
 * Messages and typed data are checked with two independent verifiers, viem's and ethers'.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifyMessage as ethersVerifyMessage, verifyTypedData as ethersVerifyTypedData } from 'ethers';
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  http,
  parseEther,
  parseEventLogs,
  verifyMessage,
  verifyTypedData,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type WalletClient,
  BaseError,
} from 'viem';
import { nonceManager, privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, createClient, toViemAccount, type FleetkeyClient } from 'fleetkey/sdk';
import { startCluster } from '../helpers/cluster.ts';
import { tokenAbi, tokenBytecode } from './fixture/token.ts';
import { HARDHAT_KEY_0, startHardhat, stopProcess } from '../helpers/hardhat.ts';

const HARDHAT_ACCOUNT_1: Hex = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

describe('Ethereum end to end: a Hardhat node and a 2-of-3 threshold-ECDSA wallet as a viem account', () => {
  let node: Awaited<ReturnType<typeof startHardhat>> | undefined;
  let cluster: LocalCluster | undefined;
  let publicClient: PublicClient;
  let funder: WalletClient;
  let fleet: WalletClient;
  let account: LocalAccount;
  let client: FleetkeyClient;
  let walletId: string;

  before(async () => {
    // Assigned as each comes up, so `after` stops whichever started if the other failed.
    await Promise.all([startHardhat().then((n) => (node = n)), startCluster(3).then((c) => (cluster = c))]);
    const transport = http(node!.url);
    publicClient = createPublicClient({ chain: hardhat, transport, pollingInterval: 50 });
    client = createClient({ url: cluster!.info.url, token: cluster!.info.token });
    const wallet = await client.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3, label: 'e2e' });
    walletId = wallet.id;
    // The one-line switch: this is where an agent had privateKeyToAccount(key).
    account = await toViemAccount(client, wallet.id);
    assert.equal(account.address, wallet.address);
    fleet = createWalletClient({ account, chain: hardhat, transport, pollingInterval: 50 });
    funder = createWalletClient({ account: privateKeyToAccount(HARDHAT_KEY_0), chain: hardhat, transport, pollingInterval: 50 });
    const funded = await funder.sendTransaction({ account: funder.account!, chain: hardhat, to: account.address, value: parseEther('10') });
    assert.equal((await publicClient.waitForTransactionReceipt({ hash: funded })).status, 'success');
    assert.equal(await publicClient.getBalance({ address: account.address }), parseEther('10'));
  });

  after(async () => {
    await Promise.all([cluster?.stop(), stopProcess(node?.child)]);
  });

  /** Sends with the fleetkey account and returns the mined receipt, the chain's view of the sender included. */
  async function mined(hash: Hex) {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success', `${hash} reverted`);
    assert.equal(receipt.from.toLowerCase(), account.address.toLowerCase(), 'the chain recovered the fleetkey address as sender');
    return receipt;
  }

  for (const type of ['eip1559', 'eip2930', 'legacy'] as const) {
    test(`${type} ETH transfer signed by the cluster is mined, balances move by exactly value and fee`, async (t) => {
      const value = parseEther('1.25');
      const [senderBefore, recipientBefore] = await Promise.all([publicClient.getBalance({ address: account.address }), publicClient.getBalance({ address: HARDHAT_ACCOUNT_1 })]);
      const hash = await fleet.sendTransaction({ account, chain: hardhat, to: HARDHAT_ACCOUNT_1, value, type });
      const receipt = await mined(hash);
      const tx = await publicClient.getTransaction({ hash });
      assert.equal(tx.type, type);
      // Replay-protected: the chain id is in the signed payload (for legacy, EIP-155's v = 2·chainId + 35 + yParity).
      if (tx.type === 'legacy') assert.equal((tx.v - 35n) >> 1n, BigInt(hardhat.id));
      else assert.equal(tx.chainId, hardhat.id);
      const [senderAfter, recipientAfter] = await Promise.all([publicClient.getBalance({ address: account.address }), publicClient.getBalance({ address: HARDHAT_ACCOUNT_1 })]);
      assert.equal(recipientAfter - recipientBefore, value);
      assert.equal(senderBefore - senderAfter, value + receipt.gasUsed * receipt.effectiveGasPrice);
      t.diagnostic(`${type} transfer ${hash}: ${value} wei to ${HARDHAT_ACCOUNT_1}, fee ${receipt.gasUsed * receipt.effectiveGasPrice} wei, block ${receipt.blockNumber}`);
    });
  }

  test('an ERC-20 deployed and transferred by the cluster account: balances and events as expected', async (t) => {
    const deployHash = await fleet.deployContract({ account, chain: hardhat, abi: tokenAbi, bytecode: tokenBytecode });
    const { contractAddress: token } = await mined(deployHash);
    assert.ok(token, 'a contract was created');
    const read = (functionName: 'balanceOf', who: Hex) => publicClient.readContract({ address: token, abi: tokenAbi, functionName, args: [who] });
    assert.equal(await publicClient.readContract({ address: token, abi: tokenAbi, functionName: 'symbol' }), 'FTT');

    // Someone else mints to the fleetkey wallet; the wallet then moves tokens with writeContract.
    const minted = 1_000n * 10n ** 18n;
    const mint = await funder.writeContract({ account: funder.account!, chain: hardhat, address: token, abi: tokenAbi, functionName: 'mint', args: [account.address, minted] });
    await publicClient.waitForTransactionReceipt({ hash: mint });
    assert.equal(await read('balanceOf', account.address), minted);

    const amount = 123_456_789n * 10n ** 9n;
    const transferHash = await fleet.writeContract({ account, chain: hardhat, address: token, abi: tokenAbi, functionName: 'transfer', args: [HARDHAT_ACCOUNT_1, amount] });
    const receipt = await mined(transferHash);
    const [event] = parseEventLogs({ abi: tokenAbi, eventName: 'Transfer', logs: receipt.logs });
    assert.deepEqual(event.args, { from: account.address, to: HARDHAT_ACCOUNT_1, value: amount });
    assert.equal(await read('balanceOf', account.address), minted - amount);
    assert.equal(await read('balanceOf', HARDHAT_ACCOUNT_1), amount);
    assert.equal(await publicClient.readContract({ address: token, abi: tokenAbi, functionName: 'totalSupply' }), minted);
    t.diagnostic(`token ${token} deployed in ${deployHash}; transfer ${transferHash}: ${amount} to ${HARDHAT_ACCOUNT_1}, wallet keeps ${minted - amount}`);
  });

  test('three transfers sent at once through a nonce manager are all mined, with consecutive nonces', async () => {
    const managed = await toViemAccount(client, walletId, { nonceManager });
    const start = await publicClient.getTransactionCount({ address: managed.address });
    const before = await publicClient.getBalance({ address: HARDHAT_ACCOUNT_1 });
    // Signatures finish in any order; an automining node refuses a nonce gap, a mempool queues it.
    const testClient = createTestClient({ mode: 'hardhat', chain: hardhat, transport: http(node!.url) });
    await testClient.setAutomine(false);
    let hashes: Hex[];
    try {
      hashes = await Promise.all([1n, 2n, 3n].map((value) => fleet.sendTransaction({ account: managed, chain: hardhat, to: HARDHAT_ACCOUNT_1, value })));
      await testClient.mine({ blocks: 1 });
    } finally {
      await testClient.setAutomine(true);
    }
    const receipts = await Promise.all(hashes.map(mined));
    const nonces = await Promise.all(receipts.map(async (r) => (await publicClient.getTransaction({ hash: r.transactionHash })).nonce));
    assert.deepEqual(nonces.sort((a, b) => a - b), [start, start + 1, start + 2]);
    assert.equal((await publicClient.getBalance({ address: HARDHAT_ACCOUNT_1 })) - before, 6n);
  });

  test('signMessage and signTypedData verify with viem and with ethers', async () => {
    for (const message of ['fleetkey says gm', { raw: '0x00ff10' as Hex }]) {
      const signature = await fleet.signMessage({ account, message });
      assert.ok(await verifyMessage({ address: account.address, message, signature }));
      assert.equal(ethersVerifyMessage(typeof message === 'string' ? message : Uint8Array.of(0x00, 0xff, 0x10), signature), account.address);
      assert.ok(!(await verifyMessage({ address: account.address, message: 'something else', signature })));
    }
    const domain = { name: 'Fleet Test Token', version: '1', chainId: hardhat.id, verifyingContract: '0x5FbDB2315678afecb367f032d93F642f64180aa3' } as const;
    const types = {
      Permit: [
        { name: 'owner', type: 'address' },
        { name: 'spender', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' },
      ],
    } as const;
    const message = { owner: account.address, spender: HARDHAT_ACCOUNT_1, value: 2n ** 255n + 1n, nonce: 0n, deadline: 1_900_000_000n };
    const signature = await fleet.signTypedData({ account, domain, types, primaryType: 'Permit', message });
    assert.ok(await verifyTypedData({ address: account.address, domain, types, primaryType: 'Permit', message, signature }));
    assert.equal(ethersVerifyTypedData(domain, { Permit: [...types.Permit] }, message, signature), account.address);
    assert.notEqual(ethersVerifyTypedData(domain, { Permit: [...types.Permit] }, { ...message, value: 1n }, signature), account.address);
  });

  // Last: it leaves the cluster short of signers.
  test('with two of three signers down, viem’s error carries the FleetkeyApiError and nothing is sent', async () => {
    const nonce = await publicClient.getTransactionCount({ address: account.address });
    await Promise.all([cluster!.kill('signer-2'), cluster!.kill('signer-3')]);
    const error = await fleet.sendTransaction({ account, chain: hardhat, to: HARDHAT_ACCOUNT_1, value: 1n }).then(
      () => assert.fail('sent without a quorum'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof BaseError, String(error));
    const cause = error.walk((e) => e instanceof FleetkeyApiError);
    assert.ok(cause instanceof FleetkeyApiError, error.message);
    assert.equal(cause.code, 'not_enough_signers');
    assert.equal(cause.status, 503);
    assert.equal(await publicClient.getTransactionCount({ address: account.address }), nonce);
  });
});
