/**
 * EIP-712 typed data. The digest is viem's hashTypedData; the meaning is recognised for the signatures
 * that grant token allowances off-chain: ERC-2612 `Permit` (and DAI's older `Permit`), and Uniswap
 * Permit2 (`PermitSingle`, `PermitBatch`, `PermitTransferFrom`, `PermitBatchTransferFrom` and their
 * `...Witness...` forms); and the signatures that move tokens themselves: EIP-3009
 * `TransferWithAuthorization` / `ReceiveWithAuthorization` (USDC and its kind; what an x402 `exact`
 * EVM payment signs), read as a `token_transfer` of the domain's token to `to`. Anything else is kind
 * 'typed_data' with its domain and primary type.
 */
import { getAddress, hashTypedData, maxUint256, type TypedDataDefinition } from 'viem';
import { z } from 'zod';
import { UNKNOWN_ASSET, type Action, type Decoded, type Effect } from '../types.ts';
import { attempt, decodeFailed, expectSame, hexToBytesStrict } from '../util.ts';
import { PERMIT2_ADDRESS } from './calldata.ts';
import type { EvmOptions } from './transaction.ts';

const field = z.strictObject({ name: z.string().min(1), type: z.string().min(1) });

/** The five EIP-712 domain fields; any other key would be silently left out of the hash. */
const DomainSchema = z.strictObject({
  name: z.string().optional(),
  version: z.string().optional(),
  chainId: z.union([z.number(), z.string(), z.bigint()]).optional(),
  verifyingContract: z.string().optional(),
  salt: z.string().optional(),
});

