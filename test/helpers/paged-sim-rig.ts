/**
 * Set-up of sync tests that need exact control over when the catalog changes during a listing:
 * the real simulator (small catalog, extensions switched as the test says, e.g. cursor off for
 * page-numbered listings), the real marketplace client over loopback sockets, a SQLite store in
 * memory and the SyncEngine with small pages and no prefetch (page n+1 is requested only after
 * page n is applied, so a change made when page n is applied lands between the two requests).
 *
 * Time: one TickClock for the simulator, the client and the engine. Every now() moves one
 * second on, so every update, tombstone, server_time, run and page time is distinct and
 * ordered, whatever the machine's speed.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { createMarketplaceClient, type MarketplaceClient } from '../../src/remote/marketplace-client.js';
import type { ListSkillsParams, MarketplaceApi } from '../../src/remote/marketplace.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { SyncEngine, type SyncEngineOptions } from '../../src/sync/sync-engine.js';
import { startSimulator, type FeatureSwitches, type SimulatorHandle } from '../../simulator/index.js';

export class TickClock implements Clock {
  #now: number;
  constructor(
    startMs = Date.UTC(2026, 0, 1),
    readonly stepMs = 1_000,
  ) {
    this.#now = startMs;
  }
  now(): number {
    this.#now += this.stepMs;
    return this.#now;
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return setTimeout(fn, delayMs) as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

/** The simulator's id of the n-th skill (0-based): `skill-00000000`, ... */
export function simId(n: number): string {
  return `skill-${String(n).padStart(8, '0')}`;
}

/** Ids of the first n skills. */
export function simIds(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => simId(from + i));
}

export interface ListCall {
  page: number | undefined;
  updatedSince: string | undefined;
}

export interface PagedSimRig {
  sim: SimulatorHandle;
  clock: TickClock;
  /** The real client, as the engine uses it. */
  remote: MarketplaceClient;
  /** The real store (the engine may have a wrapped one). */
  store: Store;
  engine: SyncEngine;
  /** Every listing request the engine made (page and updated_since), in order. */
  calls: ListCall[];
  /** Ids of the first `n` skills that the store holds. */
  storedIds(n?: number): Promise<string[]>;
  close(): Promise<void>;
}

export interface PagedSimOptions {
  skills: number;
  features: Partial<FeatureSwitches>;
  engine?: Partial<SyncEngineOptions>;
  /** Wraps the store the engine gets (e.g. to fail or hook one method). */
  wrapStore?: (store: Store) => Store;
}

export async function startPagedSimRig(options: PagedSimOptions): Promise<PagedSimRig> {
  const clock = new TickClock();
  const sim = await startSimulator({ skills: options.skills, seed: 1, features: options.features, clock });
  const store = await openSqliteStore({ path: ':memory:' });
  const remote = createMarketplaceClient(
    {
      baseUrl: sim.url,
      paths: sim.layout,
      requestsPerMinute: 0,
      // A 5xx is retried once at once (random 0: no backoff sleep), then the call fails.
      maxAttempts: 2,
      random: () => 0,
      connectTimeoutMs: 5_000,
      headersTimeoutMs: 5_000,
      bodyTimeoutMs: 5_000,
    },
    clock,
  );
  const calls: ListCall[] = [];
  // The real client; this only notes what the engine asked for.
  const observed: MarketplaceApi = new Proxy(remote, {
    get(target, prop, receiver) {
      if (prop === 'listSkills')
        return (params: ListSkillsParams) => {
          calls.push({ page: params.page, updatedSince: params.updatedSince });
          return target.listSkills(params);
        };
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const engine = new SyncEngine({
    remote: observed,
    store: options.wrapStore ? options.wrapStore(store) : store,
    clock,
    options: { pageSize: 5, prefetch: false, ...options.engine },
  });
  return {
    sim,
    clock,
    remote,
    store,
    engine,
    calls,
    async storedIds(n = options.skills + 5) {
      const ids: string[] = [];
      for (const id of simIds(n)) if ((await store.getSkill(id, clock.now())) !== null) ids.push(id);
      return ids;
    },
    async close() {
      await engine.close();
      await remote.close();
      await store.close();
      await sim.close();
    },
  };
}
