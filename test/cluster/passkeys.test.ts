/**
 * Passkeys (WebAuthn P-256) as approver and owner keys, end to end: real signer processes over
 * mutual TLS, a software authenticator (test/helpers/webauthn.ts) in place of the security key.
 * The server and every signer verify each assertion; a bad one is refused by every signer, not only
 * by the server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { decode } from '../../src/chains/index.ts';
import { LocalCluster } from '../../src/cli/cluster.ts';
import { base64urlnopad } from '@scure/base';
import { controlDocDigest, DOMAINS, webauthnChallenge, type Approval, type ControlDoc, type Payload } from '../../src/control/index.ts';
import { api, call } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer } from '../helpers/agent.ts';
import { SoftAuthenticator, type AssertOptions } from '../helpers/webauthn.ts';

const LAMPORTS = 1_000_000_000n;
const ORIGIN = 'http://127.0.0.1:8080';
const policy = {
  version: 1,
  assets: SOL_ASSETS,
  rules: [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'big', type: 'require_approval', asset: 'SOL', above: '100000000', m: 1, approvers: ['alice'] }],
};
const solPayload = (from: string, lamports: bigint, salt = 0): Payload => ({ kind: 'solana_transaction', data: solTransfer(from, lamports, undefined, salt), opts: { network: 'mainnet-beta' } });

describe('passkeys as approver and owner keys (3 signer processes, 2-of-3)', { timeout: 300_000 }, () => {
  const alice = new SoftAuthenticator(ORIGIN, '127.0.0.1');
  const owner = new SoftAuthenticator(ORIGIN, '127.0.0.1');
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let token: string;
  const signerCall = (i: number, method: string, path: string, body?: unknown) => call(c.info.signers[i].url, token, method, path, body);

  before(async () => {
    c = await LocalCluster.start({ dataDir: mkdtempSync(join(tmpdir(), 'fk-passkeys-')), signers: 3, quiet: true, extraOwnerKeys: [JSON.stringify(owner.key)] });
    A = api(c);
    token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
  });
  after(async () => c?.stop());

  async function walletWithPolicy() {
    const w = await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    const r = await publish(c, { kind: 'policy', walletId: w.body.id, version: 1, policy, issuedAt: Date.now() });
    assert.equal(r.body.delivered.length, 3, JSON.stringify(r.body));
    return w.body as { id: string; address: string; publicKey: string };
  }

  test('a passkey approver approves a request; bad assertions are refused by the server and by every signer', async () => {
    const reg = await publish(c, { kind: 'approvers', version: 1, approvers: { alice: alice.key }, issuedAt: Date.now() });
    assert.equal(reg.body.delivered.length, 3, JSON.stringify(reg.body));
    const w = await walletWithPolicy();
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    const big = request(agent, g, w.id, solPayload(w.address, LAMPORTS / 5n), { ttlMs: 600_000 });
    assert.equal((await A('POST', '/v1/requests', big)).status, 202);
    const digest: string = (await A('GET', `/v1/requests/${big.request.requestId}`)).body.requestDigest;
    const approval = (requestDigest = digest): Approval => ({ kind: 'approval', requestDigest, decision: 'approve', approver: 'alice', issuedAt: 1_800_000_000_000 });
    const a = approval();
    const other = approval('cd'.repeat(32));
    const bad: [string, unknown][] = [
      ...([['wrong origin', { origin: 'http://127.0.0.1:8081' }], ['UP flag missing', { flags: 0x04 }], ['UV flag missing', { flags: 0x01 }]] as [string, AssertOptions][]).map(([n, o]): [string, unknown] => [n, { approval: a, sig: alice.sign(DOMAINS.approval, a, o) }]),
      ['an assertion replayed from another digest', { approval: a, sig: alice.sign(DOMAINS.approval, other) }],
      ['a signature over another digest', { approval: a, sig: { ...alice.sign(DOMAINS.approval, a), signature: alice.sign(DOMAINS.approval, other).signature } }],
    ];
    const p = big.request.payload;
    const message = bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]);
    for (const [name, signed] of bad) {
      const r = await A('POST', `/v1/approvals/${big.request.requestId}`, signed);
      assert.equal(r.status, 403, name);
      assert.equal(r.body.error.details.reason, 'bad_signature', name);
      for (const i of [0, 1, 2]) {
        const d = await signerCall(i, 'POST', '/v1/control', signed);
        assert.equal(d.body.error?.code, 'bad_signature', `${name}: signer ${i + 1} refuses the decision`);
        const s = await signerCall(i, 'POST', '/v1/sign', { requestId: big.request.requestId, walletId: w.id, epoch: 0, message, nonceId: 'x', commitments: {}, auth: { agent: big, approvals: [signed] } });
        assert.equal(s.body.error?.code, 'approval_required', `${name}: signer ${i + 1} does not count it`);
      }
    }
    // The good one, high s as some authenticators emit: signed, and the signature verifies under the wallet key.
    const good = { approval: a, sig: alice.sign(DOMAINS.approval, a, { highS: true }) };
    const ok = await A('POST', `/v1/approvals/${big.request.requestId}`, good);
    assert.equal(ok.body.status, 'signed', JSON.stringify(ok.body));
    assert.deepEqual(ok.body.approvedBy, ['alice']);
    assert.ok(ed25519.verify(hexToBytes(ok.body.signature), hexToBytes(message), hexToBytes(w.publicKey), { zip215: false }));
    // Every signer holds and accepts the passkey's decision (the server delivered it; resent, it is known).
    for (const i of [0, 1, 2]) {
      const d = await signerCall(i, 'POST', '/v1/control', good);
      assert.equal(d.status, 200, `signer ${i + 1}: ${JSON.stringify(d.body)}`);
    }
  });

  test('the console helpers: a browser SPKI becomes the key object; a document gives its challenge', async () => {
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const spki = base64urlnopad.encode(new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey)));
    const raw = bytesToHex(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)));
    const k = await A('POST', '/v1/passkeys/key', { spki, credentialId: 'AAEC', rpId: '127.0.0.1', origin: ORIGIN });
    assert.deepEqual(k.body, { keyType: 'webauthn-p256', publicKey: raw, credentialId: 'AAEC', rpId: '127.0.0.1', origin: ORIGIN });
    const bad = await A('POST', '/v1/passkeys/key', { spki: spki.slice(0, -4), credentialId: 'AAEC', rpId: '127.0.0.1', origin: ORIGIN });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'validation_failed');
    const doc: ControlDoc = { kind: 'revocation', grantId: 'g-1', issuedAt: 1_800_000_000_000 };
    const ch = await A('POST', '/v1/control/challenge', { doc });
    assert.deepEqual(ch.body, { digest: controlDocDigest(doc), challenge: webauthnChallenge(DOMAINS.control, doc) });
  });

  test('the owner passkey revokes a grant; every signer refuses the agent after; a bad owner assertion is refused', async () => {
    const w = await walletWithPolicy();
    const agent = newAgent();
    const g = await grant(c, agent, [w.id]);
    assert.equal((await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1000n)))).status, 200);
    const doc: ControlDoc = { kind: 'revocation', grantId: g, issuedAt: Date.now() };
    const noUv = await A('POST', '/v1/control', { doc, sig: owner.sign(DOMAINS.control, doc, { flags: 0x01 }), signer: owner.key });
    assert.equal(noUv.body.error?.code, 'bad_signature');
    for (const i of [0, 1, 2]) {
      const r = await signerCall(i, 'POST', '/v1/control', { doc, sig: owner.sign(DOMAINS.control, doc, { origin: 'http://evil.example' }), signer: owner.key });
      assert.equal(r.body.error?.code, 'bad_signature', `signer ${i + 1}`);
    }
    const rv = await A('POST', '/v1/control', { doc, sig: owner.sign(DOMAINS.control, doc), signer: owner.key });
    assert.equal(rv.status, 200, JSON.stringify(rv.body));
    assert.equal(rv.body.delivered.length, 3);
    assert.equal((await A('POST', '/v1/requests', request(agent, g, w.id, solPayload(w.address, 1000n, 1)))).body.error.code, 'grant_revoked');
    const p = solPayload(w.address, 1000n, 2);
    for (const i of [0, 1, 2]) {
      const r = await signerCall(i, 'POST', '/v1/sign', { requestId: 'after-passkey-revoke', walletId: w.id, epoch: 0, message: bytesToHex(decode(p.kind, p.data, { from: w.address }).signingPayloads[0]), nonceId: 'x', commitments: {}, auth: { agent: request(agent, g, w.id, p, { requestId: 'after-passkey-revoke' }) } });
      assert.equal(r.body.error.code, 'grant_revoked', `signer ${i + 1}`);
    }
  });
});
