/**
 * The PSBT helper on the agent path, against a real cluster: a taproot key-path spend from a
 * secp256k1-schnorr wallet is signed through fleetkey, finalized with @scure/btc-signer, and each
 * input's schnorr signature verified over its BIP341 sighash under the output key; a payee the
 * policy does not allow is refused with fleetkey's code.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { schnorr } from '@noble/curves/secp256k1.js';
import * as btc from '@scure/btc-signer';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { FleetkeyApiError, createAgent, createClient } from 'fleetkey/sdk';
import { signPsbtWithFleetkey } from '../../src/sdk/psbt.ts';
import { startCluster } from '../helpers/cluster.ts';
import { grant, newAgent, publish } from '../helpers/agent.ts';

const REGTEST = { ...btc.TEST_NETWORK, bech32: 'bcrt' };
const PAYEE = btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(8)), undefined, REGTEST).address!;
const OTHER = btc.p2tr(schnorr.getPublicKey(new Uint8Array(32).fill(9)), undefined, REGTEST).address!;

describe('@scure/btc-signer PSBT helper over the agent path', { timeout: 300_000 }, () => {
  let c: LocalCluster | undefined;
  let walletId: string;
  let own: Uint8Array;
  const agent = newAgent();

  before(async () => {
    c = await startCluster(3);
    const w = await createClient({ url: c.info.url, token: c.info.token }).createWallet({ scheme: 'secp256k1-schnorr', threshold: 2, signers: 3, network: 'regtest' } as never);
    walletId = w.id;
    own = btc.OutScript.encode(btc.Address(REGTEST).decode(w.address));
    const policy = {
      version: 1,
      assets: { BTC: { chainId: 'regtest', asset: 'native', symbol: 'BTC', decimals: 8 } },
      rules: [{ type: 'allow', chainIds: ['regtest'], to: [PAYEE] }, { type: 'tx_cap', asset: 'BTC', max: '1000000' }],
    };
    const r = await publish(c, { kind: 'policy', walletId, version: 1, policy, issuedAt: Date.now() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  after(async () => c?.stop());

  const spend = (to: string) => {
    const tx = new btc.Transaction();
    tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, witnessUtxo: { script: own, amount: 100_000n } });
    tx.addInput({ txid: new Uint8Array(32).fill(2), index: 1, witnessUtxo: { script: own, amount: 50_000n } });
    tx.addOutputAddress(to, 140_000n, REGTEST);
    return tx;
  };

  test('a two-input taproot key-path spend is signed, finalized and verified; a payee outside the policy is refused', async () => {
    const g = await grant(c!, agent, [walletId]);
    const fk = createAgent({ url: c!.info.url, grantId: g, secretKey: agent.secret });
    const signed = await signPsbtWithFleetkey(fk, walletId, spend(PAYEE).toPSBT());
    signed.finalize();
    const final = btc.Transaction.fromRaw(signed.extract(), { allowUnknownOutputs: false });
    const outputKey = own.subarray(2);
    const scripts = [own, own];
    const amounts = [100_000n, 50_000n];
    const unsigned = spend(PAYEE);
    for (let i = 0; i < 2; i++) {
      const witness = final.getInput(i).finalScriptWitness!;
      assert.equal(witness.length, 1, 'a key-path witness is the signature alone');
      assert.equal(witness[0].length, 64, 'SIGHASH_DEFAULT');
      assert.ok(schnorr.verify(witness[0], unsigned.preimageWitnessV1(i, scripts, btc.SigHash.DEFAULT, amounts), outputKey), `input ${i} verifies over its BIP341 sighash`);
    }
    assert.ok(!schnorr.verify(final.getInput(0).finalScriptWitness![0], unsigned.preimageWitnessV1(1, scripts, btc.SigHash.DEFAULT, amounts), outputKey), 'and not over another input');
    assert.equal(final.getOutput(0).amount, 140_000n);

    await assert.rejects(signPsbtWithFleetkey(fk, walletId, spend(OTHER)), (e: unknown) => e instanceof FleetkeyApiError && e.code === 'policy_denied');
  });
});
