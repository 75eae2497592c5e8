/**
 * Page-numbered listings over a catalog that changes under them: offsets shift, a record can be
 * skipped, and such a listing must neither delete nor move the watermark past what it skipped.
 * An in-memory marketplace (pages of 5) gives exact control over when the catalog changes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeMarketplace, TickClock, unavailable } from './helpers/fake-marketplace.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function setUp(features: string[]): Promise<{
  clock: TickClock;
  remote: FakeMarketplace;
  store: Store;
  engine: SyncEngine;
}> {
  const clock = new TickClock();
  const remote = new FakeMarketplace(clock, features, FakeMarketplace.ids(15));
  const store = await openSqliteStore({ path: ':memory:' });
  stores.push(store);
  const engine = new SyncEngine({ remote, store, clock, options: { pageSize: 5, prefetch: false } });
  return { clock, remote, store, engine };
}

async function storedIds(store: Store): Promise<string[]> {
  const ids: string[] = [];
  for (const id of FakeMarketplace.ids(20)) if ((await store.getSkill(id, Date.now())) !== null) ids.push(id);
  return ids;
}

describe('a resumed page-numbered listing', () => {
  it('does not delete a skill its shifted pages never listed', async () => {
    const { remote, store, engine } = await setUp([]);
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect(await storedIds(store)).toEqual(FakeMarketplace.ids(15));

    // A full run fails on page 2: its checkpoint says page 2.
    remote.beforeList = (call) => {
      if (call.page === 2) throw unavailable();
    };
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('partial');
    expect((await store.getCheckpoint())?.nextPage).toBe(2);

    // Meanwhile s01 is deleted: the resumed pages shift by one and s06 is never listed.
    remote.beforeList = null;
    remote.delete('s01');
    const resumed = await engine.syncAll({ trigger: 'manual' });
    expect(resumed.run?.resumedFromCheckpoint).toBe(true);
    expect(remote.calls.slice(-2).map((c) => c.page)).toEqual([2, 3]);
    expect(await storedIds(store)).toContain('s06');
    expect(resumed.run?.deleted).toBe(0);

    // The next, fresh listing sees everything and removes only what the remote removed.
    const fresh = await engine.syncAll({ trigger: 'manual' });
    expect(fresh.status).toBe('success');
    expect(fresh.run?.deleted).toBe(1);
    expect(await storedIds(store)).toEqual(remote.liveIds());
  });
});
