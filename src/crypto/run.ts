/**
 * Runs one protocol with every party in this process, relaying each round's broadcasts and
 * direct messages as the network would. For tests and the in-process benchmark baseline; the
 * signer nodes run the same PartyProtocol objects over HTTP.
 *
 * `tamper` lets a test act as a network adversary: it may rewrite any message in flight.
 */
import type { Json, PartyIndex, PartyProtocol, RoundInput, RoundOutput } from './types.ts';

export type Tamper = (m: { round: number; from: PartyIndex; to: PartyIndex; kind: 'broadcast' | 'direct'; body: Json }) => Json;

export function runInProcess<R>(parties: Map<PartyIndex, PartyProtocol<R>>, tamper?: Tamper): Map<PartyIndex, R> {
  const ids = [...parties.keys()];
  const rounds = parties.get(ids[0])!.rounds;
  let outputs = new Map<PartyIndex, RoundOutput>();
  const deliver = (round: number, to: PartyIndex): RoundInput => {
    const input: RoundInput = { broadcast: {}, direct: {} };
    for (const [from, out] of outputs) {
      if (from === to) continue;
      if (out.broadcast !== undefined) {
        const body = out.broadcast;
        input.broadcast[from] = tamper ? tamper({ round, from, to, kind: 'broadcast', body: structuredClone(body) }) : body;
      }
      const d = out.direct?.[to];
      if (d !== undefined) input.direct[from] = tamper ? tamper({ round, from, to, kind: 'direct', body: structuredClone(d) }) : d;
    }
    return input;
  };
  for (let r = 1; r <= rounds; r++) {
    const next = new Map<PartyIndex, RoundOutput>();
    for (const id of ids) next.set(id, parties.get(id)!.round(r, r === 1 ? { broadcast: {}, direct: {} } : deliver(r - 1, id)));
    outputs = next;
  }
  const results = new Map<PartyIndex, R>();
  for (const id of ids) results.set(id, parties.get(id)!.finish(deliver(rounds, id)));
  return results;
}
