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
import { WS_OUTCOMES } from '../store/types.js';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #runDuration: Histogram<'mode' | 'status' | 'trigger'>;
  readonly #runs: Counter<'mode' | 'status' | 'trigger'>;
  readonly #remoteRequests: Counter<'route' | 'status'>;
  readonly #remoteRetries: Counter<'route'>;
  readonly #wsReconnects: Counter;
  readonly #outboxUploaded: Counter<'kind'>;
  readonly #httpRequests: Counter<'route' | 'status'>;
  /** Runs finished before this id were observed already (or predate the process). */
  #lastRunId = 0;
  #runsPrimed = false;

  constructor(options: { store: Store; clock: Clock; defaultMetrics?: boolean }) {
    const { store, clock } = options;
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
    this.#httpRequests = new Counter({
      name: 'skillsync_http_requests_total',
      help: 'Requests served by the local API, by route and status.',
      labelNames: ['route', 'status'],
      registers,
    });

    const observeRuns = (): Promise<void> => this.#observeFinishedRuns(store);
    new Gauge({
      name: 'skillsync_skills_cached',
      help: 'Skills in the local store.',
      registers,
      async collect() {
        const stats = await store.stats(clock.now());
        this.set(stats.skills);
        staleSkills.set(stats.staleSkills);
        categories.set(stats.categories);
        openConflicts.set(stats.openConflicts);
        for (const [status, n] of Object.entries(stats.outbox)) outbox.set({ status }, n);
        staleness.set(stats.oldestFetchedAt === null ? 0 : (clock.now() - stats.oldestFetchedAt) / 1000);
        const state = await store.getSyncState();
        conflictsDetected.set(state.conflictsDetectedTotal);
        conflictsResolved.set(state.conflictsResolvedTotal);
        lastSuccess.set(state.lastSuccessAt === null ? 0 : state.lastSuccessAt / 1000);
        sinceSuccess.set(state.lastSuccessAt === null ? -1 : (clock.now() - state.lastSuccessAt) / 1000);
        heldDeletions.set(state.heldDeletions);
        const ws = await store.getWsState();
        wsConnected.set(ws.connected ? 1 : 0);
        for (const outcome of WS_OUTCOMES) wsMessages.set({ outcome }, ws.counts[outcome] ?? 0);
        await observeRuns();
      },
    });
    const staleSkills = new Gauge({
      name: 'skillsync_skills_stale',
      help: 'Cached skills past their TTL (still served).',
      registers,
    });
    const categories = new Gauge({
      name: 'skillsync_categories_cached',
      help: 'Categories in the local store.',
      registers,
    });
    const openConflicts = new Gauge({
      name: 'skillsync_conflicts_open',
      help: 'Conflicts waiting for a decision.',
      registers,
    });
    // Cumulative totals kept by the store: gauges, because the store (not this process) counts.
    const conflictsDetected = new Gauge({
      name: 'skillsync_conflicts_detected',
      help: 'Conflicts detected since the store was created.',
      registers,
    });
    const conflictsResolved = new Gauge({
      name: 'skillsync_conflicts_resolved',
      help: 'Conflicts resolved since the store was created.',
      registers,
    });
    const outbox = new Gauge({
      name: 'skillsync_outbox_items',
      help: 'Outbox items by status (pending, in_flight, done, dead).',
      labelNames: ['status'],
      registers,
    });
    const staleness = new Gauge({
      name: 'skillsync_cache_oldest_age_seconds',
      help: 'Age of the least recently synced skill.',
      registers,
    });
    const lastSuccess = new Gauge({
      name: 'skillsync_sync_last_success_timestamp_seconds',
      help: 'End of the last successful sync (0 = never).',
      registers,
    });
    const sinceSuccess = new Gauge({
      name: 'skillsync_sync_seconds_since_success',
      help: 'Seconds since the last successful sync (-1 = never).',
      registers,
    });
    const heldDeletions = new Gauge({
      name: 'skillsync_sync_held_deletions',
      help: 'Deletions held by the delete guard, waiting for an operator.',
      registers,
    });
    const wsConnected = new Gauge({
      name: 'skillsync_ws_connected',
      help: '1 when the WebSocket is connected.',
      registers,
    });
    const wsMessages = new Gauge({
      name: 'skillsync_ws_messages',
      help: 'WebSocket messages by outcome, as counted in the store.',
      labelNames: ['outcome'],
      registers,
    });
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
    this.#httpRequests.inc({ route, status: String(status) });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
