/** Committees change, keys stay (issue #11): `fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]`. */
import { FleetkeyError } from '../errors.ts';
import { api, int, need, print, type Flags } from './common.ts';
import type { CliModule } from './module.ts';

export const committeeCli: CliModule = {
  nouns: ['wallet'],
  options: { to: { type: 'string' } },
  help: `Committees (same public key and addresses; the old epoch signs until every new holder has agreed)
  fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]   move a wallet (a fleet root: with all its devices) to new signer nodes`,
  async run(_noun, verb, args, flags: Flags) {
    if (verb !== 'reshare') return undefined;
    const id = args[0];
    if (!id) throw new FleetkeyError('validation_failed', 'usage: fleetkey wallet reshare ID --to NODE,NODE,… [--threshold T]');
    const to = need(flags, 'to').split(',').map((s) => s.trim()).filter(Boolean);
    const threshold = int(flags, 'threshold');
    const w = await api<{ id: string; threshold: number; signers: number; epoch: number; address: string; participants: { index: number; nodeId: string }[] }>(
      'POST',
      `/v1/wallets/${encodeURIComponent(id)}/reshare`,
      { to, ...(threshold !== undefined ? { threshold } : {}) },
    );
    print(flags, w, () => `${w.id}  ${w.threshold}-of-${w.signers}  epoch ${w.epoch}\n  address     ${w.address} (unchanged)\n  holders     ${w.participants.map((p) => p.nodeId).join(', ')}`);
    return 0;
  },
};
