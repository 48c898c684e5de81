import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { base58, base64urlnopad, hex } from '@scure/base';
import { p2pkh, p2sh, p2tr, p2wpkh, NETWORK } from '@scure/btc-signer';
import { Resolver } from 'did-resolver';
import { getAddress } from 'viem';
import { isFleetkeyError } from '../../src/errors.ts';
import {
  caip10Of,
  didKeyDocument,
  didKeyFromPublicKey,
  didPkhDocument,
  didPkhFromAccount,
  getResolver,
  jwkToPublicKey,
  multibaseToPublicKey,
  parseDidKeyUrl,
  parseDidPkh,
  parsePublicKey,
  publicKeyFromDidKey,
  publicKeyToJwk,
} from '../../src/identity/index.ts';

const vectors = JSON.parse(readFileSync(new URL('./vectors/did-key.json', import.meta.url), 'utf8'));

function throwsValidation(fn: () => unknown, re?: RegExp) {
  assert.throws(fn, (e: unknown) => isFleetkeyError(e) && e.code === 'validation_failed' && (!re || re.test(e.message)));
}

test('did:key Ed25519 matches the did:key spec vectors, including the derived X25519 keyAgreement key', () => {
  for (const v of vectors.ed25519) {
    const pub = ed25519.getPublicKey(hex.decode(v.seed));
    assert.equal(base58.encode(pub), v.publicKeyBase58);
    assert.equal(didKeyFromPublicKey('Ed25519', pub), v.did);
    const back = publicKeyFromDidKey(v.did);
    assert.equal(back.type, 'Ed25519');
    assert.equal(base58.encode(back.bytes), v.publicKeyBase58);
    const doc = didKeyDocument(v.did);
    assert.deepEqual(doc.keyAgreement, [`${v.did}#${v.x25519Id}`]);
    const jwkDoc = didKeyDocument(v.did, { format: 'JsonWebKey2020' });
    const x = jwkDoc.verificationMethod!.find((m) => m.id === `${v.did}#${v.x25519Id}`)!;
    assert.equal(x.publicKeyJwk!.crv, 'X25519');
    assert.equal(base58.encode(base64urlnopad.decode(x.publicKeyJwk!.x!)), v.x25519Base58);
  }
});

test('did:key secp256k1 matches the did:key spec vectors (compressed keys)', () => {
  for (const v of vectors.secp256k1) {
    const pub = secp256k1.getPublicKey(hex.decode(v.privateKeyHex), true);
    assert.equal(base58.encode(pub), v.publicKeyBase58);
    assert.equal(didKeyFromPublicKey('secp256k1', pub), v.did);
    // an uncompressed key names the same DID
    assert.equal(didKeyFromPublicKey('secp256k1', secp256k1.getPublicKey(hex.decode(v.privateKeyHex), false)), v.did);
    assert.equal(base58.encode(publicKeyFromDidKey(v.did).bytes), v.publicKeyBase58);
  }
});

test('did:key P-256 matches the did:key spec vectors, JWK both ways', () => {
  for (const v of vectors.p256) {
    const pk = jwkToPublicKey(v.jwk);
    assert.equal(didKeyFromPublicKey(pk), v.did);
    assert.deepEqual(publicKeyToJwk(publicKeyFromDidKey(v.did)), v.jwk);
    assert.equal(didKeyFromPublicKey('P-256', p256.getPublicKey(base64urlnopad.decode(v.d))), v.did);
    const doc = didKeyDocument(v.did, { format: 'JsonWebKey2020' });
    assert.deepEqual(doc.verificationMethod![0]!.publicKeyJwk, v.jwk);
    assert.equal(doc.keyAgreement, undefined);
  }
});

