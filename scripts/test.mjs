#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: test/ and src/) with node's own test runner.
// Node 20's --test does not expand globs, so we list the files ourselves.
//
// The `fleetkey` processes the tests start (signers, servers, CLI calls) run this checkout's src/ bundled into
// JavaScript for this run (scripts/build-js.mjs, into a fresh folder .test-js-* beside src/, removed after),
// not through tsx: see bin/fleetkey. FLEETKEY_TEST_TSX=1 runs them through tsx instead.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
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
// Files that mostly wait (npm installs and builds of the published packages: test/pkg/packaging.test.ts took
// 585 s of wall time for 170 s of CPU) run beside the rest, in a runner of their own whose report is printed
// after the main one's; everything else runs one file at a time, as before.
const BESIDE = new Set(['test/pkg/packaging.test.ts'].map((f) => resolve(f)));
const beside = files.filter((f) => BESIDE.has(f));
const main = files.filter((f) => !BESIDE.has(f));
/** Starts a runner on `list`; answers its exit code (the promise exists from the start: an early exit is not missed). */
const runner = (list, stdio, onOutput) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...list], { stdio, env });
  if (onOutput) for (const s of [child.stdout, child.stderr]) s.on('data', onOutput);
  return new Promise((ok) => child.on('close', (code) => ok(code ?? 1)));
};
let sideOut = '';
const side = beside.length && main.length ? runner(beside, ['ignore', 'pipe', 'pipe'], (d) => (sideOut += d)) : undefined;
const codes = [await runner(side ? main : files, 'inherit')];
if (side) {
  codes.push(await side);
  process.stdout.write(`\n# --- run beside the others: ${beside.map((f) => f.slice(process.cwd().length + 1)).join(', ')} ---\n${sideOut}`);
}
if (prebuilt) rmSync(prebuilt, { recursive: true, force: true });
process.exit(codes.find((c) => c !== 0) ?? 0);
