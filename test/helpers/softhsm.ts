/**
 * A SoftHSM2 token for tests and benchmarks: its own token directory and SOFTHSM2_CONF in a temp
 * dir (set in process.env, so the signer processes a test spawns inherit it), a user PIN in a 0600
 * file, and the PKCS#11 URI a signer is started with.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's softhsm2 puts the module (and the multiarch path some builds use). */
export const SOFTHSM_MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p));

/**
 * Why SoftHSM2 tests cannot run here, or undefined. Under CI (.ci/run installs softhsm2) a missing
 * module is a failure, not a skip.
 */
export function softHsmMissing(): string | undefined {
  let util = true;
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
  } catch {
    util = false;
  }
  const why = !SOFTHSM_MODULE ? 'libsofthsm2.so not found' : !util ? 'softhsm2-util not found' : undefined;
  if (why && process.env.CI) throw new Error(`${why}: .ci/run installs softhsm2`);
  return why ? `${why} (apt-get install softhsm2)` : undefined;
}

export interface SoftHsm {
  dir: string;
  tokenDir: string;
  pinFile: string;
  module: string;
  /** The RFC 7512 URI of key `label` in token `token`. */
  uri(label: string, o?: { token?: string; pinFile?: string; module?: string }): string;
}

/** Initialises tokens `labels` (user PIN 1234 unless `pin`) in a fresh token dir and points SOFTHSM2_CONF at it. */
export function softHsm(labels: string[], pin = '1234'): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), 'fk-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  for (const label of labels) execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '5678', '--pin', pin], { stdio: 'ignore' });
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, pin + '\n', { mode: 0o600 });
  chmodSync(pinFile, 0o600);
  const module = SOFTHSM_MODULE!;
  return {
    dir,
    tokenDir,
    pinFile,
    module,
    uri: (label, o = {}) =>
      `pkcs11:token=${encodeURIComponent(o.token ?? labels[0])};object=${encodeURIComponent(label)}?module-path=${encodeURIComponent(o.module ?? module)}&pin-source=file:${encodeURIComponent(o.pinFile ?? pinFile)}`,
  };
}
