/**
 * `@fleetkey/sdk/ethers`: an ethers v6 `Signer` whose key is an `ecdsa-secp256k1` fleetkey wallet, used
 * through the agent path (the agent's session key under an owner-issued grant, judged by the wallet's
 * policy on every signer). Importing it loads ethers, never viem or another framework's integration.
 */
import { AbstractSigner, Signature, copyRequest, Transaction, TypedDataEncoder, getAddress, hexlify, resolveAddress, resolveProperties, type Provider, type TransactionLike, type TransactionRequest, type TypedDataDomain, type TypedDataField } from 'ethers';
import { FleetkeyError } from '../errors.ts';
import type { Payload } from '../control/index.ts';
import type { FleetkeyAgent } from './agent.ts';

/**
 * @example
 * const signer = await toEthersSigner(createAgent({ url, grantId, secretKey }), 'wal_…', new JsonRpcProvider(rpcUrl))
 * await signer.sendTransaction({ to, value: parseEther('0.01') })
 */
export async function toEthersSigner(agent: FleetkeyAgent, walletId: string, provider: Provider | null = null): Promise<FleetkeySigner> {
  const wallet = await agent.wallet(walletId);
  if (wallet.scheme !== 'ecdsa-secp256k1')
    throw new FleetkeyError('unsupported', `wallet ${walletId} is ${wallet.scheme}: an Ethereum signer needs an ecdsa-secp256k1 wallet`);
  return new FleetkeySigner(agent, walletId, getAddress(wallet.address), provider);
}

/**
 * An ethers v6 `AbstractSigner`: `sendTransaction` is ethers' own (populate through the provider, sign,
 * broadcast); each signature is one agent request. A refusal throws the SDK's `FleetkeyApiError`, whose
 * `code` is fleetkey's (`policy_denied`, `approval_required`, …). Raw-hash signing does not exist here.
 */
export class FleetkeySigner extends AbstractSigner {
  readonly #agent: FleetkeyAgent;
  readonly walletId: string;
  readonly address: string;

  constructor(agent: FleetkeyAgent, walletId: string, address: string, provider: Provider | null = null) {
    super(provider);
    this.#agent = agent;
    this.walletId = walletId;
    this.address = getAddress(address);
  }

  async getAddress(): Promise<string> {
    return this.address;
  }

  connect(provider: Provider | null): FleetkeySigner {
    return new FleetkeySigner(this.#agent, this.walletId, this.address, provider);
  }

  async signTransaction(request: TransactionRequest): Promise<string> {
    // As ethers' Wallet does: copy the request (a Transaction's fields are getters), resolve names, check
    // `from`, then let Transaction serialize the unsigned form that the wallet's policy will read.
    const copy = copyRequest(request);
    const { to, from } = await resolveProperties({
      to: copy.to ? resolveAddress(copy.to, this) : undefined,
      from: copy.from ? resolveAddress(copy.from, this) : undefined,
    });
    if (to != null) copy.to = to;
    if (from != null && getAddress(from) !== this.address)
      throw new FleetkeyError('validation_failed', `transaction from ${from} is not this signer's address ${this.address}`);
    delete copy.from;
    const tx = Transaction.from(copy as TransactionLike<string>);
    const chainId = Number(tx.chainId);
    const signature = await this.#sign({ kind: 'evm_transaction', data: tx.unsignedSerialized, ...(chainId > 0 ? { opts: { chainId } } : {}) });
    tx.signature = Signature.from(signature);
    return tx.serialized;
  }

  async signMessage(message: string | Uint8Array): Promise<string> {
    return this.#sign({ kind: 'evm_message', data: typeof message === 'string' ? { text: message } : { raw: hexlify(message) } });
  }

  async signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    // Resolve ENS names in the domain and message as ethers' Wallet does, then send the EIP-712 document.
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name) => {
      if (!this.provider) throw new FleetkeyError('validation_failed', `cannot resolve ENS name ${name} without a provider`);
      const address = await this.provider.resolveName(name);
      if (address == null) throw new FleetkeyError('validation_failed', `ENS name ${name} does not resolve`);
      return address;
    });
    const payload = TypedDataEncoder.getPayload(populated.domain, types, populated.value);
    return this.#sign({ kind: 'evm_typed_data', data: jsonSafe(payload) as never });
  }

  async #sign(payload: Payload): Promise<string> {
    return (await this.#agent.request(this.walletId, payload)).signature as string;
  }
}

/** ethers' typed-data payload made JSON-safe (bigints as decimal strings, as the API takes them). */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString(10);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}
