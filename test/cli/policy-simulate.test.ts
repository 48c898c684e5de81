/** `fleetkey policy simulate`: the real command, offline, on transactions built with viem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEther, serializeTransaction } from 'viem';
import { BIN } from '../../src/cli/cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'fk-sim-'));
const policyFile = join(dir, 'policy.json');
writeFileSync(
  policyFile,
  JSON.stringify({
    version: 4,
    rules: [
      { id: 'payouts', type: 'allow', chainIds: ['1'], kinds: ['native_transfer'], to: ['0x000000000000000000000000000000000000dEaD'] },
      { id: 'cap', type: 'tx_cap', asset: { chainId: '1', asset: 'native' }, max: '1000000000000000000' },
    ],
  }),
);
const tx = (to: `0x${string}`, eth: string) => serializeTransaction({ type: 'eip1559', chainId: 1, nonce: 0, to, value: parseEther(eth), gas: 21000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n });
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, 'policy', 'simulate', '--policy', policyFile, '--kind', 'evm_transaction', '--json', ...args], { encoding: 'utf8' });
  return { code: r.status, out: JSON.parse(r.stdout) };
};

test('allow, cap exceeded, unlisted destination, undecodable payload', () => {
  let r = run('--payload', tx('0x000000000000000000000000000000000000dEaD', '0.5'));
  assert.equal(r.code, 0);
  assert.equal(r.out.decision.outcome, 'allow');
  assert.equal(r.out.decision.policyVersion, 4);
  assert.equal(r.out.action.effects[0].amount, '500000000000000000');
  r = run('--payload', tx('0x000000000000000000000000000000000000dEaD', '2'));
  assert.equal(r.out.decision.outcome, 'deny');
  assert.ok(r.out.decision.reasons.some((x: any) => x.code === 'tx_cap_exceeded' && x.rule === 'cap'));
  r = run('--payload', tx('0x1111111111111111111111111111111111111111', '0.1'));
  assert.equal(r.out.decision.outcome, 'deny', 'no matching allow means deny');
  r = run('--payload', '0x02c0ffee');
  assert.equal(r.code, 1);
  assert.equal(r.out.error.code, 'decode_failed');
});
