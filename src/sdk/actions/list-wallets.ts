import type { ListWalletsParameters, ListWalletsReturnType, FleetkeyRequest } from '../types.ts';

/** One page of wallets, oldest first; pass `next` back as `after` for the following page. */
export function listWallets(request: FleetkeyRequest, { after, limit }: ListWalletsParameters = {}): Promise<ListWalletsReturnType> {
  const query = new URLSearchParams({ ...(after ? { after } : {}), ...(limit ? { limit: String(limit) } : {}) }).toString();
  return request('GET', `/v1/wallets${query ? `?${query}` : ''}`);
}
