import type { Device, EnrollDeviceParameters } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** Enrols one device (its did:key, generated on the device) or, without one, an agent wallet. No DKG: a derived child. */
export function enrollDevice(request: FleetkeyRequest, { fleetId, deviceDid }: EnrollDeviceParameters): Promise<Device> {
  return request('POST', `/v1/fleets/${encodeURIComponent(fleetId)}/devices`, deviceDid === undefined ? {} : { deviceDid });
}
