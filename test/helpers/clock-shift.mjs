/**
 * Test-only preload (`NODE_OPTIONS=--import <this file>`, set before a LocalCluster starts): every
 * process of the cluster sees `Date.now()` run ahead by the number of milliseconds written in the
 * file named by FLEETKEY_TEST_CLOCK_FILE (re-read at most every 50 ms). Lets a test make minutes
 * pass for real signer processes without waiting. Production code never loads it.
 */
import { readFileSync } from 'node:fs';

const file = process.env.FLEETKEY_TEST_CLOCK_FILE;
if (file) {
  const real = Date.now;
  let offset = 0;
  let readAt = -Infinity;
  Date.now = () => {
    const t = real();
    if (t - readAt > 50) {
      readAt = t;
      try {
        offset = Number(readFileSync(file, 'utf8')) || 0;
      } catch {
        offset = 0;
      }
    }
    return t + offset;
  };
}
