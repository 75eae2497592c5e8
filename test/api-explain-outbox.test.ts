/**
 * GET /api/admin/skills/:id/explain with a large outbox: done items are never purged, so the
 * skill's pending action must be found by the store's per-skill filter, not in a window of the
 * oldest rows (app.inject on the real service, SQLite, against the simulator).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service-fixture.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t.close();
});

it('counts the skill pending item behind more than 1,000 older outbox rows', async () => {
  const store = t.service.store;
  const [other, id] = t.sim.control.liveSkillIds();
  const now = Date.now();
  // 1,001 older items of another skill, uploaded (done), each in its own chain.
  for (let i = 0; i < 1001; i++) {
    await store.enqueue({
      kind: 'install',
      chainKey: `install:agent-${i}:${other!}`,
      payload: { skill_id: other!, agent_id: `agent-${i}` },
      idempotencyKey: `old-${i}`,
      now,
      skillId: other!,
    });
  }
  const claimed = await store.claimDueOutbox({ now, limit: 2000, leaseUntil: now + 60_000 });
  expect(claimed).toHaveLength(1001);
  for (const item of claimed) await store.completeOutbox(item.id, {}, now);

  const mine = await store.enqueue({
    kind: 'install',
    chainKey: `install:agent-x:${id!}`,
    payload: { skill_id: id!, agent_id: 'agent-x' },
    idempotencyKey: 'mine',
    now,
    skillId: id!,
  });
  const res = await t.service.app.inject({
    method: 'GET',
    url: `/api/admin/skills/${encodeURIComponent(id!)}/explain`,
    headers: t.auth,
  });
  expect(res.statusCode).toBe(200);
  const body = res.json<{ pending_actions: { id: number }[]; story: string[] }>();
  expect(body.pending_actions.map((p) => p.id)).toEqual([mine.id]);
  expect(body.story).toContain('1 pending outbox item(s)');
});
