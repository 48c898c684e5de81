/**
 * The owner key: the Ed25519 key that signs control documents (policies, grants, revocations,
 * approver registries, wallet status) and owner signing authorizations. Signer nodes pin its public
 * key; only the owner's machine holds the secret (`fleetkey dev` keeps one in DATA/owner.key, 0600).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { FleetkeyError } from '../errors.ts';
import { publicKeyOf, type OwnerKey } from './keys.ts';
import { parseOrThrow, webauthnKeySchema } from './schemas.ts';

/**
 * Pinned owner public keys, from `env` or else from `file`: hex Ed25519 keys separated by commas or
 * white space, and/or passkeys written as JSON objects (`{"keyType":"webauthn-p256",…}`, see
 * webauthnKeySchema), e.g. `FLEETKEY_OWNER_KEYS='8a88…5c,{"keyType":"webauthn-p256",…}'`.
 */
export function loadOwnerKeys(env: string | undefined, file: string): OwnerKey[] {
  const text = env ?? (existsSync(file) ? readFileSync(file, 'utf8') : '');
  const keys: OwnerKey[] = [];
  let i = 0;
  while (i < text.length) {
    if (/[\s,]/.test(text[i])) {
      i++;
    } else if (text[i] === '{') {
      const end = text.indexOf('}', i); // a passkey object is flat: its first } closes it
      if (end < 0) throw new FleetkeyError('bad_request', 'an owner key object is not closed');
      let obj: unknown;
      try {
        obj = JSON.parse(text.slice(i, end + 1));
      } catch {
        throw new FleetkeyError('bad_request', 'an owner key object is not JSON');
      }
      keys.push(parseOrThrow(webauthnKeySchema, obj, 'ownerKey'));
      i = end + 1;
    } else {
      const m = /^[^\s,]+/.exec(text.slice(i))![0];
      const k = m.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(k)) throw new FleetkeyError('bad_request', 'an owner key is not 32-byte hex');
      keys.push(k);
      i += m.length;
    }
  }
  return keys;
}

/** Reads a 32-byte hex secret key (owner, agent or approver) from a file that only its owner can read. */
export function readSecretKeyFile(file: string, what = 'key'): Uint8Array {
  if (!existsSync(file)) throw new FleetkeyError('bad_request', `no ${what} file ${file}`);
  if ((statSync(file).mode & 0o077) !== 0) throw new FleetkeyError('bad_request', `${what} file ${file} is readable by group or others; chmod 600 it`);
  const hex = readFileSync(file, 'utf8').trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new FleetkeyError('bad_request', `${what} file ${file} does not hold a 32-byte hex secret`);
  return hexToBytes(hex);
}

export function readOwnerSecret(file: string): Uint8Array {
  return readSecretKeyFile(file, 'owner key');
}

/** Creates an owner key file (0600) unless it exists; returns the public key. */
export function ensureOwnerKey(file: string): string {
  if (!existsSync(file)) writeFileSync(file, bytesToHex(ed25519.utils.randomSecretKey()) + '\n', { mode: 0o600 });
  return publicKeyOf(readOwnerSecret(file), 'ed25519');
}
