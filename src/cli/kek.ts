/**
 * The key-encryption key in an HSM (issue 14): the flags `fleetkey signer` takes to find it, and
 * `fleetkey kek create`, which generates it inside the HSM (src/signer/pkcs11.ts).
 */
import { FleetkeyError } from '../errors.ts';
import { createHsmKey, pkcs11FromFlags } from '../signer/pkcs11.ts';
import { print, type Flags } from './common.ts';
import type { CliModule } from './module.ts';

export const kekCli: CliModule = {
  nouns: ['kek'],
  options: {
    kek: { type: 'string' },
    'pkcs11-module': { type: 'string' },
    'pkcs11-slot': { type: 'string' },
    'pkcs11-token': { type: 'string' },
    'pkcs11-pin-file': { type: 'string' },
    'pkcs11-key-label': { type: 'string' },
  },
  help: `Key-encryption key in an HSM (PKCS#11; fleetkey signer takes the same flags)
  fleetkey kek create --kek 'pkcs11:token=T;object=LABEL?module-path=/path/lib.so&pin-source=file:/path/pin'
  fleetkey kek create --pkcs11-module /path/lib.so --pkcs11-token T|--pkcs11-slot N --pkcs11-pin-file FILE --pkcs11-key-label LABEL
                                               (generates the AES-256 KEK inside the HSM: sensitive, not extractable;
                                                refuses a label already in use)`,
  async run(_noun, verb, _args, flags: Flags) {
    if (verb !== 'create') return undefined;
    const config = pkcs11FromFlags(flags);
    if (!config) throw new FleetkeyError('bad_request', 'fleetkey kek create needs --kek pkcs11:… or the --pkcs11-* flags');
    await createHsmKey(config);
    const out = { created: config.keyLabel, module: config.module, ...(config.token !== undefined ? { token: config.token } : { slot: String(config.slot) }) };
    print(flags, out, () => `created AES-256 key "${config.keyLabel}" in ${config.token !== undefined ? `token "${config.token}"` : `slot ${config.slot}`} (not extractable)`);
    return 0;
  },
};
