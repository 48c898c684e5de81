import type { ListWalletsParameters, ListWalletsReturnType, FleetkeyRequest } from '../types.ts';

/** One page of wallets, in id order; pass `next` back as `after` for the following page (`null`: the last). */
export function listWallets(request: FleetkeyRequest, { after, limit }: ListWalletsParameters = {}): Promise<ListWalletsReturnType> {
  const query = new URLSearchParams({ ...(after ? { after } : {}), ...(limit ? { limit: String(limit) } : {}) }).toString();
  return request('GET', `/v1/wallets${query ? `?${query}` : ''}`);
}
