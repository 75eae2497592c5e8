/**
 * One sync run at a time across processes sharing a store: two engines on two connections to
 * one SQLite file stand for `skillsync serve` and a `skillsync sync` (or two service instances
 * on one PostgreSQL schema: the lease itself is in the store contract suite, on both stores).
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { leaseOwnerName } from '../src/store/sync-lease.js';
import type { Store } from '../src/store/store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { startSyncRig, type SyncRig } from './helpers/sync-rig.js';

let rig: SyncRig | undefined;
let other: Store | undefined;
afterEach(async () => {
  await other?.close();
  await rig?.close();
  other = undefined;
  rig = undefined;
});

describe('sync lease', () => {
  it('a second process is refused while a run holds the lease, and does not close that run', async () => {
    rig = await startSyncRig({ sim: { skills: 200 }, engine: { pageSize: 20 } });
    // Slow pages, so the first run is still going when the second engine asks.
    rig.sim.control.setFaults([{ fault: 'latency', latencyMs: 40, route: 'list_skills' }]);
    other = await openSqliteStore({ path: rig.dbPath });
    const second = new SyncEngine({ remote: rig.remote, store: other, options: { pageSize: 20 } });
    const started = new Promise<number>((resolve) => rig!.engine.on('runStarted', (r) => resolve(r.id)));
    const first = rig.engine.syncAll({ trigger: 'schedule', mode: 'full' });
    const firstId = await started;

    const refused = await second.syncAll({ trigger: 'manual', mode: 'full' });
    expect(refused).toMatchObject({
      status: 'rejected',
      alreadyInProgress: true,
      error: { code: 'SKILLSYNC_ERR_SYNC_IN_PROGRESS' },
    });
    // The holder records its run on the lease right after starting it.
    expect([firstId, null]).toContain(refused.runId);

    const done = await first;
    expect(done.status).toBe('success');
    expect((await rig.store.getRun(firstId))?.status).toBe('success');
    // Released at the end: the other process runs now.
    rig.sim.control.setFaults([]);
    expect((await second.syncAll({ trigger: 'manual', mode: 'incremental' })).status).toBe('success');
    await second.close();
  }, 60_000);

  it('a holder whose lease another process took stops before its next page and leaves the sync state alone', async () => {
    rig = await startSyncRig({ sim: { skills: 200 }, engine: { pageSize: 10 } });
    rig.sim.control.setFaults([{ fault: 'latency', latencyMs: 40, route: 'list_skills' }]);
    const engine = new SyncEngine({
      remote: rig.remote,
      store: rig.store,
      options: { pageSize: 10 },
      lease: { ttlMs: 60_000, renewMs: 50 },
    });
    const started = new Promise<number>((resolve) => engine.on('runStarted', (r) => resolve(r.id)));
    const run = engine.syncAll({ trigger: 'manual', mode: 'full' });
    await started;
    const before = await rig.store.getSyncState();
    // Another process decides the holder is gone and takes the lease.
    const holder = (await rig.store.acquireSyncLease('host:ns:2:thief', Date.now(), 60_000)).lease.owner;
    expect((await rig.store.acquireSyncLease('host:ns:2:thief', Date.now(), 60_000, holder)).acquired).toBe(
      true,
    );
    const result = await run;
    expect(result.status).not.toBe('success');
    expect(result.run?.error).toContain('sync lease lost');
    expect(result.run?.pages).toBeLessThan(20);
    // The sync state stays the new holder's business (this run read it when it started).
    expect((await rig.store.getSyncState()).totalSyncs).toBe(before.totalSyncs);
    // The lease stays the other process's.
    expect((await rig.store.acquireSyncLease(holder, Date.now(), 60_000)).acquired).toBe(false);
    await engine.close();
  }, 60_000);

  it("takes over at once from a dead process of this host; waits for another host's lease", async () => {
    rig = await startSyncRig({ sim: { skills: 30 } });
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await rig.store.acquireSyncLease(leaseOwnerName(gone), Date.now(), 60_000);
    expect((await rig.engine.syncAll({ trigger: 'manual' })).status).toBe('success');

    // Same host and pid but another pid namespace (a container on the host network): alive for all we know.
    await rig.store.acquireSyncLease(`${hostname()}:4026531999:${gone}:live`, Date.now(), 60_000);
    expect((await rig.engine.syncAll({ trigger: 'manual' })).alreadyInProgress).toBe(true);
    await rig.store.acquireSyncLease('another-host.example:4026531836:1:live', Date.now() + 60_001, 60_000);
    const refused = await rig.engine.syncAll({ trigger: 'manual' });
    expect(refused).toMatchObject({ status: 'rejected', alreadyInProgress: true });
    expect(refused.error?.message).toContain('another process');
  }, 60_000);
});
