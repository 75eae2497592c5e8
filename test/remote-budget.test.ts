import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestBudget } from '../src/remote/request-budget.js';
import { FakeClock } from './helpers/fake-clock.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** Starts `n` acquires and records, per caller, the fake time at which it was granted. */
function acquireMany(budget: RequestBudget, clock: FakeClock, n: number, signal?: AbortSignal): number[] {
  const grantedAt: number[] = [];
  for (let i = 0; i < n; i++) {
    void budget.acquire(signal).then(
      () => grantedAt.push(clock.now()),
      () => grantedAt.push(-1),
    );
  }
  return grantedAt;
}

describe('RequestBudget', () => {
  it('grants a burst up to the limit at once, then one token per grant leaving the window', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 3 }, clock);
    const grantedAt = acquireMany(budget, clock, 5);
    await flush();
    expect(grantedAt).toEqual([0, 0, 0]);
    expect(budget.waiting).toBe(2);
    expect(clock.requestedDelays).toEqual([60_000]);
    await clock.advanceAsync(59_999);
    expect(grantedAt).toHaveLength(3);
    await clock.advanceAsync(1);
    expect(grantedAt).toEqual([0, 0, 0, 60_000, 60_000]);
    expect(budget.waiting).toBe(0);
    expect(budget.granted).toBe(5);
  });

  it('returns tokens one window after each grant, not all at once', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 2 }, clock);
    await budget.acquire();
    clock.advance(10_000);
    await budget.acquire();
    const grantedAt = acquireMany(budget, clock, 2);
    await clock.advanceAsync(120_000, 1_000);
    expect(grantedAt).toEqual([60_000, 70_000]);
  });

  it('serves waiters first come, first served', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 1 }, clock);
    const order: string[] = [];
    await budget.acquire();
    for (const name of ['a', 'b', 'c']) void budget.acquire().then(() => order.push(name));
    await clock.advanceAsync(180_000, 30_000);
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('0 means unlimited', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 0 }, clock);
    const grantedAt = acquireMany(budget, clock, 10_000);
    await flush();
    expect(grantedAt).toHaveLength(10_000);
    expect(budget.available).toBe(Infinity);
    expect(clock.requestedDelays).toEqual([]);
  });

  it('a 429 pause holds every caller until Retry-After has passed, even when unlimited', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 0 }, clock);
    budget.pauseFor(30_000);
    budget.pauseFor(5_000); // a shorter pause never shortens a longer one
    expect(budget.pausedUntil).toBe(30_000);
    const grantedAt = acquireMany(budget, clock, 3);
    await clock.advanceAsync(29_999);
    expect(grantedAt).toEqual([]);
    await clock.advanceAsync(1);
    expect(grantedAt).toEqual([30_000, 30_000, 30_000]);
  });

  it('a pause that lands while callers wait for a token pushes them back', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 1 }, clock);
    await budget.acquire();
    const grantedAt = acquireMany(budget, clock, 1);
    clock.advance(50_000);
    budget.pauseFor(20_000);
    await clock.advanceAsync(40_000, 1_000);
    expect(grantedAt).toEqual([70_000]);
  });

  it('an abort removes the waiter at once and rejects with the reason', async () => {
    const clock = new FakeClock(0);
    const budget = new RequestBudget({ requestsPerMinute: 1 }, clock);
    await budget.acquire();
    const ac = new AbortController();
    const aborted = budget.acquire(ac.signal);
    const after = acquireMany(budget, clock, 1);
    ac.abort(new Error('shutdown'));
    await expect(aborted).rejects.toThrow('shutdown');
    expect(budget.waiting).toBe(1);
    await clock.advanceAsync(60_000);
    expect(after).toEqual([60_000]);
    await expect(budget.acquire(ac.signal)).rejects.toThrow('shutdown');
    expect(budget.waiting).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('rejects bad settings', () => {
    expect(() => new RequestBudget({ requestsPerMinute: -1 })).toThrow(RangeError);
    expect(() => new RequestBudget({ requestsPerMinute: 1.5 })).toThrow(RangeError);
    expect(() => new RequestBudget({ requestsPerMinute: 10, windowMs: 0 })).toThrow(RangeError);
  });

  it('no window of one minute ever holds more grants than the limit (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 120 }),
        async (limit, gaps) => {
          const clock = new FakeClock(0);
          const budget = new RequestBudget({ requestsPerMinute: limit }, clock);
          const grants: number[] = [];
          // Arrivals are timers on the same fake clock; after each timer fires, promise
          // callbacks run before time moves again, so each grant is stamped with its own time.
          let at = 0;
          for (const gap of gaps) {
            at += gap;
            clock.setTimeout(() => {
              void budget.acquire().then(() => grants.push(clock.now()));
            }, at);
          }
          while (clock.runNext()) await flush();
          expect(grants).toHaveLength(gaps.length);
          grants.sort((a, b) => a - b);
          for (let i = limit; i < grants.length; i++) {
            // The (i-limit)-th and i-th grants must be a full window apart.
            expect((grants[i] as number) - (grants[i - limit] as number)).toBeGreaterThanOrEqual(60_000);
          }
        },
      ),
      { seed: 20261129, numRuns: 60 },
    );
  });
});
