/**
 * Child public keys of a fleet root, for enrolment: what the server stores per device wallet.
 *
 * secp256k1 schemes use the batch BIP32 CKDpub of src/crypto/derive.ts (`deriveSecpChildKeys`:
 * a private fixed-base table, variable-time multiplication of public tweaks, one batched
 * inversion), on `node:worker_threads` when the batch is large enough to pay for the workers;
 * `ecdsa-secp256k1` on the group key X itself (as dkls23/derive.ts tweaks it), `secp256k1-schnorr`
 * on its BIP32 key K followed by the BIP341 TapTweak (the stored key is the x-only output key,
 * as for a root wallet). Ed25519 children use fleetkey's additive tweak in a batch form
 * (`edChildren`, in the calling thread). Every key equals what
 * `schemeOf(scheme).deriveChildPublic(group, index).publicKey` gives, which is what each signer
 * derives with its share (tested).
 */
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ed25519 } from '@noble/curves/ed25519.js';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { bytesToNumberLE, concatBytes } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { deriveSecpChildKeys, secpFixedBase, secpNodeOf } from '../crypto/derive.ts';
import { schemeOf } from '../crypto/schemes.ts';
import type { GroupPublic } from '../crypto/types.ts';
import { FleetkeyError } from '../errors.ts';

/** The public facts a derivation needs: the root's scheme and group record. */
export interface FleetRoot {
  scheme: string;
  group: GroupPublic;
}

/** One derived child: its index and public key (the bytes the wallet's `publicKey` is the hex of). */
export interface ChildKey {
  index: number;
  publicKey: Uint8Array;
}

/** What a worker is given: a BIP32 node and a range. */
export interface SecpJob {
  bip32Key: Uint8Array;
  chainCode: Uint8Array;
  taproot: boolean;
  from: number;
  count: number;
}

const WINDOW = 8;
/** Jobs per worker message; also the size below which the main thread derives alone. */
export const JOB_SIZE = 4096;

let mainBase: ReturnType<typeof secpFixedBase> | undefined;

function secpJob(root: FleetRoot, from: number, count: number): SecpJob {
  if (root.scheme === 'ecdsa-secp256k1') {
    return { bip32Key: hexToBytes(root.group.publicKey), chainCode: hexToBytes(String(root.group.extra?.chainCode ?? '')), taproot: false, from, count };
  }
  return { ...secpNodeOf(root.group), taproot: true, from, count };
}

/** Runs one job (in a worker or the main thread): children in index order, BIP32-invalid indexes left out. */
export function runSecpJob(job: SecpJob, base: ReturnType<typeof secpFixedBase>): ChildKey[] {
  const r = deriveSecpChildKeys(job.bip32Key, job.chainCode, job.from, job.count, { taproot: job.taproot, base });
  const bad = new Set(r.invalid);
  const out: ChildKey[] = [];
  for (let j = 0; j < job.count; j++) {
    if (bad.has(job.from + j)) continue; // BIP32: no key at this index (probability ~2^-127)
    out.push({ index: job.from + j, publicKey: job.taproot ? r.outputKeys!.slice(j * 32, j * 32 + 32) : r.keys.slice(j * 33, j * 33 + 33) });
  }
  return out;
}

/**
 * Ed25519 children in a batch: fleetkey's additive tweak as derive.ts defines it,
 * t_i = int_LE(HMAC-SHA512(c, A ‖ ser_32(i))) mod L, A_i = A + t_i·B, with one HMAC key schedule
 * and one batched normalisation. The first index is also derived by the scheme's own
 * `deriveChildPublic` and compared, so the two definitions cannot drift apart unnoticed.
 */
function edChildren(gp: GroupPublic, from: number, count: number): ChildKey[] {
  if (count === 0) return [];
  const Ed = ed25519.Point;
  const A = Ed.fromHex(gp.publicKey);
  const data = concatBytes(A.toBytes(), new Uint8Array(4));
  const mac = hmac.create(sha512, hexToBytes(String(gp.extra?.chainCode ?? '')));
  const view = new DataView(data.buffer, data.byteOffset + 32, 4);
  const pts = Array.from({ length: count }, (_, j) => {
    view.setUint32(0, from + j, false);
    return A.add(Ed.BASE.multiplyUnsafe(Ed.Fn.create(bytesToNumberLE(mac.clone().update(data).digest()))));
  });
  const out: ChildKey[] = [];
  normalizeZ(Ed, pts).forEach((P, j) => P.is0() || out.push({ index: from + j, publicKey: P.toBytes() }));
  if (out[0] && bytesToHex(out[0].publicKey) !== schemeOf('ed25519').deriveChildPublic(gp, out[0].index).publicKey)
    throw new FleetkeyError('internal', 'batch Ed25519 derivation disagrees with deriveChildPublic');
  return out;
}

