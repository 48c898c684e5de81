import type { IssueCredentialParameters, IssueCredentialReturnType } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';
import { devicePath } from './device-path.ts';

/** Has the fleet key (through the threshold cluster) issue the device its FleetDeviceCredential (JWT-VC). */
export function issueCredential(request: FleetkeyRequest, { walletId, firmwareHash, expiresAt }: IssueCredentialParameters): Promise<IssueCredentialReturnType> {
  return request('POST', `${devicePath(walletId)}/credential`, { firmwareHash, ...(expiresAt ? { expiresAt } : {}) });
}
