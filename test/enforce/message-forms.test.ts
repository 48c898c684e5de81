/**
 * What an agent may have signed at all (issue #15, items 1 and 2), against the one Authorizer every
 * signer runs (real ControlStore on SQLite): no raw bytes or hashes, a message only in its wallet's
 * message form, only payloads of the wallet's own scheme, and a PSBT only with SIGHASH_DEFAULT / ALL.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import * as btc from '@scure/btc-signer';
import { getAddressDecoder } from '@solana/kit';
import { hashMessage, keccak256, serializeTransaction } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { decode } from '../../src/chains/index.ts';
import { publicKeyOf, signAgentRequest, signControlDoc, type Payload } from '../../src/control/index.ts';
import { Authorizer, type AuthTarget } from '../../src/enforce/authorize.ts';
import { ControlStore } from '../../src/store/control-store.ts';
import { storageBackends } from '../helpers/backends.ts';
import { solTransfer } from '../helpers/agent.ts';
import { codeOfAsync } from '../helpers/errors.ts';

const { backends, fresh } = storageBackends('fk-msgforms');
const OWNER = new Uint8Array(32).fill(1);
const OWNER_PUB = publicKeyOf(OWNER, 'ed25519');
const AGENT = new Uint8Array(32).fill(9);

const evm: AuthTarget = { walletId: 'wal_evm', scheme: 'ecdsa-secp256k1', address: privateKeyToAccount(`0x${'22'.repeat(32)}`).address };
const trKey = schnorr.getPublicKey(new Uint8Array(32).fill(3));
const tr = btc.p2tr(trKey);
const taproot: AuthTarget = { walletId: 'wal_tr', scheme: 'secp256k1-schnorr', address: tr.address!, network: 'mainnet' };
const sol: AuthTarget = { walletId: 'wal_sol', scheme: 'ed25519', address: getAddressDecoder().decode(ed25519.getPublicKey(new Uint8Array(32).fill(4))) };

/** An unsigned EIP-1559 transaction from the ECDSA wallet, and its keccak digest (what its signature covers). */
const unsignedTx = serializeTransaction({ type: 'eip1559', chainId: 1, nonce: 0, to: `0x${'ab'.repeat(20)}`, value: 10n ** 18n, gas: 21000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n });
/** A PSBT spending the taproot wallet's output, with the given sighash type on its input. */
function psbt(sighashType?: number): string {
  const tx = new btc.Transaction();
  tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: tr.script, amount: 100_000n }, tapInternalKey: trKey, ...(sighashType === undefined ? {} : { sighashType }) });
  tx.addOutputAddress(btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(5))).address!, 60_000n);
  tx.addOutputAddress(tr.address!, 39_000n);
  return Buffer.from(tx.toPSBT()).toString('base64');
}
const taprootSighash = decode('bitcoin_psbt', psbt(), { from: tr.address! }).signingPayloads[0];
const solMessage = decode('solana_transaction', solTransfer(sol.address, 1_000n), { from: sol.address }).signingPayloads[0];

let authz: Authorizer;
let n = 0;
const agent = (target: AuthTarget, payload: Payload) => {
  const now = Date.now();
  return { agent: signAgentRequest({ grantId: 'grant-msg', walletId: target.walletId, requestId: `req_msg_${++n}`, payload, issuedAt: now, expiresAt: now + 60_000 }, AGENT, 'ed25519') };
};
const code = codeOfAsync;

