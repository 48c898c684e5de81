/**
 * What the engine needs to know about past signing: a read-only view over usage counters.
 * The store behind it holds, per counter key, timestamped records of committed and reserved amounts
 * (a count is a record of amount 1). Both methods cover records with time in (sinceMs, now]: the
 * engine asks with sinceMs = now − window, so a record exactly one window old no longer counts.
 */
export interface UsageView {
  /** Sum of committed + reserved amounts under `counterKey` with record time > sinceMs. */
  sum(counterKey: string, sinceMs: number): bigint;
  /** Number of committed + reserved records under `counterKey` with record time > sinceMs. */
  count(counterKey: string, sinceMs: number): number;
}

export interface UsageRecord {
  key: string;
  amount: bigint;
  /** Epoch ms. */
  at: number;
}

/** An empty history. */
export const NO_USAGE: UsageView = { sum: () => 0n, count: () => 0 };

/**
 * A UsageView over records in memory (tests, `policy simulate`, a single dev node). Records later
 * than `nowMs` are ignored, matching the (now − window, now] rule.
 */
export function memoryUsage(records: readonly UsageRecord[], nowMs = Number.POSITIVE_INFINITY): UsageView {
  const byKey = new Map<string, UsageRecord[]>();
  for (const r of records) {
    const list = byKey.get(r.key);
    if (list) list.push(r);
    else byKey.set(r.key, [r]);
  }
  return {
    sum(key, since) {
      let s = 0n;
      for (const r of byKey.get(key) ?? []) if (r.at > since && r.at <= nowMs) s += r.amount;
      return s;
    },
    count(key, since) {
      let n = 0;
      for (const r of byKey.get(key) ?? []) if (r.at > since && r.at <= nowMs) n++;
      return n;
    },
  };
}
