/**
 * A signer node's rules for DKLs23 signing sessions that bound what a cheating co-signer can learn
 * (issue 16; src/crypto/dkls23/README.md, "What an abort can leak"). A pair's OT-extension secret Δ
 * is long-lived, and each KOS / RVOLE / Γ-check abort can tell the peer that caused it about one bit
 * of it, so:
 *
 * 1. **Ban on abort, synchronously.** `ban()` records the ban in memory before it returns (the
 *    caller calls it in the same synchronous step in which the protocol threw, so no other input is
 *    handled in between) and returns every open session of that wallet root that involves the
 *    culprit, for the caller to abandon at once. The durable write is then awaited (`record()`); if
 *    it fails, the node refuses every DKLs23 signing with anyone (`ban_unrecorded`) until a retry of
 *    the write succeeds (`flush()`, at each signing start).
 * 2. **One in-flight signing per peer pair.** `claim()` refuses a second open signing session of a
 *    wallet root with the same peer (`session_busy`), so a peer cannot run many probes in parallel.
 *
 * In memory only; the durable bans are SignerStore's `peer_bans` (checked at every start). Pure of
 * I/O except through the store passed in.
 */
import { FleetkeyError } from '../errors.ts';
import type { SignerStore } from '../store/signer-store.ts';

interface Slot {
  root: string;
  epoch: number;
  /** The session's other signers (node ids). */
  peers: readonly string[];
  /** Set when a ban on one of `peers` arrived while the session was open: it must not go on. */
  revoked?: string;
}

interface PendingBan {
  root: string;
  epoch: number;
  nodeId: string;
  reason: string;
}

const key = (root: string, epoch: number) => `${root}|${epoch}`;

function bannedError(root: string, peer: string): FleetkeyError {
  return new FleetkeyError('protocol_state', `this node does not sign wallet ${root} with ${peer} until the wallet is refreshed (an earlier signing aborted on it)`, { details: { bannedPeer: peer } });
}

export class Dkls23Guard {
  /** Bans by root wallet and epoch (a refresh starts clean: its epoch has none). */
  private bans = new Map<string, Set<string>>();
  /** Bans whose durable write failed; while any is here, no DKLs23 signing starts. */
  private unrecorded = new Map<string, PendingBan>();
  /** Open (or starting) signing sessions by session id. */
  private open = new Map<string, Slot>();

  /**
   * Registers signing session `id` of wallet `root` at `epoch` with `peers`, or throws: fail-closed
   * (a ban is not durable yet), a peer banned (in memory, or in `durableBans` as read from the store
   * just before), or a peer already in another open signing session of this root. Synchronous, so
   * two starts cannot both pass the check.
   */
  claim(id: string, root: string, epoch: number, peers: readonly string[], durableBans: readonly string[]): void {
    if (this.unrecorded.size) throw this.failClosed();
    const banned = peers.find((p) => durableBans.includes(p) || this.bans.get(key(root, epoch))?.has(p));
    if (banned) throw bannedError(root, banned);
    for (const [other, s] of this.open) {
      if (s.root !== root) continue;
      const shared = peers.find((p) => s.peers.includes(p));
      if (shared)
        throw new FleetkeyError('session_busy', `this node already has a signing session of wallet ${root} with ${shared} open; one at a time per peer`, { details: { busyPeer: shared, session: other } });
    }
    this.open.set(id, { root, epoch, peers: [...peers] });
  }

  /** Throws if session `id` was revoked by a ban that arrived while it was starting (or is unknown). */
  assertLive(id: string): void {
    const s = this.open.get(id);
    if (!s) throw new FleetkeyError('protocol_state', `signing session ${id} is no longer open`);
    if (s.revoked) throw bannedError(s.root, s.revoked);
    if (this.unrecorded.size) throw this.failClosed();
  }

  /** The session ended (finished, abandoned or expired). */
  release(id: string): void {
    this.open.delete(id);
  }

  /**
   * Bans `culprit` for `root` at `epoch` in memory, now. Returns the ids of every other open signing
   * session of that root involving the culprit (whatever its epoch): the caller abandons them before
   * it handles anything else. Each is also marked revoked, so a start still in progress stops.
   */
  ban(root: string, epoch: number, culprit: string): string[] {
    const k = key(root, epoch);
    const set = this.bans.get(k) ?? new Set<string>();
    set.add(culprit);
    this.bans.set(k, set);
    const hit: string[] = [];
    for (const [id, s] of this.open)
      if (s.root === root && s.peers.includes(culprit)) {
        s.revoked = culprit;
        hit.push(id);
      }
    return hit;
  }

  /** Writes a ban durably. On failure the node fails closed (see `flush`); resolves either way, reporting whether it was written. */
  async record(store: SignerStore, root: string, epoch: number, culprit: string, reason: string): Promise<boolean> {
    const p: PendingBan = { root, epoch, nodeId: culprit, reason };
    this.unrecorded.set(`${key(root, epoch)}|${culprit}`, p);
    return this.flush(store).then(
      () => true,
      () => false,
    );
  }

  /** Retries every ban not yet durable; throws `ban_unrecorded` if one still cannot be written. */
  async flush(store: SignerStore): Promise<void> {
    for (const [k, b] of [...this.unrecorded]) {
      try {
        await store.banPeer(b.root, b.epoch, b.nodeId, b.reason);
      } catch {
        throw this.failClosed();
      }
      this.unrecorded.delete(k);
    }
  }

  private failClosed(): FleetkeyError {
    return new FleetkeyError('ban_unrecorded', 'this node could not record a peer ban durably; it signs threshold ECDSA with nobody until it can', { details: { pending: this.unrecorded.size } });
  }
}
