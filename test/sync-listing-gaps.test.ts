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

describe('the watermark after a page-numbered listing over a changing catalog', () => {
  it('incremental: a deletion during the listing (a tombstone at its end) keeps the watermark back', async () => {
    const { remote, store, engine } = await setUp(['updated_since']);
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    const first = (await store.getSyncState()).watermark;
    expect(first).not.toBeNull();

    for (const id of FakeMarketplace.ids(10)) remote.update(id);
    // While the incremental listing runs, s01 is deleted: its tombstone moves to the end and
    // s06 (updated) slides from page 2 onto page 1, which was already read.
    remote.beforeList = (call) => {
      if (call.page === 2 && call.updatedSince !== undefined) {
        remote.beforeList = null;
        remote.delete('s01');
      }
    };
    const inc = await engine.syncAll({ trigger: 'schedule' });
    expect(inc.status).toBe('success');
    expect(inc.run?.mode).toBe('incremental');
    expect((await store.getSkill('s06', Date.now()))?.base.version).toBe('1.0.0');
    const after = (await store.getSyncState()).watermark;
    // Not moved past s06: the next incremental listing lists it again.
    expect(after !== null && Date.parse(after) <= Date.parse(first ?? '')).toBe(true);

    const next = await engine.syncAll({ trigger: 'schedule' });
    expect(next.status).toBe('success');
    expect((await store.getSkill('s06', Date.now()))?.base.version).toBe(remote.versionOf('s06'));
    expect(await storedIds(store)).toEqual(remote.liveIds());
  });

  it('full: a listing whose pages shifted sets no watermark, so the next run lists in full again', async () => {
    const { remote, store, engine } = await setUp(['updated_since']);
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    remote.update('s06');
    // A full listing during which s01 is deleted: s06's update is never listed.
    remote.beforeList = (call) => {
      if (call.page === 2 && call.updatedSince === undefined) {
        remote.beforeList = null;
        remote.delete('s01');
      }
    };
    const full = await engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(full.run?.mode).toBe('full');
    expect(full.run?.deleted).toBe(0);
    expect((await store.getSkill('s06', Date.now()))?.base.version).toBe('1.0.0');

    const next = await engine.syncAll({ trigger: 'schedule' });
    expect(next.status).toBe('success');
    expect((await store.getSkill('s06', Date.now()))?.base.version).toBe(remote.versionOf('s06'));
    expect(await storedIds(store)).toEqual(remote.liveIds());
  });
});