test('did:key documents: Multikey by default, one method referenced by every relationship', () => {
  const did = vectors.ed25519[0].did;
  const doc = didKeyDocument(did);
  const vmId = `${did}#${did.slice(8)}`;
  assert.deepEqual(doc['@context'], ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1']);
  assert.deepEqual(doc.verificationMethod![0], { id: vmId, type: 'Multikey', controller: did, publicKeyMultibase: did.slice(8) });
  for (const rel of ['authentication', 'assertionMethod', 'capabilityInvocation', 'capabilityDelegation'] as const) assert.deepEqual(doc[rel], [vmId]);
  assert.equal(didKeyDocument(did, { enableEncryptionKeyDerivation: false }).keyAgreement, undefined);
  assert.deepEqual(parseDidKeyUrl(vmId).did, did);
  throwsValidation(() => parseDidKeyUrl(`${did}#other`), /fragment/);
});

test('did:key rejects what is not a valid key of a supported curve', () => {
  const good = vectors.secp256k1[0].did as string;
  throwsValidation(() => publicKeyFromDidKey('did:web:example.com'), /not a did:key/);
  throwsValidation(() => publicKeyFromDidKey(good.replace('did:key:z', 'did:key:f')), /base58btc/);
  throwsValidation(() => publicKeyFromDidKey(good + '#frag'), /no path/);
  throwsValidation(() => publicKeyFromDidKey(good.slice(0, -4)));
  // unknown multicodec (x25519-pub is key agreement only)
  throwsValidation(() => publicKeyFromDidKey(`did:key:${vectors.ed25519[0].x25519Id}`), /unsupported multicodec/);
  // uncompressed secp256k1 inside a did:key
  const unc = secp256k1.getPublicKey(hex.decode(vectors.secp256k1[0].privateKeyHex), false);
  throwsValidation(() => multibaseToPublicKey('z' + base58.encode(Uint8Array.of(0xe7, 0x01, ...unc))), /33-byte compressed/);
  // an x coordinate that is not on the curve
  const bad = new Uint8Array(33);
  bad[0] = 0x02;
  bad[32] = 5;
  throwsValidation(() => parsePublicKey('secp256k1', bad), /invalid secp256k1/);
  throwsValidation(() => parsePublicKey('P-256', bad.fill(0xff, 1)), /invalid P-256/);
  // Ed25519 small-order point (the identity) and a non-canonical encoding
  const identity = new Uint8Array(32);
  identity[0] = 1;
  throwsValidation(() => parsePublicKey('Ed25519', identity), /small-order/);
  throwsValidation(() => parsePublicKey('Ed25519', new Uint8Array(31)), /32 bytes/);
  throwsValidation(() => jwkToPublicKey({ ...vectors.p256[0].jwk, d: vectors.p256[0].d }), /private key/);
});

test('did:pkh: eip155, solana and bip122 accounts parse, build and produce did:pkh documents', () => {
  const evm = '0xb9c5714089478a327f09197987f16f9e5d936e8a';
  const did = didPkhFromAccount({ namespace: 'eip155', reference: '1', address: evm });
  assert.equal(did, `did:pkh:eip155:1:${getAddress(evm)}`);
  assert.deepEqual(parseDidPkh(`did:pkh:eip155:137:${evm}`), { namespace: 'eip155', reference: '137', address: evm });
  assert.equal(caip10Of(did), `eip155:1:${getAddress(evm)}`);
  const evmDoc = didPkhDocument(did);
  assert.deepEqual(evmDoc.verificationMethod, [
    { id: `${did}#blockchainAccountId`, type: 'EcdsaSecp256k1RecoveryMethod2020', controller: did, blockchainAccountId: `eip155:1:${getAddress(evm)}` },
  ]);
  assert.deepEqual(evmDoc.assertionMethod, [`${did}#blockchainAccountId`]);

  const solAddr = base58.encode(ed25519.getPublicKey(ed25519.utils.randomSecretKey()));
  const sol = `did:pkh:solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:${solAddr}`;
  const solVm = didPkhDocument(sol).verificationMethod![0]!;
  assert.equal(solVm.type, 'Ed25519VerificationKey2018');
  assert.equal(solVm.publicKeyBase58, solAddr);

  const btcPub = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  const genesis = '000000000019d6689c085ae165831e93';
  for (const address of [
    p2pkh(btcPub).address!,
    p2wpkh(btcPub).address!,
    p2sh(p2wpkh(btcPub)).address!,
    p2tr(btcPub.subarray(1)).address!,
    p2wpkh(btcPub, NETWORK).address!.toUpperCase(),
  ]) {
    assert.equal(parseDidPkh(`did:pkh:bip122:${genesis}:${address}`).address, address);
  }
});

test('did:pkh rejects bad accounts with a reason', () => {
  const evm = getAddress('0xb9c5714089478a327f09197987f16f9e5d936e8a');
  const wrongCase = evm.slice(0, 2) + (evm[2] === evm[2]!.toUpperCase() ? evm[2]!.toLowerCase() : evm[2]!.toUpperCase()) + evm.slice(3);
  throwsValidation(() => parseDidPkh(`did:pkh:eip155:1:${wrongCase}`), /checksum/);
  throwsValidation(() => parseDidPkh('did:pkh:eip155:01:0xb9c5714089478a327f09197987f16f9e5d936e8a'), /chain id/);
  throwsValidation(() => parseDidPkh('did:pkh:eip155:1:0xb9c5'), /40 hex/);
  throwsValidation(() => parseDidPkh('did:pkh:cosmos:cosmoshub-4:cosmos1abc'), /unsupported did:pkh namespace/);
  throwsValidation(() => parseDidPkh('did:pkh:eip155:1'), /CAIP-10/);
  throwsValidation(() => parseDidPkh(`did:pkh:solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:${base58.encode(new Uint8Array(31).fill(7))}`), /32 bytes/);
  const genesis = '000000000019d6689c085ae165831e93';
  const btc = p2pkh(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)).address!;
  throwsValidation(() => parseDidPkh(`did:pkh:bip122:${genesis}:${btc.slice(0, -1)}${btc.endsWith('1') ? '2' : '1'}`), /base58check/);
  throwsValidation(() => parseDidPkh(`did:pkh:bip122:${genesis.toUpperCase()}:${btc}`), /lower-case hex/);
  const v0 = p2wpkh(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)).address!;
  throwsValidation(() => parseDidPkh(`did:pkh:bip122:${genesis}:${v0.slice(0, -1)}${v0.endsWith('q') ? 'p' : 'q'}`), /bech32/);
});

