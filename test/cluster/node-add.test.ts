/**
 * Issue 11, `fleetkey node add` end to end on real processes (mutual TLS, one manifest): a running
 * 2-of-3 cluster; a new signer is prepared (`fleetkey signer init`, its join record), `node add`
 * writes the new manifest, it is copied over the one every process reads and each process restarted
 * one at a time (test/helpers/cluster.ts joinSigner). The cluster signs while each signer is down and
 * after each restart; before the server's restart it does not know the new node (`unknown_node`: the
 * manifest is the only membership list). Then `fleetkey wallet reshare … --to` (owner-signed orders)
 * moves an ed25519 wallet to 3-of-4 and a secp256k1-schnorr and an ecdsa-secp256k1 wallet onto the
 * new node, and with an original holder stopped each signs through it, same keys and addresses, each
 * signature checked with noble (ecdsa: its address recovered by viem).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { recoverAddress, type Hex } from 'viem';
import { api, joinSigner, startCluster, verifySig } from '../helpers/cluster.ts';
import { fleetkey } from '../helpers/cli.ts';

type W = { id: string; scheme: string; publicKey: string; address: string; epoch: number };

/**
 * Signs a fresh message (ecdsa: a hash) with `w`; noble verifies it under the wallet's key, and for
 * ecdsa viem recovers the wallet's address. Returns the nodes that signed.
 */
async function signs(A: ReturnType<typeof api>, w: W): Promise<string[]> {
  const msg = randomBytes(32);
  const ecdsa = w.scheme === 'ecdsa-secp256k1';
  const r = await A('POST', `/v1/wallets/${w.id}/sign`, ecdsa ? { hash: bytesToHex(msg) } : { message: bytesToHex(msg) });
  assert.equal(r.status, 200, `${w.id}: ${JSON.stringify(r.body)}`);
  const ok = ecdsa ? secp256k1.verify(hexToBytes(r.body.signature).subarray(0, 64), msg, hexToBytes(w.publicKey), { prehash: false }) : verifySig(w.scheme, w.publicKey, msg, r.body.signature);
  assert.ok(ok, `${w.id} (${w.scheme}): verifies under the unchanged key`);
  if (ecdsa) assert.equal(await recoverAddress({ hash: `0x${bytesToHex(msg)}`, signature: `0x${r.body.signature}` as Hex }), w.address, `${w.id}: viem recovers the address`);
  return r.body.signers;
}

test('node add: a new signer joins a running cluster through the manifest and restarts, then takes wallets by reshare', { timeout: 600_000 }, async (t) => {
  const c = await startCluster(3);
  t.after(() => c.stop());
  const A = api(c);
  const env = { FLEETKEY_URL: c.info.url, FLEETKEY_TOKEN: c.info.token, FLEETKEY_OWNER_KEY_FILE: c.info.ownerKey };
  const [n1, n2, n3] = c.info.signers.map((s) => s.nodeId);
  const ed: W = (await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3 })).body;
  const sc: W = (await A('POST', '/v1/wallets', { scheme: 'secp256k1-schnorr', threshold: 2, signers: 3 })).body;
  const ec: W = (await A('POST', '/v1/wallets', { scheme: 'ecdsa-secp256k1', threshold: 2, signers: 3 })).body;
  const wallets = [ed, sc, ec];
  for (const w of wallets) assert.equal(w.epoch, 0, JSON.stringify(w));

  let refusedBeforeServerRestart = false;
  const restarted: string[] = [];
  const n4 = await joinSigner(c, 'signer-4', {
    // While a signer is down, the other two sign.
    down: async (proc) => {
      for (const w of wallets) assert.ok(!(await signs(A, w)).includes(c.nodeIdOf(proc)), `${proc} is down`);
      // The server still runs on the old manifest: it refuses a move to the node it was not told of.
      if (proc === 'signer-3') {
        const r = await fleetkey(['wallet', 'reshare', ed.id, '--to', [n1, n2, n3, c.nodeIdOf('signer-4')].join(',')], env);
        assert.deepEqual(r, { ok: false, code: 'unknown_node' });
        refusedBeforeServerRestart = true;
      }
    },
    up: async (proc) => {
      restarted.push(proc);
      for (const w of wallets) await signs(A, w);
    },
  });
  assert.deepEqual(restarted, ['signer-1', 'signer-2', 'signer-3', 'server'], 'each process restarted once, the server last');
  assert.ok(refusedBeforeServerRestart);
  assert.equal(n4, c.nodeIdOf('signer-4'));
  const nodes = (await A('GET', '/v1/nodes')).body as { id: string; status: string }[];
  assert.deepEqual(nodes.map((n) => [n.id, n.status]), [n1, n2, n3, n4].map((id) => [id, 'up']), 'the restarted server reaches all four over mutual TLS');

  // ed25519: 2-of-3 -> 3-of-4 on every node; the others 2-of-3 -> 2-of-3 with node 4 in place of node 3
  // (ecdsa: the new committee runs the DKLs23 pairwise set-up).
  const moves: [W, string[], number][] = [
    [ed, [n1, n2, n3, n4], 3],
    [sc, [n1, n2, n4], 2],
    [ec, [n1, n2, n4], 2],
  ];
  for (const [w, to, t] of moves) {
    const r = await fleetkey(['wallet', 'reshare', w.id, '--to', to.join(','), '--threshold', String(t)], env);
    assert.ok(r.ok, `${w.id}: ${JSON.stringify(r)}`);
    assert.deepEqual([r.out.epoch, r.out.address, r.out.threshold, r.out.participants.map((p: { nodeId: string }) => p.nodeId)], [w.epoch + 1, w.address, t, to]);
    const now = (await A('GET', `/v1/wallets/${w.id}`)).body;
    assert.deepEqual([now.publicKey, now.address, now.epoch], [w.publicKey, w.address, w.epoch + 1]);
  }
  // With node 1 stopped, every wallet can only sign through the new node.
  await c.terminate('signer-1');
  for (const w of wallets) {
    const by = await signs(A, w);
    assert.ok(by.includes(n4), `${w.id} signed by ${by.join(', ')}: the new node took part`);
    assert.ok(!by.includes(n1));
  }
  await c.restart('signer-1', 'SIGTERM');
});
