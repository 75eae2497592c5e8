/**
 * The outbox end to end: LocalActions + OutboxUploader + real SQLite + the real marketplace
 * client against the simulator over real sockets. The uploader runs on a FakeClock, so
 * backoff and timers are driven (and their delays asserted) without waiting; the simulator
 * counts how often each Idempotency-Key took effect and the order ratings were applied in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SkillsyncError } from '../src/core/errors.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { OutboxItem } from '../src/store/types.js';
import { LocalActions } from '../src/sync/local-actions.js';
import { OutboxUploader } from '../src/sync/outbox-uploader.js';
import { FakeClock } from './helpers/fake-clock.js';
import {
  createApi,
  drainWithFakeClock,
  INSTANCE_ID,
  OUTBOX_TOKEN,
  seededRandom,
  startOutboxRig,
  type OutboxRig,
} from './helpers/outbox-rig.js';

const rigs: OutboxRig[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) await rig.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function rig(options: Parameters<typeof startOutboxRig>[0]): Promise<OutboxRig> {
  const r = await startOutboxRig(options);
  rigs.push(r);
  return r;
}

async function outbox(r: OutboxRig, status?: OutboxItem['status']): Promise<OutboxItem[]> {
  const page = await r.store.listOutbox({ ...(status ? { status } : {}), limit: 100_000, offset: 0 });
  return page.items;
}

describe('outbox upload under faults', () => {
  it('1,000 actions under ~30% transient failures and lost responses: each applied exactly once, chains in order', async () => {
    const clock = new FakeClock();
    const random = seededRandom(1000);
    const r = await rig({
      clock,
      random: seededRandom(99),
      skills: 10,
      uploader: { backoffCapMs: 30_000 },
      sim: {
        faults: {
          seed: 5,
          rules: [
            { fault: 'error', route: ['rate', 'install'], rate: 0.15, status: 503 },
            { fault: 'reset', route: ['rate', 'install'], rate: 0.05 },
            { fault: 'lost_response', rate: 0.1 },
          ],
        },
      },
    });
    await r.uploader.start();

    const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    const agents = Array.from({ length: 5 }, (_, i) => `agent-${i}`);
    const expected = new Map<string, number[]>(); // "user\0skill" -> ratings in creation order
    const keys: string[] = [];
    let installs = 0;
    for (let i = 0; i < 1000; i++) {
      const skillId = r.skillIds[Math.floor(random() * r.skillIds.length)]!;
      if (random() < 0.2) {
        const agentId = agents[Math.floor(random() * agents.length)]!;
        keys.push((await r.actions.install({ skillId, agentId })).idempotencyKey);
        installs++;
      } else {
        const userId = users[Math.floor(random() * users.length)]!;
        const rating = 1 + Math.floor(random() * 5);
        const { outbox: item } = await r.actions.rate({ skillId, userId, rating, comment: `#${i}` });
        keys.push(item.idempotencyKey);
        const k = `${userId}\u0000${skillId}`;
        expected.set(k, [...(expected.get(k) ?? []), rating]);
      }
    }
    expect(new Set(keys).size).toBe(1000);

    // Jumps of at least 2 s let retries that fall due close together go out together.
    await drainWithFakeClock(r, clock, { minStepMs: 2_000 });

    const counters = r.sim.control.counters();
    for (const key of keys) expect(counters.appliedByKey(key), key).toBe(1);
    expect(counters.ratingsApplied).toBe(1000 - installs);
    expect(counters.installsApplied).toBe(installs);
    for (const [k, ratings] of expected) {
      const [userId, skillId] = k.split('\u0000') as [string, string];
      expect(counters.ratingHistory(userId, skillId), k).toEqual(ratings);
    }
    // Faults really happened: responses were lost after the effect, and items were retried.
    expect(counters.requests['rate']?.['0'] ?? 0).toBeGreaterThan(10);
    expect(counters.byStatus['503'] ?? 0).toBeGreaterThan(50);
    expect(r.uploader.counters().retried).toBeGreaterThan(150);
    expect(r.uploader.counters().dead).toBe(0);
    // Nothing stuck: every item done, every local rating uploaded with its remote id.
    const all = await outbox(r);
    expect(all).toHaveLength(1000);
    expect(all.filter((i) => i.status !== 'done')).toEqual([]);
    expect((await r.store.getSyncState()).pendingActions).toBe(0);
    for (const k of expected.keys()) {
      const [userId, skillId] = k.split('\u0000') as [string, string];
      const local = await r.actions.getRating(skillId, userId);
      expect(local?.uploadStatus).toBe('uploaded');
      expect(local?.remoteRatingId).toBeTruthy();
      expect(local?.rating).toBe(expected.get(k)!.at(-1));
    }
  });

  it('a poison item is dead after its first permanent failure; other chains continue; retry delivers it', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: seededRandom(3), skills: 10 });
    const [poisonSkill, otherSkill] = r.skillIds as [string, string];
    r.sim.control.setFaults([{ fault: 'poison', skillId: poisonSkill, userId: 'alice', status: 422 }]);
    await r.uploader.start();

    const poison = await r.actions.rate({ skillId: poisonSkill, userId: 'alice', rating: 2 });
    const behind = await r.actions.rate({ skillId: poisonSkill, userId: 'alice', rating: 3 });
    const others: string[] = [];
    others.push(
      (await r.actions.rate({ skillId: otherSkill, userId: 'alice', rating: 5 })).outbox.idempotencyKey,
    );
    for (let i = 0; i < 20; i++) {
      const skillId = r.skillIds[i % r.skillIds.length]!;
      others.push(
        (await r.actions.rate({ skillId, userId: `bob-${i}`, rating: 1 + (i % 5) })).outbox.idempotencyKey,
      );
    }
    others.push((await r.actions.install({ skillId: poisonSkill, agentId: 'agent-1' })).idempotencyKey);

    // Drain until only the chain behind the poison item is left.
    await drainWithFakeClock(r, clock, {
      done: async () => (await r.store.getSyncState()).pendingActions === 1,
    });

    const dead = await r.store.getOutboxItem(poison.outbox.id);
    expect(dead?.status).toBe('dead');
    expect(dead?.attempts).toBe(1);
    expect(dead?.lastError).toContain('422');
    expect(r.sim.control.counters().requests['rate']?.['422']).toBe(1);
    expect((await r.store.getOutboxItem(behind.outbox.id))?.status).toBe('pending');
    expect((await r.actions.getRating(poisonSkill, 'alice'))?.uploadStatus).toBe('failed');
    const counters = r.sim.control.counters();
    for (const key of others) expect(counters.appliedByKey(key)).toBe(1);
    expect(counters.appliedByKey(poison.outbox.idempotencyKey)).toBe(0);

    // The simulator is fixed; an operator retries the dead item: it goes, then its chain.
    r.sim.control.clearFaults();
    const retried = await r.uploader.retry(poison.outbox.id);
    expect(retried.idempotencyKey).toBe(poison.outbox.idempotencyKey);
    await drainWithFakeClock(r, clock);
    const after = r.sim.control.counters();
    expect(after.appliedByKey(poison.outbox.idempotencyKey)).toBe(1);
    expect(after.appliedByKey(behind.outbox.idempotencyKey)).toBe(1);
    expect(after.ratingHistory('alice', poisonSkill)).toEqual([2, 3]);
    expect((await r.actions.getRating(poisonSkill, 'alice'))?.uploadStatus).toBe('uploaded');
  });

  it('an operator can discard a dead item; its chain continues with the next one', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: seededRandom(4), skills: 5 });
    const skill = r.skillIds[0]!;
    r.sim.control.setFaults([{ fault: 'poison', skillId: skill, userId: 'carol', status: 400, times: 1 }]);
    await r.uploader.start();
    const first = await r.actions.rate({ skillId: skill, userId: 'carol', rating: 1 });
    const second = await r.actions.rate({ skillId: skill, userId: 'carol', rating: 4 });
    await drainWithFakeClock(r, clock, { done: async () => (await outbox(r, 'dead')).length === 1 });
    await r.uploader.discard(first.outbox.id);
    await drainWithFakeClock(r, clock);
    expect(await r.store.getOutboxItem(first.outbox.id)).toBeNull();
    expect(r.sim.control.counters().ratingHistory('carol', skill)).toEqual([4]);
    expect(r.sim.control.counters().appliedByKey(second.outbox.idempotencyKey)).toBe(1);
    await expect(r.uploader.retry(first.outbox.id)).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_OUTBOX_NOT_FOUND',
    });
  });

  it('remote down for several backoff cycles, then back: drains without operator action, probing meanwhile', async () => {
    const clock = new FakeClock();
    const r = await rig({
      clock,
      random: seededRandom(8),
      skills: 30,
      uploader: { backoffBaseMs: 100, backoffCapMs: 1_600 },
    });
    r.sim.control.setFaults([{ fault: 'error', route: ['rate', 'install'], status: 503 }]);
    const probing: boolean[] = [];
    r.uploader.on('probing', (e) => probing.push(e.probing));
    await r.uploader.start();
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) {
      keys.push(
        (await r.actions.rate({ skillId: r.skillIds[i]!, userId: 'dan', rating: 1 + (i % 5) })).outbox
          .idempotencyKey,
      );
    }

    // Ride out the outage for 10 s of clock: more than five full cycles of the 1.6 s cap.
    const outageEnd = clock.now() + 10_000;
    let jumps = 0;
    while (clock.now() < outageEnd) {
      await r.uploader.whenIdle();
      if (!clock.runNext()) break;
      jumps++;
      await new Promise((res) => setImmediate(res));
    }
    await r.uploader.whenIdle();
    expect(jumps).toBeGreaterThan(5);
    const during = r.sim.control.counters();
    expect(during.ratingsApplied).toBe(0);
    const failedRequests = during.requests['rate']?.['503'] ?? 0;
    expect(failedRequests).toBeGreaterThan(10);
    // Probing: after the first ten failures, one request at a time, spaced by backoff, so
    // the 30 items were not each hammered every cycle.
    expect(probing[0]).toBe(true);
    expect(failedRequests).toBeLessThan(30 * 5);
    expect(await outbox(r, 'dead')).toEqual([]);
    // What had been claimed ahead was handed back, not left leased.
    expect(await outbox(r, 'in_flight')).toEqual([]);
    expect(r.uploader.counters().ready).toBe(0);

    // The remote comes back; nobody calls anything: the next probe succeeds and everything
    // that backed off is pulled forward.
    r.sim.control.clearFaults();
    const rounds = await drainWithFakeClock(r, clock);
    expect(rounds).toBeLessThanOrEqual(3);
    expect(probing.at(-1)).toBe(false);
    const after = r.sim.control.counters();
    for (const key of keys) expect(after.appliedByKey(key)).toBe(1);
    expect(await outbox(r, 'dead')).toEqual([]);
  });

  it('refused credentials (401) stop uploading until the next scheduled run; nothing is dead-lettered', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: () => 0.5, skills: 10 });
    r.sim.control.configure({ token: 'someone-else' });
    const authFailures: number[] = [];
    r.uploader.on('auth_failed', () => authFailures.push(clock.now()));
    await r.uploader.start();
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      keys.push(
        (await r.actions.rate({ skillId: r.skillIds[i]!, userId: 'lee', rating: 4 })).outbox.idempotencyKey,
      );
    }
    clock.advance(250);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    const refused = (): number => r.sim.control.counters().requests['rate']?.['401'] ?? 0;
    const first = refused();
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(5);
    // The items' own backoff (seconds) passes many times over: still no request.
    for (let t = 0; t < 29; t++) {
      clock.advance(60_000);
      await new Promise((res) => setImmediate(res));
      await r.uploader.whenIdle();
    }
    expect(refused()).toBe(first);
    expect(await outbox(r, 'dead')).toEqual([]);
    // Credentials fixed; the scheduled run (30 min) probes, succeeds and drains the rest.
    r.sim.control.configure({ token: OUTBOX_TOKEN });
    await drainWithFakeClock(r, clock);
    for (const key of keys) expect(r.sim.control.counters().appliedByKey(key)).toBe(1);
    expect(authFailures.length).toBe(first);
  });

  it('onRemoteReachable() sends items at once that are still backing off', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: () => 1, skills: 5 });
    r.sim.control.setFaults([{ fault: 'error', route: ['rate'], status: 502 }]);
    await r.uploader.start();
    const item = await r.actions.rate({ skillId: r.skillIds[0]!, userId: 'erin', rating: 5 });
    clock.advance(250); // the kick
    await r.uploader.whenIdle();
    const failed = await r.store.getOutboxItem(item.outbox.id);
    expect(failed?.attempts).toBe(1);
    expect(failed?.nextAttemptAt).toBe(clock.now() + 1_000);
    r.sim.control.clearFaults();
    await r.uploader.onRemoteReachable();
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.outbox.id))?.status).toBe('done');
    expect(r.sim.control.counters().appliedByKey(item.outbox.idempotencyKey)).toBe(1);
  });
});

describe('edits', () => {
  it('rate, edit, edit again offline: each edit uploaded in order (not coalesced), the remote holds the last', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: seededRandom(12), skills: 5 });
    const skillId = r.skillIds[0]!;
    r.sim.control.setFaults([{ fault: 'error', route: ['rate'], status: 503 }]); // offline
    await r.uploader.start();

    const a = await r.actions.rate({ skillId, userId: 'frank', rating: 3, comment: 'ok' });
    // Read-your-writes: the local rating is there at once, pending.
    expect(await r.actions.getRating(skillId, 'frank')).toMatchObject({ rating: 3, uploadStatus: 'pending' });
    const b = await r.actions.rate({ skillId, userId: 'frank', rating: 4 });
    const c = await r.actions.rate({ skillId, userId: 'frank', rating: 5, comment: 'great' });
    expect(await r.actions.getRating(skillId, 'frank')).toMatchObject({
      rating: 5,
      comment: 'great',
      uploadStatus: 'pending',
    });
    expect(new Set([a.outbox.chainKey, b.outbox.chainKey, c.outbox.chainKey]).size).toBe(1);
    expect(new Set([a.outbox.idempotencyKey, b.outbox.idempotencyKey, c.outbox.idempotencyKey]).size).toBe(3);
    expect((await r.store.getSyncState()).pendingActions).toBe(3);

    // A few failed cycles: only the chain head is ever tried.
    for (let i = 0; i < 4; i++) {
      await r.uploader.whenIdle();
      clock.runNext();
      await new Promise((res) => setImmediate(res));
    }
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(b.outbox.id))?.attempts).toBe(0);
    expect((await r.store.getOutboxItem(c.outbox.id))?.attempts).toBe(0);

    r.sim.control.clearFaults();
    await drainWithFakeClock(r, clock);
    const counters = r.sim.control.counters();
    expect(counters.ratingHistory('frank', skillId)).toEqual([3, 4, 5]);
    for (const item of [a, b, c]) expect(counters.appliedByKey(item.outbox.idempotencyKey)).toBe(1);
    const local = await r.actions.getRating(skillId, 'frank');
    expect(local).toMatchObject({ rating: 5, uploadStatus: 'uploaded' });
    expect(local?.remoteRatingId).toBeTruthy();
    // The remote's answer updated the skill's aggregates locally.
    const remote = r.sim.control.getSkill(skillId)!;
    const cached = await r.store.getSkill(skillId, clock.now());
    expect(cached?.base.rating_count).toBe(remote.rating_count);
    expect(cached?.base.average_rating).toBeCloseTo(remote.average_rating ?? -1, 6);
  });
});

describe('local actions refused', () => {
  it('invalid input or an unknown skill is refused with a clear error and nothing is queued', async () => {
    const r = await rig({ skills: 5 });
    const skillId = r.skillIds[0]!;
    const cases: [() => Promise<unknown>, string, string | undefined][] = [
      [() => r.actions.rate({ skillId, userId: 'u', rating: 0 }), 'SKILLSYNC_ERR_ACTION_INVALID', 'rating'],
      [() => r.actions.rate({ skillId, userId: 'u', rating: 6 }), 'SKILLSYNC_ERR_ACTION_INVALID', 'rating'],
      [() => r.actions.rate({ skillId, userId: '', rating: 3 }), 'SKILLSYNC_ERR_ACTION_INVALID', 'user_id'],
      [
        () => r.actions.rate({ skillId, userId: 'u', rating: 3, comment: 'x'.repeat(1001) }),
        'SKILLSYNC_ERR_ACTION_INVALID',
        'comment',
      ],
      [
        () => r.actions.rate({ skillId: 'no-such-skill', userId: 'u', rating: 3 }),
        'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
        undefined,
      ],
      [() => r.actions.install({ skillId, agentId: '' }), 'SKILLSYNC_ERR_ACTION_INVALID', 'agent_id'],
      [
        () => r.actions.install({ skillId: 'no-such-skill', agentId: 'a' }),
        'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
        undefined,
      ],
    ];
    for (const [call, code, field] of cases) {
      const err = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SkillsyncError);
      expect((err as SkillsyncError).code).toBe(code);
      if (field !== undefined) expect((err as SkillsyncError).details).toEqual({ field });
    }
    expect(await outbox(r)).toEqual([]);
    expect(await r.actions.getRating(skillId, 'u')).toBeNull();
    expect(await r.actions.getRating('no-such-skill', 'u')).toBeNull();
    expect((await r.store.getSyncState()).pendingActions).toBe(0);
  });
});

describe('timing', () => {
  it('backs off 1, 2, 4 ... 256 s (jitter at its top) and dead-letters after 10 attempts', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: () => 1, skills: 5 });
    r.sim.control.setFaults([{ fault: 'error', route: ['install'], status: 500 }]);
    const retried: number[] = [];
    r.uploader.on('retried', (e) => retried.push(e.delayMs));
    await r.uploader.start();
    const item = await r.actions.install({ skillId: r.skillIds[0]!, agentId: 'agent-x' });
    await drainWithFakeClock(r, clock, { done: async () => (await outbox(r, 'dead')).length === 1 });
    const ladder = [1, 2, 4, 8, 16, 32, 64, 128, 256].map((s) => s * 1000);
    expect(retried).toEqual(ladder);
    // The uploader asked its clock for exactly those waits (the next-due timer).
    for (const d of ladder) expect(clock.requestedDelays).toContain(d);
    const dead = await r.store.getOutboxItem(item.id);
    expect(dead).toMatchObject({ status: 'dead', attempts: 10 });
    expect(dead?.lastError).toContain('HTTP 500');
    expect(r.sim.control.counters().requests['install']?.['500']).toBe(10);
  });

  it('a 429 waits at least its Retry-After even when the jitter says 0', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, random: () => 0, skills: 5 });
    r.sim.control.setFaults([{ fault: 'rate_limit', route: ['rate'], retryAfterSeconds: 30, times: 1 }]);
    const retried: number[] = [];
    r.uploader.on('retried', (e) => retried.push(e.delayMs));
    await r.uploader.start();
    const item = await r.actions.rate({ skillId: r.skillIds[0]!, userId: 'gina', rating: 4 });
    clock.advance(250);
    await r.uploader.whenIdle();
    expect(retried).toEqual([30_000]);
    expect((await r.store.getOutboxItem(item.outbox.id))?.nextAttemptAt).toBe(clock.now() + 30_000);
    clock.advance(29_999);
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.outbox.id))?.status).toBe('pending');
    clock.advance(1);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.outbox.id))?.status).toBe('done');
  });

  it('a burst of local actions makes one debounced kick', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, skills: 5 });
    await r.uploader.start();
    await r.uploader.whenIdle();
    const before = clock.requestedDelays.length;
    for (let i = 0; i < 5; i++) await r.actions.rate({ skillId: r.skillIds[i]!, userId: 'hal', rating: 3 });
    expect(clock.requestedDelays.slice(before)).toEqual([250]);
    await r.uploader.whenIdle();
    expect(r.sim.control.counters().ratingsApplied).toBe(0);
    clock.advance(250);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    expect(r.sim.control.counters().ratingsApplied).toBe(5);
  });

  it('the scheduled job runs every intervalMinutes and stop() leaves no timer behind', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, skills: 5, uploader: { intervalMinutes: 10 } });
    // Queued while no uploader listens (no kick): only the scheduled job will find it.
    const quiet = new LocalActions(r.store, { instanceId: INSTANCE_ID }, clock);
    await r.uploader.start();
    await r.uploader.whenIdle();
    const item = await quiet.install({ skillId: r.skillIds[0]!, agentId: 'agent-q' });
    clock.advance(10 * 60_000 - 1);
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.id))?.status).toBe('pending');
    clock.advance(1);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.id))?.status).toBe('done');
    expect(clock.pendingCount).toBeGreaterThan(0);
    await r.uploader.stop();
    expect(clock.pendingCount).toBe(0);
    expect(r.uploader.running).toBe(false);
  });
});

describe('prefetch', () => {
  it('claims ahead of free slots, and stop() hands unsent claimed items back at once', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, skills: 30 });
    await r.uploader.start();
    for (let i = 0; i < 30; i++) await r.actions.rate({ skillId: r.skillIds[i]!, userId: 'kim', rating: 2 });
    clock.advance(250);
    // One claim filled the 10 slots and the 10 ready places.
    for (let i = 0; i < 1000 && r.uploader.counters().ready < 10; i++)
      await new Promise((res) => setImmediate(res));
    expect(r.uploader.counters()).toMatchObject({ inFlight: 10, ready: 10 });
    await r.uploader.stop();
    const items = await outbox(r);
    expect(items.filter((i) => i.status === 'done')).toHaveLength(10);
    expect(items.filter((i) => i.status === 'pending')).toHaveLength(20);
    expect(items.filter((i) => i.status === 'in_flight')).toHaveLength(0);
    // The handed-back ones are due now, so a restart sends them without waiting for a lease.
    expect(items.filter((i) => i.status === 'pending' && i.nextAttemptAt > clock.now())).toEqual([]);
    expect(r.sim.control.counters().ratingsApplied).toBe(10);
  });
  it('a claimed item that waited past half its lease is handed back and claimed afresh, not sent stale', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, skills: 4, uploader: { concurrency: 1, prefetch: 3, leaseMs: 1_000 } });
    r.sim.control.setFaults([{ fault: 'latency', route: ['rate'], latencyMs: 300, times: 1 }]);
    await r.uploader.start();
    const items = [];
    for (let i = 0; i < 4; i++)
      items.push((await r.actions.rate({ skillId: r.skillIds[i]!, userId: 'max', rating: 5 })).outbox);
    clock.advance(250);
    for (let i = 0; i < 1000 && r.uploader.counters().ready < 3; i++)
      await new Promise((res) => setImmediate(res));
    expect(r.uploader.counters()).toMatchObject({ inFlight: 1, ready: 3 });
    clock.advance(600); // the slow first request outlives half the others' lease
    await r.uploader.whenIdle();
    await drainWithFakeClock(r, clock);
    const attempts = await Promise.all(items.map(async (i) => (await r.store.getOutboxItem(i.id))?.attempts));
    expect(attempts).toEqual([1, 2, 2, 2]);
    for (const item of items) expect(r.sim.control.counters().appliedByKey(item.idempotencyKey)).toBe(1);
  });
});

describe('restarts', () => {
  it('a backoff survives a restart: the next attempt time is persisted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-restart-'));
    dirs.push(dir);
    const dbPath = join(dir, 'store.db');
    const clock = new FakeClock();
    const r = await rig({ clock, random: () => 1, dbPath, skills: 5 });
    r.sim.control.setFaults([{ fault: 'error', route: ['rate'], status: 503, times: 2 }]);
    await r.uploader.start();
    const item = await r.actions.rate({ skillId: r.skillIds[0]!, userId: 'ivy', rating: 2 });
    clock.advance(250);
    await r.uploader.whenIdle();
    clock.advance(1_000);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    const waiting = await r.store.getOutboxItem(item.outbox.id);
    expect(waiting).toMatchObject({ status: 'pending', attempts: 2 });
    expect(waiting?.nextAttemptAt).toBe(clock.now() + 2_000);
    await r.uploader.stop();
    await r.store.close();

    // A new process: same database, new store, client and uploader.
    const store = await openSqliteStore({ path: dbPath });
    const api = createApi(r.sim.url, clock);
    const uploader = new OutboxUploader({ store, api }, {}, clock);
    try {
      await uploader.start();
      await uploader.whenIdle();
      clock.advance(1_999);
      await uploader.whenIdle();
      expect((await store.getOutboxItem(item.outbox.id))?.status).toBe('pending');
      expect(r.sim.control.counters().requests['rate']?.['503']).toBe(2);
      clock.advance(1);
      await new Promise((res) => setImmediate(res));
      await uploader.whenIdle();
      expect(await store.getOutboxItem(item.outbox.id)).toMatchObject({ status: 'done', attempts: 3 });
      expect(r.sim.control.counters().appliedByKey(item.outbox.idempotencyKey)).toBe(1);
    } finally {
      await uploader.stop();
      await api.close();
      await store.close();
      // The rig's own store is closed already; let close() skip it.
      r.store.close = () => Promise.resolve();
    }
  });

  it('items leased by a dead process are recovered once their lease expires', async () => {
    const clock = new FakeClock();
    const r = await rig({ clock, skills: 5, uploader: { leaseMs: 60_000 } });
    const item = await r.actions.rate({ skillId: r.skillIds[0]!, userId: 'jay', rating: 1 });
    // A previous process claimed it and died.
    const [claimed] = await r.store.claimDueOutbox({
      now: clock.now(),
      limit: 10,
      leaseUntil: clock.now() + 60_000,
    });
    expect(claimed?.id).toBe(item.outbox.id);
    await r.uploader.start();
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.outbox.id))?.status).toBe('in_flight');
    clock.advance(60_000);
    await new Promise((res) => setImmediate(res));
    await r.uploader.whenIdle();
    expect((await r.store.getOutboxItem(item.outbox.id))?.status).toBe('done');
    expect(r.sim.control.counters().appliedByKey(item.outbox.idempotencyKey)).toBe(1);
  });
});