/** Children [from, from + count) in the calling thread. */
export function deriveChildrenInline(root: FleetRoot, from: number, count: number): ChildKey[] {
  if (root.scheme === 'ed25519') return edChildren(root.group, from, count);
  if (root.scheme !== 'ecdsa-secp256k1' && root.scheme !== 'secp256k1-schnorr') throw new FleetkeyError('unsupported', `no child derivation for scheme ${root.scheme}`);
  mainBase ??= secpFixedBase(WINDOW);
  return runSecpJob(secpJob(root, from, count), mainBase);
}

/**
 * A small pool of derivation workers (one per core), started on the first large batch and
 * stopped when idle. `derive` hands out jobs of JOB_SIZE and calls `onChunk` as each finishes
 * (not necessarily in index order), so the caller can store one chunk while others are derived.
 */
export class DerivePool {
  private workers: Worker[] = [];
  private starting: Promise<Worker[]> | undefined;
  private idle: NodeJS.Timeout | undefined;
  private busy = 0;

  constructor(readonly size = Math.max(1, cpus().length)) {}

  async derive(root: FleetRoot, from: number, count: number, onChunk: (keys: ChildKey[]) => Promise<void>): Promise<void> {
    if (root.scheme === 'ed25519' || count <= JOB_SIZE) {
      // Ed25519 has no batch form; small secp batches are not worth a worker start-up.
      for (let f = from; f < from + count; f += JOB_SIZE) await onChunk(deriveChildrenInline(root, f, Math.min(JOB_SIZE, from + count - f)));
      return;
    }
    this.busy++;
    clearTimeout(this.idle);
    try {
      const workers = await this.start();
      let next = from;
      const end = from + count;
      let failed: unknown;
      const writes: Promise<void>[] = [];
      // Each worker takes the next job as soon as it answers; storing a chunk overlaps the next derivation.
      await Promise.all(
        workers.map(async (w) => {
          while (next < end && failed === undefined) {
            const job = secpJob(root, next, Math.min(JOB_SIZE, end - next));
            next += job.count;
            const keys = await call(w, job);
            writes.push(onChunk(keys).catch((e) => void (failed ??= e)));
          }
        }),
      );
      await Promise.all(writes);
      if (failed !== undefined) throw failed;
    } finally {
      if (--this.busy === 0) this.idle = setTimeout(() => void this.close(), 30_000).unref();
    }
  }

  private start(): Promise<Worker[]> {
    if (this.workers.length) return Promise.resolve(this.workers);
    this.starting ??= (async () => {
      const ws = Array.from({ length: this.size }, () => spawnWorker({ window: WINDOW }));
      await Promise.all(ws.map((w) => new Promise<void>((ok, fail) => (w.once('message', () => ok()), w.once('error', fail)))));
      this.workers = ws;
      this.starting = undefined;
      return ws;
    })();
    return this.starting;
  }

  async close(): Promise<void> {
    clearTimeout(this.idle);
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * The worker module next to this one: compiled (`dist/…/fleet-derive.worker.js`, the installed package) or the
 * TypeScript source in a checkout, run through tsx. Loader hooks are not inherited by workers on Node 20, so a
 * source worker registers tsx itself first.
 */
function spawnWorker(workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./fleet-derive.worker.js', import.meta.url), { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const self = new URL('./fleet-derive.worker.ts', import.meta.url).href;
  const src = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(self)}); })`;
  return new Worker(src, { eval: true, workerData });
}

function call(w: Worker, job: SecpJob): Promise<ChildKey[]> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => (w.off('message', onMessage), reject(e));
    const onMessage = (r: { keys: ChildKey[] } | { error: string }) => {
      w.off('error', onError);
      if ('error' in r) reject(new FleetkeyError('internal', `derivation worker: ${r.error}`));
      else resolve(r.keys);
    };
    w.once('message', onMessage);
    w.once('error', onError);
    w.postMessage(job);
  });
}
