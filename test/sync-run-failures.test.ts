/**
 * A store error outside a run's part handling (planning reads, the final run and state writes)
 * still ends the run: recorded as failed with the error, the sync state out of 'running', and
 * runFinished emitted.
 *
 * The real simulator over loopback sockets (12 skills, page-numbered, pages of 5) and a real
 * SQLite store whose named method fails once.
 */
import { interceptStore } from './helpers/store-intercept.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startPagedSimRig, type PagedSimRig } from './helpers/paged-sim-rig.js';
import { SkillsyncError } from '../src/core/errors.js';
import type { Store } from '../src/store/store.js';
import type { SyncResult } from '../src/sync/sync-engine.js';

let rig: PagedSimRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

/** The store, with the named methods failing (once each) while `armed`. */
function failing(methods: string[]): { wrap(store: Store): Store; arm(): void } {
  const left = new Set<string>();
  const wrap = (store: Store): Store =>
    interceptStore(store, (name, fn) =>
      !methods.includes(name)
        ? undefined
        : (...args: unknown[]) =>
            left.delete(name)
              ? Promise.reject(new SkillsyncError('SKILLSYNC_ERR_STORE_UNAVAILABLE', `${name} failed (test)`))
              : fn(...args),
    );
  return { wrap, arm: () => methods.forEach((m) => left.add(m)) };
}

for (const method of ['getCheckpoint', 'updateRun', 'stats']) {
  describe(`a store error in ${method}`, () => {
    it('ends the run as failed, with the error, and emits runFinished', async () => {
      const { wrap, arm } = failing([method]);
      const r = (rig = await startPagedSimRig({
        skills: 12,
        features: { cursor: false, updated_since: false },
        wrapStore: wrap,
      }));
      const real = r.store;
      const engine = r.engine;
      const finished: SyncResult[] = [];
      engine.on('runFinished', (res) => finished.push(res));

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

      // The next run is not refused and succeeds, and the store holds the simulator's catalog.
      const next = await engine.syncAll({ trigger: 'manual' });
      expect(next.status).toBe('success');
      expect((await real.getSyncState()).status).toBe('success');
      expect(await real.digest()).toBe(r.sim.control.digest());
    });
  });
}
