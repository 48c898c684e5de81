/**
 * What one Solana instruction does, read with the official program codecs: System transfers and
 * account creation, SPL Token (and Token-2022's identical base instructions) transfers and approvals,
 * and the setup programs every wallet adds (Compute Budget, Associated Token Account, Memo). Any
 * other instruction is a call to its program, named when the program is known.
 */
import {
  type AccountMeta,
  type Instruction,
  type InstructionWithAccounts,
  type InstructionWithData,
  type ReadonlyUint8Array,
} from '@solana/kit';
import {
  identifySystemInstruction,
  parseCreateAccountInstruction,
  parseTransferSolInstruction,
  parseTransferSolWithSeedInstruction,
  SYSTEM_PROGRAM_ADDRESS,
  SystemInstruction,
} from '@solana-program/system';
import {
  ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
  AssociatedTokenInstruction,
  identifyAssociatedTokenInstruction,
  identifyTokenInstruction,
  parseApproveCheckedInstruction,
  parseApproveInstruction,
  parseTransferCheckedInstruction,
  parseTransferInstruction,
  TOKEN_PROGRAM_ADDRESS,
  TokenInstruction,
} from '@solana-program/token';
import { NATIVE_ASSET, UNKNOWN_ASSET, type Call, type Effect } from '../types.ts';
import { toHex, utf8OrUndefined } from '../util.ts';

export const COMPUTE_BUDGET_PROGRAM = 'ComputeBudget111111111111111111111111111111';
export const TOKEN_2022_PROGRAM = 'TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb';
const MEMO_PROGRAMS = new Set(['MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr', 'Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo']);

export type Ix = Instruction & InstructionWithAccounts<readonly AccountMeta[]> & InstructionWithData<ReadonlyUint8Array>;

/** How an instruction weighs on the action's kind: setup never decides it; a call always does. */
export type Weight = 'setup' | 'native_transfer' | 'token_transfer' | 'token_approval' | 'call';

export interface IxMeaning {
  call: Call;
  weight: Weight;
  effects: Effect[];
  notes: string[];
  /** The counterparty (recipient, delegate) for transfers and approvals. */
  to?: string;
}

/** Describe one instruction. `signer` is Action.from, to omit `from` on effects that come from it. */
export function describeInstruction(ix: Ix, signer: string): IxMeaning {
  const program = ix.programAddress as string;
  try {
    if (program === SYSTEM_PROGRAM_ADDRESS) return system(ix, signer);
    if (program === TOKEN_PROGRAM_ADDRESS || program === TOKEN_2022_PROGRAM) return token(ix);
    if (program === ASSOCIATED_TOKEN_PROGRAM_ADDRESS) return associatedToken(ix);
    if (program === COMPUTE_BUDGET_PROGRAM) return computeBudget(ix);
    if (MEMO_PROGRAMS.has(program)) {
      const text = utf8OrUndefined(Uint8Array.from(ix.data));
      return { call: named(program, 'memo:Memo', text === undefined ? {} : { text }), weight: 'setup', effects: [], notes: [] };
    }
  } catch {
    // a known program whose instruction data or accounts do not parse: an opaque call below
    return opaque(program, ix, ['instruction of a known program does not parse with its codec']);
  }
  return opaque(program, ix, []);
}

/** Known instructions are named `program:Instruction` (the selector policies list); opaque ones by data prefix. */
function named(program: string, name: string, args?: Record<string, unknown>): Call {
  return { contract: program, function: { selector: name, name, ...(args ? { args } : {}) } };
}

/** An instruction of a program we do not know: selected by its first 8 data bytes (Anchor's discriminator). */
function opaque(program: string, ix: Ix, notes: string[]): IxMeaning {
  const selector = toHex(ix.data.slice(0, 8));
  return { call: { contract: program, function: { selector } }, weight: 'call', effects: [], notes };
}

const COMPUTE_BUDGET_NAMES = ['RequestUnits', 'RequestHeapFrame', 'SetComputeUnitLimit', 'SetComputeUnitPrice', 'SetLoadedAccountsDataSizeLimit'];

function computeBudget(ix: Ix): IxMeaning {
  const name = COMPUTE_BUDGET_NAMES[ix.data[0] ?? -1];
  if (!name) return opaque(COMPUTE_BUDGET_PROGRAM, ix, ['unknown Compute Budget instruction']);
  return { call: named(COMPUTE_BUDGET_PROGRAM, `computeBudget:${name}`), weight: 'setup', effects: [], notes: [] };
}

const addr = (m: AccountMeta | undefined): string => {
  if (!m) throw new Error('missing account');
  return m.address as string;
};

const fromUnlessSigner = (source: string, signer: string) => (source === signer ? {} : { from: source });