export const TypedDataSchema = z.object({
  domain: DomainSchema,
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
  const declared = td.types.EIP712Domain;
  if (declared) {
    // viem hashes the domain through the declared type: a domain field it leaves out would be shown but not signed
    const names = declared.map((f) => f.name).sort().join(',');
    const present = Object.keys(td.domain).filter((k) => td.domain[k as keyof typeof td.domain] !== undefined).sort().join(',');
    if (names !== present) decodeFailed('domain fields differ from the declared EIP712Domain type', { declared: names, domain: present });
  }
  const digest = attempt('typed data does not encode (types, domain or message invalid)', { primaryType: td.primaryType }, () =>
    hashTypedData(td as unknown as TypedDataDefinition),
  );
  const domain = td.domain as Record<string, unknown>;
  const chainId = domain.chainId === undefined ? undefined : attempt('domain.chainId is not an integer', {}, () => BigInt(domain.chainId as string).toString());
  expectSame('chainId', chainId, opts.chainId);
  const verifyingContract = typeof domain.verifyingContract === 'string' ? getAddress(domain.verifyingContract) : undefined;
  const from = opts.from === undefined ? undefined : attempt('opts.from is not an EVM address', {}, () => getAddress(opts.from!));

  let approval: Approval | undefined;
  let transfer: Transfer | undefined;
  let malformed = false;
  try {
    approval = permitMeaning(td.primaryType, td.types, domain, td.message, verifyingContract);
    transfer = approval ? undefined : authorizationMeaning(td.primaryType, td.types, td.message, verifyingContract);
  } catch {
    malformed = true; // permit-shaped but not the fields we know: judged as unknown, not guessed at
  }
  const meaning = approval ?? transfer;
  const action: Action = {
    chain: 'ethereum',
    ...(chainId === undefined ? {} : { chainId }),
    kind: approval ? 'token_approval' : transfer ? 'token_transfer' : malformed ? 'unknown' : 'typed_data',
    ...(from === undefined ? {} : { from }),
    ...(approval ? { to: approval.spender } : transfer ? { to: transfer.to } : verifyingContract ? { to: verifyingContract } : {}),
    ...(verifyingContract ? { contract: verifyingContract } : {}),
    effects: meaning?.effects ?? [],
    typedData: { domain, primaryType: td.primaryType },
  };
  const notes = [...(meaning?.notes ?? [])];
  if (malformed) notes.push(`${td.primaryType} is named like a token permit or transfer authorization but its types or values are not the standard ones`);
  if (meaning?.owner && from && meaning.owner !== from) notes.push(`${approval ? 'permit owner' : 'authorization from'} ${meaning.owner} is not the signer ${from}: the signature would not be valid for it`);
  if (notes.length) action.notes = notes;
  return { action, signingPayloads: [hexToBytesStrict(digest, 'digest')], signing: [{ scheme: 'ecdsa-secp256k1' }] };
}

interface Approval {
  spender: string;
  owner?: string;
  effects: Effect[];
  notes: string[];
}

interface Transfer {
  to: string;
  owner: string;
  effects: Effect[];
  notes: string[];
}

type Msg = Record<string, unknown>;
type Types = Record<string, { name: string; type: string }[]>;

/** The standard type definitions, as `type name` lists. A permit is recognised only when its types are these. */
const PERMIT_DETAILS = 'address token,uint160 amount,uint48 expiration,uint48 nonce';
const TOKEN_PERMISSIONS = 'address token,uint256 amount';
const PERMIT2_TYPES: Record<string, { fields: string; sub: [string, string]; witness?: true }> = {
  PermitSingle: { fields: 'PermitDetails details,address spender,uint256 sigDeadline', sub: ['PermitDetails', PERMIT_DETAILS] },
  PermitBatch: { fields: 'PermitDetails[] details,address spender,uint256 sigDeadline', sub: ['PermitDetails', PERMIT_DETAILS] },
  PermitTransferFrom: { fields: 'TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline', sub: ['TokenPermissions', TOKEN_PERMISSIONS] },
  PermitBatchTransferFrom: { fields: 'TokenPermissions[] permitted,address spender,uint256 nonce,uint256 deadline', sub: ['TokenPermissions', TOKEN_PERMISSIONS] },
  PermitWitnessTransferFrom: { fields: 'TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline', sub: ['TokenPermissions', TOKEN_PERMISSIONS], witness: true },
  PermitBatchWitnessTransferFrom: { fields: 'TokenPermissions[] permitted,address spender,uint256 nonce,uint256 deadline', sub: ['TokenPermissions', TOKEN_PERMISSIONS], witness: true },
};
const ERC2612 = 'address owner,address spender,uint256 value,uint256 nonce,uint256 deadline';
const DAI_PERMIT = 'address holder,address spender,uint256 nonce,uint256 expiry,bool allowed';

const signature = (fields: { name: string; type: string }[] | undefined) => (fields ?? []).map((f) => `${f.type} ${f.name}`).join(',');

/** The primary type is a known permit; its types must then be exactly the standard ones, else this throws. */
function permitMeaning(primaryType: string, types: Types, domain: Msg, m: Msg, verifyingContract: string | undefined): Approval | undefined {
  const permit2 = domain.name === 'Permit2' ? PERMIT2_TYPES[primaryType] : undefined;
  if (permit2) {
    const fields = types[primaryType] ?? [];
    const own = permit2.witness ? signature(fields.slice(0, 4)) : signature(fields);
    if (own !== permit2.fields || (permit2.witness && fields.length !== 5) || signature(types[permit2.sub[0]]) !== permit2.sub[1]) {
      throw new Error('not the standard Permit2 types');
    }
    const notes = verifyingContract === PERMIT2_ADDRESS ? [] : [`domain is named Permit2 but verifyingContract ${verifyingContract ?? '(none)'} is not the canonical Permit2`];
    const spender = getAddress(m.spender as string);
    if (primaryType === 'PermitSingle' || primaryType === 'PermitBatch') {
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
    if (permit2.witness) notes.push('carries a witness (e.g. an order) that the spender contract interprets');
    return {
      spender,
      notes,
      effects: permitted.map((p) => ({ type: 'approval', asset: getAddress(p.token as string), spender, amount: BigInt(p.amount as string), expiry: Number(m.deadline) })),
    };
  }
  if (primaryType !== 'Permit') return undefined;
  const shape = signature(types.Permit);
  if (shape !== ERC2612 && shape !== DAI_PERMIT) throw new Error('not a standard Permit type');
  const asset = verifyingContract ?? UNKNOWN_ASSET;
  const notes = verifyingContract ? [] : ['permit domain has no verifyingContract: the token is unknown'];
  const spender = getAddress(m.spender as string);
  if (shape === ERC2612) {
    return {
      spender,
      owner: getAddress(m.owner as string),
      notes: [...notes, 'ERC-2612 permit'],
      effects: [{ type: 'approval', asset, spender, amount: BigInt(m.value as string), expiry: Number(m.deadline) }],
    };
  }
  // DAI-style permit: all-or-nothing, expiry 0 = never expires
  const allowed = m.allowed === true;
  const expiry = Number(m.expiry);
  notes.push(allowed ? 'DAI-style permit: unlimited allowance' : 'DAI-style permit: revokes the allowance');
  if (expiry === 0) notes.push('expiry 0: the allowance never expires');
  return {
    spender,
    owner: getAddress(m.holder as string),
    notes,
    effects: [{ type: 'approval', asset, spender, amount: allowed ? maxUint256 : 0n, ...(expiry === 0 ? {} : { expiry }) }],
  };
}

/** EIP-3009's two authorizations share one field list (https://eips.ethereum.org/EIPS/eip-3009). */
const EIP3009 = 'address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce';

/**
 * EIP-3009 `TransferWithAuthorization` / `ReceiveWithAuthorization`: the token (the domain's
 * verifyingContract) moves `value` from `from` to `to` once, between validAfter and validBefore
 * (seconds). Its types must be exactly the standard ones, else this throws (judged unknown).
 */
function authorizationMeaning(primaryType: string, types: Types, m: Msg, verifyingContract: string | undefined): Transfer | undefined {
  if (primaryType !== 'TransferWithAuthorization' && primaryType !== 'ReceiveWithAuthorization') return undefined;
  if (signature(types[primaryType]) !== EIP3009) throw new Error('not the standard EIP-3009 type');
  const to = getAddress(m.to as string);
  const validAfter = BigInt(m.validAfter as string);
  const validBefore = BigInt(m.validBefore as string);
  const notes = [
    `EIP-3009 ${primaryType === 'ReceiveWithAuthorization' ? 'receive' : 'transfer'} authorization: usable once, valid after ${validAfter} and before ${validBefore} (unix seconds)`,
    ...(verifyingContract ? [] : ['authorization domain has no verifyingContract: the token is unknown']),
    ...(primaryType === 'ReceiveWithAuthorization' ? [`only ${to} can submit it (receiveWithAuthorization)`] : []),
    ...(validBefore <= validAfter ? ['validBefore is not after validAfter: it can never be used'] : []),
  ];
  return { to, owner: getAddress(m.from as string), notes, effects: [{ type: 'transfer', asset: verifyingContract ?? UNKNOWN_ASSET, to, amount: BigInt(m.value as string) }] };
}
