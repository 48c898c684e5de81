/**
 * Reservation receipts (strict counters): a signer counts a receipt only if the holder it names
 * signed exactly this wallet, request id and digest, recently. Pure checks; the cluster tests
 * (test/cluster/policy.test.ts) drive the same code through real signer processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { DOMAINS, signBytes, signingInput } from '../../src/control/keys.ts';
import { checkReceipts, RECEIPT_MAX_AGE_MS, signReceipt, type ReceiptBody } from '../../src/enforce/receipts.ts';
import { FleetkeyError } from '../../src/errors.ts';

const NOW = 1_800_000_000_000;
const keys = Object.fromEntries(['node_a', 'node_b', 'node_c'].map((n) => [n, ed25519.utils.randomSecretKey()]));
const pub = (n: string) => (keys[n] ? bytesToHex(ed25519.getPublicKey(keys[n])) : undefined);
const body = (nodeId: string, over: Partial<ReceiptBody> = {}): ReceiptBody => ({ kind: 'reservation', nodeId, walletId: 'wal_1', requestId: 'req-1', requestDigest: 'ab'.repeat(32), committedAt: NOW - 1000, ...over });
const check = (receipts: unknown[], holders = ['node_b', 'node_c']) =>
  checkReceipts(receipts, { walletId: 'wal_1', requestId: 'req-1', requestDigest: 'ab'.repeat(32), holders, keyOf: pub, now: NOW });

function missing(f: () => void): string[] {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof FleetkeyError && e.code === 'reservation_missing', String(e));
    return (e.details as { missing: string[] }).missing;
  }
  return [];
}

test('a receipt from every other holder passes; order and extra receipts do not matter', () => {
  const b = signReceipt(body('node_b'), keys.node_b);
  const c = signReceipt(body('node_c'), keys.node_c);
  assert.deepEqual(missing(() => check([c, b])), []);
  assert.deepEqual(missing(() => check([signReceipt(body('node_a'), keys.node_a), b, { junk: true }, c])), []);
  assert.deepEqual(missing(() => check([], [])), [], 'a 1-of-1 wallet has no other holders');
});

test('each way a receipt can be wrong leaves its holder missing', () => {
  const c = signReceipt(body('node_c'), keys.node_c);
  const cases: [string, unknown][] = [
    ['another wallet', signReceipt(body('node_b', { walletId: 'wal_2' }), keys.node_b)],
    ['another request id', signReceipt(body('node_b', { requestId: 'req-2' }), keys.node_b)],
    ['another request digest', signReceipt(body('node_b', { requestDigest: 'cd'.repeat(32) }), keys.node_b)],
    ['signed by another node', signReceipt(body('node_b'), keys.node_c)],
    ['body changed after signing', { ...signReceipt(body('node_b'), keys.node_b), receipt: body('node_b', { committedAt: NOW - 2000 }) }],
    ['stale', signReceipt(body('node_b', { committedAt: NOW - RECEIPT_MAX_AGE_MS - 1 }), keys.node_b)],
    ['from the future', signReceipt(body('node_b', { committedAt: NOW + 120_000 }), keys.node_b)],
    ['malformed signature', { ...signReceipt(body('node_b'), keys.node_b), sig: 'zz' }],
    ['extra field', { ...signReceipt(body('node_b'), keys.node_b), extra: 1 }],
  ];
  for (const [what, bad] of cases) assert.deepEqual(missing(() => check([bad, c])), ['node_b'], what);
  // A node that is not a holder of this wallet cannot stand in for one, even with a valid signature.
  assert.deepEqual(missing(() => check([signReceipt(body('node_a'), keys.node_a), c])), ['node_b']);
  // An unknown node (no pinned key) never counts.
  assert.deepEqual(missing(() => check([c], ['node_x', 'node_c'])), ['node_x']);
  assert.deepEqual(missing(() => check([])), ['node_b', 'node_c']);
  // Only the first receipt naming a holder is verified: copies of a forged one cost one verification,
  // and cannot be followed by a good one (whoever sends a forged receipt could as well send none).
  const forged = { ...signReceipt(body('node_b'), keys.node_c) };
  assert.deepEqual(missing(() => check([...Array(60).fill(forged), signReceipt(body('node_b'), keys.node_b), c])), ['node_b']);
});

test('receipts signed with libsodium are the bytes noble signs, and each verifier accepts the other', () => {
  const sigOf = (r: { sig: string }) => r.sig;
  for (let i = 0; i < 20; i++) {
    const b = body('node_b', { requestId: `req-${i}` });
    const r = signReceipt(b, keys.node_b);
    const nobleSig = signBytes(signingInput(DOMAINS.receipt, b), keys.node_b, 'ed25519');
    assert.equal(sigOf(r), nobleSig, 'Ed25519 is deterministic: same key, same bytes, same signature');
    // noble called directly: importing receipts.ts installs libsodium under verifyBytes (src/control/fast-verify.ts).
    assert.ok(ed25519.verify(hexToBytes(r.sig), signingInput(DOMAINS.receipt, b), hexToBytes(pub('node_b')!), { zip215: false }), 'noble accepts the libsodium receipt');
  }
  // A receipt signed by noble (as before this change) still counts.
  const nb = body('node_b');
  const fromNoble = { receipt: nb, sig: signBytes(signingInput(DOMAINS.receipt, nb), keys.node_b, 'ed25519') };
  assert.deepEqual(missing(() => check([fromNoble, signReceipt(body('node_c'), keys.node_c)])), []);
  // Any one flipped bit in the signature makes it count for nothing.
  const good = signReceipt(body('node_b'), keys.node_b);
  for (const bit of [0, 7, 255, 256, 300, 511]) {
    const s = hexToBytes(good.sig);
    s[bit >> 3] ^= 1 << (bit & 7);
    assert.deepEqual(missing(() => check([{ ...good, sig: bytesToHex(s) }, signReceipt(body('node_c'), keys.node_c)])), ['node_b'], `bit ${bit}`);
  }
  // s + L (non-canonical s, same point equation) is refused, as noble's strict verifier refuses it.
  const s = hexToBytes(good.sig);
  let S = 0n;
  for (let i = 31; i >= 0; i--) S = (S << 8n) | BigInt(s[32 + i]);
  S += ed25519.Point.Fn.ORDER;
  for (let i = 0; i < 32; i++) s[32 + i] = Number((S >> BigInt(8 * i)) & 0xffn);
  assert.deepEqual(missing(() => check([{ ...good, sig: bytesToHex(s) }, signReceipt(body('node_c'), keys.node_c)])), ['node_b'], 's + L');
  assert.ok(!ed25519.verify(s, signingInput(DOMAINS.receipt, body('node_b')), hexToBytes(pub('node_b')!), { zip215: false }), 'noble refuses s + L too');
});
