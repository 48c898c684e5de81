/**
 * What a call does, from its destination, value and calldata: ERC-20 transfers and approvals (and the
 * approval-shaped calls that move control of tokens: setApprovalForAll, increaseAllowance, Permit2
 * `approve`) become effects; anything else is a contract_call named by its 4-byte selector.
 */
import { decodeFunctionData, encodeFunctionData, erc20Abi, getAddress, maxUint256, parseAbi, type Hex } from 'viem';
import { NATIVE_ASSET, type Action, type ActionKind, type Effect } from '../types.ts';

/** Canonical Uniswap Permit2 deployment (same address on every chain it is deployed to). */
export const PERMIT2_ADDRESS = '0x000000000022D473030F116dDEE9F6B43aC78BA3';

/** Approval-shaped functions beyond ERC-20 that hand control of tokens to someone else. */
const approvalAbi = parseAbi([
  'function setApprovalForAll(address operator, bool approved)',
  'function increaseAllowance(address spender, uint256 addedValue)',
  'function approve(address token, address spender, uint160 amount, uint48 expiration)',
]);
const knownAbi = [...erc20Abi, ...approvalAbi] as const;

export type CallMeaning = Pick<Action, 'kind' | 'to' | 'contract' | 'function' | 'effects' | 'notes'>;

/**
 * Describe a call to `contract` carrying `value` wei and `data`. `contract` is checksummed.
 * A value-only call (empty data) is a native transfer.
 */
export function describeCall(contract: string, value: bigint, data: Hex): CallMeaning {
  const nativeEffect: Effect[] = value > 0n ? [{ type: 'transfer', asset: NATIVE_ASSET, to: contract, amount: value }] : [];
  if (data === '0x') {
    return { kind: 'native_transfer', to: contract, effects: [{ type: 'transfer', asset: NATIVE_ASSET, to: contract, amount: value }] };
  }
  if (data.length < 10) {
    return {
      kind: 'contract_call',
      to: contract,
      contract,
      function: { selector: data },
      effects: nativeEffect,
      notes: ['calldata is shorter than a 4-byte selector: the contract fallback function runs'],
    };
  }
  const selector = data.slice(0, 10).toLowerCase();
  let decoded: ReturnType<typeof decodeFunctionData<typeof knownAbi>> | undefined;
  try {
    decoded = decodeFunctionData({ abi: knownAbi, data });
  } catch {
    decoded = undefined;
  }
  const token = decoded && tokenMeaning(contract, decoded);
  if (!decoded || !token) {
    return { kind: 'contract_call', to: contract, contract, function: { selector }, effects: nativeEffect };
  }
  const args = namedArgs(decoded.functionName, decoded.args as readonly unknown[]);
  const notes = [...(token.notes ?? [])];
  if (reencode(decoded) !== data.toLowerCase()) notes.push('calldata has extra or non-canonical bytes beyond the ABI encoding (ignored by the contract)');
  return {
    kind: token.kind,
    to: token.to,
    contract,
    function: { selector, name: decoded.functionName, args },
    effects: [...token.effects, ...nativeEffect],
    ...(notes.length ? { notes } : {}),
  };
}

interface TokenMeaning {
  kind: ActionKind;
  to: string;
  effects: Effect[];
  notes?: string[];
}

type Decoded = { functionName: string; args?: readonly unknown[] };

function tokenMeaning(contract: string, d: Decoded): TokenMeaning | undefined {
  const a = (d.args ?? []) as readonly unknown[];
  switch (d.functionName) {
    case 'transfer': {
      const [to, amount] = a as [string, bigint];
      return { kind: 'token_transfer', to: getAddress(to), effects: [{ type: 'transfer', asset: contract, to: getAddress(to), amount }] };
    }
    case 'transferFrom': {
      const [from, to, amount] = a as [string, string, bigint];
      return {
        kind: 'token_transfer',
        to: getAddress(to),
        effects: [{ type: 'transfer', asset: contract, from: getAddress(from), to: getAddress(to), amount }],
        notes: ['transferFrom shares its selector with ERC-721: on an NFT contract the amount is a token id'],
      };
    }
    case 'approve': {
      if (a.length === 4) {
        const [tokenAddr, spender, amount, expiration] = a as [string, string, bigint, number];
        return {
          kind: 'token_approval',
          to: getAddress(spender),
          effects: [{ type: 'approval', asset: getAddress(tokenAddr), spender: getAddress(spender), amount, expiry: Number(expiration) }],
          notes: contract === PERMIT2_ADDRESS ? ['Permit2 allowance'] : ['Permit2-style allowance on a contract that is not the canonical Permit2'],
        };
      }
      const [spender, amount] = a as [string, bigint];
      return { kind: 'token_approval', to: getAddress(spender), effects: [{ type: 'approval', asset: contract, spender: getAddress(spender), amount }] };
    }
    case 'increaseAllowance': {
      const [spender, amount] = a as [string, bigint];
      return {
        kind: 'token_approval',
        to: getAddress(spender),
        effects: [{ type: 'approval', asset: contract, spender: getAddress(spender), amount }],
        notes: ['increaseAllowance adds amount to the existing allowance'],
      };
    }
    case 'setApprovalForAll': {
      const [operator, approved] = a as [string, boolean];
      return {
        kind: 'token_approval',
        to: getAddress(operator),
        effects: [{ type: 'approval', asset: contract, spender: getAddress(operator), amount: approved ? maxUint256 : 0n }],
        notes: [approved ? 'setApprovalForAll: the operator may move every token of this collection (amount = max uint256)' : 'setApprovalForAll(false): revokes the operator'],
      };
    }
    default:
      return undefined; // a read-only ERC-20 function sent as a transaction: a plain contract call
  }
}

const PARAM_NAMES: Record<string, string[]> = {
  transfer: ['to', 'amount'],
  transferFrom: ['from', 'to', 'amount'],
  approve: ['spender', 'amount'],
  increaseAllowance: ['spender', 'addedValue'],
  setApprovalForAll: ['operator', 'approved'],
};

function namedArgs(fn: string, args: readonly unknown[]): Record<string, unknown> {
  const names = fn === 'approve' && args.length === 4 ? ['token', 'spender', 'amount', 'expiration'] : PARAM_NAMES[fn] ?? [];
  return Object.fromEntries(args.map((v, i) => [names[i] ?? String(i), v]));
}

function reencode(d: Decoded): string {
  return encodeFunctionData({ abi: knownAbi, functionName: d.functionName, args: d.args } as never).toLowerCase();
}