function system(ix: Ix, signer: string): IxMeaning {
  const kind = identifySystemInstruction(ix);
  const name = SystemInstruction[kind];
  const call = (args: Record<string, unknown>): Call => named(SYSTEM_PROGRAM_ADDRESS, `system:${name}`, args);
  switch (kind) {
    case SystemInstruction.TransferSol:
    case SystemInstruction.TransferSolWithSeed: {
      const p = kind === SystemInstruction.TransferSol ? parseTransferSolInstruction(ix) : parseTransferSolWithSeedInstruction(ix);
      const [source, to] = [addr(p.accounts.source), addr(p.accounts.destination)];
      return {
        call: call({ source, destination: to, lamports: p.data.amount }),
        weight: 'native_transfer',
        to,
        effects: [{ type: 'transfer', asset: NATIVE_ASSET, to, amount: p.data.amount, ...fromUnlessSigner(source, signer) }],
        notes: [],
      };
    }
    case SystemInstruction.CreateAccount: {
      const p = parseCreateAccountInstruction(ix);
      const [source, to] = [addr(p.accounts.payer), addr(p.accounts.newAccount)];
      return {
        call: call({ payer: source, newAccount: to, lamports: p.data.lamports, space: p.data.space, programOwner: p.data.programAddress }),
        weight: 'setup',
        effects: [{ type: 'transfer', asset: NATIVE_ASSET, to, amount: p.data.lamports, ...fromUnlessSigner(source, signer) }],
        notes: [`creates account ${to} owned by program ${p.data.programAddress as string}`],
      };
    }
    case SystemInstruction.AdvanceNonceAccount:
      return { call: call({}), weight: 'setup', effects: [], notes: ['durable nonce: this transaction does not expire with a blockhash'] };
    default:
      return { call: call({}), weight: 'call', effects: [], notes: [] };
  }
}

function token(ix: Ix): IxMeaning {
  const program = ix.programAddress as string;
  const kind = identifyTokenInstruction(ix);
  const name = TokenInstruction[kind];
  const notes = program === TOKEN_2022_PROGRAM ? ['Token-2022: transfer fees and transfer hooks of the mint may apply'] : [];
  const call = (args: Record<string, unknown>): Call => named(program, `token:${name}`, args);
  switch (kind) {
    case TokenInstruction.Transfer: {
      const p = parseTransferInstruction(ix);
      const [source, to, authority] = [addr(p.accounts.source), addr(p.accounts.destination), addr(p.accounts.authority)];
      return {
        call: call({ source, destination: to, authority, amount: p.data.amount }),
        weight: 'token_transfer',
        to,
        effects: [{ type: 'transfer', asset: UNKNOWN_ASSET, to, amount: p.data.amount, from: source }],
        notes: [...notes, `SPL Transfer names no mint: the token of source account ${source} is unknown offline`],
      };
    }
    case TokenInstruction.TransferChecked: {
      const p = parseTransferCheckedInstruction(ix);
      const [source, mint, to, authority] = [addr(p.accounts.source), addr(p.accounts.mint), addr(p.accounts.destination), addr(p.accounts.authority)];
      return {
        call: call({ source, mint, destination: to, authority, amount: p.data.amount, decimals: p.data.decimals }),
        weight: 'token_transfer',
        to,
        effects: [{ type: 'transfer', asset: mint, to, amount: p.data.amount, from: source }],
        notes,
      };
    }
    case TokenInstruction.Approve: {
      const p = parseApproveInstruction(ix);
      const [source, delegate, owner] = [addr(p.accounts.source), addr(p.accounts.delegate), addr(p.accounts.owner)];
      return {
        call: call({ source, delegate, owner, amount: p.data.amount }),
        weight: 'token_approval',
        to: delegate,
        effects: [{ type: 'approval', asset: UNKNOWN_ASSET, spender: delegate, amount: p.data.amount }],
        notes: [...notes, `SPL Approve names no mint: the token of account ${source} is unknown offline`],
      };
    }
    case TokenInstruction.ApproveChecked: {
      const p = parseApproveCheckedInstruction(ix);
      const [source, mint, delegate, owner] = [addr(p.accounts.source), addr(p.accounts.mint), addr(p.accounts.delegate), addr(p.accounts.owner)];
      return {
        call: call({ source, mint, delegate, owner, amount: p.data.amount, decimals: p.data.decimals }),
        weight: 'token_approval',
        to: delegate,
        effects: [{ type: 'approval', asset: mint, spender: delegate, amount: p.data.amount }],
        notes,
      };
    }
    default:
      // SetAuthority, CloseAccount, Burn, MintTo...: they change who controls value; judged as calls
      return { call: call({}), weight: 'call', effects: [], notes };
  }
}

function associatedToken(ix: Ix): IxMeaning {
  const kind = identifyAssociatedTokenInstruction(ix);
  const name = AssociatedTokenInstruction[kind];
  const call = named(ASSOCIATED_TOKEN_PROGRAM_ADDRESS, `associatedToken:${name}`);
  if (kind === AssociatedTokenInstruction.RecoverNestedAssociatedToken) return { call, weight: 'call', effects: [], notes: [] };
  const ata = ix.accounts[1]?.address as string | undefined;
  return { call, weight: 'setup', effects: [], notes: [`creates associated token account ${ata ?? '?'} (rent paid by the payer)`] };
}