describe('what an agent may have signed: message forms, schemes, sighash types', () => {
  before(async () => {
    const control = new ControlStore(await fresh(backends[0][1]), { ownerPublicKeys: [OWNER_PUB] });
    await control.init();
    const now = Date.now();
    for (const w of [evm, taproot, sol]) await control.putControlDoc(signControlDoc({ kind: 'policy', walletId: w.walletId, version: 1, policy: { version: 1, rules: [{ type: 'allow', kinds: ['message'] }] }, issuedAt: now }, OWNER));
    await control.putControlDoc(signControlDoc({ kind: 'grant', id: 'grant-msg', agent: { keyType: 'ed25519', publicKey: publicKeyOf(AGENT, 'ed25519') }, wallets: [evm.walletId, taproot.walletId, sol.walletId], expiresAt: now + 3600_000, issuedAt: now }, OWNER));
    authz = new Authorizer(control, [OWNER_PUB]);
  });

  test('under a policy allowing only messages, raw bytes that are a transaction digest, a taproot sighash or a Solana transaction are refused', async () => {
    const cases: [AuthTarget, Uint8Array][] = [
      [evm, Buffer.from(keccak256(unsignedTx).slice(2), 'hex')],
      [taproot, taprootSighash],
      [sol, solMessage],
    ];
    for (const [target, bytes] of cases) {
      assert.equal(await code(authz.authorize(agent(target, { kind: 'raw_message', data: bytesToHex(bytes) }), target, bytes)), 'raw_signing_forbidden', target.scheme);
      assert.equal(await code(authz.authorize(agent(target, { kind: 'raw_hash', data: bytesToHex(new Uint8Array(32)) }), target)), 'raw_signing_forbidden', target.scheme);
    }
  });

  test('the owner may still have raw bytes signed (the explicit raw kind)', async () => {
    const now = Date.now();
    const owner = { owner: signControlDoc({ kind: 'sign', walletId: sol.walletId, requestId: 'req_owner_raw', payload: { kind: 'raw_message', data: bytesToHex(solMessage) }, issuedAt: now, expiresAt: now + 60_000 }, OWNER) };
    const a = await authz.authorize(owner, sol, solMessage);
    assert.equal(a.by, 'owner');
  });

  test("a message is signed in its wallet's form: EIP-191, a Solana off-chain message, a BIP-322 sighash", async () => {
    const e = await authz.authorize(agent(evm, { kind: 'evm_message', data: { text: 'gm' } }), evm);
    assert.equal(bytesToHex(e.decoded.signingPayloads[0]), hashMessage('gm').slice(2));
    const s = await authz.authorize(agent(sol, { kind: 'solana_message', data: 'gm' }), sol);
    assert.equal(Buffer.from(s.decoded.signingPayloads[0].subarray(0, 16)).toString('latin1'), '\xffsolana offchain');
    const t = await authz.authorize(agent(taproot, { kind: 'bitcoin_message', data: 'gm' }), taproot);
    assert.equal(t.decoded.signingPayloads[0].length, 32);
    assert.notEqual(bytesToHex(t.decoded.signingPayloads[0]), bytesToHex(new TextEncoder().encode('gm')));
  });

  test("only payloads of the wallet's own scheme are signed: a PSBT's segwit v0 (ECDSA) inputs are left out, none at all is scheme_mismatch", async () => {
    const wpkh = btc.p2wpkh(secp256k1.getPublicKey(new Uint8Array(32).fill(6), true));
    const mixed = (withTaproot: boolean) => {
      const tx = new btc.Transaction();
      if (withTaproot) tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: tr.script, amount: 100_000n }, tapInternalKey: trKey });
      tx.addInput({ txid: new Uint8Array(32).fill(2), index: 0, witnessUtxo: { script: wpkh.script, amount: 50_000n } });
      tx.addOutputAddress(tr.address!, 40_000n);
      return Buffer.from(tx.toPSBT()).toString('base64');
    };
    const now = Date.now();
    const owner = (data: string, requestId: string) => ({ owner: signControlDoc({ kind: 'sign', walletId: taproot.walletId, requestId, payload: { kind: 'bitcoin_psbt', data }, issuedAt: now, expiresAt: now + 60_000 }, OWNER) });
    const both = decode('bitcoin_psbt', mixed(true), { from: tr.address! });
    assert.deepEqual(both.signing!.map((t) => t.scheme), ['schnorr-bip340', 'ecdsa-secp256k1']);
    const a = await authz.authorize(owner(mixed(true), 'req_owner_mixed'), taproot);
    assert.deepEqual(a.decoded.signing!.map((t) => t.input), [0], 'only the taproot input is signed');
    // Asked to sign the ECDSA input's digest with the BIP340 key: refused.
    assert.equal(await code(authz.authorize(owner(mixed(true), 'req_owner_mixed2'), taproot, both.signingPayloads[1])), 'forbidden');
    assert.equal(await code(authz.authorize(owner(mixed(false), 'req_owner_wpkh'), taproot)), 'scheme_mismatch');
    assert.equal(await code(authz.authorize(agent(taproot, { kind: 'bitcoin_psbt', data: mixed(false) }), taproot)), 'scheme_mismatch');
  });

  test('a PSBT input with any sighash type but DEFAULT / ALL is refused to agents (unsupported_sighash), per input', async () => {
    for (const t of [btc.SigHash.NONE, btc.SigHash.SINGLE, btc.SigHash.ALL_ANYONECANPAY, btc.SigHash.NONE_ANYONECANPAY, btc.SigHash.SINGLE_ANYONECANPAY]) {
      const d = decode('bitcoin_psbt', psbt(t), { from: tr.address! });
      assert.equal(d.action.kind, 'unknown', `0x${t.toString(16)}`);
      assert.equal(await code(authz.authorize(agent(taproot, { kind: 'bitcoin_psbt', data: psbt(t) }), taproot, d.signingPayloads[0])), 'unsupported_sighash', `0x${t.toString(16)}`);
    }
    // DEFAULT and ALL pass this check (and meet the policy, which allows only messages).
    for (const t of [undefined, btc.SigHash.ALL]) assert.equal(await code(authz.authorize(agent(taproot, { kind: 'bitcoin_psbt', data: psbt(t) }), taproot)), 'policy_denied');
  });
});
