/**
 * The time-of-day rule memoises a zone's UTC offset per 15-minute bucket. Check it against Intl
 * directly, at random instants in random order (so the memo is hit, missed and invalidated), around
 * DST transitions and in zones with odd offsets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePolicy, evaluate, validatePolicy } from '../../src/policy/index.ts';
import { usdcTransfer } from './helpers.ts';

const ZONES = ['Europe/Zurich', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'UTC'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const SHORT: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

function directLocal(zone: string, ms: number) {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', weekday: 'short', hour: 'numeric', minute: 'numeric' });
  const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
  return { minute: (Number(p.hour) % 24) * 60 + Number(p.minute), weekday: SHORT[p.weekday] };
}

// instants near 2026 DST transitions (and anywhere in 2025-2027)
const transitions = ['2026-03-08T07:00:00Z', '2026-03-29T01:00:00Z', '2026-04-05T15:00:00Z', '2026-09-27T14:00:00Z', '2026-10-04T15:00:00Z', '2026-10-25T01:00:00Z', '2026-11-01T06:00:00Z'].map(Date.parse);
const instant = fc.oneof(
  fc.integer({ min: Date.parse('2025-01-01'), max: Date.parse('2027-12-31') }),
  fc.tuple(fc.constantFrom(...transitions), fc.integer({ min: -2 * 3_600_000, max: 2 * 3_600_000 })).map(([t, d]) => t + d),
);

test('property: memoised time zone clock agrees with Intl at every instant', () => {
  const policies = new Map(
    ZONES.map((z) => [
      z,
      ([from, to, days]: [number, number, number[]]) =>
        compilePolicy(
          validatePolicy({
            version: 1,
            rules: [
              { type: 'allow', chainIds: ['8453'] },
              { type: 'time_window', timezone: z, from: hhmm(from), to: hhmm(to), days: days.map((d) => DAYS[d]) },
            ],
          }),
        ),
    ]),
  );
  // one compiled policy per zone and window, reused across many instants
  fc.assert(
    fc.property(
      fc.constantFrom(...ZONES),
      fc.tuple(fc.integer({ min: 0, max: 95 }), fc.integer({ min: 1, max: 96 }), fc.uniqueArray(fc.nat({ max: 6 }), { minLength: 1, maxLength: 7 })).filter(([a, b]) => a * 15 !== b * 15),
      fc.array(instant, { minLength: 1, maxLength: 20 }),
      (zone, [f, t, days], instants) => {
        const from = f * 15;
        const to = t * 15;
        const p = policies.get(zone)!([from, to, days]);
        for (const ms of instants) {
          const { minute, weekday } = directLocal(zone, ms);
          const dayOk = (d: number) => days.includes(d);
          const inside = from < to ? dayOk(weekday) && minute >= from && minute < to : (minute >= from && dayOk(weekday)) || (minute < to && dayOk((weekday + 6) % 7));
          const got = evaluate(p, usdcTransfer(1n), { now: ms }).outcome;
          assert.equal(got, inside ? 'allow' : 'deny', `${zone} ${new Date(ms).toISOString()} local ${minute} wd ${weekday}`);
        }
      },
    ),
    { numRuns: 400 },
  );
});

function hhmm(min: number): string {
  return `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
}
