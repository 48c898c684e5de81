/**
 * fleetkey as a Model Context Protocol server: the tools an LLM agent needs to act with a fleetkey
 * wallet, each one a request of the agent path (the agent's own key under the owner's grant,
 * judged by every signer's copy of the policy). Never the admin token, never the owner key.
 *
 * A refusal is a tool error whose text carries the stable code and the policy's reasons, so the
 * model can explain it; a request that waits for human approval is not an error: the tool says
 * `pending_approval` and gives the request id, which `request_status` follows.
 *
 * `fleetkey mcp` (src/cli/mcp.ts) serves it over stdio or Streamable HTTP; a program can serve it
 * on a transport of its own: `createFleetkeyMcpServer({ agent, rpc }).connect(transport)`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BaseError, createPublicClient, createWalletClient, defineChain, http, type Hex } from 'viem';
import { z } from 'zod';
import type { AgentStatusView, AgentWalletStatus, Payload } from '../control/index.ts';
import type { AgentRequestView, FleetkeyAgent } from './agent.ts';
import { FleetkeyApiError, FleetkeyError } from './errors.ts';
import { toViemAccount } from './to-viem-account.ts';
import { wrapFetchWithFleetkey } from './x402.ts';

export type FleetkeyMcpOptions = {
  agent: FleetkeyAgent;
  /** JSON-RPC URLs by CAIP-2 chain id (`eip155:8453`): what `send_evm_transaction` fills and broadcasts through. */
  rpc?: Record<string, string>;
  /** How long `send_evm_transaction` waits for the receipt (default 120 s). */
  receiptTimeoutMs?: number;
};

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte hex address');
const wei = z.string().regex(/^\d{1,78}$/, 'a whole number of wei, in decimal');
const hexData = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, '0x-prefixed hex bytes');
const caip2Evm = z.string().regex(/^eip155:\d{1,12}$/, 'a CAIP-2 EVM chain id such as "eip155:8453"');
const walletArg = z.string().min(1).max(140).optional().describe('The wallet id (wal_…); may be left out when the grant has one wallet that fits.');

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const SIGN = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false } as const;
const SEND = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true } as const;

/** The chain a wallet acts on, in CAIP-2 form where the scheme fixes it. */
export function chainOf(w: Pick<AgentWalletStatus, 'scheme' | 'network'>): string {
  if (w.scheme === 'ecdsa-secp256k1') return 'eip155';
  if (w.scheme === 'ed25519') return `solana:${w.network ?? 'mainnet-beta'}`;
  if (w.scheme === 'secp256k1-schnorr') return `bitcoin:${w.network ?? 'mainnet'}`;
  return w.scheme;
}

