/**
 * Bad bytes on the wire, against a signer (its mutual-TLS port, as the manifest deploys it) and an
 * API server (plain HTTP behind --insecure-http) in their own network namespaces: random bytes and
 * plain HTTP at the mutual-TLS port, TLS clients with no certificate or one the manifest does not
 * pin, a TLS handshake at the plain-HTTP port, malformed HTTP, a client that never finishes its
 * headers, oversized bodies (declared and chunked), broken JSON, and protocol envelopes from a node
 * id nobody pinned. Each is refused (an HTTP error with a stable code, or the connection closed),
 * nothing crashes, and the process answers /healthz right after. Against the signer, the HTTP-level
 * cases run inside a mutual-TLS connection made with server-1's pinned certificate.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { signControlDoc } from '../../src/control/index.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';
import { signEnvelope, newNodeKeys } from '../../src/signer/envelope.ts';
import { generateTlsIdentity } from '../../src/tls/cert.ts';
import { call, fetchAny } from '../helpers/cluster.ts';
import { NetCluster, netnsUnavailable } from './harness.ts';

const why = netnsUnavailable();
if (why) process.stdout.write(`# skipping test/net/wire.test.ts: ${why}\n`);

/** Each process cuts a client that has not finished its headers after this long. */
const HEADERS_TIMEOUT_MS = 2000;

/** TLS options for a client of the signer: its pinned certificate trusted, by fingerprint as the servers do (not by name). */
function tlsTo(signerCert: string, client?: { keyPem: string; certPem: string }): ConnectionOptions {
  return { ca: [signerCert], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3', ...(client ? { key: client.keyPem, cert: client.certPem } : {}) };
}

/** A connection to the target: plain TCP, or (`tls`) TLS with those options. */
function open(host: string, port: number, tls?: ConnectionOptions): Socket {
  return tls ? tlsConnect({ host, port, ...tls }) : connect({ host, port });
}

/** Opens a connection, writes `data`, and resolves with what came back once the server closed it (bounded). */
function exchange(host: string, port: number, data: Buffer | string, waitMs = 15_000, tls?: ConnectionOptions): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = open(host, port, tls);
    let reply = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ reply, closedByServer: false });
    }, waitMs);
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closedByServer: true });
    });
    s.write(data);
  });
}

