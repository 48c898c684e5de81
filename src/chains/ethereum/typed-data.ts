/**
 * EIP-712 typed data. The digest is viem's hashTypedData; the meaning is recognised for the signatures
 * that grant token allowances off-chain: ERC-2612 `Permit` (and DAI's older `Permit`), and Uniswap
 * Permit2 (`PermitSingle`, `PermitBatch`, `PermitTransferFrom`, `PermitBatchTransferFrom` and their
 * `...Witness...` forms). Anything else is kind 'typed_data' with its domain and primary type.
 */
import { getAddress, hashTypedData, maxUint256, type TypedDataDefinition } from 'viem';
import { z } from 'zod';
import { UNKNOWN_ASSET, type Action, type Decoded, type Effect } from '../types.ts';
import { attempt, decodeFailed, expectSame, hexToBytesStrict } from '../util.ts';
import { PERMIT2_ADDRESS } from './calldata.ts';
import type { EvmOptions } from './transaction.ts';

const field = z.strictObject({ name: z.string().min(1), type: z.string().min(1) });

export const TypedDataSchema = z.object({
  domain: z.record(z.string(), z.unknown()),
  types: z.record(z.string(), z.array(field)),
  primaryType: z.string().min(1),
  message: z.record(z.string(), z.unknown()),
});

export function decodeEvmTypedData(payload: unknown, opts: EvmOptions = {}): Decoded {
  const json = typeof payload === 'string' ? attempt('evm_typed_data is not valid JSON', {}, () => JSON.parse(payload) as unknown) : payload;
  const parsed = TypedDataSchema.safeParse(json);
  if (!parsed.success) {
    decodeFailed('invalid EIP-712 typed data', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  const td = parsed.data;
  if (td.primaryType !== 'EIP712Domain' && !td.types[td.primaryType]) {
    decodeFailed(`primaryType ${td.primaryType} is not defined in types`, { primaryType: td.primaryType });
  }
  const digest = attempt('typed data does not encode (types, domain or message invalid)', { primaryType: td.primaryType }, () =>
    hashTypedData(td as unknown as TypedDataDefinition),
  );
  const domain = td.domain;
  const chainId = domain.chainId === undefined ? undefined : attempt('domain.chainId is not an integer', {}, () => BigInt(domain.chainId as string).toString());
  expectSame('chainId', chainId, opts.chainId);
  const verifyingContract = typeof domain.verifyingContract === 'string' ? getAddress(domain.verifyingContract) : undefined;
  const from = opts.from === undefined ? undefined : attempt('opts.from is not an EVM address', {}, () => getAddress(opts.from!));

  let approval: Approval | undefined;
  let malformed = false;
  try {
    approval = permitMeaning(td.primaryType, domain, td.message, verifyingContract);
  } catch {
    malformed = true; // permit-shaped but not the fields we know: judged as unknown, not guessed at
  }
  const action: Action = {
    chain: 'ethereum',
    ...(chainId === undefined ? {} : { chainId }),
    kind: approval ? 'token_approval' : malformed ? 'unknown' : 'typed_data',
    ...(from === undefined ? {} : { from }),
    ...(approval ? { to: approval.spender } : verifyingContract ? { to: verifyingContract } : {}),
    ...(verifyingContract ? { contract: verifyingContract } : {}),
    effects: approval?.effects ?? [],
    typedData: { domain, primaryType: td.primaryType },
  };
  const notes = [...(approval?.notes ?? [])];
  if (malformed) notes.push(`${td.primaryType} looks like a token permit but its fields are not the known ones`);
  if (approval?.owner && from && approval.owner !== from) notes.push(`permit owner ${approval.owner} is not the signer ${from}: the signature would not be valid for it`);
  if (notes.length) action.notes = notes;
  return { action, signingPayloads: [hexToBytesStrict(digest, 'digest')], signing: [{ scheme: 'ecdsa-secp256k1' }] };
}

interface Approval {
  spender: string;
  owner?: string;
  effects: Effect[];
  notes: string[];
}

type Msg = Record<string, unknown>;
const PERMIT2_SINGLE = new Set(['PermitSingle', 'PermitBatch']);
const PERMIT2_TRANSFER = /^Permit(Batch)?(Witness)?TransferFrom$/;

function permitMeaning(primaryType: string, domain: Msg, m: Msg, verifyingContract: string | undefined): Approval | undefined {
  const isPermit2 = domain.name === 'Permit2' && (PERMIT2_SINGLE.has(primaryType) || PERMIT2_TRANSFER.test(primaryType));
  if (isPermit2) {
    const notes = verifyingContract === PERMIT2_ADDRESS ? [] : [`domain is named Permit2 but verifyingContract ${verifyingContract ?? '(none)'} is not the canonical Permit2`];
    const spender = getAddress(m.spender as string);
    if (PERMIT2_SINGLE.has(primaryType)) {
      const details = (Array.isArray(m.details) ? m.details : [m.details]) as Msg[];
      notes.push(`Permit2 allowance; the signature itself is usable until sigDeadline ${String(m.sigDeadline)}`);
      return {
        spender,
        notes,
        effects: details.map((d) => ({ type: 'approval', asset: getAddress(d.token as string), spender, amount: BigInt(d.amount as string), expiry: Number(d.expiration) })),
      };
    }
    const permitted = (Array.isArray(m.permitted) ? m.permitted : [m.permitted]) as Msg[];
    notes.push('Permit2 signature transfer: the spender may move up to amount, once, to a recipient of its choice');
    if (primaryType.includes('Witness')) notes.push('carries a witness (e.g. an order) that the spender contract interprets');
    return {
      spender,
      notes,
      effects: permitted.map((p) => ({ type: 'approval', asset: getAddress(p.token as string), spender, amount: BigInt(p.amount as string), expiry: Number(m.deadline) })),
    };
  }
  if (primaryType !== 'Permit' || typeof m.spender !== 'string') return undefined;
  const asset = verifyingContract ?? UNKNOWN_ASSET;
  const notes = verifyingContract ? [] : ['permit domain has no verifyingContract: the token is unknown'];
  const spender = getAddress(m.spender);
  if ('value' in m && 'deadline' in m) {
    // ERC-2612
    return {
      spender,
      owner: getAddress(m.owner as string),
      notes: ['ERC-2612 permit'],
      effects: [{ type: 'approval', asset, spender, amount: BigInt(m.value as string), expiry: Number(m.deadline) }],
    };
  }
  if ('allowed' in m && 'holder' in m) {
    // DAI-style permit: all-or-nothing, expiry 0 = never expires
    const expiry = Number(m.expiry);
    notes.push(m.allowed ? 'DAI-style permit: unlimited allowance' : 'DAI-style permit: revokes the allowance');
    if (expiry === 0) notes.push('expiry 0: the allowance never expires');
    return {
      spender,
      owner: getAddress(m.holder as string),
      notes,
      effects: [{ type: 'approval', asset, spender, amount: m.allowed ? maxUint256 : 0n, ...(expiry === 0 ? {} : { expiry }) }],
    };
  }
  return undefined;
}