test('getResolver() plugs into did-resolver: did:key and did:pkh resolve, bad DIDs report invalidDid', async () => {
  const resolver = new Resolver(getResolver());
  const did = vectors.ed25519[1].did;
  const res = await resolver.resolve(did);
  assert.equal(res.didResolutionMetadata.error, undefined);
  assert.equal(res.didDocument!.id, did);
  assert.deepEqual(res.didDocument, didKeyDocument(did));
  // a DID URL with a fragment resolves the DID's document
  assert.equal((await resolver.resolve(`${did}#${did.slice(8)}`)).didDocument!.id, did);

  const jwkRes = await new Resolver(getResolver({ format: 'JsonWebKey2020' })).resolve(vectors.p256[0].did);
  assert.deepEqual(jwkRes.didDocument!.verificationMethod![0]!.publicKeyJwk, vectors.p256[0].jwk);

  const pkh = 'did:pkh:eip155:1:0xb9c5714089478a327f09197987f16f9e5d936e8a';
  assert.equal((await resolver.resolve(pkh)).didDocument!.id, pkh);

  const bad = await resolver.resolve('did:key:z6MkBAD');
  assert.equal(bad.didResolutionMetadata.error, 'invalidDid');
  assert.equal(bad.didDocument, null);
  const badPkh = await resolver.resolve('did:pkh:eip155:1:0x1234');
  assert.equal(badPkh.didResolutionMetadata.error, 'invalidDid');
  assert.equal((await resolver.resolve('did:web:example.com')).didResolutionMetadata.error, 'unsupportedDidMethod');
});
