/**
 * Issue #17: every verb's whole answer reaches a pipe, however slowly it is read, before the CLI
 * exits. A pipe holds 64 KiB; what Node has not handed to it yet sits in a queue that an immediate
 * process.exit() drops, so `fleetkey device list --json | jq` saw 65,536 bytes of a 400 KB answer.
 *
 * Each verb that can print more than 64 KiB runs twice against the same real cluster: once with
 * stdout a file, once into a real pipe (bash `|`) read by a child that takes 4 KiB every 2 ms.
 * Both outputs must be the same bytes, with the same exit code. Then `audit export | audit verify -`
 * on the server's own log of more than 10,000 entries must pass.
 *
 * The data is made cheaply through the API: 100 one-of-one wallets with 200-character labels of
 * '€' (3 bytes each in UTF-8; one wallet is ~1 KB of JSON, and `wallet list` shows 100), a fleet of
 * 2,000 devices from one batch call, grants naming those device wallets, and 10,000 refused agent
 * requests (an unknown wallet): the server appends one audit entry per refusal, so the chain is
 * the real one, hash-linked and sealed by checkpoints signed with the server's key.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { api, startCluster } from '../helpers/cluster.ts';

/** A reader slower than the CLI: 4 KiB at a time with a 2 ms pause, copied to its stdout (a file). */
const SLOW_READER = `
const fs = require('node:fs');
const buf = Buffer.alloc(4096);
const pause = new Int32Array(new SharedArrayBuffer(4));
for (let n; (n = fs.readSync(0, buf, 0, buf.length, null)) > 0; ) {
  fs.writeSync(1, buf, 0, n);
  Atomics.wait(pause, 0, 0, 2);
}`;

/** What a Linux pipe holds by default: an answer longer than this was cut. */
const PIPE_MIN = 64 * 1024;

