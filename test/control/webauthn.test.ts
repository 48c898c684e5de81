import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64urlnopad } from '@scure/base';
import { controlDocDigest, DOMAINS, publicKeyOf, verifyApprovals, verifyControlDoc, type Approval, type ApproversDoc, type ControlDoc } from '../../src/control/index.ts';
import { p256PublicKeyFromSpki, verifyWebAuthn, webauthnChallenge } from '../../src/control/keys.ts';
import { loadOwnerKeys } from '../../src/control/owner.ts';
import { approversDocSchema, parseOrThrow } from '../../src/control/schemas.ts';
import { codeOf } from '../helpers/errors.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';

const NOW = 1_800_000_000_000;
const alice = new SoftAuthenticator();
const registry: ApproversDoc = parseOrThrow(approversDocSchema, { kind: 'approvers', version: 1, approvers: { alice: alice.key }, issuedAt: NOW }, 'doc');
const approval = (requestDigest = 'ab'.repeat(32)): Approval => ({ kind: 'approval', requestDigest, decision: 'approve', approver: 'alice', issuedAt: NOW });
const tally = (a: Approval, sig: unknown) => verifyApprovals(a.requestDigest, [{ approval: a, sig }], registry, { required: 1, approvers: ['alice'] });

describe('WebAuthn approver', () => {
  test('a passkey approval counts, with low or high s', () => {
    const a = approval();
    assert.deepEqual(tally(a, alice.sign(DOMAINS.approval, a)).approved, ['alice']);
    assert.deepEqual(tally(a, alice.sign(DOMAINS.approval, a, { highS: true })).approved, ['alice']);
  });

  test('the challenge is the raw 32-byte digest, base64url', () => {
    const a = approval();
    const client = JSON.parse(new TextDecoder().decode(base64urlnopad.decode(alice.sign(DOMAINS.approval, a).clientDataJSON)));
    assert.equal(client.challenge.length, 43);
    assert.equal(client.challenge, webauthnChallenge(DOMAINS.approval, a));
  });

  const refusals: [string, (a: Approval) => unknown][] = [
    ['wrong origin', (a) => alice.sign(DOMAINS.approval, a, { origin: 'http://127.0.0.1:8081' })],
    ['wrong rpId hash', (a) => alice.sign(DOMAINS.approval, a, { rpId: 'evil.example' })],
    ['UP flag missing', (a) => alice.sign(DOMAINS.approval, a, { flags: 0x04 })],
    ['UV flag missing', (a) => alice.sign(DOMAINS.approval, a, { flags: 0x01 })],
    ['type webauthn.create', (a) => alice.sign(DOMAINS.approval, a, { type: 'webauthn.create' })],
    ['an assertion replayed from another request', () => alice.sign(DOMAINS.approval, approval('cd'.repeat(32)))],
    ['a signature over another digest', (a) => ({ ...alice.sign(DOMAINS.approval, a), signature: alice.sign(DOMAINS.approval, approval('cd'.repeat(32))).signature })],
    ['the same digest under another domain', (a) => alice.sign(DOMAINS.control, a)],
    ['another authenticator', (a) => new SoftAuthenticator().sign(DOMAINS.approval, a)],
    ['a hex signature for a passkey', () => '00'.repeat(64)],
    ['garbage fields', () => ({ authenticatorData: '!!', clientDataJSON: 'e30', signature: 'AA' })],
  ];
  for (const [name, make] of refusals) {
    test(`refused: ${name}`, () => {
      const a = approval();
      const t = tally(a, make(a));
      assert.deepEqual(t.approved, []);
      assert.equal(t.ignored[0].reason, name === 'garbage fields' ? 'malformed' : 'bad_signature');
    });
  }
});

