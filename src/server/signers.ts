/**
 * The server's view of the signer nodes: who they are (the pinned peer list), whether they answer,
 * and one call helper that turns network failures and signer errors into FleetkeyErrors that say
 * which node failed. Health is tracked passively (a failed call marks a node down) and actively
 * (a background probe brings it back when /healthz answers again).
 */
import { FleetkeyError, type ErrorCode } from '../errors.ts';
import type { PeerInfo } from '../signer/envelope.ts';

export type NodeStatus = 'up' | 'down' | 'quarantined';

/** A failed call to a signer, with the node to blame and whether retrying elsewhere makes sense. */
export class SignerCallError extends FleetkeyError {
  constructor(
    readonly nodeId: string,
    code: ErrorCode,
    message: string,
    readonly remoteCode?: string,
    readonly remoteStatus?: number,
    readonly remoteDetails?: Record<string, unknown>,
  ) {
    super(code, message, { details: { nodeId, ...(remoteCode ? { remoteCode } : {}) } });
  }
  /** Network failure, timeout or 5xx: the node is unhealthy, try another. */
  get unavailable(): boolean {
    return this.remoteStatus === undefined || this.remoteStatus >= 500;
  }
}

export class SignerPool {
  private status = new Map<string, NodeStatus>();
  /** Nodes caught cheating: never chosen again until an operator restarts the server. */
  private quarantined = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly loadPeers: () => PeerInfo[],
    private readonly token: string,
    private readonly timeoutMs = 5000,
    /** How calls travel: global fetch (plain HTTP), or pinned mutual TLS (src/tls/mtls.ts fetchWith). */
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  peers(): PeerInfo[] {
    return this.loadPeers();
  }

  peer(nodeId: string): PeerInfo {
    const p = this.peers().find((x) => x.nodeId === nodeId);
    if (!p) throw new FleetkeyError('unknown_node', `node ${nodeId} is not in the cluster`);
    return p;
  }

  statusOf(nodeId: string): NodeStatus {
    if (this.quarantined.has(nodeId)) return 'quarantined';
    return this.status.get(nodeId) ?? 'up';
  }

  quarantine(nodeId: string): void {
    this.quarantined.add(nodeId);
  }

  markDown(nodeId: string): void {
    this.status.set(nodeId, 'down');
  }

  isUp(nodeId: string): boolean {
    return this.statusOf(nodeId) === 'up';
  }

  async call<T>(nodeId: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const peer = this.peer(nodeId);
    let res: Response;
    try {
      res = await this.fetchImpl(peer.url + path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      this.markDown(nodeId);
      const timeout = (e as Error).name === 'TimeoutError';
      throw new SignerCallError(nodeId, timeout ? 'timeout' : 'signer_unavailable', `signer ${nodeId} ${timeout ? 'timed out' : 'is unreachable'}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      this.markDown(nodeId);
      throw new SignerCallError(nodeId, 'signer_unavailable', `signer ${nodeId} sent a non-JSON answer`, undefined, res.status);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }).error ?? {};
      if (res.status >= 500) this.markDown(nodeId);
      else this.status.set(nodeId, 'up');
      const code: ErrorCode = res.status >= 500 ? 'signer_unavailable' : ((err.code as ErrorCode) ?? 'bad_request');
      throw new SignerCallError(nodeId, code, `signer ${nodeId}: ${err.message ?? res.statusText}`, err.code, res.status, err.details);
    }
    this.status.set(nodeId, 'up');
    return json as T;
  }

  /** Probes one node's /healthz (unauthenticated) and records the answer. */
  async probe(nodeId: string, timeoutMs = 1000): Promise<NodeStatus> {
    try {
      const res = await this.fetchImpl(this.peer(nodeId).url + '/healthz', { signal: AbortSignal.timeout(timeoutMs) });
      const ok = res.ok && ((await res.json()) as { nodeId?: string }).nodeId === nodeId;
      this.status.set(nodeId, ok ? 'up' : 'down');
    } catch {
      this.status.set(nodeId, 'down');
    }
    return this.statusOf(nodeId);
  }

  /** Re-probes down nodes every `everyMs`, and runs `tick` (e.g. owed commits) after each pass. */
  startProbing(everyMs: number, tick?: () => Promise<void>): void {
    const run = async () => {
      await Promise.all(this.peers().filter((p) => !this.isUp(p.nodeId)).map((p) => this.probe(p.nodeId)));
      if (tick) await tick().catch(() => undefined);
      this.timer = setTimeout(run, everyMs);
      this.timer.unref();
    };
    this.timer = setTimeout(run, everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
