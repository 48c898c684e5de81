/**
 * EIP-712 intents from devices: instead of a raw transaction, a device signs with its own key
 * "pay up to V to X for service S before T" (src/sdk/intent-typed-data.ts), and the server turns an
 * intent into an EIP-1559 transaction of its device wallet.
 *
 * The transaction goes through the agent path of issue #4, so every signer checks it against the
 * wallet's policy (the fleet policy combined with the wallet's own) and counts it: the server holds
 * an "intent agent" key (DATA/intent-agent.key) and, the first time a device wallet sends an
 * intent, the owner grants that key this one wallet (`intents.<walletId>`). A device therefore
 * cannot get more than the policy allows, and an intent cannot be replayed (its nonce is spent in
 * the server's durable replay log before anything is signed).
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { hashTypedData, serializeTransaction } from 'viem';
import { z } from 'zod';
import { signAgentRequest } from '../control/requests.ts';
import { publicKeyOf } from '../control/keys.ts';
import { FleetkeyError } from '../errors.ts';
import { hex, newId, type Logger } from '../http/common.ts';
import { algForKeyType, publicKeyFromDidKey, verifySignature } from '../identity/index.ts';
import { intentTypedData } from '../sdk/intent-typed-data.ts';
import type { DeviceRecord, FleetRecord, FleetStore } from '../store/fleet-store.ts';
import type { Coordinator } from './coordinator.ts';
import { AgentDesk } from './requests.ts';

const uint = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a decimal integer');
export const intentSchema = z
  .object({
    intent: z
      .object({
        to: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an address'),
        maxValue: uint,
        service: z.string().min(1).max(200),
        deadline: z.number().int().min(0),
        nonce: uint,
        chainId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
      })
      .strict(),
    signature: hex(64),
    transaction: z.object({ nonce: z.number().int().min(0), gas: uint, maxFeePerGas: uint, maxPriorityFeePerGas: uint, value: uint.optional() }).strict(),
  })
  .strict();

const GRANT_TTL_MS = 10 * 365 * 24 * 3600_000;

export async function submitIntent(
  o: { coord: Coordinator; store: FleetStore; log: Logger; agentSecret: Uint8Array },
  f: FleetRecord,
  d: DeviceRecord,
  address: `0x${string}`,
  b: z.infer<typeof intentSchema>,
) {
  const walletId = `${f.id}.${d.index}`;
  if (f.scheme !== 'ecdsa-secp256k1') throw new FleetkeyError('unsupported', `intents become Ethereum transactions: fleet ${f.id} is ${f.scheme}, not ecdsa-secp256k1`);
  if (!d.deviceDid) throw new FleetkeyError('validation_failed', `device ${d.index} has no device key to sign intents with`);
  if (d.status !== 'active') throw new FleetkeyError('wallet_inactive', `device wallet ${walletId} is ${d.status}`);
  const digest = hexToBytes(hashTypedData(intentTypedData(address, b.intent as never)).slice(2));
  const key = publicKeyFromDidKey(d.deviceDid);
  if (!verifySignature(key, algForKeyType(key.type), digest, hexToBytes(b.signature))) throw new FleetkeyError('bad_signature', 'the intent is not signed by this device key');
  const now = Date.now();
  if (b.intent.deadline * 1000 <= now) throw new FleetkeyError('request_expired', 'the intent is past its deadline');
  const value = BigInt(b.transaction.value ?? b.intent.maxValue);
  if (value > BigInt(b.intent.maxValue)) throw new FleetkeyError('validation_failed', `transaction.value ${value} exceeds the intent's maxValue ${b.intent.maxValue}`, { details: { field: 'transaction.value' } });
  if (await o.store.checkAndRemember(`intent ${walletId} ${b.intent.nonce}`, b.intent.deadline * 1000, now))
    throw new FleetkeyError('replayed_message', `intent nonce ${b.intent.nonce} of ${walletId} was already used`);

  const grantId = `intents.${walletId}`;
  if (!(await o.coord.control.getGrant(grantId))) {
    if (!o.coord.holdsOwnerKey) throw new FleetkeyError('owner_authorization_required', `grant ${grantId} is missing and this server holds no owner key to issue it`);
    const agent = { keyType: 'ed25519' as const, publicKey: publicKeyOf(o.agentSecret, 'ed25519') };
    await o.coord.submitControl(o.coord.ownerSign({ kind: 'grant', id: grantId, agent, wallets: [walletId], expiresAt: now + GRANT_TTL_MS, label: 'fleet device intents', issuedAt: now }));
  }
  const tx = serializeTransaction({
    type: 'eip1559',
    chainId: b.intent.chainId,
    to: b.intent.to as `0x${string}`,
    value,
    nonce: b.transaction.nonce,
    gas: BigInt(b.transaction.gas),
    maxFeePerGas: BigInt(b.transaction.maxFeePerGas),
    maxPriorityFeePerGas: BigInt(b.transaction.maxPriorityFeePerGas),
  });
  const request = {
    grantId,
    walletId,
    requestId: newId('intent'),
    payload: { kind: 'evm_transaction' as const, data: tx },
    expiresAt: Math.min(b.intent.deadline * 1000, now + 5 * 60_000),
    issuedAt: now,
  };
  const r = await new AgentDesk(o.coord, o.log).submit(signAgentRequest(request, o.agentSecret, 'ed25519') as never);
  o.log.info('intent', { walletId, service: b.intent.service, status: r.view.status });
  return { intentDigest: `0x${Buffer.from(digest).toString('hex')}`, ...r.view, httpStatus: r.status };
}
