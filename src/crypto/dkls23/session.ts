/**
 * Message envelopes and round bookkeeping shared by DKG, refresh and signing.
 *
 * Every message carries {sid, round, from[, to]} and is accepted only if all four match: the session
 * id `sid` is a hash of the caller's sessionId *and* every public parameter of the run (protocol,
 * party set, threshold, key, message), so a message from another session — or from the same
 * sessionId with different parameters — is rejected, and a message replayed from an earlier round
 * (or fed twice) fails the round check. The sid is also hashed into every commitment, proof,
 * OT and PRG of the run (the DKLs23 "sid" of each functionality call).
 */
import { ProtocolError, type Json, type RoundInput } from '../types.ts';
import { H, be32, bytesToHex, isObj, utf8ToBytes } from './util.ts';

export function sessionIdBytes(sessionId: unknown): Uint8Array {
  if (sessionId instanceof Uint8Array && sessionId.length > 0 && sessionId.length <= 1024) return sessionId.slice();
  if (typeof sessionId === 'string' && sessionId.length > 0 && sessionId.length <= 1024) return utf8ToBytes(sessionId);
  throw new ProtocolError('sessionId must be a non-empty string or Uint8Array (≤ 1024 bytes)');
}

export function validateParties(parties: unknown, what = 'parties'): number[] {
  if (!Array.isArray(parties) || parties.length < 2 || parties.length > 255) throw new ProtocolError(`${what}: need 2..255 party indices`);
  for (const p of parties) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new ProtocolError(`${what}: index ${String(p)} not an integer in 1..65535`);
  const sorted = [...parties].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) throw new ProtocolError(`${what}: duplicate index ${sorted[i]}`);
  return sorted;
}

export const encIndices = (xs: number[]) => xs.map(be32);

export class Session {
  readonly sid: Uint8Array;
  readonly sidHex: string;
  readonly peers: number[];
  private next = 1;
  private aborted = false;
  constructor(
    kind: string,
    sessionId: Uint8Array,
    binding: Uint8Array[],
    readonly self: number,
    readonly parties: number[],
    readonly rounds: number,
  ) {
    this.sid = H('session/' + kind, sessionId, ...binding);
    this.sidHex = bytesToHex(this.sid);
    this.peers = parties.filter((p) => p !== self);
  }
  /** Enforce strictly sequential rounds: round(r) once each, then finish once. */
  enter(r: number | 'finish'): void {
    if (this.aborted) throw new ProtocolError('protocol object already aborted; start a new session');
    const want = r === 'finish' ? this.rounds + 1 : r;
    if (this.next > this.rounds + 1) throw new ProtocolError('protocol already finished');
    if (want !== this.next) throw new ProtocolError(`round ${String(r)} called out of order (expected ${this.next === this.rounds + 1 ? 'finish' : this.next})`);
    if (r !== 'finish' && (r < 1 || r > this.rounds)) throw new ProtocolError(`no round ${r}`);
    this.next++;
  }
  /** After any error the object is dead: its secrets are wiped and no further round is accepted. */
  abort(): void {
    this.aborted = true;
  }
  bcast(round: number, body: Json): Json {
    return { sid: this.sidHex, round, from: this.self, body };
  }
  direct(round: number, to: number, body: Json): Json {
    return { sid: this.sidHex, round, from: this.self, to, body };
  }
  private open(kind: 'broadcast' | 'direct', round: number, msgs: Record<number, Json> | undefined): Map<number, unknown> {
    const out = new Map<number, unknown>();
    const box = msgs ?? {};
    for (const key of Object.keys(box)) {
      const k = Number(key);
      if (k === this.self) continue; // our own broadcast echoed back is ignored
      if (!this.peers.includes(k)) throw new ProtocolError(`${kind} message from ${key}, who is not in this session`);
    }
    for (const j of this.peers) {
      const m = box[j];
      if (m === undefined) throw new ProtocolError(`missing round ${round} ${kind} message from party ${j}`, j);
      if (!isObj(m)) throw new ProtocolError(`malformed ${kind} message`, j);
      if (m.sid !== this.sidHex) throw new ProtocolError(`${kind} message from party ${j} belongs to another session`, j);
      if (m.round !== round) throw new ProtocolError(`${kind} message from party ${j} is for round ${String(m.round)}, not ${round} (replay?)`, j);
      if (m.from !== j) throw new ProtocolError(`${kind} message in party ${j}'s slot claims sender ${String(m.from)}`, j);
      if (kind === 'direct' ? m.to !== this.self : 'to' in m) throw new ProtocolError(`${kind} message from party ${j} has the wrong recipient`, j);
      if (!('body' in m)) throw new ProtocolError(`${kind} message without body`, j);
      out.set(j, m.body);
    }
    return out;
  }
  broadcasts(round: number, input: RoundInput): Map<number, unknown> {
    return this.open('broadcast', round, input?.broadcast);
  }
  directs(round: number, input: RoundInput): Map<number, unknown> {
    return this.open('direct', round, input?.direct);
  }
}

/** Pairwise sub-session id for the ordered pair (alice, bob). */
export function pairSid(sid: Uint8Array, tag: string, alice: number, bob: number): Uint8Array {
  return H('pair/' + tag, sid, be32(alice), be32(bob));
}
