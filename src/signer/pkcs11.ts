/**
 * The key-encryption key in an HSM over PKCS#11 (issue 14): shares, nonces and the node identity
 * are sealed with AES-256-GCM computed *inside* the HSM (CKM_AES_GCM) under a key that never leaves
 * it. Chosen over "a data key wrapped by an HSM key and held in memory while unsealed" because:
 * - the KEK then exists nowhere but in the HSM: not in the data dir, not in process memory, not in
 *   a core dump; a stolen data dir plus a process image open nothing without the HSM;
 * - a signer whose HSM goes away really cannot sign (every signature opens its share and its nonce
 *   in the HSM), instead of going on with a key it should no longer have;
 * - the cost is two HSM decryptions per signature share (share, nonce) and one encryption per
 *   pooled nonce, measured in bench/kek.bench.ts against the file KEK.
 * The blob format is the file KEK's (src/signer/seal.ts): base64(iv ‖ ciphertext ‖ 16-byte tag),
 * a fresh random 96-bit IV (NIST SP 800-38D §8.2.2) made here, the record's identity as AAD. So an
 * HSM-sealed record opens with plain AES-256-GCM under the same key, which the tests check with
 * @noble/ciphers on a test-only extractable key.
 *
 * The nonce ledger's HMAC key (src/signer/nonce-ledger.ts) is the one secret that does live in
 * memory: a random 32-byte key made on first start and kept sealed by the HSM in
 * DATA/ledger-key.sealed. An HMAC in the HSM on every ledger write would add a round trip to every
 * signature for a file that lives in the trusted data dir anyway; the key only authenticates that
 * file, and it opens nothing.
 *
 * Failure: any PKCS#11 error other than "these bytes do not decrypt" (a return value that says so,
 * or a failed open right after which the HSM still seals and opens a probe) marks the session broken and
 * the operation fails with `kek_unavailable` (503). The next use (a signature, or /readyz) at least
 * RECONNECT_MS later reopens everything: C_Finalize, C_Initialize, find the token, log in, find the
 * key. Start-up errors (module, token, PIN, key) name the problem and stop the process with exit 1
 * (a busy or absent token after a few tries: TRANSIENT_ERRORS).
 *
 * The PKCS#11 calls are synchronous (pkcs11js), like the file KEK's sealer: one call is a few
 * microseconds on SoftHSM; a network HSM's round trip blocks the event loop for its duration.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, utf8ToBytes, concatBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { z } from 'zod';
import { FleetkeyError } from '../errors.ts';
import type { Sealer } from './seal.ts';
import type * as P from 'pkcs11js';

/** Where the KEK lives: one PKCS#11 module, one token (by label or slot id), one AES-256 key (by label). */
export interface Pkcs11Config {
  module: string;
  token?: string;
  slot?: bigint;
  keyLabel: string;
  pinFile: string;
}

const configSchema = z
  .strictObject({
    module: z.string().refine(isAbsolute, 'module-path must be an absolute path'),
    token: z.string().min(1).max(32).optional(),
    slot: z.bigint().min(0n).optional(),
    keyLabel: z.string().min(1).max(256),
    pinFile: z.string().min(1),
  })
  .refine((c) => (c.token === undefined) !== (c.slot === undefined), 'name exactly one of token (label) and slot-id');

const PATH_ATTRS = new Set(['token', 'slot-id', 'object', 'type']);
const QUERY_ATTRS = new Set(['module-path', 'pin-source', 'pin-value']);

/**
 * An RFC 7512 PKCS#11 URI: `pkcs11:token=T;object=L?module-path=/x.so&pin-source=file:/p` (or
 * `slot-id=N` for the token). Percent-encoding is decoded; an attribute given twice, one this
 * signer would not honour, or `pin-value` (a PIN in the process arguments, visible to `ps`) is refused.
 */
