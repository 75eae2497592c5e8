/**
 * A store error outside a run's part handling (planning reads, the final run and state writes)
 * still ends the run: recorded as failed with the error, the sync state out of 'running', and
 * runFinished emitted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeMarketplace, TickClock } from './helpers/fake-marketplace.js';
import { SkillsyncError } from '../src/core/errors.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { SyncEngine, type SyncResult } from '../src/sync/sync-engine.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** The store, with the named methods failing (once each) while `armed`. */
function failing(store: Store, methods: string[]): { store: Store; arm(): void } {
  const left = new Set<string>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (typeof prop !== 'string' || !methods.includes(prop)) return fn;
      return (...args: unknown[]) => {
        if (left.delete(prop))
          return Promise.reject(
            new SkillsyncError('SKILLSYNC_ERR_STORE_UNAVAILABLE', `${prop} failed (test)`),
          );
        return fn(...args);
      };
    },
  });
  return { store: proxy, arm: () => methods.forEach((m) => left.add(m)) };
}

for (const method of ['getCheckpoint', 'updateRun', 'stats']) {
  describe(`a store error in ${method}`, () => {
    it('ends the run as failed, with the error, and emits runFinished', async () => {
      const clock = new TickClock();
      const remote = new FakeMarketplace(clock, [], FakeMarketplace.ids(12));
      const real = await openSqliteStore({ path: ':memory:' });
      stores.push(real);
      const { store, arm } = failing(real, [method]);
      const engine = new SyncEngine({ remote, store, clock, options: { pageSize: 5 } });
      const finished: SyncResult[] = [];
      engine.on('runFinished', (r) => finished.push(r));

      arm();
      const res = await engine.syncAll({ trigger: 'manual' });
      expect(res.status).toBe('failed');
      expect(res.error?.code).toBe('SKILLSYNC_ERR_STORE_UNAVAILABLE');
      expect(res.error?.message).toMatch(`${method} failed`);
      expect(finished).toHaveLength(1);
      expect(finished[0]?.runId).toBe(res.runId);

      const runs = (await real.listRuns({ limit: 10, offset: 0 })).items;
      expect(runs).toHaveLength(1);
      expect(runs[0]?.status).toBe('failed');
      expect(runs[0]?.finishedAt).not.toBeNull();
      expect(runs[0]?.error).toMatch(`${method} failed`);
      const state = await real.getSyncState();
      expect(state.status).toBe('failed');
      expect(state.lastError).toMatch(`${method} failed`);
      expect(state.failedSyncs).toBe(1);
      expect(engine.running).toBe(false);

      // The next run is not refused and succeeds.
      const next = await engine.syncAll({ trigger: 'manual' });
      expect(next.status).toBe('success');
      expect((await real.getSyncState()).status).toBe('success');
    });
  });
}
