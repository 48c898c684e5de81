/**
 * Mutual TLS between real processes, pinned to the cluster manifest (src/tls). Every refused peer
 * is refused before any route runs: it gets no HTTP answer, and the signer's audit chain and
 * consumed-nonce count do not move. After each, the cluster still signs. Manifest refusals and
 * `init` are checked through the real command.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { generateTlsIdentity } from '../../src/tls/cert.ts';
import { initServer } from '../../src/tls/init.ts';
import { assembleManifest, clusterIdOf, type Manifest } from '../../src/tls/manifest.ts';
import { api, call, fetchAny, startCluster, verifySig } from '../helpers/cluster.ts';

/** Short, so the slow-client case ends in seconds; inherited by every process the cluster spawns. */
process.env.FLEETKEY_HEADERS_TIMEOUT_MS = '3000';

interface Attempt {
  /** Bytes the signer sent back before the socket ended (an HTTP answer would start "HTTP/1.1"). */
  answer: string;
  /** The TLS handshake completed on the client's side. */
  handshake: boolean;
}

/** Opens TLS to `port` with `id` (or no certificate), sends one authorized request, collects what comes back. */
function attempt(port: number, token: string, id?: { keyPem: string; certPem: string }): Promise<Attempt> {
  return new Promise((resolve) => {
    let answer = '';
    let handshake = false;
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(id ? { key: id.keyPem, cert: id.certPem } : {}) }, () => {
      handshake = true;
      s.write(`GET /v1/audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (answer += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ answer, handshake }));
    setTimeout(() => s.destroy(), 15_000).unref();
  });
}

/** Writes `bytes` on a plain TCP socket and resolves with what came back once the signer closes it. */
function raw(port: number, bytes: Uint8Array | string, waitMs = 20_000): Promise<{ answer: string; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    let answer = '';
    let closedByPeer = false;
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.setEncoding('latin1');
    s.on('data', (d: string) => (answer += d));
    s.on('end', () => (closedByPeer = true));
    s.on('error', () => (closedByPeer = true));
    s.on('close', () => resolve({ answer, closedByPeer }));
    setTimeout(() => s.destroy(), waitMs).unref();
  });
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('mutual TLS on the server-signer links (real processes)', { timeout: 900_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let token: string;
  let manifest: Manifest;
  let serverTls: { keyPem: string; certPem: string };
  const port = (i: number) => Number(new URL(c.info.signers[i].url).port);
  /** What a refused peer must not move: the signer's audit chain and its consumed nonces. */
  const footprint = async (i: number) => {
    const audit = await (await fetchAny(c.info.signers[i].url + '/v1/audit', { headers: { authorization: `Bearer ${token}` } })).text();
    const stats = await call(c.info.signers[i].url, token, 'GET', '/v1/stats');
    return { auditLines: audit.split('\n').filter(Boolean).length, consumed: stats.body.consumedNonces };
  };
  let wallet: { id: string; publicKey: string };
  const signs = async () => {
    const msg = randomBytes(32);
    const r = await A('POST', `/v1/wallets/${wallet.id}/sign`, { message: bytesToHex(msg) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(verifySig('ed25519', wallet.publicKey, msg, r.body.signature));
  };

  before(async () => {
    c = await startCluster(3);
    A = api(c);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    manifest = JSON.parse(readFileSync(join(c.dataDir, 'cluster-manifest.json'), 'utf8'));
    serverTls = { keyPem: readFileSync(join(c.dataDir, 'server', 'tls.key'), 'utf8'), certPem: readFileSync(join(c.dataDir, 'server', 'tls.crt'), 'utf8') };
    const w = await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    wallet = w.body;
  });
  after(async () => c?.stop());

  test('every link is mutual TLS 1.3: the signers advertise https and the cluster signs over them', async () => {
    for (const s of c.info.signers) assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await signs();
    // The control: the manifest's server certificate gets an HTTP answer on TLS 1.3.
    const ok = await attempt(port(0), token, serverTls);
    assert.ok(ok.handshake);
    assert.match(ok.answer, /^HTTP\/1\.1 200 /);
  });

  test('no certificate, a certificate not in the manifest, another cluster\'s server certificate: no route runs', async () => {
    const before0 = await footprint(0);
    const stranger = await generateTlsIdentity({ commonName: 'server' });
    const other = mkdtempSync(join(tmpdir(), 'fk-other-'));
    await initServer({ dataDir: other, name: 'server' });
    const otherCluster = { keyPem: readFileSync(join(other, 'tls.key'), 'utf8'), certPem: readFileSync(join(other, 'tls.crt'), 'utf8') };
    // A signer's own certificate is in the manifest, but not as a server: it may not call a signer.
    const peerSigner = { keyPem: readFileSync(join(c.dataDir, 'signer-2', 'tls.key'), 'utf8'), certPem: readFileSync(join(c.dataDir, 'signer-2', 'tls.crt'), 'utf8') };
    for (const [what, id] of [['no certificate', undefined], ['self-made certificate', stranger], ['another cluster', otherCluster], ['a signer\'s certificate', peerSigner]] as const) {
      const r = await attempt(port(0), token, id);
      assert.equal(r.answer, '', `${what}: no HTTP answer at all`);
    }
    assert.deepEqual(await footprint(0), before0, 'nothing reached the signer');
    await signs();
  });

  test('plain HTTP and TLS garbage on a signer port: dropped, the signer keeps serving', async () => {
    const before0 = await footprint(0);
    await assert.rejects(fetch(`http://127.0.0.1:${port(0)}/healthz`), 'plain HTTP gets no answer');
    const plain = await raw(port(0), `GET /v1/audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    assert.ok(!plain.answer.startsWith('HTTP/'), 'no HTTP answer to plain HTTP');
    assert.ok(plain.closedByPeer);
    // A TLS record header (handshake, TLS 1.0) followed by noise, then pure noise.
    const garbage = await Promise.all([raw(port(0), Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x40, ...randomBytes(64))), raw(port(0), randomBytes(4096))]);
    for (const g of garbage) assert.ok(g.closedByPeer && !g.answer.includes('HTTP/'));
    assert.deepEqual(await footprint(0), before0);
    await signs();
  });

  test('a slow client that never finishes its headers is cut off; meanwhile the signer serves', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: port(1), rejectUnauthorized: false, key: serverTls.keyPem, cert: serverTls.certPem });
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.on('error', () => undefined);
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    let answer = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (answer += d));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await signs();
    // Bounded: the signer's headersTimeout is 3 s here; give the shared machine 60 s.
    const late = new Promise<'late'>((r) => setTimeout(() => r('late'), 60_000).unref());
    assert.notEqual(await Promise.race([closed.then(() => 'closed' as const), late]), 'late', 'the signer closed the slow socket');
    assert.ok(!answer.startsWith('HTTP/1.1 200'), 'no route ran for it');
    await signs();
  });

  test('an expired certificate is refused even when the manifest lists it', async () => {
    // A second server whose certificate expired yesterday joins the manifest; signer-1 restarts on it.
    const dir = mkdtempSync(join(tmpdir(), 'fk-expired-'));
    const rec = await initServer({ dataDir: dir, name: 'expired-server' });
    const day = 86_400_000;
    const expired = await generateTlsIdentity({ commonName: 'expired-server', notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) });
    const notYet = await generateTlsIdentity({ commonName: 'future-server', notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 30 * day) });
    const rec2 = await initServer({ dataDir: mkdtempSync(join(tmpdir(), 'fk-future-')), name: 'future-server' });
    const next = assembleManifest([...manifest.nodes, { ...rec, tlsCertificate: expired.certPem }, { ...rec2, tlsCertificate: notYet.certPem }]);
    writeFileSync(join(c.dataDir, 'cluster-manifest.json'), JSON.stringify(next, null, 2));
    await c.restart('signer-1');
    const before0 = await footprint(0);
    for (const id of [expired, notYet]) assert.equal((await attempt(port(0), token, id)).answer, '', 'no HTTP answer');
    assert.deepEqual(await footprint(0), before0);
    assert.match((await attempt(port(0), token, serverTls)).answer, /^HTTP\/1\.1 200 /, 'the valid server still gets in');
    await signs();
  });

  test('the server refuses a signer that does not present its pinned certificate', async () => {
    // An impostor takes signer-3's port with a certificate of its own: the server must not talk to it.
    await c.kill('signer-3');
    const fake = await generateTlsIdentity({ commonName: 'signer-3', hosts: ['127.0.0.1'] });
    let requests = 0;
    const impostor = https.createServer({ key: fake.keyPem, cert: fake.certPem, requestCert: true, rejectUnauthorized: false }, (_req, res) => {
      requests++;
      res.end('{}');
    });
    await new Promise<void>((r) => impostor.listen(port(2), '127.0.0.1', () => r()));
    try {
      const nodes = await A('GET', '/v1/nodes');
      assert.equal(nodes.status, 200);
      // Two healthy signers still sign the 2-of-3 wallet; the impostor is never sent a request.
      for (let i = 0; i < 3; i++) await signs();
      assert.equal(requests, 0, 'no request reached the impostor');
    } finally {
      impostor.closeAllConnections();
      await new Promise((r) => impostor.close(r));
    }
    await c.restart('signer-3');
  });

  test('a process refuses a manifest that does not name it, names a node twice, or has a bad field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk-init-'));
    const init = await run(['signer', 'init', '--data', dir, '--name', 'newcomer', '--advertise', 'https://127.0.0.1:1'], {});
    assert.equal(init.code, 0, init.stderr);
    const record = JSON.parse(init.stdout);
    // Public only: exactly the record's fields, no private key, no KEK.
    assert.deepEqual(Object.keys(record).sort(), ['encryptionPublicKey', 'identityPublicKey', 'name', 'nodeId', 'role', 'tlsCertificate', 'url']);
    assert.ok(!init.stdout.includes('PRIVATE KEY'));
    assert.ok(!init.stdout.includes(bytesToHex(readFileSync(join(dir, 'kek.key')))));
    for (const f of ['tls.key', 'kek.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    const env = { FLEETKEY_CLUSTER_TOKEN: token, FLEETKEY_OWNER_KEYS: '11'.repeat(32) };
    const startWith = async (m: unknown) => {
      const f = join(dir, `m-${bytesToHex(randomBytes(4))}.json`);
      writeFileSync(f, JSON.stringify(m));
      return run(['signer', '--data', dir, '--port', '0', '--manifest', f], env);
    };
    const notNamed = await startWith(manifest);
    assert.notEqual(notNamed.code, 0);
    assert.match(notNamed.stderr, /manifest\.nodes: does not name this signer/);
    const named = [...manifest.nodes, record];
    const dup = [...named, { ...named[0], name: 'again' }];
    const twice = await startWith({ version: 1, clusterId: clusterIdOf(dup as never), nodes: dup });
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, new RegExp(`manifest\\.nodes\\[${dup.length - 1}\\]\\.nodeId: same nodeId as nodes\\[0\\]`));
    const bad = named.map((n, i) => (i === 1 ? { ...n, url: 'http://127.0.0.1:9' } : n));
    const badField = await startWith({ version: 1, clusterId: clusterIdOf(bad as never), nodes: bad });
    assert.notEqual(badField.code, 0);
    assert.match(badField.stderr, /manifest\.nodes\[1\]\.url: must be https/);
    const edited = await startWith({ version: 1, clusterId: manifest.clusterId, nodes: named });
    assert.match(edited.stderr, /manifest\.clusterId: does not match/);
    // `fleetkey cluster manifest` checks the same way, and names the record.
    const files = [record, { ...record, tlsCertificate: 'nope' }].map((r, i) => {
      const f = join(dir, `r${i}.json`);
      writeFileSync(f, JSON.stringify(r));
      return f;
    });
    const assembled = await run(['cluster', 'manifest', ...files]);
    assert.equal(assembled.code, 1);
    assert.match(assembled.stderr, /records\[1\]\.tlsCertificate: must be one PEM X\.509 certificate/);
    await signs();
  });
});

describe('public API over TLS (--tls-cert/--tls-key), --ca for the CLI, no plain HTTP on the network', { timeout: 600_000 }, () => {
  test('HTTPS with the operator certificate; the CLI trusts it only with --ca; plain HTTP on 0.0.0.0 refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk-public-tls-'));
    const cert = await generateTlsIdentity({ commonName: 'api', hosts: ['127.0.0.1'] });
    writeFileSync(join(dir, 'api.crt'), cert.certPem);
    writeFileSync(join(dir, 'api.key'), cert.keyPem, { mode: 0o600 });
    const env = { FLEETKEY_ADMIN_TOKEN: 'admin-token-for-test', FLEETKEY_CLUSTER_TOKEN: 'cluster', FLEETKEY_OWNER_KEYS: '11'.repeat(32) };
    const refused = await run(['server', '--data', join(dir, 'plain'), '--host', '0.0.0.0', '--port', '0'], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /refusing plain HTTP on 0\.0\.0\.0/);
    const child = spawn(process.execPath, [BIN, 'server', '--data', join(dir, 'srv'), '--port', '0', '--tls-cert', join(dir, 'api.crt'), '--tls-key', join(dir, 'api.key')], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buf = '';
        child.stderr.on('data', (d) => {
          buf += d;
          const m = /"msg":"server listening","port":(\d+)/.exec(buf);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', () => reject(new Error(buf)));
      });
      const cli = (extra: NodeJS.ProcessEnv) => run(['wallet', 'list', '--json'], { FLEETKEY_URL: `https://127.0.0.1:${port}`, FLEETKEY_TOKEN: env.FLEETKEY_ADMIN_TOKEN, ...extra });
      const untrusted = await cli({});
      assert.equal(JSON.parse(untrusted.stdout).error.code, 'unreachable', 'a self-signed certificate is not trusted by default');
      const trusted = await cli({ FLEETKEY_CA: join(dir, 'api.crt') });
      assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
      assert.deepEqual(JSON.parse(trusted.stdout), []);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no plain HTTP on the TLS port');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