describe('bad input on the wire (a signer and a server in their namespaces)', { skip: why, timeout: 300_000 }, () => {
  let c: NetCluster;
  /** `tls`: how a pinned server reaches it (the signer); none for the server's plain-HTTP public API. */
  let targets: { name: string; host: string; port: number; url: string; token: string; post: string; tls?: ConnectionOptions }[];

  before(async () => {
    c = await NetCluster.start({ signers: 3, servers: 1, env: { FLEETKEY_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) } });
    const signer = new URL(c.signers[0].direct);
    const server = new URL(c.serverUrls[0]);
    targets = [
      { name: 'signer', host: signer.hostname, port: Number(signer.port), url: c.signers[0].direct, token: c.clusterToken, post: '/v1/sign', tls: tlsTo(c.signers[0].tlsCertificate, c.serverTls()) },
      { name: 'server', host: server.hostname, port: Number(server.port), url: c.serverUrls[0], token: c.adminToken, post: '/v1/wallets' },
    ];
  });
  after(async () => c?.stop());

  /** The process still serves, and nothing died. */
  async function stillServing(t: { url: string; name: string }) {
    const r = await fetchAny(t.url + '/healthz');
    assert.equal(r.status, 200, `${t.name} answers /healthz`);
    await r.arrayBuffer();
    assert.deepEqual(c.unexpectedExits, []);
  }

  test('the signer\'s mutual-TLS port: random bytes, plain HTTP, a TLS client with no certificate or an unpinned one are all refused before any route', async () => {
    const t = targets.find((x) => x.name === 'signer')!;
    const signerCert = c.signers[0].tlsCertificate;
    for (let i = 0; i < 5; i++) {
      const r = await exchange(t.host, t.port, Buffer.from(randomBytes(1 + Math.floor(Math.random() * 65536))));
      assert.ok(r.closedByServer, 'random bytes end the connection');
      assert.doesNotMatch(r.reply, /HTTP\//, 'no HTTP answer to TLS garbage');
    }
    const plain = await exchange(t.host, t.port, `GET /healthz HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
    assert.ok(plain.closedByServer, 'plain HTTP ends the connection');
    assert.doesNotMatch(plain.reply, /HTTP\/1\.1 2/, 'plain HTTP is not served');
    // TLS 1.3: the client may finish its side of the handshake before the server has checked its
    // certificate; what matters is that no request is ever answered and the connection is cut.
    const unpinned = await generateTlsIdentity({ commonName: 'another-cluster', hosts: [t.host] });
    for (const [who, client] of [['no certificate', undefined], ['a certificate of another cluster', unpinned]] as const) {
      const r = await exchange(t.host, t.port, `GET /healthz HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`, 15_000, tlsTo(signerCert, client));
      assert.ok(r.closedByServer, `${who}: the connection is cut`);
      assert.equal(r.reply, '', `${who}: nothing answered`);
    }
    // The same request with server-1's pinned certificate is served: the refusals above were about the client.
    const ok = await exchange(t.host, t.port, `GET /healthz HTTP/1.1\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`, 15_000, t.tls);
    assert.match(ok.reply, /^HTTP\/1\.1 200/);
    await stillServing(t);
  });

  test('a TLS handshake and random bytes on the plain-HTTP port, malformed HTTP on every port: refused with 4xx or closed, the process keeps serving', async () => {
    const server = targets.find((x) => x.name === 'server')!;
    // A real TLS ClientHello, from Node's own TLS client: the HTTP parser rejects it.
    const tlsErr = await new Promise<Error>((resolve) => {
      const s = tlsConnect({ host: server.host, port: server.port, rejectUnauthorized: false, servername: 'fleetkey.test' });
      s.on('error', resolve);
      s.on('secureConnect', () => resolve(new Error('handshake completed')));
      s.setTimeout(15_000, () => (s.destroy(), resolve(new Error('no answer'))));
    });
    assert.notEqual(tlsErr.message, 'handshake completed');
    assert.notEqual(tlsErr.message, 'no answer', 'server: the handshake was refused at once');
    await stillServing(server);
    for (let i = 0; i < 5; i++) {
      const r = await exchange(server.host, server.port, Buffer.from(randomBytes(1 + Math.floor(Math.random() * 65536))));
      assert.ok(r.closedByServer, 'server: random bytes end the connection');
      assert.ok(r.reply === '' || r.reply.startsWith('HTTP/1.1 400'), `server: answered ${JSON.stringify(r.reply.slice(0, 40))}`);
    }
    for (const t of targets) {
      // Garbage after a valid request line, and a header with a control byte (inside mutual TLS for the signer).
      for (const raw of ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad\0Header: 1\r\n\r\n', 'POST / HTTP/9.9\r\n\r\n', 'GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n']) {
        const r = await exchange(t.host, t.port, raw, 15_000, t.tls);
        assert.match(r.reply, /^HTTP\/1\.1 4\d\d/, `${t.name}: ${JSON.stringify(raw.slice(0, 30))}`);
      }
      await stillServing(t);
    }
  });

  test('a client that never finishes its headers is cut after the headers timeout; others are served meanwhile', async () => {
    for (const t of targets) {
      const slow: Socket = open(t.host, t.port, t.tls);
      let closed = false;
      let reply = '';
      slow.on('data', (d) => (reply += d.toString('latin1')));
      slow.on('error', () => undefined);
      const ended = new Promise<void>((r) => slow.on('close', () => ((closed = true), r())));
      slow.write(`POST ${t.post} HTTP/1.1\r\nHost: ${t.host}\r\n`);
      // One header byte a while, never the blank line; bounded by count.
      let n = 0;
      const drip = setInterval(() => {
        if (!closed && n++ < 60) slow.write(`X-Slow-${n}: ${'a'.repeat(5)}\r\n`);
      }, 250);
      try {
        await stillServing(t);
        const bound = new Promise<'still open'>((r) => setTimeout(() => r('still open'), HEADERS_TIMEOUT_MS * 5));
        assert.notEqual(await Promise.race([ended.then(() => 'closed' as const), bound]), 'still open', `${t.name}: the slow client is cut`);
        assert.ok(reply === '' || /^HTTP\/1\.1 408/.test(reply), `${t.name}: answered ${JSON.stringify(reply.slice(0, 40))}`);
      } finally {
        clearInterval(drip);
        slow.destroy();
      }
      await stillServing(t);
    }
  });

  test('oversized bodies, declared or chunked, and broken JSON: 413 payload_too_large / 400 invalid_json', async () => {
    for (const t of targets) {
      const big = 'x'.repeat((1 << 20) + 1024);
      const declared = await call(t.url, t.token, 'POST', t.post, undefined, JSON.stringify({ message: big }));
      assert.equal(declared.status, 413);
      assert.equal(declared.body.error.code, 'payload_too_large');
      // Chunked, no length given up front: cut at the limit all the same (the server answers 413
      // and closes while the client is still sending, so this is a raw socket, not fetch).
      const chunk = 'x'.repeat(64 * 1024);
      const head = `POST ${t.post} HTTP/1.1\r\nHost: ${t.host}\r\nAuthorization: Bearer ${t.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
      const chunked = await new Promise<string>((resolve) => {
        const sock = open(t.host, t.port, t.tls);
        let reply = '';
        let sent = 0;
        sock.on('error', () => undefined);
        sock.on('data', (d) => (reply += d.toString('latin1')));
        sock.on('close', () => resolve(reply));
        const pump = () => {
          while (!sock.destroyed && sent < 40 && sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)) sent++;
          if (sent >= 40 && !sock.destroyed) sock.end('0\r\n\r\n');
        };
        sock.on('drain', () => (sent++, pump()));
        sock.write(head);
        pump();
        setTimeout(() => sock.destroy(), 20_000);
      });
      assert.match(chunked, /^HTTP\/1\.1 413/, `${t.name}: chunked oversized body`);
      assert.match(chunked, /payload_too_large/);
      const broken = await call(t.url, t.token, 'POST', t.post, undefined, '{"message": "00",');
      assert.equal(broken.status, 400);
      assert.equal(broken.body.error.code, 'invalid_json');
      await stillServing(t);
    }
  });

  test('a protocol envelope from a node id nobody pinned, and a session naming one: unknown_node', async () => {
    const s = c.signers;
    const owner = readOwnerSecret(c.ownerKeyFile);
    const participants = s.map((x, i) => ({ index: i + 1, nodeId: x.nodeId }));
    /** A DKG session open on every signer (a refused message ends it, so each check gets its own). */
    const open = async () => {
      const session = `ses_wire_${bytesToHex(randomBytes(6))}`;
      const walletId = `wal_${bytesToHex(randomBytes(12))}`;
      const now = Date.now();
      const create = signControlDoc({ kind: 'wallet_create', walletId, scheme: 'ed25519', threshold: 2, holders: s.map((x) => x.nodeId), network: 'mainnet-beta', issuedAt: now, expiresAt: now + 600_000 }, owner);
      const started = await Promise.all(s.map((x) => call(x.direct, c.clusterToken, 'POST', '/v1/sessions', { session, kind: 'dkg', walletId, scheme: 'ed25519', threshold: 2, participants, epoch: 0, create })));
      for (const r of started) assert.equal(r.status, 200, JSON.stringify(r.body));
      const { sig: _sig, ...unsigned } = started[1].body.messages.find((e: { to?: string }) => e.to === undefined);
      return { session, walletId, create, unsigned };
    };
    // A round-1 message as another node would send it, but from an identity outside the peer list.
    const intruder = newNodeKeys(`node_${bytesToHex(randomBytes(8))}`);
    const a = await open();
    const forged = signEnvelope({ ...a.unsigned, from: intruder.nodeId }, intruder);
    const r = await call(s[0].direct, c.clusterToken, 'POST', `/v1/sessions/${a.session}/round`, { round: 1, messages: [forged] });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'unknown_node');
    // The same, under a pinned node's id but signed with a key that is not its identity key: bad_signature.
    const b = await open();
    const impostor = signEnvelope({ ...b.unsigned }, { ...intruder, nodeId: b.unsigned.from, signSecret: ed25519.utils.randomSecretKey() });
    const r2 = await call(s[0].direct, c.clusterToken, 'POST', `/v1/sessions/${b.session}/round`, { round: 1, messages: [impostor] });
    assert.equal(r2.status, 400, JSON.stringify(r2.body));
    assert.equal(r2.body.error.code, 'bad_signature');
    const { walletId, create } = a;
    const session = `ses_wire_${bytesToHex(randomBytes(6))}`;
    // A session that names a participant nobody pinned is refused before any key is made.
    const other = await call(s[0].direct, c.clusterToken, 'POST', '/v1/sessions', { session: `${session}b`, kind: 'dkg', walletId, scheme: 'ed25519', threshold: 2, participants: [...participants.slice(0, 2), { index: 3, nodeId: intruder.nodeId }], epoch: 0, create });
    assert.equal(other.status, 400, JSON.stringify(other.body));
    await stillServing({ url: s[0].direct, name: 'signer' });
    await stillServing({ url: c.serverUrls[0], name: 'server' });
  });
});