export function parsePkcs11Uri(uri: string): Pkcs11Config {
  const bad = (why: string): never => {
    throw new FleetkeyError('bad_request', `--kek: ${why} (want pkcs11:token=LABEL;object=KEY?module-path=/path/lib.so&pin-source=file:/path/pin)`);
  };
  if (!uri.startsWith('pkcs11:')) bad('not a PKCS#11 URI');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const attrs = new Map<string, string>();
  const take = (part: string, sep: string, known: Set<string>) => {
    for (const kv of part.split(sep)) {
      if (kv === '') continue;
      const eq = kv.indexOf('=');
      if (eq <= 0) bad(`"${kv}" is not name=value`);
      const name = kv.slice(0, eq);
      let value: string;
      try {
        value = decodeURIComponent(kv.slice(eq + 1));
      } catch {
        return bad(`bad percent-encoding in ${name}`);
      }
      if (!known.has(name)) bad(`attribute "${name}" is not supported here (path: ${[...PATH_ATTRS].join(', ')}; query: module-path, pin-source)`);
      if (attrs.has(name)) bad(`attribute "${name}" is given twice`);
      attrs.set(name, value);
    }
  };
  take(q < 0 ? rest : rest.slice(0, q), ';', PATH_ATTRS);
  if (q >= 0) take(rest.slice(q + 1), '&', QUERY_ATTRS);
  if (attrs.has('pin-value')) bad('pin-value puts the PIN in the process arguments; use pin-source=file:/path');
  if (attrs.has('type') && attrs.get('type') !== 'secret-key') bad('type must be secret-key');
  const slotId = attrs.get('slot-id');
  if (slotId !== undefined && !/^\d{1,20}$/.test(slotId)) bad('slot-id must be a decimal number');
  const pin = attrs.get('pin-source');
  if (pin === undefined) bad('pin-source=file:/path is required');
  if (!attrs.has('module-path')) bad('module-path is required');
  if (!attrs.has('object')) bad('object (the key label) is required');
  return pkcs11Config({
    module: attrs.get('module-path')!,
    token: attrs.get('token'),
    slot: slotId === undefined ? undefined : BigInt(slotId),
    keyLabel: attrs.get('object')!,
    pinFile: pin!.startsWith('file://') ? fileURLToPath(pin!) : pin!.startsWith('file:') ? pin!.slice('file:'.length) : pin!,
  });
}

