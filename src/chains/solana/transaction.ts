/**
 * Solana wire-format transactions (base64, legacy / v0 / v1 messages), decoded with @solana/kit. The
 * Ed25519 signature covers the message bytes exactly as received, which is what we return to sign.
 *
 * A v0 message that loads accounts from address lookup tables cannot be resolved offline: it is a valid
 * Action of kind 'unknown' naming its tables (policies deny those by default).
 */
import {
  decompileTransactionMessage,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  getTransactionMessageComputeUnitLimit,
  getTransactionMessageComputeUnitPrice,
  getTransactionMessagePriorityFeeLamports,
  type CompiledTransactionMessage,
  type CompiledTransactionMessageWithLifetime,
  type Instruction,
} from '@solana/kit';
import type { Action, Decoded, Effect } from '../types.ts';
import { attempt, base64ToBytesStrict, decodeFailed } from '../util.ts';
import { COMPUTE_BUDGET_PROGRAM, describeInstruction, type Ix, type IxMeaning, type Weight } from './instructions.ts';

export interface SolanaOptions {
  from?: string;
  /** Cluster name ('mainnet-beta', 'devnet'...): the transaction does not say; reported as chainId. */
  network?: string;
  chainId?: string;
}

const LAMPORTS_PER_SIGNATURE = 5000n;
const DEFAULT_UNITS_PER_INSTRUCTION = 200_000n;
const MAX_COMPUTE_UNITS = 1_400_000n;

type Compiled = CompiledTransactionMessage & CompiledTransactionMessageWithLifetime;

// @solana/kit's codecs are immutable values: made once, not on every decode.
let decoders: { tx: ReturnType<typeof getTransactionDecoder>; message: ReturnType<typeof getCompiledTransactionMessageDecoder> } | undefined;
const codecs = () => (decoders ??= { tx: getTransactionDecoder(), message: getCompiledTransactionMessageDecoder() });

export function decodeSolanaTransaction(payload: string, opts: SolanaOptions = {}): Decoded {
  const bytes = base64ToBytesStrict(payload, 'solana_transaction');
  const [tx, read] = attempt('not a Solana wire transaction', {}, () => codecs().tx.read(bytes, 0));
  if (read !== bytes.length) decodeFailed('trailing bytes after the Solana transaction', { length: bytes.length, read });
  const messageBytes = Uint8Array.from(tx.messageBytes);
  const [compiled, msgRead] = attempt('not a Solana transaction message', {}, () => codecs().message.read(messageBytes, 0));
  if (msgRead !== messageBytes.length) decodeFailed('trailing bytes after the Solana message', { length: messageBytes.length, read: msgRead });

  const signers = compiled.staticAccounts.slice(0, compiled.header.numSignerAccounts) as string[];
  const feePayer = signers[0];
  if (!feePayer) decodeFailed('Solana message has no signer (no fee payer)', {});
  if (opts.from !== undefined && !signers.includes(opts.from)) {
    decodeFailed(`${opts.from} is not a signer of this transaction`, { from: opts.from, signers });
  }
  const notes: string[] = [];
  const signed = Object.values(tx.signatures).filter((s) => s !== null).length;
  if (signed > 0) notes.push(`already carries ${signed} of ${signers.length} signature(s)`);
  if (opts.from !== undefined && opts.from !== feePayer) notes.push(`the fee is paid by ${feePayer}`);

  const base: Action = {
    chain: 'solana',
    ...(opts.network ?? opts.chainId ? { chainId: opts.network ?? opts.chainId } : {}),
    kind: 'unknown',
    from: opts.from ?? feePayer,
    effects: [],
  };
  const signing = { signingPayloads: [messageBytes], signing: [{ scheme: 'ed25519' as const }] };

  const lookups = compiled.version === 0 ? (compiled.addressTableLookups ?? []) : [];
  if (lookups.length > 0) {
    const programs = unique(compiledProgramIds(compiled));
    notes.push(`loads accounts from address lookup tables ${lookups.map((l) => l.lookupTableAddress).join(', ')}: accounts cannot be resolved offline`);
    return { action: { ...base, programs, notes }, ...signing };
  }

  const message = attempt('Solana message does not decompile (bad account or program index)', { version: compiled.version }, () =>
    decompileTransactionMessage(compiled as Compiled),
  );
  const ixs: Ix[] = (message.instructions as readonly Instruction[]).map((ix) => ({ programAddress: ix.programAddress, accounts: ix.accounts ?? [], data: ix.data ?? new Uint8Array() }));
  const meanings = ixs.map((ix) => describeInstruction(ix, base.from!));
  const programs = unique(ixs.map((ix) => ix.programAddress as string));
  for (const m of meanings) notes.push(...m.notes);
  if (ixs.length === 0) {
    notes.push('transaction has no instructions');
    return { action: { ...base, programs, notes }, ...signing };
  }

  const lead = leading(meanings);
  const action: Action = {
    ...base,
    kind: KIND[lead.weight],
    ...(lead.to ? { to: lead.to } : {}),
    contract: lead.call.contract,
    function: lead.call.function,
    effects: meanings.flatMap((m): Effect[] => m.effects),
    fee: fee(compiled, message, ixs),
    programs,
    calls: meanings.map((m) => m.call),
  };
  if (notes.length) action.notes = unique(notes);
  return { action, ...signing };
}

const KIND = {
  call: 'contract_call',
  token_approval: 'token_approval',
  token_transfer: 'token_transfer',
  native_transfer: 'native_transfer',
  setup: 'contract_call',
} as const satisfies Record<Weight, Action['kind']>;

/** The instruction that decides the kind: any opaque call first, then approvals, transfers, setup. */
function leading(meanings: IxMeaning[]): IxMeaning {
  const order: Weight[] = ['call', 'token_approval', 'token_transfer', 'native_transfer', 'setup'];
  for (const w of order) {
    const m = meanings.find((x) => x.weight === w);
    if (m) return m;
  }
  return meanings[0]!;
}

/**
 * The most the fee payer can be charged: 5000 lamports per signature plus the priority fee
 * (compute-unit price × limit, the limit defaulting to 200k units per instruction, capped at 1.4M).
 * v1 messages carry their priority fee in lamports in the message config.
 */
function fee(compiled: Compiled, message: ReturnType<typeof decompileTransactionMessage>, ixs: Ix[]): bigint {
  const base = LAMPORTS_PER_SIGNATURE * BigInt(compiled.header.numSignerAccounts);
  if (message.version === 1) return base + (getTransactionMessagePriorityFeeLamports(message) ?? 0n);
  const price = getTransactionMessageComputeUnitPrice(message as Parameters<typeof getTransactionMessageComputeUnitPrice>[0]) ?? 0n;
  const others = BigInt(ixs.filter((ix) => (ix.programAddress as string) !== COMPUTE_BUDGET_PROGRAM).length);
  const explicit = getTransactionMessageComputeUnitLimit(message);
  const units = explicit === undefined ? min(DEFAULT_UNITS_PER_INSTRUCTION * others, MAX_COMPUTE_UNITS) : BigInt(explicit);
  return base + (price * units + 999_999n) / 1_000_000n;
}

function compiledProgramIds(compiled: Compiled): string[] {
  const accounts = compiled.staticAccounts as string[];
  if (compiled.version === 1) return [];
  return compiled.instructions.map((ix) => accounts[ix.programAddressIndex] ?? `#${ix.programAddressIndex}`);
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
