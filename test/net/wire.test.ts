/**
 * Bad bytes on the wire, against a signer and an API server in their own network namespaces:
 * a TLS handshake and random bytes sent to a plain-HTTP port, a client that never finishes its
 * headers, oversized bodies (declared and chunked), broken JSON, and protocol envelopes from a node
 * id nobody pinned. Each is refused (an HTTP error with a stable code, or the connection closed),
 * nothing crashes, and the process answers /healthz right after.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { signControlDoc } from '../../src/control/index.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';
import { signEnvelope, newNodeKeys } from '../../src/signer/envelope.ts';
import { call } from '../helpers/cluster.ts';
import { NetCluster, netnsUnavailable } from './harness.ts';

const why = netnsUnavailable();
if (why) process.stdout.write(`# skipping test/net/wire.test.ts: ${why}\n`);

/** Each process cuts a client that has not finished its headers after this long. */
const HEADERS_TIMEOUT_MS = 2000;

/** Opens a TCP connection, writes `data`, and resolves with what came back once the server closed it (bounded). */
function exchange(host: string, port: number, data: Buffer | string, waitMs = 15_000): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
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
  let targets: { name: string; host: string; port: number; url: string; token: string; post: string }[];

  before(async () => {
    c = await NetCluster.start({ signers: 3, servers: 1, env: { FLEETKEY_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) } });
    const signer = new URL(c.signers[0].direct);
    const server = new URL(c.serverUrls[0]);
    targets = [
      { name: 'signer', host: signer.hostname, port: Number(signer.port), url: c.signers[0].direct, token: c.clusterToken, post: '/v1/sign' },
      { name: 'server', host: server.hostname, port: Number(server.port), url: c.serverUrls[0], token: c.adminToken, post: '/v1/wallets' },
    ];
  });
  after(async () => c?.stop());

  /** The process still serves, and nothing died. */
  async function stillServing(t: { url: string; name: string }) {
    const r = await fetch(t.url + '/healthz');
    assert.equal(r.status, 200, `${t.name} answers /healthz`);
    await r.arrayBuffer();
    assert.deepEqual(c.unexpectedExits, []);
  }

  test('a TLS handshake and random bytes on the plain-HTTP port: refused with 400 or closed, the process keeps serving', async () => {
    for (const t of targets) {
      // A real TLS ClientHello, from Node's own TLS client: the HTTP parser rejects it.
      const tlsErr = await new Promise<Error>((resolve) => {
        const s = tlsConnect({ host: t.host, port: t.port, rejectUnauthorized: false, servername: 'fleetkey.test' });
        s.on('error', resolve);
        s.on('secureConnect', () => resolve(new Error('handshake completed')));
        s.setTimeout(15_000, () => (s.destroy(), resolve(new Error('no answer'))));
      });
      assert.notEqual(tlsErr.message, 'handshake completed');
      assert.notEqual(tlsErr.message, 'no answer', `${t.name}: the handshake was refused at once`);
      await stillServing(t);
      for (let i = 0; i < 5; i++) {
        const r = await exchange(t.host, t.port, Buffer.from(randomBytes(1 + Math.floor(Math.random() * 65536))));
        assert.ok(r.closedByServer, `${t.name}: random bytes end the connection`);
        assert.ok(r.reply === '' || r.reply.startsWith('HTTP/1.1 400'), `${t.name}: answered ${JSON.stringify(r.reply.slice(0, 40))}`);
      }
      // Garbage after a valid request line, and a header with a control byte.
      for (const raw of ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad\0Header: 1\r\n\r\n', 'POST / HTTP/9.9\r\n\r\n', 'GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n']) {
        const r = await exchange(t.host, t.port, raw);
        assert.match(r.reply, /^HTTP\/1\.1 4\d\d/, `${t.name}: ${JSON.stringify(raw.slice(0, 30))}`);
      }
      await stillServing(t);
    }
  });

  test('a client that never finishes its headers is cut after the headers timeout; others are served meanwhile', async () => {
    for (const t of targets) {
      const slow: Socket = connect({ host: t.host, port: t.port });
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
        const sock = connect({ host: t.host, port: t.port });
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