export function createFleetkeyMcpServer(options: FleetkeyMcpOptions): McpServer {
  const { agent } = options;
  const server = new McpServer({ name: 'fleetkey', version: '0.1.0' }, { capabilities: { tools: {} } });

  const wallet = async (id: string | undefined, scheme: string): Promise<AgentWalletStatus> => {
    const s = await agent.status();
    const fits = s.wallets.filter((w) => w.scheme === scheme);
    if (id !== undefined) {
      const w = s.wallets.find((x) => x.id === id);
      if (!w) throw new FleetkeyError('wallet_not_in_grant', `wallet ${id} is not one of this grant's wallets (${s.wallets.map((x) => x.id).join(', ') || 'none'})`);
      if (w.scheme !== scheme) throw new FleetkeyError('scheme_mismatch', `wallet ${id} is ${w.scheme}; this tool needs a ${scheme} wallet`);
      return w;
    }
    if (fits.length === 1) return fits[0];
    throw new FleetkeyError('validation_failed', fits.length ? `name the wallet: this grant has several ${scheme} wallets (${fits.map((w) => w.id).join(', ')})` : `this grant has no ${scheme} wallet`, { details: { path: 'wallet' } });
  };

  server.registerTool(
    'list_wallets',
    {
      title: 'List wallets',
      description: 'Lists the wallets this agent may use under its grant: id, chain (CAIP-2: eip155 for any EVM chain, solana:<network>, bitcoin:<network>), address and key scheme. Call it first to learn which wallet to name in other tools.',
      inputSchema: {},
      annotations: READ,
    },
    async () =>
      guard(async () => {
        const s = await agent.status();
        const wallets = s.wallets.map((w) => ({ id: w.id, chain: chainOf(w), address: w.address, scheme: w.scheme }));
        return ok({ grant: s.grant.id, grantStatus: s.grant.status, wallets }, wallets.map((w) => `${w.id}  ${w.chain}  ${w.address}`).join('\n') || 'this grant covers no wallet yet');
      }),
  );

  server.registerTool(
    'get_limits',
    {
      title: 'Get spending limits',
      description: "Explains the owner's policy for each wallet in words (what is allowed, per-transaction caps, approval rules) and, for each rolling limit, how much is used and how much remains. Use it to plan a payment or to explain why one was refused.",
      inputSchema: { wallet: walletArg },
      annotations: READ,
    },
    async ({ wallet: id }) =>
      guard(async () => {
        const s = await agent.status();
        const ws = id === undefined ? s.wallets : s.wallets.filter((w) => w.id === id);
        if (id !== undefined && !ws.length) throw new FleetkeyError('wallet_not_in_grant', `wallet ${id} is not one of this grant's wallets`);
        return ok({ grant: s.grant, wallets: ws.map((w) => ({ id: w.id, policy: w.policy })) }, limitsText(s, ws));
      }),
  );

  server.registerTool(
    'send_evm_transaction',
    {
      title: 'Send an EVM transaction',
      description:
        'Sends a transaction from an EVM wallet and waits until it is mined: fills nonce, gas and fees from the chain, has it signed by fleetkey under the policy, broadcasts it, and returns the hash and receipt status. value is in wei (decimal string). A transfer the policy refuses is not signed.',
      inputSchema: { wallet: walletArg, chain: caip2Evm, to: address, value: wei.default('0'), data: hexData.optional().describe('calldata, 0x-prefixed') },
      annotations: SEND,
    },
    async (a) =>
      guard(async () => {
        const w = await wallet(a.wallet, 'ecdsa-secp256k1');
        const url = options.rpc?.[a.chain];
        if (!url) throw new FleetkeyError('unsupported', `no RPC URL for ${a.chain}: start fleetkey mcp with --rpc ${a.chain}=URL`, { details: { path: 'chain' } });
        const id = Number(a.chain.slice('eip155:'.length));
        const chain = defineChain({ id, name: a.chain, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [url] } } });
        const account = await toViemAccount(agent, w.id);
        const client = createWalletClient({ account, chain, transport: http(url) });
        const hash = await client.sendTransaction({ to: a.to as Hex, value: BigInt(a.value), ...(a.data ? { data: a.data as Hex } : {}) });
        const receipt = await createPublicClient({ chain, transport: http(url) }).waitForTransactionReceipt({ hash, timeout: options.receiptTimeoutMs ?? 120_000 });
        const r = { hash, status: receipt.status, blockNumber: receipt.blockNumber.toString(), from: account.address, to: a.to, value: a.value, gasUsed: receipt.gasUsed.toString() };
        return ok(r, `transaction ${hash} ${receipt.status === 'success' ? 'mined' : 'reverted'} in block ${r.blockNumber}`);
      }),
  );

  server.registerTool(
    'sign_evm_transaction',
    {
      title: 'Sign an EVM transaction',
      description: 'Signs an EVM transaction without sending it and returns the signed serialized transaction. Give nonce, gas and fees yourself (EIP-1559 when maxFeePerGas is given, legacy with gasPrice). Amounts in wei as decimal strings.',
      inputSchema: {
        wallet: walletArg,
        chainId: z.number().int().min(1).max(2 ** 48),
        to: address,
        value: wei.default('0'),
        data: hexData.optional(),
        nonce: z.number().int().min(0).max(2 ** 48),
        gas: wei,
        maxFeePerGas: wei.optional(),
        maxPriorityFeePerGas: wei.optional(),
        gasPrice: wei.optional(),
      },
      annotations: SIGN,
    },
    async (a) =>
      guard(async () => {
        const w = await wallet(a.wallet, 'ecdsa-secp256k1');
        const account = await toViemAccount(agent, w.id);
        const base = { chainId: a.chainId, to: a.to as Hex, value: BigInt(a.value), nonce: a.nonce, gas: BigInt(a.gas), ...(a.data ? { data: a.data as Hex } : {}) };
        let signed: Hex;
        if (a.maxFeePerGas !== undefined) signed = await account.signTransaction({ ...base, type: 'eip1559', maxFeePerGas: BigInt(a.maxFeePerGas), maxPriorityFeePerGas: BigInt(a.maxPriorityFeePerGas ?? '0') });
        else if (a.gasPrice !== undefined) signed = await account.signTransaction({ ...base, type: 'legacy', gasPrice: BigInt(a.gasPrice) });
        else throw new FleetkeyError('validation_failed', 'give maxFeePerGas (EIP-1559) or gasPrice (legacy)', { details: { path: 'maxFeePerGas' } });
        return ok({ serializedTransaction: signed, from: account.address }, `signed: ${signed}`);
      }),
  );

  server.registerTool(
    'sign_typed_data',
    {
      title: 'Sign EIP-712 typed data',
      description: "Signs EIP-712 typed data with an EVM wallet (permits, orders, x402 payment authorizations). The owner's policy reads known forms (token permits and transfer authorizations) as transfers and approvals; other typed data is refused unless the policy allows typed data.",
      inputSchema: {
        wallet: walletArg,
        typedData: z.object({ domain: z.record(z.string(), z.unknown()), types: z.record(z.string(), z.array(z.object({ name: z.string(), type: z.string() }))), primaryType: z.string(), message: z.record(z.string(), z.unknown()) }),
      },
      annotations: SIGN,
    },
    async (a) =>
      guard(async () => {
        const w = await wallet(a.wallet, 'ecdsa-secp256k1');
        return signed(await agent.request(w.id, { kind: 'evm_typed_data', data: a.typedData as never }));
      }),
  );

  server.registerTool(
    'sign_message',
    {
      title: 'Sign a message',
      description: "Signs a text message in the wallet's own message form: EIP-191 personal_sign for EVM wallets, a Solana off-chain message for Solana wallets, BIP-322 for Bitcoin wallets. Name the wallet when the grant has several.",
      inputSchema: { wallet: z.string().min(1).max(140).optional().describe('The wallet id (wal_…); may be left out when the grant has exactly one wallet.'), message: z.string().min(1).max(10_000) },
      annotations: SIGN,
    },
    async (a) =>
      guard(async () => {
        const s = await agent.status();
        const w = a.wallet === undefined ? (s.wallets.length === 1 ? s.wallets[0] : undefined) : s.wallets.find((x) => x.id === a.wallet);
        if (!w) throw new FleetkeyError(a.wallet === undefined ? 'validation_failed' : 'wallet_not_in_grant', a.wallet === undefined ? `name the wallet: one of ${s.wallets.map((x) => x.id).join(', ')}` : `wallet ${a.wallet} is not one of this grant's wallets`, { details: { path: 'wallet' } });
        const payload: Payload =
          w.scheme === 'ecdsa-secp256k1' ? { kind: 'evm_message', data: { text: a.message } } : w.scheme === 'ed25519' ? { kind: 'solana_message', data: a.message } : { kind: 'bitcoin_message', data: a.message };
        return signed(await agent.request(w.id, payload));
      }),
  );

  server.registerTool(
    'sign_solana_transaction',
    {
      title: 'Sign a Solana transaction',
      description: 'Signs a Solana transaction (wire format, base64) with an ed25519 wallet, as fee payer or signer, and returns the signature and the signed transaction (base64). It is not sent.',
      inputSchema: { wallet: walletArg, transaction: z.string().min(4).max(4000).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64'), network: z.enum(['mainnet-beta', 'devnet', 'testnet']).optional() },
      annotations: SIGN,
    },
    async (a) =>
      guard(async () => {
        const w = await wallet(a.wallet, 'ed25519');
        return signed(await agent.request(w.id, { kind: 'solana_transaction', data: a.transaction, ...(a.network ? { opts: { network: a.network } } : {}) }));
      }),
  );

  server.registerTool(
    'pay_x402',
    {
      title: 'Fetch a paid URL (x402)',
      description:
        "Fetches an HTTP(S) URL; when it answers 402 Payment Required, pays the x402 'exact' EVM payment (an EIP-3009 token authorization) from the grant's EVM wallet, under the wallet's policy, and retries. Returns the HTTP status, the response body (first 64 KiB) and the settlement (PAYMENT-RESPONSE header). maxAmount, in the token's smallest unit, refuses a price above it before anything is signed.",
      inputSchema: {
        url: z.string().max(2048).url().refine((u) => /^https?:\/\//i.test(u), 'an http(s) URL'),
        method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
        body: z.string().max(100_000).optional().describe('The request body, sent as is (with content-type application/json when it parses as JSON).'),
        maxAmount: z.string().regex(/^\d{1,78}$/, "a whole number of the token's smallest unit").optional(),
        wallet: walletArg,
      },
      annotations: SEND,
    },
    async (a) =>
      guard(async () => {
        const w = await wallet(a.wallet, 'ecdsa-secp256k1');
        const pay = wrapFetchWithFleetkey(fetch, agent, { walletId: w.id, ...(a.maxAmount === undefined ? {} : { maxAmount: BigInt(a.maxAmount) }) });
        const json = a.body !== undefined && isJson(a.body);
        const res = await pay(a.url, { method: a.method ?? 'GET', ...(a.body === undefined ? {} : { body: a.body, headers: json ? { 'content-type': 'application/json' } : {} }), signal: AbortSignal.timeout(options.receiptTimeoutMs ?? 120_000) });
        const { text: body, truncated } = await boundedText(res, 64 * 1024);
        const header = res.headers.get('payment-response') ?? res.headers.get('x-payment-response');
        const settlement = header ? decodeSettlement(header) : undefined;
        const data = { status: res.status, body, ...(truncated ? { truncated } : {}), ...(settlement ? { settlement } : {}) };
        return ok(data, `HTTP ${res.status}${settlement ? ', paid' : ''}`);
      }),
  );

  server.registerTool(
    'request_status',
    {
      title: 'Request status',
      description: 'The state of a request this agent made that waited for human approval: pending_approval, signed (with the signature), rejected or expired.',
      inputSchema: { requestId: z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, 'a request id as returned by a pending tool call') },
      annotations: READ,
    },
    async (a) =>
      guard(async () => {
        const v = await agent.get(a.requestId);
        const data = pick(v);
        return ok(data, v.status === 'signed' ? `signed: ${v.signature ?? ''}` : v.status === 'pending_approval' ? `pending_approval: request ${v.requestId} still waits for human approval` : `${v.status}${v.error ? `: ${(v.error as { code?: string; message?: string }).code} ${(v.error as { message?: string }).message ?? ''}` : ''}`);
      }),
  );

  return server;
}

