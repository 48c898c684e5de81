import type { ListDevicesParameters, ListDevicesReturnType } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** One page of a fleet's devices in index order; pass `next` back as `after` (`null`: the last page). */
export function listDevices(request: FleetkeyRequest, { fleetId, after, limit }: ListDevicesParameters): Promise<ListDevicesReturnType> {
  const query = new URLSearchParams({ ...(after !== undefined ? { after: String(after) } : {}), ...(limit ? { limit: String(limit) } : {}) }).toString();
  return request('GET', `/v1/fleets/${encodeURIComponent(fleetId)}/devices${query ? `?${query}` : ''}`);
}