describe('CLI output through a slow pipe equals output to a file (issue #17)', { timeout: 900_000 }, () => {
  let c: LocalCluster;
  let fleet: string;
  const dir = mkdtempSync(join(tmpdir(), 'fk-cli-pipe-'));
  let seq = 0;
  const env = () => ({ ...process.env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey, SLOW_READER });

  /** Runs bash `script` with "$@" = node bin/fleetkey ARGS; resolves with its exit code and stderr. */
  const bash = (script: string, args: string[], stdout: 'ignore' | number = 'ignore'): Promise<{ code: number | null; err: string }> =>
    new Promise((resolve, reject) => {
      const p = spawn('bash', ['-c', script, 'bash', process.execPath, BIN, ...args], { env: env(), stdio: ['ignore', stdout, 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d) => (err += d));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, err }));
    });

  /** The CLI with stdout a file. */
  async function toFile(args: string[]): Promise<{ code: number | null; out: Buffer; err: string }> {
    const file = join(dir, `file-${++seq}.out`);
    const fd = openSync(file, 'w');
    try {
      const r = await bash('"$@"', args, fd);
      return { ...r, out: readFileSync(file) };
    } finally {
      closeSync(fd);
    }
  }

  /** The CLI with stdout a pipe to the slow reader; the exit code is the CLI's, not the reader's. */
  async function toSlowPipe(args: string[]): Promise<{ code: number | null; out: Buffer; err: string }> {
    const file = join(dir, `pipe-${++seq}.out`);
    const r = await bash(`"$@" | "$1" -e "$SLOW_READER" > '${file}'; s=("\${PIPESTATUS[@]}"); [ "\${s[1]}" = 0 ] || exit 99; exit "\${s[0]}"`, args);
    return { ...r, out: readFileSync(file) };
  }

  async function same(args: string[]): Promise<Buffer> {
    const f = await toFile(args);
    assert.equal(f.code, 0, f.err);
    assert.ok(f.out.length > PIPE_MIN, `${args.join(' ')} prints ${f.out.length} bytes: not enough to fill a pipe`);
    const p = await toSlowPipe(args);
    assert.equal(p.code, f.code, p.err);
    assert.equal(p.out.length, f.out.length, `${args.join(' ')}: ${p.out.length} bytes through the pipe, ${f.out.length} to a file`);
    assert.ok(p.out.equals(f.out), `${args.join(' ')}: the pipe got other bytes than the file`);
    return f.out;
  }

  /** Runs `work(i)` for i < n, `width` at a time. */
  async function pool(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < n) await work(next++);
    }));
  }

  before(async () => {
    c = await startCluster(3);
    const call = api(c);
    await pool(100, 4, async () => {
      const r = await call('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 1, signers: 1, label: '€'.repeat(200) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    });
    const f = await call('POST', '/v1/fleets', { scheme: 'ed25519' });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    fleet = f.body.id;
    const b = await call('POST', `/v1/fleets/${fleet}/devices/batch`, { count: 2000 });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    // 10,000 refusals, one audit entry each (no wallet by that id: refused before any signer is asked).
    const now = Date.now();
    await pool(10_000, 8, async (i) => {
      const r = await call('POST', '/v1/requests', {
        request: { grantId: 'grant_none', walletId: 'wal_000000000000000000000000', requestId: `pipe_test_${i}`, payload: { kind: 'raw_message', data: '00' }, issuedAt: now, expiresAt: now + 600_000 },
        sig: '00'.repeat(64),
      });
      assert.equal(r.status, 404, JSON.stringify(r.body));
    });
  });
  after(async () => c?.stop());

  test('wallet list, --json and text', async () => {
    const out = await same(['wallet', 'list', '--json']);
    assert.equal(JSON.parse(out.toString('utf8')).length, 100);
    await same(['wallet', 'list']);
  });

  test('device list, --json and text', async () => {
    const out = await same(['device', 'list', '--fleet', fleet, '--limit', '2000', '--json']);
    assert.equal(JSON.parse(out.toString('utf8')).devices.length, 2000);
    await same(['device', 'list', '--fleet', fleet, '--limit', '2000']);
  });

  test('grant list, --json and text', async () => {
    const devices = JSON.parse((await toFile(['device', 'list', '--fleet', fleet, '--limit', '2000', '--json'])).out.toString('utf8')).devices as { walletId: string }[];
    const wallets = devices.map((d) => d.walletId).join(',');
    for (let i = 0; i < 3; i++) {
      const g = await toFile(['grant', 'create', '--agent-key', '11'.repeat(32), '--wallets', wallets, '--expires', '1h', '--json']);
      assert.equal(g.code, 0, g.out.toString() + g.err);
    }
    const out = await same(['grant', 'list', '--json']);
    assert.equal(JSON.parse(out.toString('utf8')).length, 3);
    await same(['grant', 'list']);
  });

  test('audit export, and audit export | audit verify - on a log of over 10,000 entries', async () => {
    const out = await same(['audit', 'export']);
    const lines = out.toString('utf8').trimEnd().split('\n');
    assert.ok(lines.length > 10_000, `${lines.length} entries`);
    const file = join(dir, 'verify.out');
    const r = await bash(`"$@" audit export | "$@" audit verify - --json > '${file}'; s=("\${PIPESTATUS[@]}"); [ "\${s[0]}" = 0 ] || exit 99; exit "\${s[1]}"`, []);
    const v = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(r.code, 0, JSON.stringify(v) + r.err);
    assert.equal(v.ok, true);
    assert.ok(v.entries >= lines.length, `${v.entries} entries verified`);
  });

  test('an error through the pipe: the same exit code (2, from the server) and the whole answer', async () => {
    const args = ['device', 'list', '--fleet', 'flt_nonexistent', '--json'];
    const f = await toFile(args);
    const p = await toSlowPipe(args);
    assert.equal(f.code, 2);
    assert.equal(p.code, 2);
    // The same error but for its requestId (the server's, one per HTTP request).
    const [fe, pe] = [f, p].map((x) => JSON.parse(x.out.toString('utf8')) as { error: { code: string; requestId?: string } });
    assert.ok(pe.error.code);
    assert.deepEqual({ ...pe.error, requestId: undefined }, { ...fe.error, requestId: undefined });
  });
});
