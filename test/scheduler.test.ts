import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from './helpers/fake-clock.js';
import { startSyncRig, type SyncRig } from './helpers/sync-rig.js';
import {
  DEFAULT_RETRY_DELAYS_MS,
  nextCronAt,
  nextSyncAt,
  type NextSyncInput,
} from '../src/scheduler/next-run.js';
import { SyncScheduler } from '../src/scheduler/sync-scheduler.js';
import { isSkillsyncError } from '../src/core/errors.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 10, 0, 0);

describe('next-run maths (pure)', () => {
  const base: NextSyncInput = {
    now: T0,
    lastStartedAt: null,
    lastFinishedAt: null,
    lastOutcome: null,
    failuresInRow: 0,
    intervalMs: 15 * MIN,
    retryDelaysMs: DEFAULT_RETRY_DELAYS_MS,
  };
  it('every interval from the start of the previous run', () => {
    expect(nextSyncAt(base)).toEqual({ at: T0 + 15 * MIN, reason: 'interval' });
    const after = {
      ...base,
      now: T0 + 40_000,
      lastStartedAt: T0,
      lastFinishedAt: T0 + 40_000,
      lastOutcome: 'success' as const,
    };
    expect(nextSyncAt(after)).toEqual({ at: T0 + 15 * MIN, reason: 'interval' });
    // A run longer than the interval: the next one starts at once, never in the past.
    expect(nextSyncAt({ ...after, now: T0 + 20 * MIN }).at).toBe(T0 + 20 * MIN);
  });
  it('retries after a failed run at 1, 2, 4, 8, 16 s, then the normal interval', () => {
    const delays: number[] = [];
    for (let n = 1; n <= 7; n++) {
      const finished = T0 + n * 100;
      const next = nextSyncAt({
        ...base,
        now: finished,
        lastStartedAt: finished - 50,
        lastFinishedAt: finished,
        lastOutcome: n % 2 === 0 ? 'partial' : 'failed',
        failuresInRow: n,
      });
      delays.push(next.at - finished);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 15 * MIN - 50, 15 * MIN - 50]);
  });
  it('refused credentials are never retried quickly', () => {
    const next = nextSyncAt({
      ...base,
      lastStartedAt: T0,
      lastFinishedAt: T0,
      lastOutcome: 'auth_failed',
      failuresInRow: 0,
    });
    expect(next).toEqual({ at: T0 + 15 * MIN, reason: 'interval' });
  });
  it('the hourly sweep follows its cron pattern (UTC)', () => {
    expect(nextCronAt('0 * * * *', T0 + 30 * MIN)).toBe(T0 + 60 * MIN);
    expect(nextCronAt('0 * * * *', T0)).toBe(T0 + 60 * MIN);
    expect(nextCronAt('*/10 * * * *', T0 + 61_000)).toBe(T0 + 10 * MIN);
  });
});

let rig: SyncRig | null = null;
let scheduler: SyncScheduler | null = null;
afterEach(async () => {
  await scheduler?.stop();
  scheduler = null;
  await rig?.close();
  rig = null;
});

/** Fires the scheduler's next timer and waits for the job it starts. */
async function fireNext(clock: FakeClock, s: SyncScheduler): Promise<void> {
  expect(clock.runNext()).toBe(true);
  await s.idle();
}

