import type { Fleet } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** `GET /v1/fleets/:id`, with device counts by status. */
export function getFleet(request: FleetkeyRequest, { fleetId }: { fleetId: string }): Promise<Fleet> {
  return request('GET', `/v1/fleets/${encodeURIComponent(fleetId)}`);
}
