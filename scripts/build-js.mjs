#!/usr/bin/env node
// Compiles this checkout's src/ into the JavaScript the test suite's `fleetkey` processes run (FLEETKEY_PREBUILT,
// see bin/fleetkey): the CLI entry bundled with its dependencies by esbuild (the transpiler tsx itself uses), split
// into chunks at each dynamic import, so a process loads one file per lazily loaded part instead of resolving and
// reading hundreds of modules: `fleetkey --help` took 0.55 s of CPU this way against 1.33 s for one file per module
// (and 2.5 s through tsx), and the suite starts hundreds of processes. It only strips types, as tsx does; no type
// check (that is `npm run typecheck`). The published package runs its own unbundled dist/ (tsc), which
// test/pkg/packaging.test.ts installs and runs.
//
// Layout: every chunk in OUT/cli/, so what a module finds beside itself through import.meta.url is where it is in
// src/ seen from src/cli/: bin/ at ../../bin, the console's assets at ./public/ (copied), the derivation worker at
// ./fleet-derive.worker.js (an entry of its own), the browser's canonical JSON at ../audit/canonical.js (built alone, as the browser loads it).
// Packages that find files beside themselves (native better-sqlite3, libsecp256k1's .wasm, libsodium, pkcs11js)
// or are loaded only optionally stay external, resolved from the checkout's node_modules at run time.
import { build } from 'esbuild';
import { cpSync } from 'node:fs';
import { join, resolve } from 'node:path';

const EXTERNAL = ['better-sqlite3', 'pg-native', 'tiny-secp256k1', 'libsodium-wrappers-sumo', 'pkcs11js', 'esbuild', 'tsx'];

export async function buildJs(outDir, root = resolve(import.meta.dirname, '..')) {
  const src = join(root, 'src');
  cpSync(join(src, 'console/public'), join(outDir, 'cli/public'), { recursive: true });
  const result = await build({
    entryPoints: {
      'cli/main': join(src, 'cli/main.ts'),
      'cli/fleet-derive.worker': join(src, 'server/fleet-derive.worker.ts'),
    },
    outdir: outDir,
    chunkNames: 'cli/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // CommonJS dependencies inside an ES module bundle call require(): give them Node's.
    banner: { js: "import { createRequire as __fkCreateRequire } from 'node:module'; const require = __fkCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  });
  // The browser loads this one as it is (the console's canonical JSON): no bundle, no require banner.
  await build({ entryPoints: [join(src, 'audit/canonical.ts')], outdir: join(outDir, 'audit'), format: 'esm', platform: 'neutral', target: 'es2022', logLevel: 'warning' });
  return Object.keys(result.metafile.inputs).filter((p) => p.startsWith('src/')).length;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/build-js.mjs OUT_DIR');
    process.exit(1);
  }
  console.error(`${await buildJs(resolve(out))} modules of src/ bundled into ${out}`);
}
