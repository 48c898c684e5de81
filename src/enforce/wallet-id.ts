/**
 * Wallet ids, on their own so the SDK's wallet-package check (src/enforce/wallet-package.ts) does not load the
 * authorizer and, through it, every chain decoder.
 */
import { FleetkeyError } from '../errors.ts';

/** A child wallet id is `<root>.<index>` with a non-hardened BIP32-style index. */
export function splitWalletId(walletId: string): { rootId: string; index?: number } {
  const m = /^(.+)\.(\d{1,10})$/.exec(walletId);
  if (!m) return { rootId: walletId };
  const index = Number(m[2]);
  if (index >= 0x80000000) throw new FleetkeyError('validation_failed', `child index ${index} is hardened or too large (0 ≤ index < 2^31)`, { details: { path: 'walletId' } });
  return { rootId: m[1], index };
}
