/**
 * Sealing at rest under a key-encryption key (KEK), with a fresh random nonce per record and the
 * record's identity as associated data, so a sealed blob moved to another record (another wallet,
 * epoch or nonce id) fails to open.
 *
 * Two formats, both opened:
 * - `x1.` + base64(nonce ‖ ciphertext ‖ tag): XChaCha20-Poly1305 (IETF, 192-bit random nonce)
 *   from libsodium (WebAssembly, `crypto_aead_xchacha20poly1305_ietf_*`) under a subkey
 *   HKDF-SHA256(KEK, "fleetkey seal xchacha20poly1305 v1"), so the KEK itself is never used with
 *   two ciphers. Written by this version (issue 13: a threshold-ECDSA share is about 100 KB of
 *   JSON, opened on every signature; noble's pure-JS AES-GCM took several milliseconds for it).
 * - base64(nonce ‖ ciphertext ‖ tag): AES-256-GCM (@noble/ciphers, 96-bit random nonce) under the
 *   KEK, as earlier versions wrote, and as the HSM sealer (./pkcs11.ts) still writes. Records
 *   sealed this way stay as they are until they are sealed again; an older version cannot open
 *   the `x1.` records of a newer one.
 *
 * The KEK comes from FLEETKEY_KEK (64 hex chars) or from a key file, created with mode 0600 on
 * first start. A key file readable by group or others is refused.
 */
import sodium from 'libsodium-wrappers-sumo';
import { gcm } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, utf8ToBytes, hexToBytes, concatBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { FleetkeyError } from '../errors.ts';

await sodium.ready;

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

const X1 = 'x1.';
const NPUB = 24; // crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

export function makeSealer(kek: Uint8Array): Sealer {
  if (kek.length !== 32) throw new Error('KEK must be 32 bytes');
  const subkey = hkdf(sha256, kek, undefined, utf8ToBytes('fleetkey seal xchacha20poly1305 v1'), 32);
  const refuse = (context: string): never => {
    // Wrong KEK, tampered blob, or a blob moved between records: never say which bytes.
    throw new FleetkeyError('decrypt_failed', `sealed record ${context.split('|')[0]} does not open under this key`);
  };
  return {
    seal(plaintext, context) {
      const nonce = randomBytes(NPUB);
      const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, utf8ToBytes(context), null, nonce, subkey);
      // Node's base64 (not cryptography) for the new format: @scure/base took longer than the cipher on a 100 KB share.
      return X1 + Buffer.from(concatBytes(nonce, ct)).toString('base64');
    },
    open(sealed, context) {
      if (sealed.startsWith(X1)) {
        const text = sealed.slice(X1.length);
        const raw = Buffer.from(text, 'base64');
        // Buffer skips characters outside the alphabet: only the canonical encoding is accepted.
        if (raw.length < NPUB + 16 || raw.toString('base64') !== text) return refuse(context);
        try {
          return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, raw.subarray(NPUB), utf8ToBytes(context), raw.subarray(0, NPUB), subkey);
        } catch {
          return refuse(context);
        }
      }
      try {
        const raw = base64.decode(sealed);
        return gcm(kek, raw.subarray(0, 12), utf8ToBytes(context)).decrypt(raw.subarray(12));
      } catch {
        return refuse(context);
      }
    },
  };
}
