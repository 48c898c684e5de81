/**
 * did:pkh (DID method for blockchain accounts, CAIP-10 account ids) for three namespaces:
 *
 *   did:pkh:eip155:<chainId>:<0x address>             e.g. did:pkh:eip155:1:0xb9c5...
 *   did:pkh:solana:<genesis hash, 32 chars>:<address>  e.g. did:pkh:solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:...
 *   did:pkh:bip122:<genesis hash, 32 hex>:<address>    e.g. did:pkh:bip122:000000000019d6689c085ae165831e93:...
 *
 * A did:pkh names an account, not a key: eip155 and bip122 documents carry an
 * `EcdsaSecp256k1RecoveryMethod2020` with `blockchainAccountId` (a verifier recovers the key from a
 * signature and compares the account); Solana addresses *are* Ed25519 keys, so that document also
 * carries the key (`Ed25519VerificationKey2018` + `publicKeyBase58`) and a Solana address that is not
 * a curve point (a program-derived address, which cannot sign) is refused.
 *
 * Address checks use library codecs only: viem's EIP-55 checksum check, @scure/base base58,
 * base58check and bech32/bech32m, @noble/curves for the Ed25519 point.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base58, base58check, bech32, bech32m } from '@scure/base';
import type { DIDDocument } from 'did-resolver';
import { getAddress, isAddress } from 'viem';
import { FleetkeyError } from '../errors.ts';

export type PkhNamespace = 'eip155' | 'solana' | 'bip122';

export interface PkhAccount {
  namespace: PkhNamespace;
  /** CAIP-2 reference: EVM chain id (decimal), or the genesis-hash prefix for Solana / Bitcoin. */
  reference: string;
  address: string;
}

const CAIP2_REFERENCE = /^[-_a-zA-Z0-9]{1,32}$/;
const b58check = base58check(sha256);

function invalid(msg: string): never {
  throw new FleetkeyError('validation_failed', msg);
}

function checkEip155(reference: string, address: string): void {
  if (!/^[1-9][0-9]{0,31}$/.test(reference)) invalid(`eip155 chain id must be a positive decimal integer, got "${reference}"`);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) invalid('eip155 address must be 0x followed by 40 hex digits');
  // All-lowercase is accepted as is; any upper-case letter means an EIP-55 checksum that must hold.
  if (address !== address.toLowerCase() && !isAddress(address, { strict: true })) invalid('eip155 address has a wrong EIP-55 checksum');
}

function checkSolana(reference: string, address: string): void {
  if (!/^[1-9A-HJ-NP-Za-km-z]{32}$/.test(reference)) invalid('solana reference must be the first 32 base58 characters of the genesis hash');
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(address);
  } catch {
    invalid('solana address is not base58');
  }
  if (bytes.length !== 32) invalid(`solana address must decode to 32 bytes, got ${bytes.length}`);
  try {
    ed25519.Point.fromBytes(bytes);
  } catch {
    invalid('solana address is not an Ed25519 public key (a program-derived address cannot control a DID)');
  }
}

function checkBip122(reference: string, address: string): void {
  if (!/^[0-9a-f]{32}$/.test(reference)) invalid('bip122 reference must be 32 lower-case hex characters (genesis block hash prefix)');
  const lower = address.toLowerCase();
  if (/^(bc|tb|bcrt)1/.test(lower)) {
    if (address !== lower && address !== address.toUpperCase()) invalid('bip122 bech32 address must not mix case');
    const str = lower as `${string}1${string}`;
    const v0 = bech32.decodeUnsafe(str, 90);
    const decoded = v0 ?? bech32m.decodeUnsafe(str, 90);
    if (!decoded || decoded.words.length < 1) invalid('bip122 address is not valid bech32/bech32m');
    const version = decoded.words[0];
    // BIP-350: witness v0 uses bech32, v1..v16 use bech32m.
    if (version > 16 || (version === 0) !== (v0 !== undefined)) invalid('bip122 segwit address uses the wrong checksum for its witness version');
    const program = bech32.fromWordsUnsafe(decoded.words.slice(1));
    if (!program || program.length < 2 || program.length > 40 || (version === 0 && program.length !== 20 && program.length !== 32)) {
      invalid('bip122 segwit witness program has an invalid length');
    }
    return;
  }
  let payload: Uint8Array;
  try {
    payload = b58check.decode(address);
  } catch {
    invalid('bip122 address is neither valid bech32 nor base58check');
  }
  if (payload.length !== 21 || ![0x00, 0x05, 0x6f, 0xc4].includes(payload[0])) {
    invalid('bip122 base58 address must be P2PKH or P2SH (version 0x00, 0x05, 0x6f or 0xc4)');
  }
}

