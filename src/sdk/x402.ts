/**
 * x402 payments through fleetkey: `wrapFetchWithFleetkey(fetch, agent)` answers an HTTP 402 by
 * having the agent's EVM wallet sign the `exact` payment (an EIP-3009 `transferWithAuthorization`,
 * or a Permit2 transfer where the server asks for one) and retrying with the payment header, on
 * the x402 packages' own client (`@x402/core`, `@x402/evm`, `@x402/fetch`).
 *
 * Every signature is an agent request, judged by each signer's copy of the wallet's policy, which
 * reads the authorization as the token transfer it is: the token's caps, rolling limits and payee
 * allow-list apply exactly as to a transfer. A refusal throws the server's FleetkeyApiError (in the
 * cause chain) and no payment header is sent. A 402 that offers only schemes or networks this
 * client does not pay with is refused by the x402 client before anything is signed.
 *
 * Not imported by `fleetkey/sdk`'s index: import it from its own subpath.
 */
import { x402Client, type x402ClientConfig } from '@x402/core/client';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { wrapFetchWithPayment } from '@x402/fetch';
import type { Network, PaymentRequirements } from '@x402/core/types';
import type { FleetkeyAgent } from './agent.ts';
import { FleetkeyError } from './errors.ts';
import { toViemAccount } from './to-viem-account.ts';

export type WrapFetchWithFleetkeyOptions = {
  /** The ecdsa-secp256k1 wallet that pays; may be left out when the grant has exactly one. */
  walletId?: string;
  /** The CAIP-2 networks to pay on (`eip155:8453`); default every EVM network (`eip155:*`), which the policy then narrows. */
  networks?: string[];
  /**
   * The x402 client's own spend controls (assets, per-payment cap), checked on this machine before
   * signing. Default `false`: the wallet's policy, which every signer enforces, is the spend
   * control; pass x402's `SpendControls` to add a local one on top.
   */
  spendControls?: x402ClientConfig['spendControls'];
  /**
   * The most this fetch pays for one request, in the asset's smallest unit: a 402 asking more is
   * refused before anything is signed. A local check on top of the policy, not in place of it.
   */
  maxAmount?: bigint;
};

/** The paying wallet: named, or the grant's one EVM wallet. */
async function payer(agent: FleetkeyAgent, walletId: string | undefined): Promise<string> {
  if (walletId) return walletId;
  const evm = (await agent.status()).wallets.filter((w) => w.scheme === 'ecdsa-secp256k1');
  if (evm.length !== 1) throw new FleetkeyError('validation_failed', `name the paying wallet (walletId): the grant has ${evm.length} ecdsa-secp256k1 wallets`);
  return evm[0].id;
}

/** What a requirement asks, in atomic units (x402 v2 `amount`, v1 `maxAmountRequired`); unreadable counts as too much. */
function amountOf(r: PaymentRequirements): bigint {
  const a = (r as { amount?: unknown; maxAmountRequired?: unknown }).amount ?? (r as { maxAmountRequired?: unknown }).maxAmountRequired;
  return typeof a === 'string' && /^\d{1,78}$/.test(a) ? BigInt(a) : 2n ** 256n;
}

/**
 * @example
 * const pay = wrapFetchWithFleetkey(fetch, createAgent({ url, grantId, secretKey }))
 * const res = await pay('https://api.example.com/paid')   // 402 → signed by fleetkey → 200
 */
export function wrapFetchWithFleetkey(fetchImpl: typeof globalThis.fetch, agent: FleetkeyAgent, options: WrapFetchWithFleetkeyOptions = {}): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> {
  let account: ReturnType<typeof toViemAccount> | undefined;
  // x402's fetch wrapper rethrows a signer's error as a new Error with its message only: the
  // refusal itself (code, reasons) is kept here and thrown in its place.
  const refusals = new Set<FleetkeyError>();
  const signer = {
    address: undefined as unknown as `0x${string}`,
    async signTypedData(typedData: { domain: Record<string, unknown>; types: Record<string, unknown>; primaryType: string; message: Record<string, unknown> }): Promise<`0x${string}`> {
      try {
        return await (await resolved()).signTypedData(typedData as never);
      } catch (e) {
        if (e instanceof FleetkeyError && refusals.size < 100) refusals.add(e);
        throw e;
      }
    },
  };
  const resolved = async () => {
    account ??= payer(agent, options.walletId).then((id) => toViemAccount(agent, id));
    const a = await account.catch((e: unknown) => {
      account = undefined; // a failed look-up is tried again on the next payment
      throw e;
    });
    (signer as { address: `0x${string}` }).address = a.address;
    return a;
  };
  const client = x402Client.fromConfig({
    schemes: (options.networks ?? ['eip155:*']).map((network) => ({ network: network as Network, client: new ExactEvmScheme(signer) })),
    spendControls: options.spendControls ?? false,
    ...(options.maxAmount === undefined ? {} : { policies: [(_v: number, reqs: PaymentRequirements[]) => reqs.filter((r) => amountOf(r) <= options.maxAmount!)] }),
  });
  const paying = wrapFetchWithPayment(fetchImpl, client);
  return async (input, init) => {
    await resolved(); // once, before the first request: the scheme reads signer.address as it builds the authorization
    try {
      return await paying(input, init);
    } catch (e) {
      const message = e instanceof Error ? e.message : '';
      if (message.includes('No network/scheme registered')) throw unpayable(message, options.networks ?? ['eip155:*'], e);
      const refusal = [...refusals].find((r) => message.includes(r.message));
      if (!refusal) throw e;
      refusals.delete(refusal);
      throw refusal;
    }
  };
}

/**
 * x402's refusal of a 402 none of whose requirements this client pays (another scheme, another
 * network), as a FleetkeyError `unsupported` naming what was asked and what this client pays. x402
 * appends the requirements as JSON to its message; when that cannot be read, its message is kept.
 */
function unpayable(message: string, networks: string[], cause: unknown): FleetkeyError {
  let asked = '';
  try {
    const reqs = (JSON.parse(message.slice(message.indexOf('{'))) as { paymentRequirements?: { scheme?: unknown; network?: unknown }[] }).paymentRequirements ?? [];
    asked = reqs.map((r) => `${String(r.scheme)} on ${String(r.network)}`).join(', ').slice(0, 500);
  } catch {
    asked = '';
  }
  return new FleetkeyError('unsupported', `the server asks for a payment this client does not make (${asked || message}); it pays scheme exact on ${networks.join(', ')}; nothing was signed`, { cause });
}
