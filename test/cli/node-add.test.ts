/**
 * `fleetkey node add JOIN_RECORD [--manifest FILE]` (issue 11; the manifest defaults to
 * ./cluster-manifest.json): prints the cluster manifest with the new signer's join record added, exactly the manifest `fleetkey cluster manifest` assembles from all the
 * records (so the same clusterId every process will pin after its restart), and refuses a node already
 * listed or a file that is not a join record, printing no manifest.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fleetkey } from '../helpers/cli.ts';

test('node add: the manifest with the new signer, as cluster manifest assembles it; a node listed twice or a bad record is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk-node-add-'));
  const file = (name: string, v: unknown) => (writeFileSync(join(dir, name), JSON.stringify(v)), join(dir, name));
  const init = async (args: string[]) => {
    const r = await fleetkey(args);
    assert.ok(r.ok, JSON.stringify(r));
    return r.out;
  };
  const records = await Promise.all([1, 2, 3].map((i) => init(['signer', 'init', '--data', join(dir, `s${i}`), '--name', `signer-${i}`, '--advertise', `https://127.0.0.1:${17000 + i}`])));
  const server = await init(['server', 'init', '--data', join(dir, 'srv'), '--name', 'server-1']);
  const before = await init(['cluster', 'manifest', file('r1.json', records[0]), file('r2.json', records[1]), file('rs.json', server)]);
  const manifest = file('manifest.json', before);

  const added = await init(['node', 'add', file('r3.json', records[2]), '--manifest', manifest]);
  // Without --manifest: ./cluster-manifest.json, the file the README's `cluster manifest … >` writes.
  const here = join(dir, 'ops');
  mkdirSync(here);
  writeFileSync(join(here, 'cluster-manifest.json'), JSON.stringify(before));
  assert.deepEqual(await fleetkey(['node', 'add', join(dir, 'r3.json')], {}, here), { ok: true, out: added });
  assert.deepEqual(await fleetkey(['node', 'add', join(dir, 'r3.json')], {}, dir), { ok: false, code: 'validation_failed' }, 'no manifest here');
  const whole = await init(['cluster', 'manifest', join(dir, 'r1.json'), join(dir, 'r2.json'), join(dir, 'rs.json'), join(dir, 'r3.json')]);
  assert.deepEqual(added, whole, 'the same manifest as assembled from every record');
  assert.notEqual(added.clusterId, before.clusterId, 'a new membership is a new cluster id');
  assert.equal(added.nodes.length, 4);
  assert.ok(added.nodes.some((n: { nodeId: string }) => n.nodeId === records[2].nodeId));

  assert.deepEqual(await fleetkey(['node', 'add', join(dir, 'r1.json'), '--manifest', manifest]), { ok: false, code: 'validation_failed' });
  writeFileSync(join(dir, 'junk.json'), 'not json');
  assert.deepEqual(await fleetkey(['node', 'add', join(dir, 'junk.json'), '--manifest', manifest]), { ok: false, code: 'validation_failed' });
});
