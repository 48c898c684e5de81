import type { EnrollDevicesParameters, EnrollDevicesReturnType } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** Enrols `count` device wallets at consecutive indexes (at most 100,000 per call). */
export function enrollDevices(request: FleetkeyRequest, { fleetId, count, deviceDids }: EnrollDevicesParameters): Promise<EnrollDevicesReturnType> {
  return request('POST', `/v1/fleets/${encodeURIComponent(fleetId)}/devices/batch`, { count, ...(deviceDids ? { deviceDids } : {}) });
}
