/**
 * Prometheus metrics (prom-client), one registry per process: never prom-client's global default
 * registry, so two apps in one process (tests) never mix their series.
 *
 * Label cardinality is bounded by construction: every label value comes from a closed set (a
 * stable error code, a scheme name, a signing path, a store operation, a policy outcome) or from
 * the pinned cluster membership (signer node ids). Never a wallet id, a request id, an agent key, a
 * body, or anything derived from key material.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../store/db.ts';

/** Seconds: a local Ed25519 signing takes milliseconds, a DKLs23 signing over a slow link seconds. */
const SIGN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** What every process exports: requests by outcome code, requests in flight, policy decisions, store latency. */
export class ProcessMetrics {
  readonly registry = new Registry();
  /** `code`: "ok" for a 2xx/3xx answer, else the stable error code (src/errors.ts) it carried. */
  readonly requests = new Counter({ name: 'fleetkey_http_requests_total', help: 'HTTP requests answered, by outcome code ("ok" or the stable error code); /healthz, /readyz and /metrics are not counted', labelNames: ['code'] as const, registers: [this.registry] });
  /** Server and every signer run the same check (src/enforce/authorize.ts); each counts its own. */
  readonly policy = new Counter({ name: 'fleetkey_policy_decisions_total', help: "This process's policy decisions on agent requests, by result (allow, deny, needs_approval)", labelNames: ['result'] as const, registers: [this.registry] });
  readonly store = new Histogram({ name: 'fleetkey_store_seconds', help: 'Time spent in the store (Db seam): single statements ("query") and whole transactions ("tx"), queueing included', labelNames: ['op'] as const, buckets: STORE_BUCKETS, registers: [this.registry] });

  private inFlightOf: () => number = () => 0;

  constructor(readonly component: 'server' | 'signer') {
    this.registry.setDefaultLabels({ component });
    const self = this;
    new Gauge({
      name: 'fleetkey_http_requests_in_flight',
      help: 'Requests admitted and not yet answered (the operational routes aside): what a drain waits for',
      registers: [this.registry],
      collect() {
        this.set(self.inFlightOf());
      },
    });
  }

  /** Where the in-flight gauge reads from (the drain gate). */
  countInFlight(of: () => number): void {
    this.inFlightOf = of;
  }

  /** The Prometheus text exposition (format 0.0.4). */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /** Wraps a Db so that every statement and transaction is timed; behaviour is unchanged. */
  timeDb(db: Db): Db {
    const h = this.store;
    const timed =
      <A extends unknown[], R>(op: 'query' | 'tx', fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        const end = h.startTimer({ op });
        try {
          return await fn(...a);
        } finally {
          end();
        }
      };
    return {
      kind: db.kind,
      all: timed('query', db.all.bind(db)),
      run: timed('query', db.run.bind(db)),
      tx: timed('tx', db.tx.bind(db)) as Db['tx'],
      migrate: db.migrate.bind(db),
      close: db.close.bind(db),
    };
  }
}

export type SignPath = 'admin' | 'agent' | 'fleet';

/** The API server's own series: signing latency, signer reachability, nonce pools. */
export class ServerMetrics extends ProcessMetrics {
  readonly signing = new Histogram({ name: 'fleetkey_sign_seconds', help: 'Threshold signing latency (policy check, signer rounds, audit entry), by wallet scheme, path (admin, agent, fleet) and result (signed, failed)', labelNames: ['scheme', 'path', 'result'] as const, buckets: SIGN_BUCKETS, registers: [this.registry] });

  constructor(sources: { signerUp(): { nodeId: string; up: boolean }[]; poolDepth(): Map<string, number> | Promise<Map<string, number>> }) {
    super('server');
    // Gauges are read at scrape time from the live state, so they can never drift from it.
    new Gauge({
      name: 'fleetkey_signer_up',
      help: 'Whether this server currently considers a signer node reachable (1) or not (0), per node of the pinned membership',
      labelNames: ['node'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.signerUp()) this.set({ node: s.nodeId }, s.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fleetkey_nonce_pool_depth',
      help: "Preprocessed nonce commitments in the store (shared by every server on it), summed over wallets, per signer node",
      labelNames: ['node'] as const,
      registers: [this.registry],
      // Async: the pools are rows in the store, shared by every server on it.
      async collect() {
        const depth = await sources.poolDepth();
        this.reset();
        for (const [node, n] of depth) this.set({ node }, n);
      },
    });
  }
}
