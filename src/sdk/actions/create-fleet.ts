import type { CreateFleetParameters, Fleet } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** Runs one DKG for a fleet root key: `POST /v1/fleets`. Its device wallets are derived from it. */
export function createFleet(request: FleetkeyRequest, params: CreateFleetParameters): Promise<Fleet> {
  return request('POST', '/v1/fleets', params);
}
