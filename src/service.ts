/**
 * The composition root: the only place that creates real clients and servers. It wires the
 * store, the marketplace client, the sync engine, the scheduler, the WebSocket client, the
 * outbox uploader and the HTTP app, applies runtime configuration changes to the live
 * components, and shuts everything down in order.
 *
 * Shutdown order matters: stop accepting HTTP work first, then stop the producers of new work
 * (scheduler, socket, uploader), then let the engine finish the page transaction in progress
 * (the engine aborts between pages; a page is one transaction, so nothing is half-applied and
 * the checkpoint lets the next start resume), and close the store last.
 */
import type { Logger } from 'pino';
import { buildApp, type TypedApp } from './api/app.js';
import type { AppDeps, SyncPort, WsPort } from './api/deps.js';
import { createLogger } from './api/logger.js';
import { ServiceMetrics } from './api/metrics.js';
import { LiveConfig } from './config/live-config.js';
import type { Config } from './config/options.js';
import { systemClock, type Clock } from './core/clock.js';
import { SkillsyncError } from './core/errors.js';
import { createMarketplaceClient, type MarketplaceClient } from './remote/marketplace-client.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import type { RunMode } from './store/types.js';
import { SyncScheduler } from './scheduler/sync-scheduler.js';
import { createEngineSink } from './stream/stream-sink.js';
import { WsClient } from './stream/ws-client.js';
import { LocalActions } from './sync/local-actions.js';
import { OutboxUploader } from './sync/outbox-uploader.js';
import { clientOptionsFromConfig, engineOptionsFromConfig } from './sync/engine-config.js';
import { SyncEngine } from './sync/sync-engine.js';

export interface ServiceOptions {
  config: Config;
  clock?: Clock;
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
}

export interface Service {
  readonly config: LiveConfig;
  readonly store: Store;
  readonly remote: MarketplaceClient;
  readonly engine: SyncEngine;
  readonly scheduler: SyncScheduler;
  readonly ws: WsClient | null;
  readonly uploader: OutboxUploader;
  readonly actions: LocalActions;
  readonly metrics: ServiceMetrics;
  readonly app: TypedApp;
  readonly logger: Logger;
  /** Base URL of the HTTP server once started (http://host:port). */
  url: string | null;
  /** Listens, then starts the background work (first sync, socket, uploader). */
  start(): Promise<void>;
  /** Graceful shutdown; idempotent. */
  stop(): Promise<void>;
}

/** Adapts the engine to the API's SyncPort: trigger answers with the run id as soon as it exists. */
function syncPort(engine: SyncEngine, logger: Logger, nextRunAt: () => number | null): SyncPort {
  let runningId: number | null = null;
  engine.on('runStarted', (run) => {
    runningId = run.id;
  });
  engine.on('runFinished', () => {
    runningId = null;
  });
  return {
    runningRunId: () => runningId,
    nextRunAt,
    confirmHeldDeletions: () => engine.confirmHeldDeletions(),
    trigger(mode: RunMode) {
      return new Promise((resolve, reject) => {
        let settled = false;
        const off = engine.on('runStarted', (run) => {
          if (settled) return;
          settled = true;
          off();
          resolve({ runId: run.id });
        });
        engine.syncAll({ trigger: 'manual', mode }).then(
          (result) => {
            if (!settled) {
              settled = true;
              off();
              if (result.alreadyInProgress) {
                reject(
                  new SkillsyncError('SKILLSYNC_ERR_SYNC_IN_PROGRESS', 'A sync run is already in progress.', {
                    details: { runId: result.runId },
                  }),
                );
              } else if (result.runId !== null && result.runId >= 0) resolve({ runId: result.runId });
              else {
                const code = result.error?.code ?? 'SKILLSYNC_ERR_API_INTERNAL';
                reject(new SkillsyncError(code, result.error?.message ?? 'the run could not start'));
              }
            }
            logger.info({ runId: result.runId, status: result.status }, 'manual sync finished');
          },
          (err: unknown) => {
            if (!settled) {
              settled = true;
              off();
              reject(err instanceof Error ? err : new Error(String(err)));
            }
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'manual sync failed');
          },
        );
      });
    },
  };
}

