/**
 * Issue 15, items 4 and 7, on a real cluster: the owner, not the server, decides what a wallet is
 * (scheme, threshold, holders, network), every holder checks that order before a key generation and
 * uses it once, and a wallet's signed public package lets the CLI / SDK (and anyone) check what the
 * holders really made. A wallet's network is its own: a request naming another is refused by every
 * signer. The compromised server here talks to the signers directly with the cluster token.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { BIN, type LocalCluster } from '../../src/cli/cluster.ts';
import { controlDocDigest, publicKeyOf, signControlDoc, type WalletCreateDoc } from '../../src/control/index.ts';
import { verifyLog } from '../../src/audit/index.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';
import { verifyWalletPackage } from '../../src/sdk/index.ts';
import { getVerifiedWallet } from '../../src/sdk/verify-wallet-package.ts';
import { signEnvelope, publicHash } from '../../src/signer/envelope.ts';
import { api, call, fetchAny, startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, ownerSign, publish, request, solTransfer, SOL_DEST } from '../helpers/agent.ts';
import { codeOf } from '../helpers/errors.ts';

const newWalletId = () => `wal_${bytesToHex(randomBytes(12))}`;


describe('wallet creation is the owner\'s order, checked by every holder', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let token: string;
  let A: ReturnType<typeof api>;
  let nodeKeys: { nodeId: string; signPub: string }[];
  let ownerKey: string;
  const S = (i: number, method: string, path: string, body?: unknown) => call(c.info.signers[i].url, token, method, path, body);
  const all = (f: (i: number) => Promise<{ status: number; body: any }>) => Promise.all(c.info.signers.map((_, i) => f(i)));
  const holders = () => c.info.signers.map((n) => n.nodeId);
  const participants = (ids = holders()) => ids.map((nodeId, i) => ({ index: i + 1, nodeId }));
  const order = (o: Partial<WalletCreateDoc> = {}): WalletCreateDoc => {
    const now = Date.now();
    return { kind: 'wallet_create', walletId: newWalletId(), scheme: 'ed25519', threshold: 2, holders: holders(), network: 'mainnet-beta', issuedAt: now, expiresAt: now + 600_000, ...o } as WalletCreateDoc;
  };
  /** The DKG start a (compromised) server sends each node. */
  const dkgStart = (doc: WalletCreateDoc, create: unknown, o: { threshold?: number; participants?: { index: number; nodeId: string }[]; walletId?: string } = {}) => ({
    session: `ses_${bytesToHex(randomBytes(8))}`,
    kind: 'dkg',
    walletId: o.walletId ?? doc.walletId,
    scheme: doc.scheme,
    threshold: o.threshold ?? doc.threshold,
    participants: o.participants ?? participants(doc.holders),
    epoch: 0,
    ...(create === undefined ? {} : { create }),
  });
  const refusedByAll = (rs: { status: number; body: any }[], code: string, what: string) => {
    for (const [i, r] of rs.entries()) assert.equal(r.body?.error?.code, code, `${what}: node ${i + 1} answered ${r.status} ${JSON.stringify(r.body)}`);
  };

  before(async () => {
    c = await startCluster(3);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    A = api(c);
    nodeKeys = c.info.signers.map((s) => ({ nodeId: s.nodeId, signPub: s.signPub }));
    ownerKey = publicKeyOf(readOwnerSecret(c.info.ownerKey), 'ed25519');
  });
  after(async () => c?.stop());

  test('a DKG start without the owner\'s order, with a forged one, or one that differs from the session is refused by every node', async () => {
    const doc = order();
    const good = ownerSign(c, doc);
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, undefined))), 'owner_authorization_required', 'no document');
    // Signed by a key that is not the pinned owner key, and the owner's document altered after signing.
    const forged = signControlDoc(doc, ed25519.utils.randomSecretKey());
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, forged))), 'bad_signature', 'forged document');
    const altered = { ...good, doc: { ...good.doc, threshold: 3 } };
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(altered.doc as WalletCreateDoc, altered))), 'bad_signature', 'altered document');
    // A valid order, but the session is another wallet: a lower threshold, fewer holders, another id.
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good, { threshold: 1 }))), 'forbidden', 'threshold 1 instead of 2');
    const two = participants(holders().slice(0, 2));
    const rs = await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good, { participants: two })));
    refusedByAll(rs.slice(0, 2), 'forbidden', 'holders 2 of the 3 ordered');
    refusedByAll(rs.slice(2), 'forbidden', 'not a participant');
    const reordered = participants([holders()[1], holders()[0], holders()[2]]);
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good, { participants: reordered }))), 'forbidden', 'holders in another party order');
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good, { walletId: newWalletId() }))), 'forbidden', 'another wallet id');
    // A stale order.
    const old = order({ issuedAt: Date.now() - 120_000, expiresAt: Date.now() - 1 });
    refusedByAll(await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(old, ownerSign(c, old)))), 'request_expired', 'expired document');
    // Nothing above used the order up: the honest session it names is accepted.
    const ok = await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good)));
    for (const r of ok) assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  test('an order is used once, durably: a second key generation under it is refused by every node, also after a restart', async () => {
    const doc = order();
    const good = ownerSign(c, doc);
    // A session started (and abandoned by the server before its rounds): the order is spent.
    for (const r of await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good)))) assert.equal(r.status, 200, JSON.stringify(r.body));
    const again = await all((i) => S(i, 'POST', '/v1/sessions', dkgStart(doc, good)));
    refusedByAll(again, 'conflict', 'second use');
    for (const r of again) assert.equal(r.body.error.details.reason, 'create_document_used');
    await c.restart('signer-2');
    const afterRestart = await S(1, 'POST', '/v1/sessions', dkgStart(doc, good));
    assert.equal(afterRestart.body?.error?.code, 'conflict', JSON.stringify(afterRestart.body));
    // Through the server, too.
    const viaServer = await A('POST', '/v1/wallets', { create: good });
    assert.equal(viaServer.status, 409, JSON.stringify(viaServer.body));
  });

  test('POST /v1/wallets: the admin token alone (the server holds the owner key), or the owner\'s order; the package checks out', async () => {
    const w = await A('POST', '/v1/wallets', { scheme: 'ed25519' });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    assert.equal(w.body.network, 'mainnet-beta', 'Solana wallets default to mainnet');
    const pub = (await call(c.info.url, undefined, 'GET', `/v1/public/wallets/${w.body.id}`)).body;
    const v = verifyWalletPackage(pub, { nodeKeys, ownerKey });
    assert.deepEqual(
      { id: v.id, threshold: v.threshold, signers: v.signers, publicKey: v.publicKey, address: v.address, network: v.network, holders: v.holders },
      { id: w.body.id, threshold: 2, signers: 3, publicKey: w.body.publicKey, address: w.body.address, network: 'mainnet-beta', holders: holders() },
    );
    // The owner's own order (what the CLI sends): the wallet is exactly that.
    const doc = order({ scheme: 'secp256k1-schnorr', threshold: 3, network: 'regtest' });
    const o = await A('POST', '/v1/wallets', { create: ownerSign(c, doc), label: 'ordered' });
    assert.equal(o.status, 201, JSON.stringify(o.body));
    assert.equal(o.body.id, doc.walletId);
    assert.match(o.body.address, /^bcrt1p/);
    const vo = await getVerifiedWallet((m, p) => call(c.info.url, undefined, m, p).then((r) => r.body), doc.walletId, { nodeKeys, ownerKey });
    assert.equal(vo.threshold, 3);
    assert.equal(vo.address, o.body.address);
    assert.equal((await A('POST', '/v1/wallets', { create: ownerSign(c, doc), scheme: 'ed25519' })).body.error.code, 'validation_failed', 'fields next to the order');
    // Every holder logged the order it acted on, once, in its own verifiable audit chain.
    for (let i = 0; i < 3; i++) {
      const text = await (await fetchAny(c.info.signers[i].url + '/v1/audit', { headers: { authorization: `Bearer ${token}` } })).text();
      const log = verifyLog(text, { trustedKeys: [nodeKeys[i].signPub] });
      assert.ok(log.ok, JSON.stringify(log.firstBroken));
      const accepted = log.entries.filter((e) => e.outcome === 'wallet_create_accepted' && (e.data as { walletId?: string }).walletId === doc.walletId);
      assert.equal(accepted.length, 1, `signer ${i + 1} logged the order once`);
      assert.deepEqual(accepted[0].data, { kind: 'wallet_create', digest: controlDocDigest(doc), walletId: doc.walletId, scheme: 'secp256k1-schnorr', threshold: 3, holders: doc.holders, network: 'regtest' });
    }
    // Refresh: the new epoch's package is signed again, with the same order.
    const r = await A('POST', `/v1/wallets/${w.body.id}/refresh`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const v1 = verifyWalletPackage((await A('GET', `/v1/public/wallets/${w.body.id}`)).body, { nodeKeys, ownerKey });
    assert.equal(v1.epoch, 1);
    assert.equal(v1.publicKey, w.body.publicKey);
    // A child wallet's key is derived from its root's package.
    const child = (await A('GET', `/v1/public/wallets/${w.body.id}.5`)).body;
    assert.equal(verifyWalletPackage(child, { nodeKeys, ownerKey }).publicKey, child.publicKey);
  });

  test('a tampered package, or a server claim that differs from it, is refused by the SDK verifier', async () => {
    const w = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const pub = (await A('GET', `/v1/public/wallets/${w.id}`)).body;
    verifyWalletPackage(pub, { nodeKeys, ownerKey });
    const tamper = (f: (p: any) => void) => {
      const t = structuredClone(pub);
      f(t);
      return t;
    };
    // What the holders signed, altered: threshold, holders, key.
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.package.public.threshold = 3)), { nodeKeys })), 'bad_signature');
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.package.public.participants = p.package.public.participants.slice(0, 2))), { nodeKeys })), 'bad_signature');
    const other = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.package.public.group.publicKey = other.publicKey)), { nodeKeys })), 'bad_signature');
    // A holder's signature missing, or made by a key that is not the one pinned for it.
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => p.package.signatures.pop()), { nodeKeys })), 'bad_signature');
    const impostor = { nodeId: holders()[0], signSecret: ed25519.utils.randomSecretKey(), encSecret: new Uint8Array(32) };
    const oneOfOne = tamper((p) => {
      p.package.public.threshold = 1;
      p.package.public.participants = [{ index: 1, nodeId: holders()[0] }];
      p.package.signatures = [signEnvelope({ v: 1, session: 'ses_forged', kind: 'result', round: 0, from: holders()[0], body: { walletId: w.id, epoch: 0, publicHash: publicHash(p.package.public) } }, impostor)];
    });
    assert.equal(codeOf(() => verifyWalletPackage(oneOfOne, { nodeKeys })), 'bad_signature');
    // The server's own fields must be what the holders signed (a 2-of-3 claim over another package).
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.threshold = 3)), { nodeKeys })), 'validation_failed');
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.address = other.address)), { nodeKeys })), 'validation_failed');
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.package = null)), { nodeKeys })), 'bad_signature');
    // The owner's order: another key's, or none.
    const forged = signControlDoc(pub.package.create.doc, ed25519.utils.randomSecretKey());
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => (p.package.create = forged)), { nodeKeys, ownerKey })), 'bad_signature');
    assert.equal(codeOf(() => verifyWalletPackage(tamper((p) => delete p.package.create), { nodeKeys, ownerKey })), 'bad_signature');
  });

  test('the CLI shows no address when a server reports a 1-of-1 wallet as 2-of-3 (a fake server in front of the real one)', async () => {
    // The fake server asks the real one for a 1-of-1 key and tells the CLI it is 2-of-3.
    let mode: 'honest' | 'claims' | 'package' = 'honest';
    const fake: Server = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (mode !== 'honest' && req.method === 'POST' && req.url === '/v1/wallets') body = JSON.stringify({ ...JSON.parse(body), threshold: 1, signers: 1 });
      const r = await fetch(c.info.url + req.url, { method: req.method, headers: { authorization: req.headers.authorization ?? '', 'content-type': 'application/json' }, body: req.method === 'GET' ? undefined : body });
      let out: any = await r.json();
      if (mode !== 'honest' && r.ok && !Array.isArray(out) && out.id) {
        out = { ...out, threshold: 2, signers: 3 };
        if (mode === 'package' && out.package) {
          out.package.public.threshold = 2;
          out.package.public.participants = participants();
        }
      }
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
    const cwd = mkdtempSync(join(tmpdir(), 'fk-wallet-create-cli-'));
    const { FLEETKEY_OWNER_KEY_FILE: _, ...env } = process.env;
    const cli = (...args: string[]): Promise<{ code: number | null; out: string; err: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...env, FLEETKEY_URL: url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_NODE_KEYS: join(c.dataDir, 'server', 'peers.json') } });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => resolve({ code, out, err }));
      });
    try {
      const honest = await cli('wallet', 'create', '--scheme', 'ed25519', '--json');
      assert.equal(honest.code, 0, honest.err + honest.out);
      assert.equal(JSON.parse(honest.out).threshold, 2);
      mode = 'claims';
      const lie = await cli('wallet', 'create', '--scheme', 'ed25519');
      assert.notEqual(lie.code, 0);
      assert.doesNotMatch(lie.out, /address/);
      assert.match(lie.out + lie.err, /validation_failed|holders signed/);
      mode = 'package';
      const lie2 = await cli('wallet', 'create', '--scheme', 'ed25519', '--json');
      assert.notEqual(lie2.code, 0);
      assert.equal(JSON.parse(lie2.out).error.code, 'bad_signature');
      // No pinned node keys: no address either.
      const unpinned = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [BIN, 'wallet', 'create', '--scheme', 'ed25519', '--json'], { cwd, env: { ...env, FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token } });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('close', (code) => resolve({ code, out }));
      });
      assert.notEqual(unpinned.code, 0);
      assert.equal(JSON.parse(unpinned.out).error.code, 'bad_request');
    } finally {
      await new Promise((r) => fake.close(r));
    }
  });

  test('a request naming another network than the wallet\'s is refused by every signer (Solana and Bitcoin)', async () => {
    const sol = (await A('POST', '/v1/wallets', { scheme: 'ed25519' })).body;
    const btc = (await A('POST', '/v1/wallets', { scheme: 'secp256k1-schnorr', network: 'regtest' })).body;
    assert.equal(btc.network, 'regtest');
    const agent = newAgent();
    const g = await grant(c, agent, [sol.id, btc.id]);
    // A devnet-only policy: before, a mainnet transaction labelled devnet passed it.
    assert.equal((await publish(c, { kind: 'policy', walletId: sol.id, version: 1, policy: { version: 1, rules: [{ type: 'allow', chainIds: ['devnet'] }] } as never, issuedAt: Date.now() })).status, 200);
    const labelled = (opts: Record<string, string>) => request(agent, g, sol.id, { kind: 'solana_transaction', data: solTransfer(sol.address, 1000n, SOL_DEST), opts });
    const direct = (signed: unknown, walletId: string, extra: Record<string, unknown> = {}) =>
      all((i) => S(i, 'POST', '/v1/sign', { requestId: (signed as any).request.requestId, walletId, epoch: 0, message: '00', nonceId: 'non_x', commitments: {}, auth: { agent: signed }, ...extra }));
    for (const opts of [{ network: 'devnet' }, { chainId: 'devnet' }] as Record<string, string>[]) {
      const signed = labelled(opts);
      refusedByAll(await direct(signed, sol.id), 'wrong_network', `solana ${JSON.stringify(opts)}`);
      const viaServer = await call(c.info.url, undefined, 'POST', '/v1/requests', signed);
      assert.equal(viaServer.body?.error?.code, 'wrong_network', JSON.stringify(viaServer.body));
    }
    // The server's own word for the network does not count either.
    refusedByAll(await direct(labelled({}), sol.id, { network: 'devnet' }), 'wrong_network', 'server names devnet');
    // Unlabelled, the transaction is judged on the wallet's network (mainnet-beta): the devnet rule does not allow it.
    const plain = await call(c.info.url, undefined, 'POST', '/v1/requests', labelled({}));
    assert.equal(plain.body?.error?.code, 'policy_denied', JSON.stringify(plain.body));
    // Bitcoin: a regtest wallet asked to sign a PSBT as mainnet (or testnet).
    for (const opts of [{ network: 'mainnet' }, { chainId: 'testnet' }]) {
      const signed = request(agent, g, btc.id, { kind: 'bitcoin_psbt', data: 'cHNidP8BAAoCAAAAAAAAAAAAAAA=', opts });
      refusedByAll(await direct(signed, btc.id), 'wrong_network', `bitcoin ${JSON.stringify(opts)}`);
    }
    // A network that is not a wallet network of the scheme is refused at creation.
    assert.equal((await A('POST', '/v1/wallets', { scheme: 'ed25519', network: 'regtest' })).body.error.code, 'validation_failed');
    assert.equal((await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', network: 'mainnet' })).body.error.code, 'validation_failed');
  });
});
