/**
 * In-process relay for tests and benchmarks: runs every party's rounds in lock-step and delivers each
 * RoundOutput (broadcast to all others, direct to its recipient) as JSON, like a transport would.
 * `intercept` lets tests play a network adversary or a corrupted party (tamper, replay, drop).
 */
import type { Json, PartyProtocol, RoundInput, RoundOutput } from '../types.ts';

export interface RunOptions {
  /** Called on every party's output before delivery; return the (possibly altered) output. */
  intercept?: (round: number, from: number, out: RoundOutput) => RoundOutput;
  /**
   * Parties played by the adversary: if one of them throws (e.g. its own checks trip over the
   * inconsistency it injected), it simply goes silent instead of ending the run, as a real cheater
   * would. Only honest parties' errors propagate.
   */
  adversary?: number[];
}

const wire = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export function runInProcess<R>(protocols: Record<number, PartyProtocol<R>>, opts: RunOptions = {}): Record<number, R> {
  const ids = Object.keys(protocols).map(Number);
  const rounds = protocols[ids[0]].rounds;
  let outs = new Map<number, RoundOutput>();
  const inputFor = (i: number): RoundInput => {
    const broadcast: Record<number, Json> = {};
    const direct: Record<number, Json> = {};
    for (const [j, o] of outs) {
      if (j === i) continue;
      if (o.broadcast !== undefined) broadcast[j] = wire(o.broadcast);
      const d = o.direct?.[i];
      if (d !== undefined) direct[j] = wire(d);
    }
    return { broadcast, direct };
  };
  const silent = new Set<number>();
  const guard = <T>(i: number, f: () => T): T | undefined => {
    if (silent.has(i)) return undefined;
    try {
      return f();
    } catch (e) {
      if (!opts.adversary?.includes(i)) throw e;
      silent.add(i);
      return undefined;
    }
  };
  for (let r = 1; r <= rounds; r++) {
    const next = new Map<number, RoundOutput>();
    for (const i of ids) {
      let o = guard(i, () => protocols[i].round(r, inputFor(i)));
      if (o === undefined) continue;
      if (opts.intercept) o = opts.intercept(r, i, o);
      next.set(i, o);
    }
    outs = next;
  }
  const res: Record<number, R> = {};
  for (const i of ids) {
    const v = guard(i, () => protocols[i].finish(inputFor(i)));
    if (v !== undefined) res[i] = v;
  }
  return res;
}