function wsPort(ws: WsClient): WsPort {
  return {
    reconnectNow: () => ws.reconnectNow(),
    enable: () => ws.enable(),
    disable: () => ws.disable(),
    status: () => {
      const s = ws.status();
      return {
        state: s.state,
        connected: s.connected,
        enabled: s.enabled,
        consecutiveFailures: s.consecutiveFailures,
        reconnectAttempts: s.reconnectAttempts,
        fallbackSince: s.fallbackSince,
        nextAttemptAt: s.nextAttemptAt,
        lastConnectedAt: s.lastConnectedAt,
        disconnectReason: s.disconnectReason,
      };
    },
  };
}

export async function createService(options: ServiceOptions): Promise<Service> {
  const clock = options.clock ?? systemClock;
  const base = options.config;
  const logger = options.logger ?? createLogger(base.logLevel);
  const store = await openStore(base.databaseUrl);
  try {
    const live = new LiveConfig(base, store);
    await live.init();
    const config = live.current;
    const metrics = new ServiceMetrics({ store, clock, defaultMetrics: true });
    await metrics.prime(store);

    const remote = createMarketplaceClient(
      {
        ...clientOptionsFromConfig(config),
        onRequest: (event) => metrics.recordRemoteRequest(event),
      },
      clock,
    );

    const engine = new SyncEngine({
      remote,
      store,
      clock,
      logger: logger.child({ component: 'sync' }),
      options: engineOptionsFromConfig(config),
    });

    const scheduler = new SyncScheduler({
      engine,
      store,
      clock,
      logger: logger.child({ component: 'scheduler' }),
      options: {
        intervalMinutes: config.syncIntervalMinutes,
        autoSync: config.autoSync,
        syncOnStart: config.syncOnStart,
      },
    });

    let ws: WsClient | null = null;
    if (config.wsUrl !== '') {
      const wsLog = logger.child({ component: 'websocket' });
      let connectedOnce = false;
      ws = new WsClient(
        {
          url: config.wsUrl,
          token: config.apiToken === '' ? null : config.apiToken,
          instanceId: remote.instanceId,
          tokenInQuery: config.wsLegacyQueryToken,
          pingIntervalMs: config.wsHeartbeatIntervalSeconds * 1000,
          maxFailuresBeforeFallback: config.wsReconnectAttempts,
        },
        {
          store,
          clock,
          sink: createEngineSink({
            engine,
            store,
            schedule: scheduler,
            ttlMs: config.cacheTtlHours * 3_600_000,
            clock,
            onFallback: (active) =>
              wsLog.warn({ fallback: active }, active ? 'polling fallback' : 'websocket is live again'),
          }),
          onError: (err) =>
            wsLog.warn({ err: err instanceof Error ? err.message : String(err) }, 'websocket error'),
          onTransition: (from, to, event) => {
            wsLog.debug({ from, to, event: event.type }, 'websocket state');
            if (to === 'connected') {
              if (connectedOnce) metrics.recordWsReconnect();
              connectedOnce = true;
              remoteReachable();
            }
          },
        },
      );
    }

    const uploader = new OutboxUploader(
      { store, api: remote },
      {
        concurrency: config.outboxConcurrency,
        maxAttempts: config.outboxMaxAttempts,
        backoffCapMs: config.outboxBackoffCapSeconds * 1000,
        intervalMinutes: config.ratingSyncIntervalMinutes,
      },
      clock,
    );
    const outboxLog = logger.child({ component: 'outbox' });
    uploader.on('uploaded', ({ item }) => metrics.recordOutboxUploaded(item.kind));
    uploader.on('dead', ({ item, error }) =>
      outboxLog.warn({ outbox: item.id, kind: item.kind, error }, 'dead-lettered'),
    );
    uploader.on('auth_failed', ({ item }) =>
      outboxLog.error({ outbox: item.id }, 'marketplace refused the credentials'),
    );

    // The marketplace answered again (a run succeeded, the socket connected): an uploader
    // that was probing a dead remote drains its queue now instead of waiting out its backoff.
    let lastRunFailed = false;
    const remoteReachable = (): void => {
      if (uploader.counters().probing || lastRunFailed) {
        uploader
          .onRemoteReachable()
          .catch((err: unknown) =>
            outboxLog.warn(
              { err: err instanceof Error ? err.message : String(err) },
              'outbox wake-up failed',
            ),
          );
      }
    };
    engine.on('runFinished', (result) => {
      const ok = result.status === 'success' || result.status === 'partial';
      if (ok) remoteReachable();
      if (result.status !== 'rejected') lastRunFailed = !ok;
    });

    const actions = new LocalActions(
      store,
      { instanceId: remote.instanceId, onQueued: () => uploader.kick() },
      clock,
    );

    const deps: AppDeps = {
      store,
      config: live,
      clock,
      metrics,
      logger: logger.child({ component: 'http' }),
      sync: syncPort(engine, logger.child({ component: 'sync' }), () => scheduler.nextRunAt),
      actions: {
        rate: (input) => actions.rate(input),
        install: async (input) => ({ outbox: await actions.install(input) }),
      },
      outbox: { retry: (id) => uploader.retry(id) },
    };
    if (ws) deps.ws = wsPort(ws);
    const app = await buildApp(deps);

    live.onChange(async (next, previous) => {
      engine.updateOptions(engineOptionsFromConfig(next));
      if (next.syncIntervalMinutes !== previous.syncIntervalMinutes)
        scheduler.setIntervalMinutes(next.syncIntervalMinutes);
      if (next.autoSync !== previous.autoSync) scheduler.setAutoSync(next.autoSync);
      if (ws && next.wsEnabled !== previous.wsEnabled && ws.status().enabled !== next.wsEnabled) {
        if (next.wsEnabled) await ws.enable();
        else await ws.disable();
      }
      logger.info({ component: 'config' }, 'runtime configuration applied');
    });

    let stopping: Promise<void> | null = null;
    let started = false;
    const service: Service = {
      config: live,
      store,
      remote,
      engine,
      scheduler,
      ws,
      uploader,
      actions,
      metrics,
      app,
      logger,
      url: null,
      async start() {
        service.url = await app.listen({ host: config.host, port: config.port });
        started = true;
        logger.info({ url: service.url, store: store.kind }, 'skillsync listening');
        await uploader.start();
        if (ws) {
          await ws.start();
          // start() reads the persisted flag; the effective configuration wins, both ways.
          const wanted = live.current.wsEnabled;
          if (ws.status().enabled !== wanted) {
            if (wanted) await ws.enable();
            else await ws.disable();
          }
        }
        // The scheduler runs the first sync (syncOnStart), the interval, retries and the sweep.
        await scheduler.start();
      },
      stop() {
        stopping ??= (async () => {
          logger.info('shutting down');
          if (started) await app.close();
          else await app.close().catch(() => undefined);
          await ws?.stop();
          await uploader.stop();
          // Abort the run between pages (each page is one transaction; the checkpoint stays),
          // then let the scheduler's job observe it and clear its timers.
          await engine.close();
          await scheduler.stop();
          await remote.close();
          await store.close();
          logger.info('stopped');
        })();
        return stopping;
      },
    };
    return service;
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

/**
 * SIGTERM/SIGINT: graceful stop; a second signal exits at once. Returns a function removing
 * the handlers.
 */
export function installSignalHandlers(
  service: Service,
  exit: (code: number) => void = process.exit,
): () => void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received > 1) {
      service.logger.warn({ signal }, 'second signal: exiting now');
      exit(130);
      return;
    }
    service.logger.info({ signal }, 'signal received: stopping gracefully (send again to exit at once)');
    service.stop().then(
      () => exit(0),
      (err: unknown) => {
        service.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
