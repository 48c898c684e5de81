/** Test helpers for the control plane: the owner's documents, agents' keys and requests, Solana transfers. */
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { address, blockhash, compileTransaction, createNoopSigner, createTransactionMessage, getBase64EncodedWireTransaction, pipe, setTransactionMessageFeePayer, setTransactionMessageLifetimeUsingBlockhash, appendTransactionMessageInstruction, getAddressDecoder, type Address } from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { signAgentRequest, signControlDoc, type ControlDoc, type Payload, type SignedAgentRequest } from '../../src/control/index.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';
import { call } from './cluster.ts';

export function ownerSign(c: LocalCluster, doc: ControlDoc) {
  return signControlDoc(doc, readOwnerSecret(c.info.ownerKey));
}

/** Signs `doc` with the cluster's owner key and submits it (POST /v1/control). */
export async function publish(c: LocalCluster, doc: ControlDoc) {
  return call(c.info.url, c.info.token, 'POST', '/v1/control', ownerSign(c, doc));
}

export interface Agent {
  secret: Uint8Array;
  publicKey: string;
}

export function newAgent(): Agent {
  const secret = ed25519.utils.randomSecretKey();
  return { secret, publicKey: bytesToHex(ed25519.getPublicKey(secret)) };
}

/** Publishes a grant for `agent` over `wallets`; returns its id. */
export async function grant(c: LocalCluster, agent: Agent, wallets: string[], extra: { maxUses?: number; ttlMs?: number } = {}): Promise<string> {
  const id = `grant_${bytesToHex(randomBytes(6))}`;
  const now = Date.now();
  const r = await publish(c, { kind: 'grant', id, agent: { keyType: 'ed25519', publicKey: agent.publicKey }, wallets, expiresAt: now + (extra.ttlMs ?? 3600_000), ...(extra.maxUses ? { maxUses: extra.maxUses } : {}), issuedAt: now });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return id;
}

export function request(agent: Agent, grantId: string, walletId: string, payload: Payload, o: { requestId?: string; ttlMs?: number } = {}): SignedAgentRequest {
  const now = Date.now();
  return signAgentRequest({ grantId, walletId, requestId: o.requestId ?? `r${bytesToHex(randomBytes(12))}`, payload, issuedAt: now, expiresAt: now + (o.ttlMs ?? 120_000) }, agent.secret, 'ed25519');
}

export const SOL_DEST = getAddressDecoder().decode(new Uint8Array(32).fill(9)) as Address;

/** A wire-format (base64) SOL transfer from `from`, paid by `from`. `salt` varies the blockhash so transactions differ. */
export function solTransfer(from: string, lamports: bigint, to: string = SOL_DEST, salt = 0): string {
  const payer = address(from);
  const hash = getAddressDecoder().decode(new Uint8Array(32).fill(1 + (salt % 250))) as string;
  const msg = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayer(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash(hash), lastValidBlockHeight: 100n }, m),
    (m) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: createNoopSigner(payer), destination: address(to), amount: lamports }), m),
  );
  return getBase64EncodedWireTransaction(compileTransaction(msg)) as string;
}

export const SOL_ASSETS = { SOL: { chainId: 'mainnet-beta', asset: 'native', symbol: 'SOL', decimals: 9 } };
