/**
 * `fleetkey mcp` as an MCP host runs it: the MCP SDK's own Client over stdio against the real
 * command, a real cluster (server and 3 signer processes) and a real Hardhat node. The chain is the
 * judge of what was sent; the policy's refusals, pending approvals and a revoked grant come back
 * as the tool results a model reads. The Streamable HTTP transport is checked for its bearer token.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createPublicClient, createWalletClient, http, parseEther, parseTransaction, recoverTransactionAddress, serializeTransaction, verifyTypedData, parseSignature, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { createClient } from 'fleetkey/sdk';
import { startCluster } from '../helpers/cluster.ts';
import { grant, publish } from '../helpers/agent.ts';
import { HARDHAT_KEY_0, startHardhat, stopProcess } from '../helpers/hardhat.ts';

const TO: Hex = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'; // Hardhat's account #1
/** The token an x402-style authorization moves (no contract is needed to judge and sign one). */
const TOKEN: Hex = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const TOOLS = ['get_limits', 'list_wallets', 'pay_x402', 'request_status', 'send_evm_transaction', 'sign_evm_transaction', 'sign_message', 'sign_solana_transaction', 'sign_typed_data'];

type ToolResult = { isError?: boolean; content: { type: string; text: string }[]; structuredContent?: Record<string, any> };
const text = (r: ToolResult) => r.content.map((c) => c.text).join('\n');