describe('SyncScheduler on a FakeClock with the real engine, store and simulator', () => {
  it('first sync at start, interval, fallback interval, live changes, nextRunAt in the sync state', async () => {
    const clock = new FakeClock(T0);
    rig = await startSyncRig({ sim: { skills: 100 }, clock });
    scheduler = new SyncScheduler({
      engine: rig.engine,
      store: rig.store,
      clock,
      options: { sweepPattern: '' },
    });
    await scheduler.start();
    expect(scheduler.nextRunAt).toBe(T0);
    await fireNext(clock, scheduler);
    expect(await rig.store.digest()).toBe(rig.sim.control.digest());
    const runs = await rig.store.listRuns({ limit: 5, offset: 0 });
    expect(runs.items[0]?.trigger).toBe('startup');
    expect(scheduler.nextRunAt).toBe(T0 + 15 * MIN);
    expect((await rig.store.getSyncState()).nextRunAt).toBe(T0 + 15 * MIN);

    // The WebSocket goes down: the fallback interval applies at once, and back again.
    scheduler.setFallback(true);
    expect(scheduler.nextRunAt).toBe(T0 + 5 * MIN);
    scheduler.setFallback(false);
    expect(scheduler.nextRunAt).toBe(T0 + 15 * MIN);
    scheduler.setIntervalMinutes(30);
    expect(scheduler.nextRunAt).toBe(T0 + 30 * MIN);
    expect(() => scheduler?.setIntervalMinutes(4)).toThrow(/5 to 60/);

    clock.advance(30 * MIN - 1);
    expect((await rig.store.listRuns({ limit: 5, offset: 0 })).total).toBe(1);
    await fireNext(clock, scheduler);
    const after = await rig.store.listRuns({ limit: 5, offset: 0 });
    expect(after.total).toBe(2);
    expect(after.items[0]?.trigger).toBe('schedule');
    expect(scheduler.nextRunAt).toBe(T0 + 60 * MIN);

    scheduler.setAutoSync(false);
    expect(scheduler.nextRunAt).toBeNull();
    expect(clock.pendingCount).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    const state = await rig.store.getSyncState();
    expect(state.autoSyncEnabled).toBe(false);
    expect(state.nextRunAt).toBeNull();
    scheduler.setAutoSync(true);
    expect(scheduler.nextRunAt).toBe(T0 + 60 * MIN);
  });

  it('after failed runs: retries at 1, 2, 4, 8, 16 s, then the normal interval; success resets', async () => {
    const clock = new FakeClock(T0);
    rig = await startSyncRig({ sim: { skills: 50 }, client: { maxAttempts: 1 }, clock });
    rig.sim.control.setFaults([{ fault: 'error', status: 503 }]);
    scheduler = new SyncScheduler({
      engine: rig.engine,
      store: rig.store,
      clock,
      options: { sweepPattern: '' },
    });
    await scheduler.start();
    const gaps: number[] = [];
    for (let i = 0; i < 7; i++) {
      await fireNext(clock, scheduler);
      gaps.push((scheduler.nextRunAt ?? 0) - clock.now());
    }
    expect(gaps.slice(0, 6)).toEqual([1000, 2000, 4000, 8000, 16000, 15 * MIN]);
    const triggers = (await rig.store.listRuns({ limit: 10, offset: 0 })).items
      .map((r) => r.trigger)
      .reverse();
    expect(triggers.slice(0, 7)).toEqual([
      'startup',
      'retry',
      'retry',
      'retry',
      'retry',
      'retry',
      'schedule',
    ]);
    expect((await rig.store.getSyncState()).consecutiveErrors).toBe(7);
    rig.sim.control.clearFaults();
    await fireNext(clock, scheduler);
    expect((await rig.store.getSyncState()).status).toBe('success');
    expect((scheduler.nextRunAt ?? 0) - clock.now()).toBe(15 * MIN);
  });

  it('refused credentials: no fast retries, one attempt per interval', async () => {
    const clock = new FakeClock(T0);
    rig = await startSyncRig({
      sim: { skills: 10 },
      client: { token: 'wrong-token-1' },
      engine: { authRetryIntervalMs: 15 * MIN },
      clock,
    });
    scheduler = new SyncScheduler({
      engine: rig.engine,
      store: rig.store,
      clock,
      options: { sweepPattern: '' },
    });
    await scheduler.start();
    await fireNext(clock, scheduler);
    expect((await rig.store.getSyncState()).status).toBe('auth_failed');
    expect((scheduler.nextRunAt ?? 0) - clock.now()).toBe(15 * MIN);
    await fireNext(clock, scheduler);
    await fireNext(clock, scheduler);
    const requests = Object.values(rig.sim.control.counters().byStatus).reduce((a, b) => a + b, 0);
    expect(requests).toBe(3); // one per interval
  });

  it('runs the TTL sweep hourly', async () => {
    const clock = new FakeClock(T0 + 30 * MIN);
    rig = await startSyncRig({ sim: { skills: 10 }, clock });
    scheduler = new SyncScheduler({
      engine: rig.engine,
      store: rig.store,
      clock,
      options: { syncOnStart: false, autoSync: false },
    });
    await scheduler.start();
    expect(scheduler.nextRunAt).toBeNull();
    expect(scheduler.nextSweepAt).toBe(T0 + 60 * MIN);
    await fireNext(clock, scheduler);
    expect(scheduler.nextSweepAt).toBe(T0 + 120 * MIN);
  });

  it('rejects intervals out of range with a ConfigError', () => {
    try {
      new SyncScheduler({
        engine: {
          syncAll: () => Promise.reject(new Error('unused')),
          sweep: () => Promise.reject(new Error('unused')),
        },
        store: { updateSyncState: () => Promise.resolve() },
        options: { intervalMinutes: 61 },
      });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(isSkillsyncError(err) && err.code).toBe('SKILLSYNC_ERR_CONFIG_INVALID');
    }
  });
});
