import { bytesToHex } from 'viem';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * A viem value made JSON-safe for the API: bigints become decimal strings, byte arrays hex,
 * `undefined` members are dropped. Everything else is kept as is.
 */
export function toJson(value: unknown): Json {
  if (typeof value === 'bigint') return value.toString(10);
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : toJson(v)));
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJson(v);
    return out;
  }
  return value as Json;
}