describe('fleetkey mcp: the MCP SDK client over stdio, a real cluster and Hardhat', { timeout: 600_000 }, () => {
  let node: Awaited<ReturnType<typeof startHardhat>> | undefined;
  let c: LocalCluster | undefined;
  let chain: PublicClient;
  let client: Client;
  let walletId: string;
  let address: Hex;
  let grantId: string;
  const dir = mkdtempSync(join(tmpdir(), 'fk-mcp-'));
  const agentSecret = ed25519.utils.randomSecretKey();
  const agent = { secret: agentSecret, publicKey: bytesToHex(ed25519.getPublicKey(agentSecret)) };
  const aliceSecret = ed25519.utils.randomSecretKey();
  const call = async (name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as ToolResult;

  before(async () => {
    await Promise.all([startHardhat().then((n) => (node = n)), startCluster(3).then((x) => (c = x))]);
    chain = createPublicClient({ chain: hardhat, transport: http(node!.url), pollingInterval: 50 });
    const admin = createClient({ url: c!.info.url, token: c!.info.token });
    const w = await admin.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
    walletId = w.id;
    address = w.address as Hex;
    const funder = createWalletClient({ account: privateKeyToAccount(HARDHAT_KEY_0), chain: hardhat, transport: http(node!.url) });
    await chain.waitForTransactionReceipt({ hash: await funder.sendTransaction({ to: address, value: parseEther('10') }) });

    assert.equal((await publish(c!, { kind: 'approvers', version: 1, approvers: { alice: { keyType: 'ed25519', publicKey: bytesToHex(ed25519.getPublicKey(aliceSecret)) } }, issuedAt: Date.now() })).status, 200);
    const policy = {
      version: 1,
      assets: { ETH: { chainId: '31337', asset: 'native', symbol: 'ETH', decimals: 18 }, USDC: { chainId: '31337', asset: TOKEN, symbol: 'USDC', decimals: 6 } },
      rules: [
        { id: 'payees', type: 'allow', chainIds: ['31337'], to: [TO] },
        { id: 'messages', type: 'allow', kinds: ['message'] },
        { id: 'per-tx', type: 'tx_cap', asset: 'ETH', max: parseEther('1').toString() },
        { id: 'daily', type: 'window_cap', asset: 'ETH', max: parseEther('5').toString(), window: '24h' },
        { id: 'usdc-daily', type: 'window_cap', asset: 'USDC', max: '10000000', window: '24h' },
        { id: 'big', type: 'require_approval', asset: 'ETH', above: parseEther('0.5').toString(), m: 1, approvers: ['alice'] },
      ],
    };
    const r = await publish(c!, { kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    grantId = await grant(c!, agent, [walletId]);
    writeFileSync(join(dir, 'agent.key'), bytesToHex(agentSecret) + '\n', { mode: 0o600 });
    writeFileSync(join(dir, 'alice.key'), bytesToHex(aliceSecret) + '\n', { mode: 0o600 });

    client = new Client({ name: 'fleetkey-test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--rpc', `eip155:31337=${node!.url}`],
        env: { ...(process.env as Record<string, string>), FLEETKEY_URL: c!.info.url, FLEETKEY_AGENT_KEY_FILE: join(dir, 'agent.key'), FLEETKEY_GRANT: grantId, FLEETKEY_TOKEN: '' },
        stderr: 'pipe',
      }),
    );
  });

  after(async () => {
    await client?.close();
    await Promise.all([c?.stop(), stopProcess(node?.child)]);
  });

  test('the tool list: names, JSON input schemas and annotations', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, 'object', t.name);
      assert.ok((t.description ?? '').length > 40, `${t.name} has a description for a model`);
      assert.equal(typeof t.annotations?.readOnlyHint, 'boolean', t.name);
      assert.equal(typeof t.annotations?.destructiveHint, 'boolean', t.name);
    }
    const by = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const n of ['list_wallets', 'get_limits', 'request_status']) assert.deepEqual([by[n].annotations!.readOnlyHint, by[n].annotations!.destructiveHint], [true, false], n);
    for (const n of ['send_evm_transaction', 'sign_evm_transaction', 'sign_typed_data', 'sign_message', 'sign_solana_transaction', 'pay_x402']) assert.deepEqual([by[n].annotations!.readOnlyHint, by[n].annotations!.destructiveHint], [false, true], n);
    const send = by.send_evm_transaction.inputSchema as { properties: Record<string, { type?: string; pattern?: string }>; required?: string[] };
    assert.deepEqual(Object.keys(send.properties).sort(), ['chain', 'data', 'to', 'value', 'wallet']);
    assert.deepEqual([...(send.required ?? [])].sort(), ['chain', 'to']);
    assert.equal(send.properties.to.type, 'string');
    assert.ok(send.properties.to.pattern, 'the address pattern is in the schema');
  });

  test('list_wallets and get_limits: the grant\'s wallet, the policy in words', async () => {
    const l = await call('list_wallets');
    assert.ok(!l.isError, text(l));
    assert.deepEqual(l.structuredContent!.wallets, [{ id: walletId, chain: 'eip155', address, scheme: 'ecdsa-secp256k1' }]);
    const g = await call('get_limits');
    assert.ok(!g.isError, text(g));
    assert.match(text(g), /per-tx: at most 1 ETH/);
    assert.match(text(g), /daily: 0 ETH \(0 base units\) of 5 ETH \(5000000000000000000 base units\) used in the last 1d; 5 ETH/);
  });

  test('send_evm_transaction: mined, balances move by exactly value and fee; the daily limit shows it', async () => {
    const value = parseEther('0.25');
    const [fromBefore, toBefore] = await Promise.all([chain.getBalance({ address }), chain.getBalance({ address: TO })]);
    const r = await call('send_evm_transaction', { chain: 'eip155:31337', to: TO, value: value.toString() });
    assert.ok(!r.isError, text(r));
    assert.equal(r.structuredContent!.status, 'success');
    const receipt = await chain.getTransactionReceipt({ hash: r.structuredContent!.hash });
    assert.equal(receipt.from.toLowerCase(), address.toLowerCase());
    const [fromAfter, toAfter] = await Promise.all([chain.getBalance({ address }), chain.getBalance({ address: TO })]);
    assert.equal(toAfter - toBefore, value);
    assert.equal(fromBefore - fromAfter, value + receipt.gasUsed * receipt.effectiveGasPrice);
    const daily = ((await call('get_limits')).structuredContent!.wallets[0].policy.limits as { rule: string; used: string; remaining: string }[]).find((x) => x.rule === 'daily')!;
    assert.deepEqual([daily.used, daily.remaining], [value.toString(), (parseEther('5') - value).toString()]);
  });

  test('over the cap: a tool error with the code and the policy\'s reasons; nothing is sent', async () => {
    const before = await chain.getBalance({ address });
    const nonce = await chain.getTransactionCount({ address });
    const r = await call('send_evm_transaction', { chain: 'eip155:31337', to: TO, value: parseEther('2').toString() });
    assert.equal(r.isError, true);
    assert.match(text(r), /^refused: policy_denied: /);
    assert.match(text(r), /- tx_cap_exceeded \(per-tx\): transfer of 2 ETH/);
    assert.equal(await chain.getBalance({ address }), before);
    assert.equal(await chain.getTransactionCount({ address }), nonce);
    const payee = await call('send_evm_transaction', { chain: 'eip155:31337', to: '0x000000000000000000000000000000000000dEaD', value: '1' });
    assert.equal(payee.isError, true);
    assert.match(text(payee), /policy_denied/);
  });

  test('a request above the approval threshold: pending_approval with its id, signed after `fleetkey approval approve`', async () => {
    const tx = { chainId: 31337, to: TO, value: parseEther('0.75').toString(), nonce: 7, gas: '21000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000' };
    const r = await call('sign_evm_transaction', tx);
    assert.ok(!r.isError, text(r));
    assert.equal(r.structuredContent!.status, 'pending_approval');
    const requestId = r.structuredContent!.requestId as string;
    assert.match(text(r), new RegExp(`^pending_approval: request ${requestId} `));
    assert.equal((await call('request_status', { requestId })).structuredContent!.status, 'pending_approval');

    const approve = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'approval', 'approve', requestId, '--approver', 'alice', '--approver-key', join(dir, 'alice.key'), '--json'], { env: { ...process.env, FLEETKEY_URL: c!.info.url, FLEETKEY_TOKEN: c!.info.token } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
    });
    assert.equal(approve.code, 0, approve.out + approve.err);
    const s = await call('request_status', { requestId });
    assert.equal(s.structuredContent!.status, 'signed', text(s));
    // The signature is over the very transaction the tool was given.
    const unsigned = serializeTransaction({ type: 'eip1559', chainId: 31337, to: TO, value: parseEther('0.75'), nonce: 7, gas: 21000n, maxFeePerGas: 2000000000n, maxPriorityFeePerGas: 1000000n });
    const signed = serializeTransaction(parseTransaction(unsigned), parseSignature(s.structuredContent!.signature as Hex));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: signed })).toLowerCase(), address.toLowerCase());
  });

  test('malformed arguments: a schema error that names the field', async () => {
    const r = await call('send_evm_transaction', { chain: 'eip155:31337', to: 'not-an-address', value: '1' });
    assert.equal(r.isError, true);
    assert.match(text(r), /Input validation error/);
    assert.match(text(r), /Invalid arguments for tool send_evm_transaction: a 0x-prefixed 20-byte hex address at to$/);
    const v = await call('send_evm_transaction', { chain: 'eip155:31337', to: TO, value: '-1' });
    assert.equal(v.isError, true);
    assert.match(text(v), /a whole number of wei, in decimal at value$/);
    const n = await call('send_evm_transaction', { chain: 'eip155:1', to: TO, value: '1' });
    assert.equal(n.isError, true);
    assert.match(text(n), /no RPC URL for eip155:1/);
  });

  test('Streamable HTTP: refuses a missing or wrong bearer token, serves the right one', async () => {
    const token = bytesToHex(ed25519.utils.randomSecretKey());
    const child: ChildProcess = spawn(process.execPath, [BIN, 'mcp', '--http', '127.0.0.1:0'], {
      env: { ...process.env, FLEETKEY_URL: c!.info.url, FLEETKEY_AGENT_KEY_FILE: join(dir, 'agent.key'), FLEETKEY_GRANT: grantId, FLEETKEY_MCP_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d) => {
          err += d;
          const m = /Streamable HTTP on (http:\/\/\S+\/mcp)/.exec(err);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`fleetkey mcp --http exited ${code}: ${err}`)));
      });
      const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      const none = await fetch(url, { method: 'POST', headers, body: init });
      assert.equal(none.status, 401);
      assert.equal((await none.json()).error.code, 'unauthorized');
      // The right token with its last digit changed (a token that already ends in 0 gets a 1).
      const wrongToken = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
      const wrong = await fetch(url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${wrongToken}` }, body: init });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const viaHttp = new Client({ name: 'fleetkey-test-http', version: '1.0.0' });
      await viaHttp.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      try {
        assert.deepEqual((await viaHttp.listTools()).tools.map((t) => t.name).sort(), TOOLS);
        const l = (await viaHttp.callTool({ name: 'list_wallets', arguments: {} })) as ToolResult;
        assert.equal(l.structuredContent!.wallets[0].id, walletId);
      } finally {
        await viaHttp.close();
      }
    } finally {
      await stopProcess(child);
    }
  });

  test('sign_typed_data: an EIP-3009 authorization is a token transfer under the token\'s rolling limit; unknown typed data is denied', async () => {
    const auth = (value: number, nonce: string) => ({
      domain: { name: 'USDC', version: '2', chainId: 31337, verifyingContract: TOKEN },
      types: { TransferWithAuthorization: ['address from', 'address to', 'uint256 value', 'uint256 validAfter', 'uint256 validBefore', 'bytes32 nonce'].map((f) => ({ type: f.split(' ')[0], name: f.split(' ')[1] })) },
      primaryType: 'TransferWithAuthorization',
      message: { from: address, to: TO, value: String(value), validAfter: '0', validBefore: '4000000000', nonce: `0x${nonce.repeat(64)}` },
    });
    const first = auth(6_000_000, 'a');
    const r = await call('sign_typed_data', { typedData: first });
    assert.ok(!r.isError, text(r));
    assert.equal(await verifyTypedData({ ...(first as object), address, signature: r.structuredContent!.signature } as never), true);
    const daily = ((await call('get_limits')).structuredContent!.wallets[0].policy.limits as { rule: string; used: string }[]).find((x) => x.rule === 'usdc-daily')!;
    assert.equal(daily.used, '6000000');
    const over = await call('sign_typed_data', { typedData: auth(6_000_000, 'b') });
    assert.equal(over.isError, true);
    assert.match(text(over), /^refused: limit_exceeded: /);
    assert.match(text(over), /- window_cap_exceeded \(usdc-daily\)/);
    const mail = await call('sign_typed_data', { typedData: { domain: { name: 'Mail', version: '1', chainId: 31337 }, types: { Mail: [{ name: 'contents', type: 'string' }] }, primaryType: 'Mail', message: { contents: 'hi' } } });
    assert.equal(mail.isError, true);
    assert.match(text(mail), /^refused: policy_denied: [^]*no_allow_rule/);
  });

  test('a revoked grant: refused with grant_revoked', async () => {
    const ok = await call('sign_message', { message: 'before the revocation' });
    assert.ok(!ok.isError, text(ok));
    assert.equal((await publish(c!, { kind: 'revocation', grantId, issuedAt: Date.now() })).status, 200);
    const r = await call('sign_message', { message: 'after the revocation' });
    assert.equal(r.isError, true);
    assert.match(text(r), /^refused: grant_revoked: /);
    const s = await call('send_evm_transaction', { chain: 'eip155:31337', to: TO, value: '1' });
    assert.equal(s.isError, true);
    assert.match(text(s), /grant_revoked/);
  });
});
