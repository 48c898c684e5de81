import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode } from '../../src/chains/index.ts';
import { FleetkeyError } from '../../src/errors.ts';

const failsWith = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof FleetkeyError && e.code === 'decode_failed' && e.status === 400 && re.test(e.message));

describe('plain payloads and the decode boundary', () => {
  it('raw_message signs its bytes as given, and shows their text', () => {
    const d = decode('raw_message', '0x68656c6c6f');
    assert.equal(d.action.chain, 'message');
    assert.equal(d.action.kind, 'message');
    assert.deepEqual(d.action.message, { hex: '0x68656c6c6f', text: 'hello' });
    assert.deepEqual(d.signingPayloads, [new Uint8Array([0x68, 0x65, 0x6c, 0x6c, 0x6f])]);
    assert.deepEqual(decode('raw_message', '00ff01').action.message, { hex: '0x00ff01' });
  });

  it('raw_hash is exactly 32 bytes and decodes to unknown with a note', () => {
    const h = `0x${'ab'.repeat(32)}`;
    const d = decode('raw_hash', h);
    assert.equal(d.action.kind, 'unknown');
    assert.match(d.action.notes![0]!, /admin-only/);
    assert.deepEqual(d.signingPayloads, [new Uint8Array(32).fill(0xab)]);
    failsWith(() => decode('raw_hash', '0xabcd'), /exactly 32 bytes/);
    failsWith(() => decode('raw_hash', `0x${'ab'.repeat(33)}`), /invalid raw_hash/);
  });

  it('rejects unknown kinds, wrong payload types, bad options and bad hex with decode_failed', () => {
    failsWith(() => decode('cosmos_tx' as never, 'x'), /unknown payload kind/);
    failsWith(() => decode('raw_message', 42), /invalid raw_message payload/);
    failsWith(() => decode('raw_message', undefined), /invalid raw_message payload/);
    failsWith(() => decode('raw_message', '0x123'), /not valid hex/);
    failsWith(() => decode('raw_message', '0xab', { chainId: -1 }), /invalid decode options/);
    failsWith(() => decode('raw_message', '0xab', { nope: 1 } as never), /invalid decode options/);
    failsWith(() => decode('bitcoin_psbt', 'cHNidP8=', { network: 'dogecoin' }), /unknown bitcoin network/);
  });
});
