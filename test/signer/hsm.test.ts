/**
 * The key-encryption key in an HSM over PKCS#11 (issue 14), against a real SoftHSM2 token and real
 * signer processes over HTTP: seal, restart, unseal and sign; wrong PIN, missing key, missing token
 * and module at start-up; the HSM taken away mid-run (its token directory renamed) and given back;
 * and that no KEK byte reaches the data dir or a log.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { gcm } from '@noble/ciphers/aes.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64, base64url } from '@scure/base';
import { BIN, LocalCluster } from '../../src/cli/cluster.ts';
import { HsmKek, kekTemplate, parsePkcs11Uri, pkcs11FromFlags } from '../../src/signer/pkcs11.ts';
import { makeSealer } from '../../src/signer/seal.ts';
import { api, call, verifySig } from '../helpers/cluster.ts';
import { codeOf } from '../helpers/errors.ts';
import { softHsm, softHsmMissing, type SoftHsm } from '../helpers/softhsm.ts';

const missing = softHsmMissing();
if (missing) process.stdout.write(`# skipping the SoftHSM2 suite: ${missing}\n`);

/** Runs `fleetkey ARGS` to its end (bounded), with the SoftHSM config in its environment. */
function fleetkey(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fleetkey ${args[0]} did not end within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `f` until it returns true, at most `ms` (no fixed sleeps: the machine is shared). */
async function until(what: string, f: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('PKCS#11 URI and flags', () => {
  test('an RFC 7512 URI gives module, token or slot, key label and PIN file; percent-encoding decoded', () => {
    assert.deepEqual(parsePkcs11Uri('pkcs11:token=my%20hsm;object=kek-1;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/fk/pin'), {
      module: '/usr/lib/softhsm/libsofthsm2.so',
      token: 'my hsm',
      slot: undefined,
      keyLabel: 'kek-1',
      pinFile: '/etc/fk/pin',
    });
    assert.equal(parsePkcs11Uri('pkcs11:slot-id=1267830621;object=k?module-path=/m.so&pin-source=file:///etc/fk/pin').slot, 1267830621n);
    assert.equal(parsePkcs11Uri('pkcs11:slot-id=1;object=k?module-path=/m.so&pin-source=file:///etc/fk/pin').pinFile, '/etc/fk/pin');
  });

  test('what the URI may not say is refused with bad_request, never guessed', () => {
    const base = 'module-path=/m.so&pin-source=file:/p';
    for (const bad of [
      `file:/kek?${base}`,
      `pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234`, // a PIN in `ps`
      `pkcs11:token=t;object=k;object=j?${base}`, // twice
      `pkcs11:token=t;object=k;serial=1?${base}`, // not honoured: refused, not ignored
      `pkcs11:token=t;object=k;type=private?${base}`,
      `pkcs11:token=t?${base}`, // no key
      `pkcs11:object=k?${base}`, // no token nor slot
      `pkcs11:token=t;slot-id=1;object=k?${base}`, // both
      `pkcs11:token=t;object=k?module-path=m.so&pin-source=file:/p`, // relative module
      `pkcs11:token=t;object=k?module-path=/m.so`, // no PIN source
      `pkcs11:token=t;object=k%ZZ?${base}`,
      `pkcs11:token=t;slot-id=x;object=k?${base}`,
    ])
      assert.equal(codeOf(() => parsePkcs11Uri(bad)), 'bad_request', bad);
  });

  test('the --pkcs11-* flags give the same configuration; mixing them with --kek is refused', () => {
    const flags = { 'pkcs11-module': '/m.so', 'pkcs11-slot': '7', 'pkcs11-pin-file': '/p', 'pkcs11-key-label': 'k' };
    assert.deepEqual(pkcs11FromFlags(flags), parsePkcs11Uri('pkcs11:slot-id=7;object=k?module-path=/m.so&pin-source=file:/p'));
    assert.equal(pkcs11FromFlags({}), undefined, 'no flag: the file KEK');
    assert.equal(codeOf(() => pkcs11FromFlags({ ...flags, kek: 'pkcs11:slot-id=7;object=k?module-path=/m.so&pin-source=file:/p' })), 'bad_request');
    assert.equal(codeOf(() => pkcs11FromFlags({ ...flags, 'pkcs11-slot': 'one' })), 'bad_request');
    assert.equal(codeOf(() => pkcs11FromFlags({ 'pkcs11-module': '/m.so' })), 'bad_request');
  });
});

describe('KEK in SoftHSM2: real signer processes', { skip: missing, timeout: 900_000 }, () => {
  let hsm: SoftHsm;
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  const logs: string[] = [];

  before(async () => {
    hsm = softHsm(['fleetkey']);
    // One key per signer, made by the command an operator runs.
    for (const n of [1, 2, 3]) {
      const r = await fleetkey(['kek', 'create', '--kek', hsm.uri(`kek-${n}`), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { created: `kek-${n}`, module: hsm.module, token: 'fleetkey' });
    }
    const again = await fleetkey(['kek', 'create', '--kek', hsm.uri('kek-1')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^fleetkey: conflict: PKCS#11 key "kek-1" already exists/);
    c = await LocalCluster.start({
      dataDir: mkdtempSync(join(tmpdir(), 'fk-hsm-cluster-')),
      signers: 3,
      quiet: true,
      signerArgs: (name) => ['--kek', hsm.uri(`kek-${name.split('-')[1]}`)],
      onLog: (name, line) => logs.push(`${name} ${line}`),
    });
    A = api(c);
  });
  after(async () => c?.stop());

  const sign = async (w: { id: string; publicKey: string }) => {
    const msg = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(verifySig('ed25519', w.publicKey, msg, r.body.signature), 'the independent verifier accepts');
  };

  test('seal, restart, unseal and sign: shares sealed in the HSM open after every signer restarts', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    assert.ok(w.id, JSON.stringify(w));
    await sign(w);
    for (const name of c.signerNames()) {
      const dir = join(c.dataDir, name);
      assert.equal(existsSync(join(dir, 'kek.key')), false, 'no KEK file is made when the KEK is in the HSM');
      assert.match(readFileSync(join(dir, 'ledger-key.sealed'), 'utf8'), /^[A-Za-z0-9+/]{80}\n$/, 'the ledger key is kept sealed (iv, 32 bytes, tag)');
    }
    assert.ok(logs.some((l) => l.includes('"msg":"signer listening"') && l.includes('token \\"fleetkey\\" key \\"kek-1\\"')), 'the signer says where its KEK is');
    for (const name of c.signerNames()) await c.restart(name);
    for (let i = 0; i < 3; i++) {
      const id = await call(c.info.signers[i].url, undefined, 'GET', '/v1/identity');
      assert.equal(id.body.nodeId, c.info.signers[i].nodeId, 'the identity unsealed by the HSM after the restart is the same');
      const ready = await call(c.info.signers[i].url, undefined, 'GET', '/readyz');
      assert.deepEqual([ready.status, ready.body.status], [200, 'ready'], JSON.stringify(ready.body));
    }
    await sign(w);
  });

  test('backup and restore of a signer whose KEK is in the HSM: sealed under that key, restored with it (never without), signs again', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    await sign(w);
    const dir = join(c.dataDir, 'signer-1');
    const file = join(c.dataDir, 'signer-1.hsm-backup');
    const kek = ['--kek', hsm.uri('kek-1')];
    const backup = await fleetkey(['signer', 'backup', '--data', dir, '--out', file, ...kek, '--json']);
    assert.equal(backup.code, 0, backup.stderr);
    const taken = JSON.parse(backup.stdout);
    assert.equal(taken.nodeId, c.info.signers[0].nodeId);
    await sign(w);
    await c.kill('signer-1');
    renameSync(dir, `${dir}.lost`);
    mkdirSync(dir, { mode: 0o700 });
    // The new host has the HSM and the backup file, nothing else: without the HSM key named, no restore and no store.
    const without = await fleetkey(['signer', 'restore', '--in', file, '--data', dir, '--json']);
    assert.equal(without.code, 1);
    assert.equal(JSON.parse(without.stdout).error.code, 'not_found', without.stdout);
    const other = await fleetkey(['signer', 'restore', '--in', file, '--data', dir, '--kek', hsm.uri('kek-2'), '--json']);
    assert.equal(JSON.parse(other.stdout).error.code, 'decrypt_failed', 'another HSM key does not open it');
    assert.deepEqual(readdirSync(dir), [], 'a refused restore leaves nothing behind');
    const restored = await fleetkey(['signer', 'restore', '--in', file, '--data', dir, ...kek, '--json']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(JSON.parse(restored.stdout).nodeId, taken.nodeId);
    assert.equal(JSON.parse(restored.stdout).erasedNonces, taken.pooledNonces);
    assert.equal(existsSync(join(dir, 'kek.key')), false, 'still no KEK file: the key stays in the HSM');
    await c.restart('signer-1');
    // With signer-2 down, every signature needs the restored signer-1.
    await c.kill('signer-2');
    try {
      await sign(w);
    } finally {
      await c.restart('signer-2');
    }
  });

  test('HSM removed mid-run: signers refuse with kek_unavailable, stay up, say why in /readyz, and recover when it is back', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
    await sign(w);
    const moved = hsm.tokenDir + '.removed';
    renameSync(hsm.tokenDir, moved);
    let restored = false;
    try {
      const refused = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(randomBytes(32)) });
      assert.ok(refused.status >= 500, `no signature without the HSM: ${refused.status} ${JSON.stringify(refused.body)}`);
      for (let i = 0; i < 3; i++) {
        const url = c.info.signers[i].url;
        const health = await call(url, undefined, 'GET', '/healthz');
        assert.deepEqual([health.status, health.body.status], [200, 'ok'], 'the process is up');
        const ready = await call(url, undefined, 'GET', '/readyz');
        assert.equal(ready.status, 503);
        assert.equal(ready.body.status, 'not_ready');
        assert.ok(
          ready.body.reasons.some((r: string) => r.startsWith('kek_unavailable: ')),
          `the reason names the KEK: ${JSON.stringify(ready.body.reasons)}`,
        );
      }
      assert.ok(logs.some((l) => l.startsWith('signer-') && l.includes('"code":"kek_unavailable"')), 'a signer refused a request with kek_unavailable');
      renameSync(moved, hsm.tokenDir);
      restored = true;
      for (let i = 0; i < 3; i++) {
        const url = c.info.signers[i].url;
        await until(`signer ${i + 1} ready again`, async () => (await call(url, undefined, 'GET', '/readyz')).status === 200);
      }
      await sign(w);
    } finally {
      if (!restored) renameSync(moved, hsm.tokenDir);
    }
  });

  test('start-up: wrong PIN, missing key label, missing token, missing module: one line naming the problem, exit 1, no stack', async () => {
    const badPin = join(hsm.dir, 'bad-pin');
    writeFileSync(badPin, '9999\n', { mode: 0o600 });
    const dir = mkdtempSync(join(tmpdir(), 'fk-hsm-start-'));
    writeFileSync(join(dir, 'owner.pub'), bytesToHex(randomBytes(32)) + '\n');
    const env = { FLEETKEY_CLUSTER_TOKEN: 'x'.repeat(64) };
    const cases: [string, string, RegExp][] = [
      ['wrong PIN', hsm.uri('kek-1', { pinFile: badPin }), /^fleetkey: unauthorized: PKCS#11 login to token "fleetkey" refused: wrong PIN \(CKR_PIN_INCORRECT\)/],
      ['missing key', hsm.uri('no-such-key'), /^fleetkey: not_found: PKCS#11 token "fleetkey" holds no secret key labelled "no-such-key"/],
      ['missing token', hsm.uri('kek-1', { token: 'elsewhere' }), /^fleetkey: kek_unavailable: PKCS#11 token "elsewhere" is not present/],
      ['missing module', hsm.uri('kek-1', { module: join(hsm.dir, 'no-such-module.so') }), /^fleetkey: kek_unavailable: PKCS#11 module .* cannot be loaded/],
    ];
    for (const [what, uri, want] of cases) {
      const r = await fleetkey(['signer', '--data', dir, '--port', '0', '--kek', uri], env);
      assert.equal(r.code, 1, `${what}: exit 1 (${r.stderr})`);
      assert.match(r.stderr, want, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line, no crash dump: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, what);
      assert.doesNotMatch(r.stderr, /1234|9999/, `${what}: no PIN in the message`);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['owner.pub'], 'a refused start writes nothing to the data dir');
  });
});

describe('no KEK byte on disk or in a log when the HSM holds it (test-only extractable key)', { skip: missing, timeout: 900_000 }, () => {
  test('the data dirs and every log line hold no form of the key; the shares they hold open under exactly that key', async () => {
    const hsm = softHsm(['fleetkey-test']);
    // A key the test can read back, in a token of its own: the only way to know what to look for.
    const require = createRequire(import.meta.url);
    const pkcs11js = require('pkcs11js') as typeof import('pkcs11js');
    const mod = new pkcs11js.PKCS11();
    mod.load(hsm.module);
    let kek: Uint8Array;
    mod.C_Initialize();
    try {
      const slot = mod.C_GetSlotList(true).find((s) => mod.C_GetTokenInfo(s).label.trimEnd() === 'fleetkey-test')!;
      const session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      mod.C_Login(session, pkcs11js.CKU_USER, '1234');
      // The production template but for the two attributes that keep the key inside the HSM.
      const template = kekTemplate(pkcs11js, 'kek').map((a) =>
        a.type === pkcs11js.CKA_SENSITIVE ? { ...a, value: false } : a.type === pkcs11js.CKA_EXTRACTABLE ? { ...a, value: true } : a,
      );
      const key = mod.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template);
      kek = new Uint8Array(mod.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])[0].value as Buffer);
    } finally {
      mod.C_Finalize();
      mod.close();
    }
    assert.equal(kek.length, 32);

    // Sealing in the HSM is plain AES-256-GCM in the file KEK's first format (base64 of iv ‖ ciphertext
    // ‖ tag), both ways: the file KEK opens it, and it opens that format (the file KEK now writes
    // XChaCha20-Poly1305, `x1.`, which an HSM cannot compute); bad bytes are decrypt_failed (not an
    // HSM failure) and leave the session usable.
    const inHsm = await HsmKek.open(parsePkcs11Uri(hsm.uri('kek')));
    try {
      const plain = randomBytes(100);
      assert.deepEqual(makeSealer(kek).open(inHsm.sealer.seal(plain, 'share|w|1'), 'share|w|1'), plain);
      const iv = randomBytes(12);
      const sealed = base64.encode(new Uint8Array([...iv, ...gcm(kek, iv, utf8ToBytes('share|w|1')).encrypt(plain)]));
      assert.deepEqual(makeSealer(kek).open(sealed, 'share|w|1'), plain, 'the file KEK opens its first format');
      assert.deepEqual(inHsm.sealer.open(sealed, 'share|w|1'), plain);
      assert.equal(codeOf(() => inHsm.sealer.open(sealed, 'share|w|2')), 'decrypt_failed', 'moved to another record');
      const tampered = base64.decode(sealed);
      tampered[20] ^= 1;
      assert.equal(codeOf(() => inHsm.sealer.open(base64.encode(tampered), 'share|w|1')), 'decrypt_failed', 'tampered');
      assert.equal(codeOf(() => inHsm.sealer.open(base64.encode(tampered.subarray(0, 20)), 'share|w|1')), 'decrypt_failed', 'truncated');
      assert.deepEqual(inHsm.sealer.open(sealed, 'share|w|1'), plain, 'the session is still usable after refusals');
      assert.equal(inHsm.extractable(), true);
    } finally {
      inHsm.close();
    }

    const logs: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'fk-hsm-leak-'));
    const c = await LocalCluster.start({ dataDir, signers: 2, quiet: true, signerArgs: () => ['--kek', hsm.uri('kek')], onLog: (n, l) => logs.push(`${n} ${l}`) });
    let walletId: string;
    try {
      const A = api(c);
      const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 2 })).body;
      walletId = w.id;
      for (let i = 0; i < 3; i++) {
        const msg = randomBytes(20);
        const r = await A('POST', `/v1/wallets/${w.id}/sign`, { message: bytesToHex(msg) });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(verifySig('ed25519', w.publicKey, msg, r.body.signature));
      }
      await c.restart('signer-1');
    } finally {
      await c.stop();
    }
    assert.ok(logs.some((l) => l.includes('warning: the KEK can be read out of the HSM')), 'an extractable KEK is warned about');

    // Every encoding a careless line could use: raw bytes, hex (both cases), base64, base64url.
    const forms = [Buffer.from(kek), Buffer.from(bytesToHex(kek)), Buffer.from(bytesToHex(kek).toUpperCase()), Buffer.from(base64.encode(kek)), Buffer.from(base64url.encode(kek).replace(/=+$/, ''))];
    const holds = (bytes: Buffer) => forms.some((f) => bytes.includes(f));
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(dataDir);
    assert.ok(files.some((f) => f.endsWith('signer.db')) && files.some((f) => f.endsWith('ledger-key.sealed')), `the scan covers the signers' stores: ${files.join(', ')}`);
    // The scan finds the key where it is (so a miss below means something).
    const planted = join(mkdtempSync(join(tmpdir(), 'fk-hsm-plant-')), 'x');
    writeFileSync(planted, `{"k":"${base64.encode(kek)}"}`);
    assert.ok(holds(readFileSync(planted)), 'the scanner sees a planted key');
    for (const f of files) assert.equal(holds(readFileSync(f)), false, `${f} holds the KEK`);
    assert.ok(logs.length > 4, 'logs were captured');
    assert.equal(holds(Buffer.from(logs.join('\n'))), false, 'a log line holds the KEK');

    // And it is that key, in the HSM, that sealed what is on disk: a share opens under it with plain
    // AES-256-GCM (iv ‖ ciphertext ‖ tag, the record's identity as AAD) and under nothing else.
    const db = new Database(join(dataDir, 'signer-1', 'signer.db'), { readonly: true });
    const row = db.prepare('SELECT wallet_id, epoch, sealed FROM shares WHERE wallet_id = ?').get(walletId!) as { wallet_id: string; epoch: number; sealed: string };
    db.close();
    const raw = base64.decode(row.sealed);
    const aad = utf8ToBytes(`share|${row.wallet_id}|${row.epoch}`);
    const share = JSON.parse(new TextDecoder().decode(gcm(kek, raw.subarray(0, 12), aad).decrypt(raw.subarray(12))));
    assert.ok(typeof share === 'object' && share !== null, 'the sealed share opens under the HSM key');
    assert.throws(() => gcm(randomBytes(32), raw.subarray(0, 12), aad).decrypt(raw.subarray(12)));
  });
});
