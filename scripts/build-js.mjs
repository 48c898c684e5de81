#!/usr/bin/env node
// Compiles every module under src/ to plain ESM JavaScript in OUT_DIR, one file per module (no bundling:
// each `./x.ts` import becomes `./x.js`, packages stay imports), with esbuild, the transpiler tsx itself uses.
// It only strips types, which is what tsx does when bin/fleetkey runs the sources; no type check (that is
// `npm run typecheck`). The test runner (scripts/test.mjs) builds once per run into a fresh folder and points
// FLEETKEY_PREBUILT at it, so the hundreds of `fleetkey` processes the suite starts skip tsx's per-process
// loader cost, and still run exactly the sources of this checkout.
import { build } from 'esbuild';
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export async function buildJs(outDir, root = resolve(import.meta.dirname, '..')) {
  const src = join(root, 'src');
  const entryPoints = [];
  const assets = [];
  (function walk(dir) {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        if (!p.endsWith('.test.ts') && !p.endsWith('.d.ts')) entryPoints.push(p);
      } else assets.push(p);
    }
  })(src);
  // Files the modules read beside themselves (the console's public/ assets), as the package build copies them.
  for (const a of assets) cpSync(a, join(outDir, relative(src, a)));
  await build({
    entryPoints,
    outdir: outDir,
    outbase: src,
    // bundle + every import external: esbuild then rewrites nothing but what the plugin says, per file.
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'relative-ts-to-js',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (a) =>
            a.kind === 'entry-point' ? undefined : { path: a.path.startsWith('.') ? a.path.replace(/\.ts$/, '.js') : a.path, external: true },
          );
        },
      },
    ],
  });
  return entryPoints.length;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/build-js.mjs OUT_DIR');
    process.exit(1);
  }
  console.error(`${await buildJs(resolve(out))} modules compiled to ${out}`);
}
