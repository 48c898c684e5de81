/**
 * Sealing at rest: AES-256-GCM (@noble/ciphers) under a key-encryption key (KEK), with a fresh
 * 96-bit random nonce per record and the record's identity as associated data, so a sealed blob
 * moved to another record (another wallet, epoch or nonce id) fails to open.
 *
 * The KEK comes from FLEETKEY_KEK (64 hex chars) or from a key file, created with mode 0600 on
 * first start. A key file readable by group or others is refused.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { randomBytes, utf8ToBytes, hexToBytes, concatBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';

export interface Sealer {
  seal(plaintext: Uint8Array, context: string): string;
  open(sealed: string, context: string): Uint8Array;
}

export function loadKek(file: string, env: string | undefined = process.env.FLEETKEY_KEK, create = true): Uint8Array {
  if (env) {
    if (!/^[0-9a-fA-F]{64}$/.test(env)) throw new FleetkeyError('bad_request', 'FLEETKEY_KEK must be 64 hex characters (32 bytes)');
    return hexToBytes(env);
  }
  return keyFile(file, create);
}

/** A 32-byte secret in a file: created with mode 0600 on first use (unless `create` is false); refused if others can read it. */
export function keyFile(file: string, create = true): Uint8Array {
  if (create) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(32));
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) throw new FleetkeyError('forbidden', `key file ${file} is readable by group or others (chmod 600 it)`);
  const kek = new Uint8Array(readFileSync(file));
  if (kek.length !== 32) throw new FleetkeyError('bad_request', `key file ${file} must hold exactly 32 bytes`);
  return kek;
}

export function makeSealer(kek: Uint8Array): Sealer {
  if (kek.length !== 32) throw new Error('KEK must be 32 bytes');
  return {
    seal(plaintext, context) {
      const nonce = randomBytes(12);
      const ct = gcm(kek, nonce, utf8ToBytes(context)).encrypt(plaintext);
      return base64.encode(concatBytes(nonce, ct));
    },
    open(sealed, context) {
      const raw = base64.decode(sealed);
      try {
        return gcm(kek, raw.subarray(0, 12), utf8ToBytes(context)).decrypt(raw.subarray(12));
      } catch {
        // Wrong KEK, tampered blob, or a blob moved between records: never say which bytes.
        throw new FleetkeyError('decrypt_failed', `sealed record ${context.split('|')[0]} does not open under this key`);
      }
    },
  };
}
