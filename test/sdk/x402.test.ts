/**
 * x402 end to end: a resource server built with the x402 server packages (@x402/hono on
 * @x402/core's resource server), a facilitator (@x402/core + @x402/evm) settling on a real Hardhat
 * node, an EIP-3009 token compiled by solc-js in the test and deployed there, and an agent paying
 * through `wrapFetchWithFleetkey` with a 2-of-3 fleetkey wallet under a policy that caps the token
 * at 10 units a day. The chain's balances are the judge.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { AddressInfo } from 'node:net';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { x402ResourceServer } from '@x402/core/server';
import { x402Facilitator } from '@x402/core/facilitator';
import { ExactEvmScheme as ServerScheme } from '@x402/evm/exact/server';
import { ExactEvmScheme as FacilitatorScheme } from '@x402/evm/exact/facilitator';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { paymentMiddleware } from '@x402/hono';
import { decodePaymentRequiredHeader, encodePaymentRequiredHeader } from '@x402/core/http';
import { createPublicClient, createWalletClient, http, publicActions, type Abi, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { createAgent, createClient } from 'fleetkey/sdk';
import { wrapFetchWithFleetkey } from '../../src/sdk/x402.ts';
import { startCluster } from '../helpers/cluster.ts';
import { grant, publish } from '../helpers/agent.ts';
import { HARDHAT_KEY_0, startHardhat, stopProcess } from '../helpers/hardhat.ts';

const PAYEE: Hex = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'; // Hardhat's account #2

/** A minimal USDC-like token: ERC-20 balances, a mint for the test, and EIP-3009 transferWithAuthorization. */
const TOKEN_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract TestUSD {
  string public constant name = "Test USD";
  string public constant version = "2";
  uint8 public constant decimals = 6;
  mapping(address => uint256) public balanceOf;
  mapping(address => mapping(bytes32 => bool)) public authorizationState;
  bytes32 public immutable DOMAIN_SEPARATOR;
  bytes32 constant TYPEHASH = keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)");
  event Transfer(address indexed from, address indexed to, uint256 value);
  constructor() {
    DOMAIN_SEPARATOR = keccak256(abi.encode(keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"), keccak256(bytes(name)), keccak256(bytes(version)), block.chainid, address(this)));
  }
  function mint(address to, uint256 value) external { balanceOf[to] += value; emit Transfer(address(0), to, value); }
  function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) public {
    require(block.timestamp > validAfter, "not yet valid");
    require(block.timestamp < validBefore, "expired");
    require(!authorizationState[from][nonce], "used");
    bytes32 digest = keccak256(abi.encodePacked("\\x19\\x01", DOMAIN_SEPARATOR, keccak256(abi.encode(TYPEHASH, from, to, value, validAfter, validBefore, nonce))));
    address signer = ecrecover(digest, v, r, s);
    require(signer != address(0) && signer == from, "bad signature");
    authorizationState[from][nonce] = true;
    require(balanceOf[from] >= value, "balance");
    balanceOf[from] -= value;
    balanceOf[to] += value;
    emit Transfer(from, to, value);
  }
  function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes memory signature) external {
    require(signature.length == 65, "signature length");
    bytes32 r; bytes32 s; uint8 v;
    assembly { r := mload(add(signature, 32)) s := mload(add(signature, 64)) v := byte(0, mload(add(signature, 96))) }
    transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s);
  }
}`;

function compileToken(): { abi: Abi; bytecode: Hex } {
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string): string };
  const out = JSON.parse(
    solc.compile(JSON.stringify({ language: 'Solidity', sources: { 'TestUSD.sol': { content: TOKEN_SOURCE } }, settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } } })),
  );
  const errors = (out.errors ?? []).filter((e: { severity: string }) => e.severity === 'error');
  assert.deepEqual(errors, [], 'the token compiles');
  const c = out.contracts['TestUSD.sol'].TestUSD;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

describe('x402: paid requests through wrapFetchWithFleetkey, settled on Hardhat', { timeout: 600_000 }, () => {
  let node: Awaited<ReturnType<typeof startHardhat>> | undefined;
  let c: LocalCluster | undefined;
  let web: ServerType | undefined;
  let chain: PublicClient;
  let token: Hex;
  let abi: Abi;
  let address: Hex;
  let url: string;
  /** What `/paid-upto` answers: the real `/paid` 402 with its requirement's scheme changed (set by its test). */
  let uptoHeader = '';
  let pay: ReturnType<typeof wrapFetchWithFleetkey>;
  let agent: ReturnType<typeof createAgent>;
  let payingWallet: (cap: string, mint: bigint) => Promise<{ agent: ReturnType<typeof createAgent>; address: Hex; grantId: string; secretKey: Uint8Array }>;
  const balance = async (who: Hex) => (await chain.readContract({ address: token, abi, functionName: 'balanceOf', args: [who] })) as bigint;

  before(async () => {
    await Promise.all([startHardhat().then((n) => (node = n)), startCluster(3).then((x) => (c = x))]);
    chain = createPublicClient({ chain: hardhat, transport: http(node!.url), pollingInterval: 50 });
    const operator = createWalletClient({ account: privateKeyToAccount(HARDHAT_KEY_0), chain: hardhat, transport: http(node!.url), pollingInterval: 50 }).extend(publicActions);
    const compiled = compileToken();
    abi = compiled.abi;
    const deployed = await chain.waitForTransactionReceipt({ hash: await operator.deployContract({ abi, bytecode: compiled.bytecode }) });
    token = deployed.contractAddress!;

    /** A fresh 2-of-3 wallet holding `mint` units, allowed to pay PAYEE at most `cap` units a day, and an agent under a grant to it. */
    payingWallet = async (cap, mint) => {
      const admin = createClient({ url: c!.info.url, token: c!.info.token });
      const w = await admin.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
      await chain.waitForTransactionReceipt({ hash: await operator.writeContract({ address: token, abi, functionName: 'mint', args: [w.address, mint] }) });
      const policy = {
        version: 1,
        assets: { TUSD: { chainId: '31337', asset: token, symbol: 'TUSD', decimals: 6 } },
        rules: [
          { id: 'pay-the-api', type: 'allow', chainIds: ['31337'], kinds: ['token_transfer'], assets: ['TUSD'], to: [PAYEE] },
          { id: 'tusd-daily', type: 'window_cap', asset: 'TUSD', max: cap, window: '24h' },
        ],
      };
      assert.equal((await publish(c!, { kind: 'policy', walletId: w.id, version: 1, policy, issuedAt: Date.now() })).status, 200);
      const secretKey = ed25519.utils.randomSecretKey();
      const grantId = await grant(c!, { secret: secretKey, publicKey: bytesToHex(ed25519.getPublicKey(secretKey)) }, [w.id]);
      return { agent: createAgent({ url: c!.info.url, grantId, secretKey }), address: w.address as Hex, grantId, secretKey };
    };

    ({ agent, address } = await payingWallet('10', 100n));
    pay = wrapFetchWithFleetkey(fetch, agent);

    // The facilitator settles with Hardhat's account #0; the resource server asks it to verify and settle.
    // Mainnet (eip155:1) is offered too, only for the client to refuse it: nothing ever reaches it.
    const facilitator = new x402Facilitator().register(['eip155:31337', 'eip155:1'], new FacilitatorScheme(toFacilitatorEvmSigner({ ...operator, address: operator.account.address } as never)));
    const resources = new x402ResourceServer(facilitator as never).register('eip155:31337', new ServerScheme()).register('eip155:1', new ServerScheme());
    const app = new Hono();
    app.use(
      paymentMiddleware(
        {
          'GET /paid': { accepts: { scheme: 'exact', network: 'eip155:31337', payTo: PAYEE, price: { amount: '1', asset: token, extra: { name: 'Test USD', version: '2' } } } },
          'GET /paid-elsewhere': { accepts: { scheme: 'exact', network: 'eip155:1', payTo: PAYEE, price: { amount: '1', asset: token, extra: { name: 'Test USD', version: '2' } } } },
        },
        resources,
      ),
    );
    app.get('/paid', (ctx) => ctx.json({ content: 'the paid resource' }));
    app.get('/paid-elsewhere', (ctx) => ctx.json({ content: 'never served' }));
    app.get('/paid-upto', () => new Response('{}', { status: 402, headers: { 'content-type': 'application/json', 'PAYMENT-REQUIRED': uptoHeader } }));
    web = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
    });
    url = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((r) => (web ? web.close(r) : r(undefined)));
    await Promise.all([c?.stop(), stopProcess(node?.child)]);
  });

  test('10 paid requests succeed with exact balances; the 11th is refused by the policy, nothing signed or settled', async () => {
    assert.equal((await fetch(`${url}/paid`)).status, 402, 'the route is priced');
    for (let i = 1; i <= 10; i++) {
      const res = await pay(`${url}/paid`);
      assert.equal(res.status, 200, `payment ${i}: ${res.status} ${await res.clone().text()}`);
      assert.deepEqual(await res.json(), { content: 'the paid resource' });
      assert.deepEqual([await balance(address), await balance(PAYEE)], [100n - BigInt(i), BigInt(i)], `balances after payment ${i}`);
    }
    const uses = (await agent.status()).grant.uses;
    assert.equal(uses, 10, 'each payment was one signed request under the grant');
    await assert.rejects(pay(`${url}/paid`), (e: unknown) => {
      let x: unknown = e;
      while (x && !(x as { code?: string }).code) x = (x as { cause?: unknown }).cause;
      assert.equal((x as { code?: string })?.code, 'limit_exceeded', String(e));
      return true;
    });
    assert.deepEqual([await balance(address), await balance(PAYEE)], [90n, 10n], 'nothing settled');
    assert.equal((await agent.status()).grant.uses, uses, 'nothing signed');
  });

  test('a payment requirement on a network the client does not pay on is refused, nothing signed', async () => {
    const narrow = wrapFetchWithFleetkey(fetch, agent, { networks: ['eip155:31337'] });
    const uses = (await agent.status()).grant.uses;
    await assert.rejects(narrow(`${url}/paid-elsewhere`), { name: 'FleetkeyError', code: 'unsupported', message: /\(exact on eip155:1\); it pays scheme exact on eip155:31337; nothing was signed/ });
    assert.equal((await agent.status()).grant.uses, uses, 'nothing signed');
    assert.deepEqual([await balance(address), await balance(PAYEE)], [90n, 10n]);
  });

  test('a payment requirement for a scheme the client does not pay with is refused, nothing signed', async () => {
    // The resource server's own 402 for /paid, on the network the client pays on, with only the scheme changed.
    const required = decodePaymentRequiredHeader((await fetch(`${url}/paid`)).headers.get('PAYMENT-REQUIRED')!);
    assert.deepEqual(required.accepts.map((r) => [r.scheme, r.network]), [['exact', 'eip155:31337']]);
    uptoHeader = encodePaymentRequiredHeader({ ...required, accepts: required.accepts.map((r) => ({ ...r, scheme: 'upto' })) });
    const uses = (await agent.status()).grant.uses;
    await assert.rejects(pay(`${url}/paid-upto`), { name: 'FleetkeyError', code: 'unsupported', message: /\(upto on eip155:31337\); it pays scheme exact on eip155:\*; nothing was signed/ });
    assert.equal((await agent.status()).grant.uses, uses, 'nothing signed');
    assert.deepEqual([await balance(address), await balance(PAYEE)], [90n, 10n], 'nothing settled');
  });

  test('MCP pay_x402 over stdio: one payment settles, the next is over the cap and refused with its reasons, bad arguments name the field', async () => {
    const p = await payingWallet('1', 5n);
    const dir = mkdtempSync(join(tmpdir(), 'fleetkey-x402-mcp-'));
    writeFileSync(join(dir, 'agent.key'), bytesToHex(p.secretKey) + '\n', { mode: 0o600 });
    const client = new Client({ name: 'x402-test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp'],
        env: { ...(process.env as Record<string, string>), FLEETKEY_URL: c!.info.url, FLEETKEY_AGENT_KEY_FILE: join(dir, 'agent.key'), FLEETKEY_GRANT: p.grantId, FLEETKEY_TOKEN: '' },
        stderr: 'ignore',
      }),
    );
    type Result = { isError?: boolean; content: { type: string; text: string }[]; structuredContent?: Record<string, unknown> };
    const call = async (args: Record<string, unknown>) => (await client.callTool({ name: 'pay_x402', arguments: args })) as Result;
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'pay_x402');
      assert.deepEqual(Object.keys(tool?.inputSchema.properties ?? {}).sort(), ['body', 'maxAmount', 'method', 'url', 'wallet']);
      assert.equal(tool?.annotations?.destructiveHint, true);

      const payee = await balance(PAYEE);
      const cheap = await call({ url: `${url}/paid`, maxAmount: '0' });
      assert.equal(cheap.isError, true, 'a price above maxAmount is refused');
      assert.equal((await p.agent.status()).grant.uses, 0, 'nothing signed');

      const paid = await call({ url: `${url}/paid` });
      assert.equal(paid.isError, undefined, paid.content[0].text);
      assert.equal(paid.structuredContent?.status, 200);
      assert.deepEqual(JSON.parse(paid.structuredContent?.body as string), { content: 'the paid resource' });
      assert.equal((paid.structuredContent?.settlement as { success?: boolean })?.success, true, 'the settlement header, decoded');
      assert.deepEqual([await balance(p.address), await balance(PAYEE)], [4n, payee + 1n]);

      const refused = await call({ url: `${url}/paid` });
      assert.equal(refused.isError, true);
      assert.match(refused.content[0].text, /^refused: limit_exceeded/);
      assert.match(refused.content[0].text, /reasons:\n- \S+ \(tusd-daily\)/);
      assert.deepEqual([await balance(p.address), await balance(PAYEE)], [4n, payee + 1n], 'nothing settled');

      const bad = await call({ url: 'ftp://example.com/x' });
      assert.equal(bad.isError, true);
      assert.match(bad.content[0].text, /url/);
      assert.equal((await p.agent.status()).grant.uses, 1, 'only the one payment was signed');
    } finally {
      await client.close();
    }
  });
});