/** Parses and validates a did:pkh. Throws `validation_failed` with the reason otherwise. */
export function parseDidPkh(did: string): PkhAccount {
  if (typeof did !== 'string' || !did.startsWith('did:pkh:')) invalid(`not a did:pkh: ${String(did).slice(0, 80)}`);
  const parts = did.slice('did:pkh:'.length).split(':');
  if (parts.length !== 3) invalid('did:pkh must be did:pkh:<namespace>:<reference>:<address> (CAIP-10)');
  const [namespace, reference, address] = parts as [string, string, string];
  if (!CAIP2_REFERENCE.test(reference)) invalid('CAIP-2 reference must be 1-32 characters of [-_a-zA-Z0-9]');
  if (!/^[-.%a-zA-Z0-9]{1,128}$/.test(address)) invalid('CAIP-10 account address must be 1-128 characters of [-.%a-zA-Z0-9]');
  if (namespace === 'eip155') checkEip155(reference, address);
  else if (namespace === 'solana') checkSolana(reference, address);
  else if (namespace === 'bip122') checkBip122(reference, address);
  else invalid(`unsupported did:pkh namespace "${namespace}" (supported: eip155, solana, bip122)`);
  return { namespace, reference, address };
}

/** Builds a did:pkh from its parts, validating them. EVM addresses are written in EIP-55 form. */
export function didPkhFromAccount(account: PkhAccount): string {
  const address = account.namespace === 'eip155' && /^0x[0-9a-fA-F]{40}$/.test(account.address) && account.address === account.address.toLowerCase()
    ? getAddress(account.address)
    : account.address;
  const did = `did:pkh:${account.namespace}:${account.reference}:${address}`;
  parseDidPkh(did);
  return did;
}

/** The CAIP-10 account id a did:pkh names (`namespace:reference:address`). */
export function caip10Of(did: string): string {
  const { namespace, reference, address } = parseDidPkh(did);
  return `${namespace}:${reference}:${address}`;
}

/** The DID document of a did:pkh, after the did:pkh method specification. */
export function didPkhDocument(did: string): DIDDocument {
  const account = parseDidPkh(did);
  const blockchainAccountId = `${account.namespace}:${account.reference}:${account.address}`;
  const vmId = `${did}#blockchainAccountId`;
  const context = [
    'https://www.w3.org/ns/did/v1',
    {
      blockchainAccountId: 'https://w3id.org/security#blockchainAccountId',
      EcdsaSecp256k1RecoveryMethod2020: 'https://identity.foundation/EcdsaSecp256k1RecoverySignature2020#EcdsaSecp256k1RecoveryMethod2020',
      Ed25519VerificationKey2018: 'https://w3id.org/security#Ed25519VerificationKey2018',
      publicKeyBase58: 'https://w3id.org/security#publicKeyBase58',
    },
  ];
  const vm =
    account.namespace === 'solana'
      ? { id: vmId, type: 'Ed25519VerificationKey2018', controller: did, blockchainAccountId, publicKeyBase58: account.address }
      : { id: vmId, type: 'EcdsaSecp256k1RecoveryMethod2020', controller: did, blockchainAccountId };
  return {
    '@context': context,
    id: did,
    verificationMethod: [vm],
    authentication: [vmId],
    assertionMethod: [vmId],
  };
}
