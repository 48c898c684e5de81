/** Runs the real `fleetkey` command as a user would, with `--json`. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BIN } from '../../src/cli/cluster.ts';

const run = promisify(execFile);

export type CliResult = { ok: true; out: any } | { ok: false; code: string };

/** `fleetkey ARGS --json` (FLEETKEY_KEK left out of its environment), in `cwd` if given: the parsed stdout, or the CLI's error code. */
export async function fleetkey(args: string[], extraEnv: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  const { FLEETKEY_KEK: _, ...env } = process.env;
  try {
    const r = await run(process.execPath, [BIN, ...args, '--json'], { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 120_000, cwd });
    return { ok: true, out: JSON.parse(r.stdout) };
  } catch (e) {
    // --json: the error object is on stdout too.
    const out = (e as { stdout?: string }).stdout ?? '';
    try {
      return { ok: false, code: JSON.parse(out).error.code };
    } catch {
      return { ok: false, code: `${out}${(e as { stderr?: string }).stderr ?? ''}` };
    }
  }
}
