import type { VerifyDataParameters, VerifyDataReturnType } from '../fleet-types.ts';
import type { FleetkeyRequest } from '../types.ts';

/** Server-side check of a signed device reading (`POST /v1/verify/data`): who sent it and whether to trust it. */
export function verifyData(request: FleetkeyRequest, params: VerifyDataParameters): Promise<VerifyDataReturnType> {
  return request('POST', '/v1/verify/data', params);
}
