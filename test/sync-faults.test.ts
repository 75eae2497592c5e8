import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from './helpers/fake-clock.js';
import { startSyncRig, SYNC_TOKEN, type SyncRig, type SyncRigOptions } from './helpers/sync-rig.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';

let rig: SyncRig | null = null;
let stopDriver: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stopDriver?.();
  stopDriver = null;
  await rig?.close();
  rig = null;
});

async function open(options: SyncRigOptions): Promise<SyncRig> {
  rig = await startSyncRig(options);
  return rig;
}

/**
 * Drives a FakeClock while real I/O runs: whenever a timer waits (a backoff, a Retry-After, the
 * request budget), time jumps to it. The delays asked for are in clock.requestedDelays.
 */
function drive(clock: FakeClock): void {
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 2));
      if (clock.pendingCount > 0) clock.runNext();
    }
  })();
  stopDriver = async () => {
    running = false;
    await loop;
  };
}

function count(r: SyncRig, status: string): number {
  return r.sim.control.counters().byStatus[status] ?? 0;
}

function totalRequests(r: SyncRig): number {
  return Object.values(r.sim.control.counters().byStatus).reduce((a, b) => a + b, 0);
}

describe('faults', () => {
  it('20% 5xx plus 429s with Retry-After: converges, and every 429 was waited out', async () => {
    const clock = new FakeClock(Date.now());
    const r = await open({
      sim: {
        skills: 1500,
        seed: 4,
        faults: {
          seed: 9,
          rules: [
            { fault: 'error', rate: 0.2, status: 503 },
            { fault: 'rate_limit', rate: 0.1, retryAfterSeconds: 3 },
          ],
        },
      },
      // random 0: backoff sleeps are 0 ms, so every non-zero wait is a Retry-After.
      client: { random: () => 0 },
      engine: { pageSize: 50 },
      clock,
    });
    drive(clock);
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expect(res.error).toBeNull();
    expect(res.status).toBe('success');
    expect(await r.store.digest()).toBe(r.sim.control.digest());
    const limited = count(r, '429');
    const failed = count(r, '503');
    expect(limited).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(2);
    const waits = clock.requestedDelays.filter((d) => d > 0);
    expect(waits.length).toBe(limited);
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(3000);
  });

  it('the request budget is never exceeded (the simulator limits at the same rate and never answers 429)', async () => {
    const clock = new FakeClock(Date.now());
    const r = await open({
      sim: { skills: 2000, rateLimitPerMinute: 20, clock },
      client: { requestsPerMinute: 20 },
      engine: { pageSize: 50 },
      clock,
    });
    drive(clock);
    const t0 = clock.now();
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expect(res.status).toBe('success');
    expect(totalRequests(r)).toBeGreaterThan(40);
    expect(count(r, '429')).toBe(0);
    // 42 requests at 20/min need at least two full minutes of (fake) waiting.
    expect(clock.now() - t0).toBeGreaterThanOrEqual(120_000);
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('a server that ignores page: a clear error, no endless loop', async () => {
    const r = await open({ sim: { skills: 500, features: { cursor: false } }, engine: { pageSize: 50 } });
    r.sim.control.setFaults([{ fault: 'ignore_page' }]);
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expect(res.status).not.toBe('success');
    expect(res.error?.code).toBe('SKILLSYNC_ERR_REMOTE_PAGINATION');
    expect(res.error?.message).toMatch(/ignores 'page'/);
    const listings = Object.values(r.sim.control.counters().requests['list_skills'] ?? {}).reduce(
      (a, b) => a + b,
      0,
    );
    expect(listings).toBeLessThanOrEqual(3);
    // The broken listing leaves no checkpoint to resume into the same error.
    expect(await r.store.getCheckpoint()).toBeNull();
  });

  it('an empty-catalog answer: the delete guard holds, the cache stays, an operator can confirm', async () => {
    const r = await open({ sim: { skills: 400 } });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    const digest = await r.store.digest();
    r.sim.control.setFaults([{ fault: 'empty_catalog' }]);
    const res = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(res.run?.deletionsHeld).toBe(400);
    expect(res.run?.deleted).toBe(0);
    expect(await r.store.digest()).toBe(digest);
    const state = await r.store.getSyncState();
    expect(state.heldDeletions).toBe(400);
    expect(state.skillsCached).toBe(400);
    // The operator confirms: the held deletions go.
    expect(await r.engine.confirmHeldDeletions()).toBe(400);
    expect((await r.store.getSyncState()).skillsCached).toBe(0);
    r.sim.control.clearFaults();
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('a large deletion is held, a small one goes through', async () => {
    const r = await open({ sim: { skills: 200, features: { updated_since: false } } });
    await r.engine.syncAll({ trigger: 'manual' });
    r.sim.control.mutate(10, ['delete']);
    const small = await r.engine.syncAll({ trigger: 'manual' });
    expect(small.run?.deleted).toBe(10);
    r.sim.control.mutate(80, ['delete']);
    const big = await r.engine.syncAll({ trigger: 'manual' });
    expect(big.run?.deletionsHeld).toBe(80);
    expect(big.run?.deleted).toBe(0);
  });

  it('refused credentials: auth_failed, one request, then at most one attempt per interval until the config changes', async () => {
    const clock = new FakeClock(Date.now());
    const r = await open({
      sim: { skills: 50 },
      client: { token: 'wrong-token-0000' },
      engine: { authRetryIntervalMs: 15 * 60_000 },
      clock,
    });
    const first = await r.engine.syncAll({ trigger: 'schedule' });
    expect(first.status).toBe('failed');
    expect(first.error?.code).toBe('SKILLSYNC_ERR_REMOTE_AUTH');
    expect((await r.store.getSyncState()).status).toBe('auth_failed');
    expect(totalRequests(r)).toBe(1);
    // Automatic triggers within the interval make no request.
    for (const trigger of ['schedule', 'retry', 'websocket'] as const) {
      const again = await r.engine.syncAll({ trigger });
      expect(again.status).toBe('rejected');
      expect(again.error?.code).toBe('SKILLSYNC_ERR_SYNC_AUTH_FAILED');
    }
    expect(totalRequests(r)).toBe(1);
    clock.advance(15 * 60_000);
    expect((await r.engine.syncAll({ trigger: 'schedule' })).status).toBe('failed');
    expect(totalRequests(r)).toBe(2);
    // The config changes (a new token): the next run goes at once and succeeds.
    r.engine.setRemote(
      createMarketplaceClient({
        baseUrl: r.sim.url,
        token: SYNC_TOKEN,
        paths: r.sim.layout,
        requestsPerMinute: 0,
      }),
    );
    const ok = await r.engine.syncAll({ trigger: 'schedule' });
    expect(ok.status).toBe('success');
    expect((await r.store.getSyncState()).status).toBe('success');
  });

  it('invalid records are quarantined and counted; the rest is applied; they are not deleted later', async () => {
    const r = await open({
      sim: { skills: 600, features: { updated_since: false } },
      engine: { pageSize: 100 },
    });
    r.sim.control.setFaults([{ fault: 'invalid_records', invalidRate: 0.05 }]);
    const first = await r.engine.syncAll({ trigger: 'manual' });
    expect(first.status).toBe('success');
    const q = first.run?.quarantined ?? 0;
    expect(q).toBeGreaterThan(5);
    expect((await r.store.listQuarantine({ limit: 1, offset: 0 })).total).toBe(q);
    expect((await r.store.stats(Date.now())).skills).toBe(600 - q);
    r.sim.control.clearFaults();
    await r.engine.syncAll({ trigger: 'manual' });
    expect(await r.store.digest()).toBe(r.sim.control.digest());
    // Invalid payloads of skills we hold: quarantined, and the stored version is kept, not deleted
    // (those with an id are touched as seen; one without an id holds back the listing's deletions).
    r.sim.control.setFaults([{ fault: 'invalid_records', invalidRate: 0.05 }]);
    const third = await r.engine.syncAll({ trigger: 'manual' });
    expect(third.run?.quarantined).toBeGreaterThan(5);
    expect(third.run?.deleted).toBe(0);
    expect((await r.store.stats(Date.now())).skills).toBe(600);
  });
});

describe('TTL', () => {
  it('entries past their TTL stay (served stale) while the remote is down; a full listing renews them', async () => {
    const clock = new FakeClock(Date.now());
    const H = 3_600_000;
    const r = await open({
      sim: { skills: 120 },
      client: { maxAttempts: 1 },
      engine: { ttlMs: H, fullListingMaxAgeMs: H / 2 },
      clock,
    });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect((await r.store.stats(clock.now())).staleSkills).toBe(0);
    clock.advance(2 * H);
    expect((await r.store.stats(clock.now())).staleSkills).toBe(120);
    r.sim.control.setFaults([{ fault: 'error', status: 503 }]);
    expect((await r.engine.syncAll({ trigger: 'schedule' })).status).toBe('failed');
    expect(await r.engine.sweep(clock.now())).toEqual({ skills: 0, categories: 0 });
    expect((await r.store.stats(clock.now())).skills).toBe(120);
    r.sim.control.clearFaults();
    const renewed = await r.engine.syncAll({ trigger: 'schedule' });
    expect(renewed.run?.mode).toBe('full');
    expect((await r.store.stats(clock.now())).staleSkills).toBe(0);
    expect(await r.engine.sweep(clock.now())).toEqual({ skills: 0, categories: 0 });
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('categories past their TTL stay while /categories answers [] or fails, even after complete skills listings', async () => {
    const clock = new FakeClock(Date.now());
    const H = 3_600_000;
    const r = await open({
      sim: { skills: 60, categories: 8 },
      client: { maxAttempts: 1 },
      engine: { ttlMs: H, fullListingMaxAgeMs: H / 2 },
      clock,
    });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect((await r.store.listCategories(clock.now())).length).toBe(8);

    // The marketplace glitches: an empty categories answer (the guard keeps them, unrefreshed).
    clock.advance(2 * H);
    r.sim.control.setFaults([{ fault: 'empty_catalog', route: 'categories' }]);
    const glitch = await r.engine.syncAll({ trigger: 'schedule' });
    expect(glitch.run?.mode).toBe('full'); // a complete skills listing after their expiry
    expect(glitch.run?.deleted).toBe(0);
    expect(await r.engine.sweep(clock.now())).toEqual({ skills: 0, categories: 0 });
    const kept = await r.store.listCategories(clock.now());
    expect(kept).toHaveLength(8);
    expect(kept.every((c) => c.stale)).toBe(true);

    // Then /categories fails outright while the skills listing completes.
    clock.advance(2 * H);
    r.sim.control.setFaults([{ fault: 'error', status: 503, route: 'categories' }]);
    const failing = await r.engine.syncAll({ trigger: 'schedule' });
    expect(failing.status).toBe('partial');
    expect(failing.run?.mode).toBe('full');
    expect(await r.engine.sweep(clock.now())).toEqual({ skills: 0, categories: 0 });
    expect((await r.store.listCategories(clock.now())).length).toBe(8);

    // Then some category records cannot be read: those categories still exist remotely, so the
    // answer removes nothing (the readable ones are renewed, the invalid ones quarantined).
    r.sim.control.setFaults([{ fault: 'invalid_records', route: 'categories', invalidRate: 0.5 }]);
    const spoiled = await r.engine.syncAll({ trigger: 'schedule' });
    expect(spoiled.run?.quarantined).toBeGreaterThan(0);
    expect((await r.store.listCategories(clock.now())).length).toBe(8);

    // An accepted answer renews them; the cache equals the remote again.
    r.sim.control.clearFaults();
    expect((await r.engine.syncAll({ trigger: 'schedule' })).status).toBe('success');
    expect((await r.store.listCategories(clock.now())).every((c) => !c.stale)).toBe(true);
    expect(await r.engine.sweep(clock.now())).toEqual({ skills: 0, categories: 0 });
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });
});

describe('catch-up requests', () => {
  it('coalesce into one websocket run soon; full wins; one more after an active run', async () => {
    const clock = new FakeClock(Date.now());
    const r = await open({ sim: { skills: 300 }, engine: { catchUpDelayMs: 500 }, clock });
    const runs: string[] = [];
    r.engine.on('runFinished', (res) => runs.push(`${res.run?.trigger}:${res.run?.mode}:${res.status}`));
    r.engine.requestCatchUp('reconnect', 'incremental');
    r.engine.requestCatchUp('seq_gap', 'full');
    r.engine.requestCatchUp('reconnect', 'incremental');
    expect(clock.pendingCount).toBe(1);
    clock.advance(499);
    expect(runs).toHaveLength(0);
    clock.advance(1);
    await waitFor(() => runs.length === 1);
    expect(runs).toEqual(['websocket:full:success']);

    // During an active run: one more run after it.
    const manual = r.engine.syncAll({ trigger: 'manual' });
    r.engine.requestCatchUp('message_lost', 'incremental');
    r.engine.requestCatchUp('message_lost', 'incremental');
    await manual;
    expect(clock.pendingCount).toBe(1);
    clock.advance(500);
    await waitFor(() => runs.length === 3);
    expect(runs[2]).toBe('websocket:incremental:success');
    expect(r.engine.catchUpPending).toBe(false);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
