/**
 * EVM transactions: a serialized unsigned transaction (legacy, EIP-2930, EIP-1559; EIP-4844 decoded with
 * a note; EIP-7702 decoded but of kind 'unknown', since it sets account code), or a JSON transaction
 * request that we serialize ourselves. The digest is
 * keccak256 of exactly the unsigned serialization, so what the policy judges is what gets signed.
 *
 * Signed transactions are rejected: a signing request carries an unsigned transaction, and accepting
 * a signed one would leave it ambiguous which signature the caller means to keep.
 */
import {
  getAddress,
  getContractAddress,
  keccak256,
  parseTransaction,
  serializeTransaction,
  type Hex,
  type TransactionSerializable,
} from 'viem';
import { z } from 'zod';
import { NATIVE_ASSET, UNKNOWN_ASSET, type Action, type Decoded } from '../types.ts';
import { attempt, decodeFailed, expectSame, hexToBytesStrict, toHex } from '../util.ts';
import { describeCall } from './calldata.ts';

export interface EvmOptions {
  chainId?: string;
  from?: string;
}

/** Gas per blob (EIP-4844), for the blob fee bound. */
const GAS_PER_BLOB = 131_072n;

export function decodeEvmTransaction(payload: string | Record<string, unknown>, opts: EvmOptions = {}): Decoded {
  if (typeof payload === 'string') return decodeSerialized(toHex(hexToBytesStrict(payload, 'evm_transaction')), opts);
  const { serializable, from } = fromRequest(payload, opts);
  expectSame('from', from, opts.from);
  const encoded = attempt('transaction request cannot be serialized', {}, () => serializeTransaction(serializable));
  const decoded = decodeSerialized(encoded, { ...opts, from: opts.from ?? from });
  return { ...decoded, encoded };
}

function decodeSerialized(hex: Hex, opts: EvmOptions): Decoded {
  const tx = attempt('not a valid serialized EVM transaction', {}, () => parseTransaction(hex));
  if ('r' in tx || 's' in tx || 'v' in tx || 'yParity' in tx) {
    decodeFailed('the transaction is already signed: submit the unsigned transaction', { reason: 'already_signed' });
  }
  const canonical = attempt('transaction does not re-encode', {}, () => serializeTransaction(tx as TransactionSerializable));
  if (canonical.toLowerCase() !== hex.toLowerCase()) {
    decodeFailed('transaction encoding is not canonical (trailing or non-minimal bytes)', { type: tx.type });
  }
  const chainId = tx.chainId === undefined ? undefined : String(tx.chainId);
  expectSame('chainId', chainId, opts.chainId);
  const from = opts.from === undefined ? undefined : attempt('opts.from is not an EVM address', {}, () => getAddress(opts.from!));
  const value = tx.value ?? 0n;
  const data = (tx.data ?? '0x') as Hex;
  const notes: string[] = [];
  if (chainId === undefined) notes.push('legacy transaction without a chain id (pre-EIP-155): it is valid on every EVM chain');

  let meaning: Pick<Action, 'kind' | 'to' | 'contract' | 'function' | 'effects' | 'notes'>;
  if (!tx.to) {
    const created = from === undefined ? undefined : getContractAddress({ from: from as Hex, nonce: BigInt(tx.nonce ?? 0) });
    meaning = {
      kind: 'contract_deploy',
      ...(created ? { to: created } : {}),
      effects: value > 0n ? [{ type: 'transfer', asset: NATIVE_ASSET, to: created ?? UNKNOWN_ASSET, amount: value }] : [],
      notes: created ? [] : ['the new contract address is unknown without opts.from'],
    };
  } else {
    meaning = describeCall(getAddress(tx.to), value, data);
  }
  if (tx.type === 'eip7702') {
    // Delegating accounts to code is not something a transfer/call policy can weigh: judged as unknown.
    const list = tx.authorizationList ?? [];
    const targets = list.map((a) => `${getAddress(a.address)} (chain ${a.chainId}, nonce ${a.nonce})`);
    notes.push(`EIP-7702: carries ${list.length} signed authorization(s) setting account code to: ${targets.join(', ')}`);
  }
  if (tx.type === 'eip4844') notes.push(`EIP-4844 blob transaction with ${tx.blobVersionedHashes?.length ?? 0} blob(s)`);

  const action: Action = {
    chain: 'ethereum',
    ...(chainId === undefined ? {} : { chainId }),
    kind: tx.type === 'eip7702' ? 'unknown' : meaning.kind,
    ...(from === undefined ? {} : { from }),
    ...(meaning.to === undefined ? {} : { to: meaning.to }),
    ...(meaning.contract === undefined ? {} : { contract: meaning.contract }),
    ...(meaning.function === undefined ? {} : { function: meaning.function }),
    effects: meaning.effects,
    fee: maxFee(tx),
  };
  const allNotes = [...(meaning.notes ?? []), ...notes];
  if (allNotes.length) action.notes = allNotes;
  return {
    action,
    signingPayloads: [hexToBytesStrict(keccak256(hex), 'digest')],
    signing: [{ scheme: 'ecdsa-secp256k1' }],
  };
}

