import type { TypedDataDefinition } from 'viem';

/** A device's payment intent: "pay up to `maxValue` wei to `to` for `service` before `deadline`". */
export type PaymentIntent = {
  to: `0x${string}`;
  /** Wei, decimal string. */
  maxValue: string;
  service: string;
  /** Unix seconds. */
  deadline: number;
  /** Decimal string; each nonce is accepted once per device wallet. */
  nonce: string;
  chainId: number;
};

export const PAYMENT_INTENT_TYPES = {
  PaymentIntent: [
    { name: 'wallet', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'maxValue', type: 'uint256' },
    { name: 'service', type: 'string' },
    { name: 'deadline', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
  ],
} as const;

/**
 * The EIP-712 typed data of a payment intent for device wallet `wallet` (its address). The device
 * signs `hashTypedData(...)` (32 bytes) with its own key: Ed25519 over those bytes, or P-256 ECDSA
 * with SHA-256 over them (WebCrypto's `sign({name: 'ECDSA', hash: 'SHA-256'})`), r‖s.
 */
export function intentTypedData(wallet: `0x${string}`, intent: PaymentIntent): TypedDataDefinition<typeof PAYMENT_INTENT_TYPES, 'PaymentIntent'> {
  return {
    domain: { name: 'fleetkey intent', version: '1', chainId: intent.chainId },
    types: PAYMENT_INTENT_TYPES,
    primaryType: 'PaymentIntent',
    message: { wallet, to: intent.to, maxValue: BigInt(intent.maxValue), service: intent.service, deadline: BigInt(intent.deadline), nonce: BigInt(intent.nonce) },
  };
}
