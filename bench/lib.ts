/** Small timing helpers shared by the benchmarks (never used by tests: no timing is asserted). */
export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export interface Stats {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  opsPerSec: number;
}

export function stats(samplesMs: number[]): Stats {
  const s = [...samplesMs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), mean, opsPerSec: 1000 / mean };
}

export async function timeAsync(n: number, f: (i: number) => Promise<unknown>): Promise<Stats> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f(i);
    out.push(performance.now() - t);
  }
  return stats(out);
}

export function timeSync(n: number, f: (i: number) => unknown): Stats {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f(i);
    out.push(performance.now() - t);
  }
  return stats(out);
}

export const r2 = (x: number) => Math.round(x * 100) / 100;

export function report(name: string, fields: Record<string, unknown>): void {
  const out: Record<string, unknown> = { bench: name };
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'number' ? r2(v) : v;
  process.stdout.write(JSON.stringify(out) + '\n');
}