/** The most the transaction can pay in fees: gas × max fee per gas (+ blob gas × max blob fee). */
function maxFee(tx: ReturnType<typeof parseTransaction>): bigint {
  const gas = tx.gas ?? 0n;
  const perGas = tx.maxFeePerGas ?? tx.gasPrice ?? 0n;
  const blobs = BigInt(tx.blobVersionedHashes?.length ?? 0);
  return gas * perGas + blobs * GAS_PER_BLOB * (tx.maxFeePerBlobGas ?? 0n);
}

// ---- JSON transaction request ----

const quantity = z.union([
  z.string().regex(/^(0x[0-9a-fA-F]{1,64}|[0-9]{1,78})$/, 'expected a decimal or 0x-hex quantity'),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  z.bigint().nonnegative(),
]);
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 20-byte 0x address');
const hexData = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, 'expected 0x-prefixed hex bytes');

export const TransactionRequestSchema = z.strictObject({
  type: z.enum(['legacy', 'eip2930', 'eip1559', '0x0', '0x1', '0x2']).optional(),
  from: address.optional(),
  to: address.nullable().optional(),
  value: quantity.optional(),
  data: hexData.optional(),
  input: hexData.optional(),
  chainId: quantity.optional(),
  nonce: quantity,
  gas: quantity.optional(),
  gasLimit: quantity.optional(),
  gasPrice: quantity.optional(),
  maxFeePerGas: quantity.optional(),
  maxPriorityFeePerGas: quantity.optional(),
  accessList: z.array(z.strictObject({ address, storageKeys: z.array(z.string().regex(/^0x[0-9a-fA-F]{64}$/)) })).optional(),
});

const big = (q: z.infer<typeof quantity>) => BigInt(q);

function fromRequest(payload: Record<string, unknown>, opts: EvmOptions): { serializable: TransactionSerializable; from?: string } {
  const parsed = TransactionRequestSchema.safeParse(payload);
  if (!parsed.success) {
    decodeFailed('invalid EVM transaction request', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  const r = parsed.data;
  if (r.data !== undefined && r.input !== undefined && r.data.toLowerCase() !== r.input.toLowerCase()) {
    decodeFailed('transaction request has different data and input', {});
  }
  const gas = r.gas ?? r.gasLimit;
  if (gas === undefined) decodeFailed('transaction request needs gas (or gasLimit)', {});
  if (r.gas !== undefined && r.gasLimit !== undefined && big(r.gas) !== big(r.gasLimit)) decodeFailed('transaction request has different gas and gasLimit', {});
  const chainIdText = r.chainId === undefined ? opts.chainId : String(big(r.chainId));
  if (chainIdText === undefined) decodeFailed('transaction request needs a chainId (in the request or opts.chainId)', {});
  const chainId = Number(chainIdText);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) decodeFailed('chainId must be a positive integer', { chainId: chainIdText });
  const base = {
    chainId,
    nonce: Number(big(r.nonce)),
    gas: big(gas),
    value: r.value === undefined ? 0n : big(r.value),
    data: (r.data ?? r.input ?? '0x') as Hex,
    ...(r.to ? { to: r.to as Hex } : {}),
  };
  if (!Number.isSafeInteger(base.nonce)) decodeFailed('nonce is too large', {});
  const type = r.type === '0x0' ? 'legacy' : r.type === '0x1' ? 'eip2930' : r.type === '0x2' ? 'eip1559' : r.type;
  const accessList = r.accessList?.map((e) => ({ address: e.address as Hex, storageKeys: e.storageKeys as Hex[] }));
  let serializable: TransactionSerializable;
  if (type === 'eip1559' || (type === undefined && r.maxFeePerGas !== undefined)) {
    if (r.maxFeePerGas === undefined || r.gasPrice !== undefined) decodeFailed('an EIP-1559 request needs maxFeePerGas and no gasPrice', {});
    serializable = {
      ...base,
      type: 'eip1559',
      maxFeePerGas: big(r.maxFeePerGas),
      maxPriorityFeePerGas: r.maxPriorityFeePerGas === undefined ? 0n : big(r.maxPriorityFeePerGas),
      ...(accessList ? { accessList } : {}),
    };
  } else {
    if (r.gasPrice === undefined || r.maxFeePerGas !== undefined || r.maxPriorityFeePerGas !== undefined) {
      decodeFailed('a legacy or EIP-2930 request needs gasPrice and no EIP-1559 fee fields', {});
    }
    const asType = type ?? (accessList ? 'eip2930' : 'legacy');
    if (asType === 'legacy' && accessList) decodeFailed('a legacy request cannot carry an access list', {});
    serializable =
      asType === 'eip2930'
        ? { ...base, type: 'eip2930', gasPrice: big(r.gasPrice), accessList: accessList ?? [] }
        : { ...base, type: 'legacy', gasPrice: big(r.gasPrice) };
  }
  return { serializable, ...(r.from ? { from: r.from } : {}) };
}
