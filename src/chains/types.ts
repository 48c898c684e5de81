/**
 * The one normalised shape every payload decodes into, whatever its chain. Policies read only this.
 *
 * An Action describes what a signature would *do*. Amounts are base units (wei, lamports, satoshi,
 * token base units) as bigint. Addresses are in their chain's canonical text form: EIP-55 checksummed
 * for Ethereum, base58 for Solana, bech32/base58 for Bitcoin. Anything that could not be understood is
 * kind 'unknown' with a reason, never silently treated as harmless.
 */
export type ChainFamily = 'ethereum' | 'solana' | 'bitcoin' | 'message';

export type ActionKind =
  | 'native_transfer' // plain value transfer (ETH, SOL, BTC spend)
  | 'token_transfer' // ERC-20 transfer/transferFrom, SPL transfer
  | 'token_approval' // ERC-20 approve, Permit, Permit2, SPL approve
  | 'contract_call' // any other call (selector known or not)
  | 'contract_deploy'
  | 'typed_data' // EIP-712 that is not a known approval
  | 'message' // EIP-191 personal message or plain bytes
  | 'unknown'; // undecodable: policies deny by default

/** One movement or permission of value implied by the action. A transaction may imply several. */
export type Effect =
  | {
      type: 'transfer';
      asset: string;
      to: string;
      amount: bigint;
      /** Source account when it is not `Action.from` (SPL source token account). */
      from?: string;
      /** Bitcoin: this output pays back to the signer's own address (`opts.from`). Still listed. */
      change?: boolean;
    }
  | { type: 'approval'; asset: string; spender: string; amount: bigint; expiry?: number };

/** `Effect.asset` of the chain's native coin (ETH on chain 1, SOL, BTC). Tokens use their contract / mint. */
export const NATIVE_ASSET = 'native';
/** `Effect.asset` when the token cannot be known offline (SPL `Transfer` without a mint): judge strictly. */
export const UNKNOWN_ASSET = 'unknown';

/** One call among several (Solana instructions), in execution order. */
export interface Call {
  contract: string;
  function: { selector: string; name?: string; args?: Record<string, unknown> };
}

export interface Action {
  chain: ChainFamily;
  /** EVM chain id as decimal string ('1', '8453'); Solana cluster or Bitcoin network name when known. */
  chainId?: string;
  kind: ActionKind;
  from?: string;
  /** Destination: recipient for transfers, the called contract for calls. */
  to?: string;
  /** Contract / program actually invoked, when there is one. */
  contract?: string;
  /** Function called: 4-byte selector (0x-prefixed) or Solana program+instruction name. */
  function?: { selector: string; name?: string; args?: Record<string, unknown> };
  /** Value movements and approvals, the things policies limit. */
  effects: Effect[];
  /** Network fee the payload commits to, when known (max fee for EIP-1559, sats for a PSBT). */
  fee?: bigint;
  /** EIP-712 domain and primary type, for typed data. */
  typedData?: { domain: Record<string, unknown>; primaryType: string };
  /** Programs invoked (Solana). */
  programs?: string[];
  /** Every call in order, when a payload makes more than one (Solana instructions). */
  calls?: Call[];
  /** Bitcoin: the outpoints spent (txid:vout), with amount and address when the PSBT carries the previous output. */
  inputs?: { outpoint: string; amount?: bigint; address?: string }[];
  /** Message bytes (0x hex), and their UTF-8 text when they are valid UTF-8: EIP-191 and raw messages. */
  message?: { hex: string; text?: string };
  /** Why the payload is 'unknown', or notes a person should read. */
  notes?: string[];
}

/** The payload kinds the API accepts for decoding and signing. */
export type PayloadKind =
  | 'evm_transaction' // serialized hex (EIP-1559, EIP-2930, legacy)
  | 'evm_message' // EIP-191 personal_sign
  | 'solana_message' // Solana off-chain message (Ed25519 wallets)
  | 'bitcoin_message' // BIP-322 simple (BIP340 taproot wallets)
  | 'evm_typed_data' // EIP-712 JSON
  | 'solana_transaction' // wire-format transaction (base64)
  | 'bitcoin_psbt' // PSBT (base64 or hex)
  | 'raw_message' // opaque bytes (hex), signed as they are: owner only
  | 'raw_hash'; // 32-byte digest, owner only

/** What decoding returns: the action, and the exact bytes or digest that the signature will cover. */
export interface Decoded {
  action: Action;
  /** For ECDSA: the 32-byte digest. For Schnorr/EdDSA: the message bytes signed. */
  signingPayloads: Uint8Array[];
  /** Parallel to signingPayloads: which scheme signs each one and, for Bitcoin, which input. */
  signing?: SigningTarget[];
  /** The exact unsigned encoding the digest covers, when decoding built it (EVM JSON transaction request). */
  encoded?: string;
}

export interface SigningTarget {
  /** 'any': the raw kinds, which only the owner may have signed (src/enforce/authorize.ts). */
  scheme: 'ecdsa-secp256k1' | 'schnorr-bip340' | 'ed25519' | 'any';
  /** Bitcoin: the PSBT input index this sighash is for. */
  input?: number;
  /** Bitcoin: the sighash type committed to (0 = SIGHASH_DEFAULT for taproot, 1 = ALL). */
  sighashType?: number;
  /** Taproot key path: sign with the internal key tweaked by this merkle root (BIP341; '' = key-only, BIP86). */
  taprootTweak?: { internalKey: string; merkleRoot: string };
}