describe('WebAuthn owner key', () => {
  const owner = new SoftAuthenticator('https://keys.example.com', 'keys.example.com');
  const doc: ControlDoc = { kind: 'revocation', grantId: 'grant-1', issuedAt: NOW };

  test('a passkey-signed document verifies against the pinned passkey, and only it', () => {
    const signed = { doc, sig: owner.sign(DOMAINS.control, doc), signer: owner.key };
    assert.equal(verifyControlDoc(signed, [publicKeyOf(new Uint8Array(32).fill(1), 'ed25519'), owner.key]).kind, 'revocation');
    assert.equal(codeOf(() => verifyControlDoc(signed, [new SoftAuthenticator('https://keys.example.com', 'keys.example.com').key])), 'bad_signature');
    // Same public key, another origin pinned: not the pinned key.
    assert.equal(codeOf(() => verifyControlDoc({ ...signed, signer: { ...owner.key, origin: 'https://other.example.com' } }, [owner.key])), 'bad_signature');
    const other: ControlDoc = { kind: 'revocation', grantId: 'grant-2', issuedAt: NOW };
    assert.equal(codeOf(() => verifyControlDoc({ ...signed, doc: other }, [owner.key])), 'bad_signature');
    assert.equal(codeOf(() => verifyControlDoc({ doc, sig: owner.sign(DOMAINS.control, doc, { flags: 0x01 }), signer: owner.key }, [owner.key])), 'bad_signature');
    assert.notEqual(controlDocDigest(doc), controlDocDigest(other));
  });

  test('owner keys: hex and passkey entries side by side, from env or file', () => {
    const hex = publicKeyOf(new Uint8Array(32).fill(1), 'ed25519');
    const text = `${hex.toUpperCase()},\n${JSON.stringify(owner.key)}\n`;
    assert.deepEqual(loadOwnerKeys(text, '/nonexistent'), [hex, owner.key]);
    const dir = mkdtempSync(join(tmpdir(), 'fk-owner-'));
    writeFileSync(join(dir, 'owner.pub'), text);
    assert.deepEqual(loadOwnerKeys(undefined, join(dir, 'owner.pub')), [hex, owner.key]);
    assert.equal(codeOf(() => loadOwnerKeys('{"keyType":"webauthn-p256"', '/x')), 'bad_request');
    assert.equal(codeOf(() => loadOwnerKeys(JSON.stringify({ ...owner.key, origin: 'ftp://x' }), '/x')), 'validation_failed');
  });
});

test('SPKI from getPublicKey() becomes the SEC1 key; other keys are refused', async () => {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  assert.equal(p256PublicKeyFromSpki(spki), Buffer.from(raw).toString('hex'));
  const ed = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  assert.equal(codeOf(() => p256PublicKeyFromSpki(new Uint8Array(0))), 'validation_failed');
  const edSpki = new Uint8Array(await crypto.subtle.exportKey('spki', (ed as CryptoKeyPair).publicKey));
  assert.equal(codeOf(() => p256PublicKeyFromSpki(edSpki)), 'validation_failed');
  const offCurve = spki.slice();
  offCurve[offCurve.length - 1] ^= 1;
  assert.equal(codeOf(() => p256PublicKeyFromSpki(offCurve)), 'validation_failed');
  // A WebCrypto signature over authenticatorData ‖ SHA-256(clientDataJSON) is what a browser's authenticator gives: verify one made by WebCrypto itself.
  const key = { keyType: 'webauthn-p256' as const, publicKey: p256PublicKeyFromSpki(spki), credentialId: 'AA', rpId: '127.0.0.1', origin: 'http://127.0.0.1:8080' };
  const value = { x: 1 };
  const client = new TextEncoder().encode(JSON.stringify({ type: 'webauthn.get', challenge: webauthnChallenge(DOMAINS.approval, value), origin: key.origin }));
  const authData = new Uint8Array([...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key.rpId))), 0x05, 0, 0, 0, 0]);
  const msg = new Uint8Array([...authData, ...new Uint8Array(await crypto.subtle.digest('SHA-256', client))]);
  const p1363 = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, msg));
  const { p256 } = await import('@noble/curves/nist.js');
  const der = p256.Signature.fromBytes(p1363, 'compact').toBytes('der');
  const assertion = { authenticatorData: base64urlnopad.encode(authData), clientDataJSON: base64urlnopad.encode(client), signature: base64urlnopad.encode(der) };
  assert.equal(verifyWebAuthn(assertion, DOMAINS.approval, value, key), true);
  assert.equal(verifyWebAuthn(assertion, DOMAINS.approval, { x: 2 }, key), false);
});
