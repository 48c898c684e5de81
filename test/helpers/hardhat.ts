/** A real local Ethereum node for tests: `hardhat node` (Hardhat 2) on a free loopback port, stopped with its parent. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '../eth/fixture');
const HARDHAT = resolve(FIXTURE, '../../../node_modules/hardhat/internal/cli/bootstrap.js');
/** Hardhat's default account #0: a public test key, printed by every `hardhat node`. */
export const HARDHAT_KEY_0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

/** Starts `hardhat node` on a free loopback port and resolves with its RPC URL once it listens. */
export function startHardhat(): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--require', join(FIXTURE, 'exit-with-parent.cjs'), HARDHAT, '--config', join(FIXTURE, 'hardhat.config.cjs'), 'node', '--hostname', '127.0.0.1', '--port', '0'], {
    cwd: FIXTURE,
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  const output = () => log.slice(-4000);
  return new Promise((resolveStart, reject) => {
    const onData = (d: Buffer) => {
      log = (log + d.toString('utf8')).slice(-20_000);
      const m = /JSON-RPC server at (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
      if (m) resolveStart({ url: m[1], child, output });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`hardhat node exited (code ${code}) before listening:\n${output()}`)));
  });
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