function ok(structured: Record<string, unknown>, text: string): CallToolResult {
  return { content: [{ type: 'text', text: `${text}\n${JSON.stringify(structured)}` }], structuredContent: structured };
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

/** At most `max` bytes of the body as text; the rest is dropped unread. */
async function boundedText(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size >= max) {
      truncated = size > max;
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  const all = new Uint8Array(Math.min(size, max));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, all.length - at);
    all.set(part, at);
    at += part.length;
  }
  return { text: new TextDecoder().decode(all), truncated };
}

/** The x402 settlement header (base64 JSON); kept as sent when it does not decode. */
function decodeSettlement(header: string): unknown {
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return header;
  }
}

function pick(v: AgentRequestView): Record<string, unknown> {
  const keys = ['status', 'requestId', 'walletId', 'signature', 'signatures', 'serializedTransaction', 'hash', 'offchainMessage', 'bip322', 'error'] as const;
  return Object.fromEntries(keys.filter((k) => v[k] !== undefined).map((k) => [k, v[k]]));
}

function signed(v: AgentRequestView): CallToolResult {
  return ok(pick(v), `signed: ${v.signature ?? ''}`);
}

function limitsText(s: AgentStatusView, ws: AgentWalletStatus[]): string {
  const lines = [`grant ${s.grant.id}: ${s.grant.status}, until ${new Date(s.grant.expiresAt).toISOString()}, used ${s.grant.uses}${s.grant.maxUses ? ` of ${s.grant.maxUses}` : ''} time(s)`];
  for (const w of ws) {
    lines.push(`wallet ${w.id} (${chainOf(w)} ${w.address}):`);
    if (!w.policy) {
      lines.push('  no policy: every request is refused');
      continue;
    }
    lines.push(`  policy version ${w.policy.version}`, ...w.policy.rules.map((r) => `  - ${r}`));
    if (w.policy.limits.length) lines.push('  rolling limits:', ...w.policy.limits.map((l) => `  - ${l.text}`));
  }
  return lines.join('\n');
}

