import type { Action, Effect } from '../../src/chains/types.ts';
import { validatePolicy, type Policy } from '../../src/policy/index.ts';

export const USDC_BASE = '0x833589fCD6eDb6E08f4c7dA32A3e2dF4b2C3F0D7';
export const USDC_ETH = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
export const ALICE = '0x1111111111111111111111111111111111111111';
export const BOB = '0x2222222222222222222222222222222222222222';
export const EVIL = '0x000000000000000000000000000000000000dEaD';
export const ROUTER = '0x3333333333333333333333333333333333333333';
export const SOL_USDC = 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v';
export const SOL_ALICE = 'AHt3Xw2qfS1j2Jy7j6nRrsQfyJ8cUmv5mGYz3wSw3Dqw';
export const TOKEN_PROGRAM = 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA';

export const ASSETS = {
  'USDC@base': { chainId: '8453', asset: USDC_BASE, symbol: 'USDC', decimals: 6 },
  'USDC@eth': { chainId: '1', asset: USDC_ETH, symbol: 'USDC', decimals: 6 },
  'ETH@base': { chainId: '8453', asset: 'native', symbol: 'ETH', decimals: 18 },
};

export const KNOWN_KINDS = ['native_transfer', 'token_transfer', 'token_approval', 'contract_call', 'contract_deploy', 'typed_data', 'message'];

/** A policy with the standard assets, an allow-everything-on-Base-and-Ethereum rule first unless `allow` is given. */
export function policy(rules: unknown[], opts: { allow?: unknown[]; version?: number; extra?: Record<string, unknown> } = {}): Policy {
  return validatePolicy({
    version: opts.version ?? 1,
    assets: ASSETS,
    approverGroups: { treasury: ['alice', 'bob', 'carol'] },
    ...opts.extra,
    rules: [...(opts.allow ?? [{ id: 'allow-evm', type: 'allow', chainIds: ['1', '8453'], kinds: KNOWN_KINDS }]), ...rules],
  });
}

function usdcCall(chainId: string, kind: Action['kind'], to: string, selector: string, name: string, effect: (token: string) => Effect): Action {
  const token = chainId === '8453' ? USDC_BASE : USDC_ETH;
  return { chain: 'ethereum', chainId, kind, to, contract: token, function: { selector, name }, effects: [effect(token)] };
}

export function usdcTransfer(amount: bigint, to = ALICE, chainId = '8453'): Action {
  return usdcCall(chainId, 'token_transfer', to, '0xa9059cbb', 'transfer', (asset) => ({ type: 'transfer', asset, to, amount }));
}

export function ethTransfer(amount: bigint, to = ALICE, chainId = '8453', fee?: bigint): Action {
  return {
    chain: 'ethereum',
    chainId,
    kind: 'native_transfer',
    to,
    effects: [{ type: 'transfer', asset: 'native', to, amount }],
    ...(fee !== undefined ? { fee } : {}),
  };
}

export function usdcApproval(amount: bigint, spender = ROUTER, chainId = '8453'): Action {
  return usdcCall(chainId, 'token_approval', spender, '0x095ea7b3', 'approve', (asset) => ({ type: 'approval', asset, spender, amount }));
}

export function call(contract: string, selector: string, effects: Effect[] = [], chainId = '8453'): Action {
  return { chain: 'ethereum', chainId, kind: 'contract_call', to: contract, contract, function: { selector }, effects };
}

export const T = (iso: string) => Date.parse(iso);
