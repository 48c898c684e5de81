import type { Device, DeviceParameters } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';
import { devicePath } from './device-path.ts';

/** One device wallet by its id `${fleetId}.${index}`. */
export function getDevice(request: FleetkeyRequest, { walletId }: DeviceParameters): Promise<Device> {
  return request('GET', devicePath(walletId));
}