/** Runs a tool; a refusal or failure becomes a tool error the model can read, a pending approval a plain answer. */
async function guard(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (e) {
    const f = fleetkeyCause(e);
    if (f instanceof FleetkeyApiError && f.code === 'approval_required') {
      const requestId = (f.data as { requestId?: string } | undefined)?.requestId;
      return ok({ status: 'pending_approval', requestId }, `pending_approval: request ${requestId} waits for human approval by the owner's approvers; nothing is signed yet. Call request_status with this requestId later.`);
    }
    if (f) {
      const reasons = ((f as { data?: { reasons?: { rule?: string; code: string; message: string }[] } }).data?.reasons ?? []).map((r) => `- ${r.code}${r.rule ? ` (${r.rule})` : ''}: ${r.message}`);
      return { isError: true, content: [{ type: 'text', text: [`refused: ${f.code}: ${f.message}`, ...(reasons.length ? ['reasons:', ...reasons] : [])].join('\n') }] };
    }
    const msg = e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message : String(e);
    return { isError: true, content: [{ type: 'text', text: `failed: ${msg}` }] };
  }
}

function fleetkeyCause(e: unknown): FleetkeyError | undefined {
  if (e instanceof FleetkeyError) return e;
  if (e instanceof BaseError) return e.walk((x) => x instanceof FleetkeyError) as FleetkeyError | undefined;
  return undefined;
}
