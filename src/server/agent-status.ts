/**
 * POST /v1/agent/status: what an agent may know about its own grant, asked with a query signed by
 * its agent key (src/control/queries.ts), never the admin token: the grant's state and, for each
 * wallet it covers, the public record (id, scheme, network, address) and the wallet's policy in
 * words with what each rolling limit has used and has left, as this server counts it. The signers
 * count for themselves and decide for themselves; this is for planning and explaining.
 */
import type { Hono } from 'hono';
import { FleetkeyError, isFleetkeyError } from '../errors.ts';
import { jsonBody, parse } from '../http/common.ts';
import { signedAgentQuerySchema, verifyAgentQuery, type AgentStatusView, type AgentWalletStatus } from '../control/index.ts';
import { splitWalletId } from '../enforce/authorize.ts';
import { describePolicy } from '../policy/index.ts';
import type { Coordinator } from './coordinator.ts';

export function agentStatusRoute(app: Hono<any>, coord: Coordinator): void {
  app.post('/v1/agent/status', async (c) => {
    const signed = parse(signedAgentQuerySchema, await jsonBody(c));
    const now = Date.now();
    const grant = await coord.control.getGrant(signed.query.grantId);
    if (!grant) throw new FleetkeyError('unknown_grant', `no grant ${signed.query.grantId}`);
    verifyAgentQuery(signed, grant, now);
    const revoked = await coord.control.isRevoked(grant.id);
    const wallets: AgentWalletStatus[] = [];
    // A grant may name up to 10 000 wallets: an agent asking about its grant gets the first 200.
    for (const id of grant.wallets.slice(0, 200)) {
      let w;
      try {
        w = await coord.wallet(id);
      } catch (e) {
        if (isFleetkeyError(e) && e.code === 'not_found') continue; // granted before it was made, or never made
        throw e;
      }
      const p = await coord.authz.policyOf(id);
      const { rootId, index } = splitWalletId(id);
      const policy = p ? describePolicy(p.policy, await coord.control.usageView(id, { now }), now, index === undefined ? undefined : rootId) : null;
      wallets.push({ id, scheme: w.scheme, network: w.network ?? null, address: w.address, policy });
    }
    const view: AgentStatusView = {
      grant: {
        id: grant.id,
        status: revoked ? 'revoked' : now >= grant.expiresAt ? 'expired' : 'active',
        expiresAt: grant.expiresAt,
        uses: await coord.control.usesSoFar(grant.id, now),
        ...(grant.maxUses !== undefined ? { maxUses: grant.maxUses } : {}),
        ...(grant.label !== undefined ? { label: grant.label } : {}),
      },
      wallets,
    };
    return c.json(view);
  });
}
