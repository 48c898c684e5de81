import { FleetkeyError } from '../errors.ts';

/** `/v1/fleets/:fleet/devices/:index` of a device wallet id `${fleetId}.${index}`. */
export function devicePath(walletId: string): string {
  const m = /^(wal_[0-9a-f]{24})\.(0|[1-9][0-9]{0,9})$/.exec(walletId);
  if (!m) throw new FleetkeyError('validation_failed', `not a device wallet id (wal_….INDEX): ${walletId}`);
  return `/v1/fleets/${m[1]}/devices/${m[2]}`;
}
