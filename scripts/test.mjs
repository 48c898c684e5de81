#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: test/ and src/) with node's own test runner.
// Node 20's --test does not expand globs, so we list the files ourselves.
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

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
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...files], { stdio: 'inherit' });
process.exit(res.status ?? 1);
