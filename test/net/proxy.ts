/**
 * A user-space TCP proxy that stands for the network between two hosts (this kernel has no netem).
 * Every chunk is delivered, in order, `latencyMs` (+ up to `jitterMs`) after it arrived; with
 * probability `stallProbability` a chunk is held `stallMs` longer, as a lost segment is until its
 * retransmission; with probability `resetProbability` a new connection is cut at once. All of it
 * can be changed while connections are open. Bytes are never altered or dropped from a stream:
 * TCP would not do that either, it would stall.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Impairment {
  /** One-way delay added to every chunk, in each direction. */
  latencyMs: number;
  jitterMs: number;
  stallProbability: number;
  stallMs: number;
  resetProbability: number;
}

export const CLEAN: Impairment = { latencyMs: 0, jitterMs: 0, stallProbability: 0, stallMs: 0, resetProbability: 0 };

export class DelayProxy {
  impairment: Impairment = { ...CLEAN };
  private readonly sockets = new Set<Socket>();
  bytes = 0;
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listens on `listenHost` (port 0: any free port) and forwards every connection to target. */
  static async start(listenHost: string, target: { host: string; port: number }, listenPort = 0): Promise<DelayProxy> {
    let self: DelayProxy | undefined;
    const server = createServer((client) => self!.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost, port: listenPort }, () => resolve());
    });
    const addr = server.address();
    self = new DelayProxy(server, listenHost, typeof addr === 'object' && addr ? addr.port : listenPort);
    return self;
  }

  set(i: Partial<Impairment>): void {
    this.impairment = { ...this.impairment, ...i };
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    this.connections++;
    const upstream = createConnection({ host: target.host, port: target.port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
      // Either side failing ends both, as a broken path does; an error is never thrown out of here.
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    if (Math.random() < this.impairment.resetProbability) {
      client.resetAndDestroy();
      upstream.destroy();
      return;
    }
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Copies from -> to, each chunk after its delay, never out of order; half-closes follow the data. */
  private pipe(from: Socket, to: Socket): void {
    let last = 0;
    const later = (at: number, f: () => void) => {
      // Order is kept by never scheduling a chunk before the previous one.
      last = Math.max(at, last);
      const wait = last - performance.now();
      if (wait <= 0) f();
      else setTimeout(f, wait);
    };
    const delay = () => {
      const i = this.impairment;
      return i.latencyMs + Math.random() * i.jitterMs + (Math.random() < i.stallProbability ? i.stallMs : 0);
    };
    from.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      const d = delay();
      if (d <= 0 && last <= performance.now()) return void (to.destroyed || to.write(chunk));
      later(performance.now() + d, () => to.destroyed || to.write(chunk));
    });
    from.on('end', () => later(performance.now(), () => to.destroyed || to.end()));
  }

  /** Cuts every open connection (as a host that vanished would, from this side). */
  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.cutAll();
    await closed;
  }
}

/** A plain forwarder with no impairment (PostgreSQL on loopback, reached from the namespaces). */
export function forwarder(listenHost: string, listenPort: number, target: { host: string; port: number }): Promise<DelayProxy> {
  return DelayProxy.start(listenHost, target, listenPort);
}
