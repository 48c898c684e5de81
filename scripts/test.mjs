#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: test/ and src/) with node's own test runner.
// Node 20's --test does not expand globs, so we list the files ourselves.
//
// The `fleetkey` processes the tests start (signers, servers, CLI calls) run this checkout's src/ bundled into
// JavaScript for this run (scripts/build-js.mjs, into a fresh folder .test-js-* beside src/, removed after),
// not through tsx: see bin/fleetkey. FLEETKEY_TEST_TSX=1 runs them through tsx instead.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildJs } from './build-js.mjs';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
function walk(p) {
  const st = statSync(p);
  if (st.isFile()) { if (p.endsWith('.test.ts')) files.push(p); return; }
  for (const e of readdirSync(p)) if (e !== 'node_modules' && !e.startsWith('.')) walk(join(p, e));
}
for (const r of roots.length ? roots : ['test', 'src']) {
  try { walk(resolve(r)); } catch (e) { if (e.code !== 'ENOENT') throw e; }
}
files.sort();
if (!files.length) { console.error('no test files found'); process.exit(1); }

const env = { ...process.env };
let prebuilt;
if (!process.env.FLEETKEY_TEST_TSX) {
  // A direct child of the checkout, like src/: the compiled modules find the checkout's node_modules and
  // bin/ at the same relative places as the sources do.
  prebuilt = mkdtempSync(resolve(import.meta.dirname, '../.test-js-'));
  await buildJs(prebuilt);
  env.FLEETKEY_PREBUILT = prebuilt;
}
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...files], { stdio: 'inherit', env });
if (prebuilt) rmSync(prebuilt, { recursive: true, force: true });
process.exit(res.status ?? 1);
