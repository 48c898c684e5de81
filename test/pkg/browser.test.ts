/**
 * The SDK in a browser: esbuild bundles the signing and approval helpers for platform=browser; the bundle has no
 * Node import, loads in a realm that has only web APIs (no process, Buffer, require), and an approver's page signs
 * an approval there that noble verifies outside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { DOMAINS, signingInput } from '../../src/control/keys.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

test('a browser bundle of the signing and approval helpers imports nothing from Node and runs with web APIs only', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fk-browser-'));
  const entry = join(tmp, 'browser-entry.js');
  writeFileSync(entry, `export * from ${JSON.stringify(join(ROOT, 'src/sdk/index.ts'))};\nexport * as approvals from ${JSON.stringify(join(ROOT, 'src/sdk/approvals.ts'))};\n`);
  const out = await build({ entryPoints: [entry], bundle: true, write: false, platform: 'browser', format: 'iife', globalName: 'fleetkey', logLevel: 'silent', absWorkingDir: ROOT });
  const js = out.outputFiles[0].text;
  assert.doesNotMatch(js, /\brequire\(["']|from ["']node:|import\(["']node:/, 'no Node import in the bundle');
  console.log(`# browser bundle (unminified, SDK + approvals + viem + noble): ${mb(js.length)}`);

  // A realm with the web platform's globals only: no process, Buffer, require.
  const web = { crypto: globalThis.crypto, TextEncoder, TextDecoder, URL, atob, btoa, fetch, Headers, Request, Response, AbortController, AbortSignal, setTimeout, clearTimeout, console, queueMicrotask };
  const ctx: Record<string, unknown> = { ...web };
  ctx.globalThis = ctx;
  ctx.window = ctx;
  ctx.self = ctx;
  runInNewContext(js, ctx, { filename: 'fleetkey.browser.js' });
  assert.equal(runInNewContext('typeof process + typeof Buffer + typeof require', ctx), 'undefinedundefinedundefined');
  const fk = ctx.fleetkey as typeof import('../../src/sdk/index.ts') & { approvals: typeof import('../../src/sdk/approvals.ts') };
  assert.equal(typeof fk.createClient, 'function');
  assert.equal(typeof fk.toViemAccount, 'function');

  // An approver's page: it signs an approval in that realm; the signature is one noble verifies here.
  const secret = ed25519.utils.randomSecretKey();
  const approval = { kind: 'approval' as const, requestDigest: bytesToHex(new Uint8Array(32).fill(7)), decision: 'approve' as const, approver: 'alice', issuedAt: 1_767_225_600_000 };
  // The inputs are made in that realm (its Uint8Array), as a page's own code would make them.
  Object.assign(ctx, { approvalJson: JSON.stringify(approval), secretHex: bytesToHex(secret) });
  const signed = runInNewContext(
    'fleetkey.approvals.signApproval(JSON.parse(approvalJson), Uint8Array.from(secretHex.match(/../g), (h) => parseInt(h, 16)), "ed25519")',
    ctx,
  ) as { sig: string };
  assert.ok(ed25519.verify(hexToBytes(signed.sig), signingInput(DOMAINS.approval, approval), ed25519.getPublicKey(secret)), 'a valid Ed25519 approval signature');
  rmSync(tmp, { recursive: true, force: true });
});
