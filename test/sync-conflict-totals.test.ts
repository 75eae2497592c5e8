/**
 * The cumulative conflict totals in the sync state: counted once, by the store, in the
 * transaction that records the conflict (polling, WebSocket and operator alike), and never
 * overwritten by a run's end with the totals it read at its start.
 *
 * Detected counts conflicts: a manual one once when it opens (not again when a later sync
 * updates it in place), one settled by a strategy at once counts as detected and resolved.
 * So detected - resolved is the number of open conflicts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeMarketplace, TickClock } from './helpers/fake-marketplace.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('conflict totals', () => {
  it('count each conflict once, and a run does not overwrite what happened during it', async () => {
    const clock = new TickClock();
    const remote = new FakeMarketplace(clock, [], FakeMarketplace.ids(15));
    const store = await openSqliteStore({ path: ':memory:' });
    stores.push(store);
    const engine = new SyncEngine({ remote, store, clock, options: { pageSize: 5, strategy: 'manual' } });
    const totals = async (): Promise<[number, number, number]> => {
      const s = await store.getSyncState();
      const open = (await store.listConflicts({ status: 'open', limit: 100, offset: 0 })).total;
      return [s.conflictsDetectedTotal, s.conflictsResolvedTotal, open];
    };
    const live = async (id: string) => (await remote.getSkill(id))!;

    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    for (const id of ['s01', 's02', 's03'])
      await store.setLocalOverrides(id, { description: `mine ${id}` }, clock.now());

    // Polling, manual: one conflict opened.
    remote.update('s01');
    const run = await engine.syncAll({ trigger: 'manual' });
    expect(run.run?.conflictsManual).toBe(1);
    expect(await totals()).toEqual([1, 0, 1]);
    // A later version of the same skill updates the open conflict in place: no new conflict.
    remote.update('s01');
    await engine.syncAll({ trigger: 'manual' });
    expect(await totals()).toEqual([1, 0, 1]);

    // WebSocket, manual: one more conflict (it counted twice: store and engine).
    remote.update('s02');
    expect(await engine.applySkill(await live('s02'), 'websocket')).toBe('applied');
    expect(await totals()).toEqual([2, 0, 2]);

    // WebSocket, remote_wins closes s01's open conflict: one resolution (it counted twice).
    engine.setStrategy('remote_wins');
    remote.update('s01');
    expect(await engine.applySkills([await live('s01')], 'websocket')).toEqual(['applied']);
    expect(await totals()).toEqual([2, 1, 1]);

    // A conflict settled at once by the strategy: detected and resolved together.
    remote.update('s03');
    expect(await engine.applySkill(await live('s03'), 'websocket')).toBe('applied');
    expect(await totals()).toEqual([3, 2, 1]);

    // During a run: an operator resolves s02's conflict and a WebSocket event opens another.
    await store.setLocalOverrides('s04', { description: 'mine s04' }, clock.now());
    engine.setStrategy('manual');
    remote.beforeList = async (call) => {
      if (call.page !== 2) return;
      remote.beforeList = null;
      const [c] = (await store.listConflicts({ status: 'open', limit: 10, offset: 0 })).items;
      await store.resolveConflict(c!.id, {
        local: null,
        resolution: 'remote_wins',
        resolvedBy: 'operator',
        now: clock.now(),
      });
      remote.update('s04');
      expect(await engine.applySkill(await live('s04'), 'websocket')).toBe('applied');
    };
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect(await totals()).toEqual([4, 3, 1]);
  });
});
