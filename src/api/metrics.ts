/**
 * Prometheus metrics (prom-client), one Registry per service instance so tests and several
 * apps in one process never share counters. Two kinds of figures:
 *  - events the components report as they happen (remote requests by status, retries,
 *    WebSocket reconnects, outbox uploads), through the small `record*` methods that
 *    service.ts wires to the components' hooks;
 *  - state read from the store at scrape time (cache counts, staleness, open conflicts, outbox
 *    by status, WebSocket message outcomes, finished runs), so the figures are true even for
 *    work done by another process on the same database.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Clock } from '../core/clock.js';
import type { Store } from '../store/store.js';
import type { StoreStats, SyncState, WsState } from '../store/types.js';
import { WS_OUTCOMES } from '../store/types.js';

interface Snapshot {
  now: number;
  stats: StoreStats;
  state: SyncState;
  ws: WsState;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #runDuration: Histogram<'mode' | 'status' | 'trigger'>;
  readonly #runs: Counter<'mode' | 'status' | 'trigger'>;
  readonly #remoteRequests: Counter<'route' | 'status'>;
  readonly #remoteRetries: Counter<'route'>;
  readonly #wsReconnects: Counter;
  readonly #outboxUploaded: Counter<'kind'>;
  /** Requests served by route and status: plain map counts, copied into the counter at scrape. */
  readonly #httpCounts = new Map<string, Map<number, number>>();
  readonly #store: Store;
  /** Runs finished before this id were observed already (or predate the process). */
  #lastRunId = 0;
  #runsPrimed = false;

  constructor(options: { store: Store; clock: Clock; defaultMetrics?: boolean }) {
    const { store, clock } = options;
    this.#store = store;
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'skillsync_' });

    this.#runDuration = new Histogram({
      name: 'skillsync_sync_run_duration_seconds',
      help: 'Duration of finished sync runs.',
      labelNames: ['mode', 'status', 'trigger'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.#runs = new Counter({
      name: 'skillsync_sync_runs_total',
      help: 'Finished sync runs by outcome.',
      labelNames: ['mode', 'status', 'trigger'],
      registers,
    });
    this.#remoteRequests = new Counter({
      name: 'skillsync_remote_requests_total',
      help: 'Requests (attempts) to the marketplace by route and HTTP status (or error code).',
      labelNames: ['route', 'status'],
      registers,
    });
    this.#remoteRetries = new Counter({
      name: 'skillsync_remote_retries_total',
      help: 'Retried attempts to the marketplace.',
      labelNames: ['route'],
      registers,
    });
    this.#wsReconnects = new Counter({
      name: 'skillsync_ws_reconnects_total',
      help: 'WebSocket connections opened after the first one.',
      registers,
    });
    this.#outboxUploaded = new Counter({
      name: 'skillsync_outbox_uploaded_total',
      help: 'Outbox items the marketplace accepted.',
      labelNames: ['kind'],
      registers,
    });
    // Counted per request into plain maps (prom-client's inc() hashes its labels object on every
    // call, a measurable share of a trivial request); the counter takes the totals when scraped.
    const httpCounts = this.#httpCounts;
    new Counter({
      name: 'skillsync_http_requests_total',
      help: 'Requests served by the local API, by route and status.',
      labelNames: ['route', 'status'],
      registers,
      collect() {
        this.reset();
        for (const [route, byStatus] of httpCounts)
          for (const [status, n] of byStatus) this.inc({ route, status: String(status) }, n);
      },
    });

    // prom-client runs every collect() of a scrape concurrently: they share one snapshot.
    let pending: Promise<Snapshot> | null = null;
    const snapshot = (): Promise<Snapshot> =>
      (pending ??= (async () => {
        const now = clock.now();
        const [stats, state, ws] = await Promise.all([
          store.stats(now),
          store.getSyncState(),
          store.getWsState(),
        ]);
        return { now, stats, state, ws };
      })().finally(() => {
        pending = null;
      }));
    const gauge = (
      name: string,
      help: string,
      read: (s: Snapshot, set: (value: number, labels?: Record<string, string>) => void) => void,
      labelNames: string[] = [],
    ): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const s = await snapshot();
          read(s, (value, labels) => (labels ? this.set(labels, value) : this.set(value)));
        },
      });
    };
    gauge('skillsync_skills_cached', 'Skills in the local store.', (s, set) => set(s.stats.skills));
    gauge('skillsync_skills_stale', 'Cached skills past their TTL (still served).', (s, set) =>
      set(s.stats.staleSkills),
    );
    gauge('skillsync_categories_cached', 'Categories in the local store.', (s, set) =>
      set(s.stats.categories),
    );
    gauge('skillsync_conflicts_open', 'Conflicts waiting for a decision.', (s, set) =>
      set(s.stats.openConflicts),
    );
    // Cumulative totals kept by the store: gauges, because the store (not this process) counts.
    gauge('skillsync_conflicts_detected', 'Conflicts detected since the store was created.', (s, set) =>
      set(s.state.conflictsDetectedTotal),
    );
    gauge('skillsync_conflicts_resolved', 'Conflicts resolved since the store was created.', (s, set) =>
      set(s.state.conflictsResolvedTotal),
    );
    gauge(
      'skillsync_outbox_items',
      'Outbox items by status (pending, in_flight, done, dead).',
      (s, set) => {
        for (const [status, n] of Object.entries(s.stats.outbox)) set(n, { status });
      },
      ['status'],
    );
    gauge('skillsync_cache_oldest_age_seconds', 'Age of the least recently synced skill.', (s, set) =>
      set(s.stats.oldestFetchedAt === null ? 0 : (s.now - s.stats.oldestFetchedAt) / 1000),
    );
    gauge(
      'skillsync_sync_last_success_timestamp_seconds',
      'End of the last successful sync (0 = never).',
      (s, set) => set(s.state.lastSuccessAt === null ? 0 : s.state.lastSuccessAt / 1000),
    );
    gauge(
      'skillsync_sync_seconds_since_success',
      'Seconds since the last successful sync (-1 = never).',
      (s, set) => set(s.state.lastSuccessAt === null ? -1 : (s.now - s.state.lastSuccessAt) / 1000),
    );
    gauge(
      'skillsync_sync_held_deletions',
      'Deletions held by the delete guard, waiting for an operator.',
      (s, set) => set(s.state.heldDeletions),
    );
    gauge('skillsync_ws_connected', '1 when the WebSocket is connected.', (s, set) =>
      set(s.ws.connected ? 1 : 0),
    );
    gauge(
      'skillsync_ws_messages',
      'WebSocket messages by outcome, as counted in the store.',
      (s, set) => {
        for (const outcome of WS_OUTCOMES) set(s.ws.counts[outcome] ?? 0, { outcome });
      },
      ['outcome'],
    );
  }

  async #observeFinishedRuns(store: Store): Promise<void> {
    const { items } = await store.listRuns({ limit: 50, offset: 0 });
    if (!this.#runsPrimed) {
      // Runs recorded before this process started are history, not events of this process.
      this.#runsPrimed = true;
      this.#lastRunId = items.reduce((max, r) => (r.finishedAt !== null ? Math.max(max, r.id) : max), 0);
      const running = items.filter((r) => r.finishedAt === null).map((r) => r.id);
      if (running.length > 0) this.#lastRunId = Math.min(this.#lastRunId, Math.min(...running) - 1);
      return;
    }
    const fresh = items.filter((r) => r.id > this.#lastRunId).sort((a, b) => a.id - b.id);
    for (const run of fresh) {
      if (run.finishedAt === null) break; // keep order: observe later when it finishes
      const labels = { mode: run.mode, status: run.status, trigger: run.trigger };
      this.#runDuration.observe(labels, Math.max(0, run.finishedAt - run.startedAt) / 1000);
      this.#runs.inc(labels);
      this.#lastRunId = run.id;
    }
  }

  /** Primes the run watermark at start so runs of this process are observed on later scrapes. */
  async prime(store: Store): Promise<void> {
    await this.#observeFinishedRuns(store);
  }

  recordRemoteRequest(event: {
    route: string;
    status: number | undefined;
    code?: string | undefined;
    attempt: number;
  }): void {
    this.#remoteRequests.inc({
      route: event.route,
      status: event.status !== undefined ? String(event.status) : (event.code ?? 'error'),
    });
    if (event.attempt > 1) this.#remoteRetries.inc({ route: event.route });
  }

  recordWsReconnect(): void {
    this.#wsReconnects.inc();
  }

  recordOutboxUploaded(kind: string): void {
    this.#outboxUploaded.inc({ kind });
  }

  recordHttp(route: string, status: number): void {
    let byStatus = this.#httpCounts.get(route);
    if (byStatus === undefined) this.#httpCounts.set(route, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    // Before rendering: the histogram and counter are rendered alongside the gauges' collects.
    await this.#observeFinishedRuns(this.#store);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
