import type { Device, SetDeviceStatusParameters } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';
import { devicePath } from './device-path.ts';

const VERB = { revoked: 'revoke', suspended: 'suspend', active: 'resume' } as const;

/** Revokes (final), suspends or resumes a device wallet: signers refuse it from the next request on, and the fleet's status list is re-signed. */
export function setDeviceStatus(request: FleetkeyRequest, { walletId, status }: SetDeviceStatusParameters): Promise<Device> {
  return request('POST', `${devicePath(walletId)}/${VERB[status]}`);
}
