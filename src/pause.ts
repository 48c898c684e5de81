/**
 * Crash-test hook (issue 11: crash mid-reshare): a named point where a process can be made to stop
 * and wait to be killed, so a test SIGKILLs it at a known step instead of guessing with timers.
 *
 * Off unless FLEETKEY_PAUSE_FILE is set (never in production). Then, at each point, the file is read
 * (a missing file: no pause); a line `WHO POINT` (WHO: this signer's node id, or `server`) makes this
 * process write one line `{"msg":"pause point","who":…,"point":…}` to stderr and never go past that
 * point. Nothing else changes: a process without the variable never reads the file.
 */
import { readFileSync } from 'node:fs';

export async function pausePoint(who: string, point: string): Promise<void> {
  const file = process.env.FLEETKEY_PAUSE_FILE;
  if (!file) return;
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').split('\n');
  } catch {
    return;
  }
  if (!lines.some((l) => l.trim() === `${who} ${point}`)) return;
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'warn', msg: 'pause point', who, point }) + '\n');
  await new Promise<never>(() => undefined);
}
