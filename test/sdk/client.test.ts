/**
 * The SDK against a real local cluster (signer and server processes over HTTP): what the client
 * sends is what the routes accept, what it returns is typed as promised, and every failure is one
 * FleetkeyApiError. Signatures are checked by independent verifiers (noble, viem's recovery).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  getAddress,
  hashTypedData,
  hexToBytes,
  keccak256,
  parseTransaction,
  recoverAddress,
  recoverTransactionAddress,
  serializeTransaction,
  verifyMessage,
  verifyTypedData,
  type Hex,
  type TransactionSerializable,
} from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, FleetkeyError, createClient, toViemAccount, type FleetkeyClient, type Wallet } from 'fleetkey/sdk';
import { toJson } from '../../src/sdk/to-json.ts';
import { startCluster } from '../helpers/cluster.ts';

/** A real HTTP server that answers every request the way a misconfigured proxy might. */
async function listen(answer: (res: import('node:http').ServerResponse) => void): Promise<Server> {
  const server = createServer((_req, res) => answer(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

async function rejects(p: Promise<unknown>, expected: { code: string; status: number }): Promise<FleetkeyApiError> {
  const e = await p.then(
    () => assert.fail('expected a FleetkeyApiError'),
    (e: unknown) => e,
  );
  assert.ok(e instanceof FleetkeyApiError, String(e));
  assert.ok(e instanceof FleetkeyError, 'one error base');
  assert.equal(e.code, expected.code, e.message);
  assert.equal(e.status, expected.status);
  return e;
}

const mail = {
  domain: { name: 'Ether Mail', version: '1', chainId: 1n, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    Person: [
      { name: 'name', type: 'string' },
      { name: 'wallet', type: 'address' },
    ],
    Mail: [
      { name: 'from', type: 'Person' },
      { name: 'to', type: 'Person' },
      { name: 'contents', type: 'string' },
      { name: 'amount', type: 'uint256' },
    ],
  },
  primaryType: 'Mail',
  message: {
    from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
    to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
    contents: 'Hello, Bob!',
    amount: 2n ** 200n + 7n,
  },
} as const;

describe('sdk: createClient against a real cluster', () => {
  let c: LocalCluster;
  let client: FleetkeyClient;
  let frost: Wallet;
  let ecdsa: Wallet;
  before(async () => {
    c = await startCluster(3);
    client = createClient({ url: c.info.url + '/', token: c.info.token });
    frost = await client.createWallet({ scheme: 'ed25519', label: 'sdk' });
    ecdsa = await client.createWallet({ scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 });
  });
  after(async () => c?.stop());

  test('createWallet, getWallet and listWallets give the server’s wallets', async () => {
    assert.match(frost.id, /^wal_/);
    assert.equal(frost.scheme, 'ed25519');
    assert.equal(frost.label, 'sdk');
    assert.deepEqual(await client.getWallet({ walletId: frost.id }), frost);
    const first = await client.listWallets({ limit: 1 });
    assert.equal(first.wallets.length, 1);
    assert.equal(typeof first.next, 'string');
    const rest = await client.listWallets({ after: first.next! });
    assert.deepEqual([...first.wallets, ...rest.wallets].map((w) => w.id).sort(), [frost.id, ecdsa.id].sort());
    assert.equal(rest.next, null);
  });

  test('sign: bytes or hex, an Ed25519 signature the plain verifier accepts', async () => {
    const msg = new TextEncoder().encode('hello fleet');
    const fromBytes = await client.sign({ walletId: frost.id, message: msg });
    const fromHex = await client.sign({ walletId: frost.id, message: '0x68656c6c6f20666c656574' });
    for (const { signature } of [fromBytes, fromHex]) {
      assert.match(signature, /^0x[0-9a-f]{128}$/);
      assert.ok(ed25519.verify(hexToBytes(signature), msg, hexToBytes(`0x${frost.publicKey}`)));
    }
  });

  test('an API error is a FleetkeyApiError with the server’s code, message, status and request id', async () => {
    const missing = await rejects(client.getWallet({ walletId: 'wal_000000000000000000000000' }), { code: 'not_found', status: 404 });
    assert.match(missing.requestId!, /^req_/);
    assert.match(missing.message, /wal_000000000000000000000000|not found/i);
    const invalid = await rejects(client.createWallet({ scheme: 'ed25519', threshold: 4, signers: 3 }), { code: 'validation_failed', status: 400 });
    assert.match(invalid.message, /threshold/);
    assert.equal(invalid.data?.field, 'threshold', 'the server’s details, as data');
    assert.equal(invalid.details, undefined, 'viem reads details as a string: never an object here');
    await rejects(client.signHash({ walletId: ecdsa.id, hash: '0x1234' }), { code: 'validation_failed', status: 400 });
    await rejects(client.signMessage({ walletId: frost.id, message: 'hi' }), { code: 'unsupported', status: 400 });
    await rejects(client.signTransaction({ walletId: ecdsa.id, transaction: '0x02c0' }), { code: 'decode_failed', status: 400 });
    await rejects(createClient({ url: c.info.url, token: 'wrong' }).listWallets(), { code: 'unauthorized', status: 401 });
  });

  test('no answer, or not the API’s answer, is a FleetkeyApiError too', async () => {
    const closed = await listen(() => {});
    const url = urlOf(closed);
    await new Promise((r) => closed.close(r));
    const down = await rejects(createClient({ url, token: 't' }).listWallets(), { code: 'unreachable', status: 0 });
    assert.ok(down.cause, 'keeps the network error as its cause');
    const proxy = await listen((res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>'));
    try {
      const e = await rejects(createClient({ url: urlOf(proxy), token: 't' }).getWallet({ walletId: 'wal_x' }), { code: 'internal', status: 502 });
      assert.match(e.message, /HTTP 502 from GET \/v1\/wallets\/wal_x.*Bad Gateway/);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  test('a given fetch is the one used, with the bearer token', async () => {
    const seen: string[] = [];
    const fetch: typeof globalThis.fetch = (input, init) => {
      seen.push(`${init?.method} ${String(input)} ${new Headers(init?.headers).get('authorization')}`);
      return globalThis.fetch(input, init);
    };
    await createClient({ url: c.info.url, token: c.info.token, fetch }).getWallet({ walletId: frost.id });
    assert.deepEqual(seen, [`GET ${c.info.url}/v1/wallets/${frost.id} Bearer ${c.info.token}`]);
  });

  test('toJson: bigints as decimal strings, bytes as hex, undefined members dropped', () => {
    assert.deepEqual(toJson({ a: 2n ** 70n, b: [1n, undefined, Uint8Array.of(1, 255)], c: undefined, d: { e: 'x', f: 1, g: null, h: true } }), {
      a: '1180591620717411303424',
      b: ['1', null, '0x01ff'],
      d: { e: 'x', f: 1, g: null, h: true },
    });
  });

  test('ecdsa: signHash, signMessage and signTypedData (bigints included) recover to the wallet address', async () => {
    const address = getAddress(ecdsa.address);
    const hash = keccak256(new TextEncoder().encode('a digest'));
    const { signature } = await client.signHash({ walletId: ecdsa.id, hash: hexToBytes(hash) });
    assert.match(signature, /^0x[0-9a-f]{128}(1b|1c)$/);
    assert.equal(await recoverAddress({ hash, signature }), address);
    for (const message of ['hello fleet', '0xdeadbeef', { raw: '0xdeadbeef' as Hex }, { raw: Uint8Array.of(0xde, 0xad) }]) {
      const { signature } = await client.signMessage({ walletId: ecdsa.id, message });
      assert.ok(await verifyMessage({ address, message, signature }), JSON.stringify(message, (_k, v) => (v instanceof Uint8Array ? [...v] : v)));
    }
    const typed = await client.signTypedData({ walletId: ecdsa.id, typedData: mail });
    assert.equal(await recoverAddress({ hash: hashTypedData(mail), signature: typed.signature }), address);
    assert.ok(await verifyTypedData({ address, ...mail, signature: typed.signature }));
  });

  test('ecdsa: signTransaction of a request (bigints) or of a serialization is signed by the wallet', async () => {
    const address = getAddress(ecdsa.address);
    const tx: TransactionSerializable = {
      type: 'eip1559',
      chainId: 31337,
      nonce: 7,
      to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
      value: 10n ** 18n + 1n,
      gas: 21000n,
      maxFeePerGas: 2n * 10n ** 9n,
      maxPriorityFeePerGas: 10n ** 9n,
    };
    const fromRequest = await client.signTransaction({ walletId: ecdsa.id, transaction: tx });
    const fromSerialized = await client.signTransaction({ walletId: ecdsa.id, transaction: serializeTransaction(tx) });
    for (const r of [fromRequest, fromSerialized]) {
      assert.equal(await recoverTransactionAddress({ serializedTransaction: r.serializedTransaction as never }), address);
      assert.equal(r.hash, keccak256(r.serializedTransaction));
      const back = parseTransaction(r.serializedTransaction);
      assert.equal(back.value, tx.value);
      assert.equal(back.nonce, 7);
    }
  });

  test('toViemAccount: a viem LocalAccount with the wallet’s address and key, honouring a custom serializer', async () => {
    const account = await toViemAccount(client, ecdsa.id);
    assert.equal(account.type, 'local');
    assert.equal(account.source, 'fleetkey');
    assert.equal(account.address, getAddress(ecdsa.address));
    assert.equal(publicKeyToAddress(account.publicKey), account.address);
    const hash = keccak256('0x01');
    assert.equal(await recoverAddress({ hash, signature: await account.sign!({ hash }) }), account.address);
    assert.ok(await verifyMessage({ address: account.address, message: 'gm', signature: await account.signMessage({ message: 'gm' }) }));
    assert.ok(await verifyTypedData({ address: account.address, ...mail, signature: await account.signTypedData(mail) }));

    // A chain's serializer is called as privateKeyToAccount calls it: unsigned, then with the signature.
    const calls: { signature?: unknown; out: Hex }[] = [];
    const serializer = (t: TransactionSerializable, signature?: Parameters<typeof serializeTransaction>[1]) => {
      const out = serializeTransaction(t, signature);
      calls.push({ signature, out });
      return out;
    };
    const tx: TransactionSerializable = { type: 'eip1559', chainId: 1, nonce: 0, to: account.address, value: 1n, gas: 21000n, maxFeePerGas: 3n, maxPriorityFeePerGas: 1n };
    const signed = await account.signTransaction(tx, { serializer });
    assert.equal(calls.length, 2);
    assert.equal(calls[0].signature, undefined);
    assert.ok(calls[1].signature);
    assert.equal(signed, calls[1].out, 'the answer is the serializer’s signed serialization');
    assert.equal(await recoverTransactionAddress({ serializedTransaction: signed as never }), account.address);
  });

  test('toViemAccount refuses a wallet that is not ecdsa-secp256k1', async () => {
    await assert.rejects(toViemAccount(client, frost.id), (e: unknown) => e instanceof FleetkeyError && e.code === 'unsupported');
    await rejects(toViemAccount(client, 'wal_000000000000000000000000'), { code: 'not_found', status: 404 });
  });
});
