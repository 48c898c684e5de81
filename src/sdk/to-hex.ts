import type { Hex } from 'viem';

/** A hex string from the API as viem's `Hex`: with its `0x` (the raw `/sign` route answers without). */
export function toHex(value: string): Hex {
  return value.startsWith('0x') ? (value as Hex) : `0x${value}`;
}
