/**
 * The signed, encrypted envelope every protocol message between signer nodes travels in. The
 * server relays envelopes but can neither forge one (each is signed with its sender node's
 * Ed25519 identity key, pinned in the cluster's peer list) nor read a direct one (each is sealed
 * to its recipient with XChaCha20-Poly1305 under a key from X25519 + HKDF-SHA256, bound to the
 * session, round and both node ids). The sealed plaintext is the body in the compact binary form
 * of wire.ts (long hex fields as raw bytes), and the ciphertext travels as base64.
 *
 * Signatures are made and checked with the control plane's Ed25519 (libsodium in the signer and the
 * server, noble elsewhere; src/control/fast-verify.ts).
 *
 * The signature covers a domain-separated SHA-256 of the canonical JSON of every field, so a
 * message cannot be moved to another session, round, sender or recipient.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { canonicalJson } from '../audit/canonical.ts';
import { signBytes, verifyEd25519 } from '../control/keys.ts';
import type { Json } from '../crypto/types.ts';
import { FleetkeyError } from '../errors.ts';
import { packBody, unpackBody } from './wire.ts';

export type ProtocolKind = 'dkg' | 'refresh' | 'sign' | 'reshare' | 'pairs' | 'result' | 'custody';

export interface Envelope {
  v: 1;
  session: string;
  kind: ProtocolKind;
  round: number;
  from: string;
  /** Set for direct messages only. */
  to?: string;
  /** A broadcast body, or `{ nonce, ct }` for a direct message. */
  body: Json;
  sig: string;
}

export interface NodeKeys {
  nodeId: string;
  signSecret: Uint8Array;
  encSecret: Uint8Array;
}

export interface PeerInfo {
  nodeId: string;
  url: string;
  signPub: string;
  encPub: string;
}

const DOMAIN = utf8ToBytes('fleetkey/v1/envelope\0');

function digest(e: Omit<Envelope, 'sig'>): Uint8Array {
  return sha256(concatBytes(DOMAIN, utf8ToBytes(canonicalJson(e))));
}

export function signEnvelope(e: Omit<Envelope, 'sig'>, keys: NodeKeys): Envelope {
  if (e.from !== keys.nodeId) throw new Error('envelope sender must be this node');
  return { ...e, sig: signBytes(digest(e), keys.signSecret, 'ed25519') };
}

/** Throws `bad_signature` unless `e` was signed by `peer`'s pinned identity key. */
export function verifyEnvelope(e: Envelope, peer: PeerInfo): void {
  const { sig, ...rest } = e;
  let ok = false;
  try {
    ok = typeof sig === 'string' && sig.length === 128 && verifyEd25519(hexToBytes(sig), digest(rest), hexToBytes(peer.signPub));
  } catch {
    ok = false;
  }
  if (!ok) throw new FleetkeyError('bad_signature', `envelope from ${e.from} does not carry a valid signature`, { details: { from: e.from, session: e.session, round: e.round } });
}

/**
 * X25519 and XChaCha20-Poly1305 (IETF: 24-byte nonce, tag appended) behind direct messages: noble
 * unless a process installs libsodium's with `useDirectCrypto` (the signer and the server do:
 * src/control/fast-verify.ts; the SDK, which verifies envelopes but never opens one, keeps noble).
 * Both are the same functions byte for byte (test/signer/envelope.test.ts compares them); in a
 * DKLs23 signing, where every round carries direct messages of tens of kilobytes, noble's X25519 and
 * ChaCha20 were a sixth of a signer's CPU.
 */
export type DirectCrypto = {
  /** X25519(secret, public); throws on an all-zero result (a small-order public key). */
  x25519(secret: Uint8Array, pub: Uint8Array): Uint8Array;
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Throws unless the tag verifies. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
};
export const nobleDirectCrypto: DirectCrypto = {
  x25519: (secret, pub) => x25519.getSharedSecret(secret, pub),
  seal: (key, nonce, ad, pt) => xchacha20poly1305(key, nonce, ad).encrypt(pt),
  open: (key, nonce, ad, ct) => xchacha20poly1305(key, nonce, ad).decrypt(ct),
};
let direct = nobleDirectCrypto;
export function useDirectCrypto(c: DirectCrypto): void {
  direct = c;
}

function directKey(keys: NodeKeys, peerEncPub: string, session: string, a: string, b: string): Uint8Array {
  const shared = direct.x25519(keys.encSecret, hexToBytes(peerEncPub));
  // Both directions derive the same key; direction is bound by the associated data instead.
  const [lo, hi] = a < b ? [a, b] : [b, a];
  try {
    return hkdf(sha256, shared, utf8ToBytes(session), utf8ToBytes(`fleetkey/v1/direct|${lo}|${hi}`), 32);
  } finally {
    shared.fill(0);
  }
}

function aad(h: { session: string; kind: string; round: number; from: string; to: string }): Uint8Array {
  return utf8ToBytes(canonicalJson(h));
}

export function sealDirect(body: Json, h: { session: string; kind: ProtocolKind; round: number; to: string }, keys: NodeKeys, peer: PeerInfo): Json {
  const key = directKey(keys, peer.encPub, h.session, keys.nodeId, h.to);
  const nonce = randomBytes(24);
  const ct = direct.seal(key, nonce, aad({ ...h, from: keys.nodeId }), packBody(body));
  key.fill(0);
  return { nonce: bytesToHex(nonce), ct: base64.encode(ct) };
}

export function openDirect(e: Envelope, keys: NodeKeys, peer: PeerInfo): Json {
  const b = e.body as { nonce?: unknown; ct?: unknown };
  if (typeof b?.nonce !== 'string' || typeof b?.ct !== 'string' || !/^[0-9a-f]{48}$/.test(b.nonce) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b.ct))
    throw new FleetkeyError('decrypt_failed', `direct message from ${e.from} is not a sealed box`);
  const key = directKey(keys, peer.encPub, e.session, e.from, keys.nodeId);
  try {
    // base64.decode is strict (padding, no stray characters); the AEAD tag is checked before any
    // plaintext is used, and unpackBody refuses anything packBody cannot have produced.
    const pt = direct.open(key, hexToBytes(b.nonce), aad({ session: e.session, kind: e.kind, round: e.round, from: e.from, to: keys.nodeId }), base64.decode(b.ct));
    return unpackBody(pt);
  } catch {
    throw new FleetkeyError('decrypt_failed', `direct message from ${e.from} does not open`, { details: { from: e.from, session: e.session, round: e.round } });
  } finally {
    key.fill(0);
  }
}

export function newNodeKeys(nodeId: string): NodeKeys {
  return { nodeId, signSecret: ed25519.utils.randomSecretKey(), encSecret: x25519.utils.randomSecretKey() };
}

/** A node's public identity (two scalar multiplications: a signer derives it once, SignerNode.identity). */
export function publicOf(keys: NodeKeys): { nodeId: string; signPub: string; encPub: string } {
  return { nodeId: keys.nodeId, signPub: bytesToHex(ed25519.getPublicKey(keys.signSecret)), encPub: bytesToHex(x25519.getPublicKey(keys.encSecret)) };
}

/** Hash that names a public package; what every party signs to say "I ended with this". */
export function publicHash(v: unknown): string {
  return bytesToHex(sha256(concatBytes(utf8ToBytes('fleetkey/v1/public\0'), utf8ToBytes(canonicalJson(v)))));
}
