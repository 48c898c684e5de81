/**
 * The CLI loads only the modules that serve a command's noun (src/cli/modules.ts): each module must
 * serve exactly the nouns the table names for it, or its commands would not be found (or would load
 * for nothing). Through the real binary: `--help` still shows every module's lines; an option of an
 * unloaded module given before the noun still parses (every module is then loaded); an unknown
 * option is refused with a stable code.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { BIN } from '../../src/cli/cluster.ts';
import { MODULES } from '../../src/cli/modules.ts';
import { fleetkey } from '../helpers/cli.ts';

test('each CLI module serves exactly the nouns the table names for it', async () => {
  for (const m of MODULES) assert.deepEqual([...(await m.load()).nouns].sort(), [...m.nouns].sort());
});

test("--help shows every module's lines; options parse before the noun; an unknown option is bad_request", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  for (const m of MODULES) assert.ok(stdout.includes((await m.load()).help), `help of ${m.nouns.join(', ')}`);
  // --to belongs to the committee module, which a first pass cannot know the noun of: the usage error is that module's.
  const early = await fleetkey(['--to', 'node_a', 'wallet', 'reshare']);
  assert.deepEqual(early, { ok: false, code: 'validation_failed' });
  assert.deepEqual(await fleetkey(['wallet', 'list', '--no-such-option']), { ok: false, code: 'bad_request' });
});