/** Checks a configuration given by flags or by URI. */
export function pkcs11Config(c: { module?: string; token?: string; slot?: bigint | string; keyLabel?: string; pinFile?: string }): Pkcs11Config {
  const slot = typeof c.slot === 'string' ? (/^\d{1,20}$/.test(c.slot) ? BigInt(c.slot) : -1n) : c.slot;
  const r = configSchema.safeParse({ ...c, slot });
  if (!r.success) {
    const i = r.error.issues[0];
    throw new FleetkeyError('bad_request', `PKCS#11 KEK: ${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
  }
  return r.data;
}

/** The CLI's way in: `--kek pkcs11:…`, or the --pkcs11-* flags, or neither (undefined: the file KEK). */
export function pkcs11FromFlags(f: Record<string, unknown>): Pkcs11Config | undefined {
  const names = ['pkcs11-module', 'pkcs11-slot', 'pkcs11-token', 'pkcs11-pin-file', 'pkcs11-key-label'] as const;
  const flagged = names.some((n) => f[n] !== undefined);
  if (f.kek !== undefined && flagged) throw new FleetkeyError('bad_request', 'give either --kek pkcs11:… or the --pkcs11-* flags, not both');
  if (f.kek !== undefined) return parsePkcs11Uri(String(f.kek));
  if (!flagged) return undefined;
  return pkcs11Config({
    module: f['pkcs11-module'] as string | undefined,
    token: f['pkcs11-token'] as string | undefined,
    slot: f['pkcs11-slot'] as string | undefined,
    keyLabel: f['pkcs11-key-label'] as string | undefined,
    pinFile: f['pkcs11-pin-file'] as string | undefined,
  });
}

/** Return values that mean "these bytes do not open", not "the HSM is gone". */
const DATA_ERRORS = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_AEAD_DECRYPT_FAILED']);
const PIN_ERRORS = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);
/**
 * Failures that say "not now" rather than "not so": at start-up they are tried again a few times
 * before the process gives up. Seen: SoftHSM2 answered one of three signer processes logging in to
 * the same file-backed token at the same moment with CKR_GENERAL_ERROR (CI, Node 24 run), and in
 * another run left the token out of one process's slot list ("not present", CI, Node 20 run). A token
 * that really is missing costs 1 s (the four waits) before the process stops.
 */
const TRANSIENT_ERRORS = new Set(['CKR_GENERAL_ERROR', 'CKR_DEVICE_ERROR', 'CKR_FUNCTION_FAILED', 'CKR_DEVICE_MEMORY', 'CKR_HOST_MEMORY', 'CKR_SESSION_COUNT', 'CKR_TOKEN_NOT_PRESENT']);
const START_TRIES = 5;
const RECONNECT_MS = 1000;

/** The PKCS#11 return value's name (CKR_…) or "error": all that is said about a failure. */
function ckr(e: unknown): string {
  const m = (e as Error)?.message ?? '';
  return /^CKR_[A-Z_]+$/.test(m) ? m : 'error';
}

/** A CK_ULONG attribute (4 or 8 bytes, host order: little-endian on the platforms Node ships for). */
function ulong(b: Buffer): number {
  return b.length === 8 ? Number(b.readBigUInt64LE()) : b.readUIntLE(0, b.length);
}

function readPin(file: string): string {
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new FleetkeyError('kek_unavailable', `PKCS#11 PIN file ${file} cannot be read`);
  }
  if ((st.mode & 0o077) !== 0) throw new FleetkeyError('forbidden', `PKCS#11 PIN file ${file} is readable by group or others (chmod 600 it)`);
  const pin = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (!pin) throw new FleetkeyError('kek_unavailable', `PKCS#11 PIN file ${file} is empty`);
  return pin;
}

type Lib = typeof P;
let lib: Lib | undefined;
/** pkcs11js is loaded only when an HSM is configured: the file KEK needs no native addon. */
async function loadLib(): Promise<Lib> {
  lib ??= ((await import('pkcs11js')) as unknown as { default: Lib }).default;
  return lib;
}

interface Conn {
  session: Buffer;
  key: Buffer;
}

/** An open PKCS#11 module with a logged-in session and the KEK's handle; reopens itself after a failure. */
export class HsmKek {
  private conn?: Conn;
  private lastError = '';
  private nextTry = 0;

  private constructor(
    private readonly p: Lib,
    private readonly mod: P.PKCS11,
    readonly config: Pkcs11Config,
    private readonly pin: string,
  ) {}

  /** Loads the module, logs in, finds the key. Every failure is a FleetkeyError naming the problem. */
  static async open(config: Pkcs11Config): Promise<HsmKek> {
    const pin = readPin(config.pinFile);
    const p = await loadLib();
    const mod = new p.PKCS11();
    try {
      mod.load(config.module);
    } catch {
      throw new FleetkeyError('kek_unavailable', `PKCS#11 module ${config.module} cannot be loaded`);
    }
    const hsm = new HsmKek(p, mod, config, pin);
    for (let attempt = 1; ; attempt++) {
      try {
        hsm.conn = hsm.connect();
        return hsm;
      } catch (e) {
        const code = e instanceof FleetkeyError ? (e.details?.ckr as string | undefined) : undefined;
        if (attempt < START_TRIES && code !== undefined && TRANSIENT_ERRORS.has(code)) {
          await new Promise((r) => setTimeout(r, 100 * attempt));
          continue;
        }
        hsm.close();
        throw e;
      }
    }
  }

  /** Where the key is, for logs: module, token or slot, label. Never the PIN. */
  describe(): string {
    const c = this.config;
    return `pkcs11 ${c.module} ${c.token !== undefined ? `token "${c.token}"` : `slot ${c.slot}`} key "${c.keyLabel}"`;
  }

  private connect(): Conn {
    const { p, mod, config: c } = this;
    const where = c.token !== undefined ? `token "${c.token}"` : `slot ${c.slot}`;
    const step = <T>(what: string, fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        if (e instanceof FleetkeyError) throw e;
        throw new FleetkeyError('kek_unavailable', `PKCS#11 ${what} failed (${ckr(e)})`, { details: { ckr: ckr(e) } });
      }
    };
    try {
      mod.C_Finalize();
    } catch {
      // Not initialised (first connect) or already gone: either way start clean.
    }
    step('C_Initialize', () => mod.C_Initialize());
    const slots = step('C_GetSlotList', () => mod.C_GetSlotList(true));
    const slot = slots.find((s) => (c.token !== undefined ? step('C_GetTokenInfo', () => mod.C_GetTokenInfo(s)).label.trimEnd() === c.token : s.readBigUInt64LE() === c.slot));
    // SoftHSM2's file-backed tokens drop out of the slot list for a moment while another process writes
    // them (seen in CI, three signers starting at once on one token): absent is retried at start-up too.
    if (!slot) throw new FleetkeyError('kek_unavailable', `PKCS#11 ${where} is not present in ${c.module}`, { details: { ckr: 'CKR_TOKEN_NOT_PRESENT' } });
    const session = step('C_OpenSession', () => mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION));
    try {
      mod.C_Login(session, p.CKU_USER, this.pin);
    } catch (e) {
      const code = ckr(e);
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
        if (PIN_ERRORS.has(code)) throw new FleetkeyError('unauthorized', `PKCS#11 login to ${where} refused: wrong PIN (${code}) in ${c.pinFile}`);
        throw new FleetkeyError('kek_unavailable', `PKCS#11 login to ${where} failed (${code})`, { details: { ckr: code } });
      }
    }
    step('C_FindObjectsInit', () =>
      mod.C_FindObjectsInit(session, [
        { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
        { type: p.CKA_LABEL, value: c.keyLabel },
      ]),
    );
    const found = step('C_FindObjects', () => mod.C_FindObjects(session, 2));
    step('C_FindObjectsFinal', () => mod.C_FindObjectsFinal(session));
    if (found.length === 0) throw new FleetkeyError('not_found', `PKCS#11 ${where} holds no secret key labelled "${c.keyLabel}" (create it: fleetkey kek create --kek pkcs11:…)`);
    if (found.length > 1) throw new FleetkeyError('conflict', `PKCS#11 ${where} holds more than one secret key labelled "${c.keyLabel}"`);
    const attrs = step('C_GetAttributeValue', () =>
      mod.C_GetAttributeValue(session, found[0], [{ type: p.CKA_KEY_TYPE }, { type: p.CKA_VALUE_LEN }, { type: p.CKA_ENCRYPT }, { type: p.CKA_DECRYPT }]),
    );
    const [type, len, enc, dec] = attrs.map((a) => a.value as Buffer);
    if (ulong(type) !== p.CKK_AES || ulong(len) !== 32 || !enc[0] || !dec[0])
      throw new FleetkeyError('bad_request', `PKCS#11 key "${c.keyLabel}" must be an AES-256 key allowed to encrypt and decrypt`);
    return { session, key: found[0] };
  }

  /** True when the key can be read out of the HSM (CKA_EXTRACTABLE, or not CKA_SENSITIVE): worth a warning. */
  extractable(): boolean {
    const { p, mod } = this;
    const conn = this.use();
    const [ext, sens] = mod.C_GetAttributeValue(conn.session, conn.key, [{ type: p.CKA_EXTRACTABLE }, { type: p.CKA_SENSITIVE }]).map((a) => (a.value as Buffer)[0]);
    return !!ext || !sens;
  }

  /** The open connection, reopening a broken one if the last try was long enough ago. */
  private use(): Conn {
    if (this.conn) return this.conn;
    const now = Date.now();
    if (now < this.nextTry) throw new FleetkeyError('kek_unavailable', `the HSM holding the KEK is unavailable (${this.lastError})`);
    this.nextTry = now + RECONNECT_MS;
    try {
      this.conn = this.connect();
      return this.conn;
    } catch (e) {
      this.lastError = e instanceof FleetkeyError ? e.message : ckr(e);
      throw new FleetkeyError('kek_unavailable', `the HSM holding the KEK is unavailable (${this.lastError})`);
    }
  }

  /** One cipher operation; a failure that is not about the data breaks the connection. */
  private run<T>(what: string, fn: (c: Conn) => T, dataError?: () => never): T {
    const conn = this.use();
    try {
      return fn(conn);
    } catch (e) {
      const code = ckr(e);
      // SoftHSM2 says CKR_GENERAL_ERROR for a GCM tag that does not verify: a round trip tells
      // "these bytes do not open" (the HSM works) from "the HSM is gone".
      if (dataError && (DATA_ERRORS.has(code) || this.roundTrips(conn))) dataError();
      this.conn = undefined;
      this.lastError = `${what}: ${code}`;
      this.nextTry = 0;
      throw new FleetkeyError('kek_unavailable', `the HSM holding the KEK is unavailable (${this.lastError})`);
    }
  }

  /** Whether the HSM still seals and opens a random block under the KEK. */
  private roundTrips({ session, key }: Conn): boolean {
    try {
      const iv = Buffer.from(randomBytes(12));
      const probe = Buffer.from(randomBytes(16));
      const aad = Buffer.from('fleetkey probe');
      this.mod.C_EncryptInit(session, this.gcm(iv, aad), key);
      const ct = this.mod.C_Encrypt(session, probe, Buffer.alloc(32));
      this.mod.C_DecryptInit(session, this.gcm(iv, aad), key);
      return this.mod.C_Decrypt(session, ct, Buffer.alloc(32)).equals(probe);
    } catch {
      return false;
    }
  }

  private gcm(iv: Buffer, aad: Buffer) {
    return { mechanism: this.p.CKM_AES_GCM, parameter: { type: this.p.CK_PARAMS_AES_GCM, iv, ivBits: 96, aad, tagBits: 128 } as P.GcmParams };
  }

  readonly sealer: Sealer = {
    seal: (plaintext, context) => {
      const iv = Buffer.from(randomBytes(12));
      const ct = this.run('C_Encrypt', ({ session, key }) => {
        this.mod.C_EncryptInit(session, this.gcm(iv, Buffer.from(utf8ToBytes(context))), key);
        return this.mod.C_Encrypt(session, Buffer.from(plaintext), Buffer.alloc(plaintext.length + 16));
      });
      return base64.encode(concatBytes(iv, ct));
    },
    open: (sealed, context) => {
      const raw = base64.decode(sealed);
      const refuse = (): never => {
        throw new FleetkeyError('decrypt_failed', `sealed record ${context.split('|')[0]} does not open under this key`);
      };
      if (raw.length < 12 + 16) refuse();
      const pt = this.run(
        'C_Decrypt',
        ({ session, key }) => {
          this.mod.C_DecryptInit(session, this.gcm(Buffer.from(raw.subarray(0, 12)), Buffer.from(utf8ToBytes(context))), key);
          return this.mod.C_Decrypt(session, Buffer.from(raw.subarray(12)), Buffer.alloc(raw.length - 12));
        },
        refuse,
      );
      return new Uint8Array(pt);
    },
  };

  /**
   * The nonce ledger's HMAC root key: random, made once, kept in `file` sealed under the HSM key
   * (mode 0600). A file that does not open under this key stops the start.
   */
  ledgerKey(file: string): Uint8Array {
    let sealed: string | undefined;
    try {
      sealed = readFileSync(file, 'utf8').trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (sealed === undefined) {
      const key = randomBytes(32);
      writeFileSync(file, this.sealer.seal(key, 'ledger-key') + '\n', { mode: 0o600, flag: 'wx' });
      return key;
    }
    return this.sealer.open(sealed, 'ledger-key');
  }

  /** Why the KEK cannot be used now (undefined: it opens `sealedIdentity`). Reconnects if due. */
  check(sealedIdentity: string): string | undefined {
    try {
      this.sealer.open(sealedIdentity, 'identity');
      return undefined;
    } catch (e) {
      if (e instanceof FleetkeyError && e.code === 'decrypt_failed') return 'shares cannot be unsealed: the HSM key does not open this node\'s sealed identity';
      return `kek_unavailable: ${this.lastError || 'the HSM holding the KEK is unavailable'}`;
    }
  }

  close(): void {
    try {
      this.mod.C_Finalize();
    } catch {
      // Already finalised or gone.
    }
    try {
      this.mod.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * The attributes of a KEK made by `fleetkey kek create`: AES-256 on the token, private, sensitive,
 * not extractable, for encrypt and decrypt only.
 */
export function kekTemplate(p: Lib, label: string): P.Template {
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_VALUE_LEN, value: 32 },
    { type: p.CKA_LABEL, value: label },
    ...[p.CKA_TOKEN, p.CKA_PRIVATE, p.CKA_SENSITIVE, p.CKA_ENCRYPT, p.CKA_DECRYPT].map((type) => ({ type, value: true })),
    ...[p.CKA_EXTRACTABLE, p.CKA_WRAP, p.CKA_UNWRAP, p.CKA_SIGN, p.CKA_VERIFY, p.CKA_DERIVE].map((type) => ({ type, value: false })),
  ];
}

/**
 * `fleetkey kek create`: generates the KEK inside the HSM, AES-256, on the token (CKA_TOKEN),
 * private, sensitive and not extractable, allowed only to encrypt and decrypt. Refuses a label in use.
 */
export async function createHsmKey(config: Pkcs11Config): Promise<void> {
  let hsm: HsmKek | undefined;
  try {
    hsm = await HsmKek.open(config);
  } catch (e) {
    if (!(e instanceof FleetkeyError && e.code === 'not_found')) throw e;
  }
  if (hsm) {
    hsm.close();
    throw new FleetkeyError('conflict', `PKCS#11 key "${config.keyLabel}" already exists: a signer's shares may be sealed under it, never replace it`);
  }
  const p = await loadLib();
  const mod = new p.PKCS11();
  mod.load(config.module);
  try {
    mod.C_Initialize();
    // Present: HsmKek.open found the token and logged in before it looked for the key.
    const slot = mod.C_GetSlotList(true).find((s) => (config.token !== undefined ? mod.C_GetTokenInfo(s).label.trimEnd() === config.token : s.readBigUInt64LE() === config.slot))!;
    const session = mod.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    mod.C_Login(session, p.CKU_USER, readPin(config.pinFile));
    mod.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, kekTemplate(p, config.keyLabel));
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    throw new FleetkeyError('kek_unavailable', `PKCS#11 key generation failed (${ckr(e)})`);
  } finally {
    try {
      mod.C_Finalize();
    } catch {
      // Already finalised.
    }
    mod.close();
  }
}
