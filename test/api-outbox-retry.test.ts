/**
 * POST /api/admin/outbox/:id/retry sends the item now through the uploader, even while the
 * uploader waits for its next probe (after a 401 it waits until the next scheduled run,
 * 30 min by default). The route used to reset the item in the store and only kick the
 * uploader, whose probe wait then held the retried item back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxItem } from '../src/store/types.js';
import { startTestService, type TestService } from './helpers/service-fixture.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ simulator: { skills: 20 } });
});
afterAll(async () => {
  await t.close();
});

async function item(id: number): Promise<OutboxItem> {
  const found = await t.service.store.getOutboxItem(id);
  if (found === null) throw new Error(`no outbox item ${id}`);
  return found;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('operator retry of an outbox item', () => {
  it('uploads a dead item at once while the uploader waits for its probe after a 401', async () => {
    const [deadSkill, authSkill] = t.sim.control.liveSkillIds();
    const uploader = t.service.uploader;
    let probing = false;
    uploader.on('probing', (e: { probing: boolean }) => {
      probing = e.probing;
    });
    await uploader.start();

    // 1. An install the marketplace refuses for good: dead-lettered.
    t.sim.control.setFaults({ rules: [{ fault: 'poison', skillId: deadSkill! }] });
    const dead = await t.service.app.inject({
      method: 'POST',
      url: `/api/marketplace/skills/${deadSkill}/install`,
      payload: { agent_id: 'agent-retry' },
    });
    expect(dead.statusCode).toBe(202);
    const deadId = (dead.json() as { outbox: { id: number } }).outbox.id;
    await until('the poisoned install to be dead', async () => (await item(deadId)).status === 'dead');
    t.sim.control.clearFaults();

    // 2. A 401: the uploader stops and waits for its next probe (the scheduled run, 30 min).
    t.sim.control.configure({ token: 'rotated-elsewhere' });
    const rated = await t.service.app.inject({
      method: 'POST',
      url: `/api/marketplace/skills/${authSkill}/ratings`,
      payload: { user_id: 'u-retry', rating: 5 },
    });
    expect(rated.statusCode).toBe(202);
    const ratingId = (rated.json() as { outbox: { id: number } }).outbox.id;
    await until('the 401', async () => probing && (await item(ratingId)).attempts === 1);
    t.sim.control.configure({ token: t.apiToken });

    // 3. The operator retries the dead item: it is sent now, not after the probe wait.
    const retried = await t.service.app.inject({
      method: 'POST',
      url: `/api/admin/outbox/${deadId}/retry`,
      headers: t.auth,
    });
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ id: deadId, status: 'pending' });
    await until('the retried item to be uploaded', async () => (await item(deadId)).status === 'done');
  });
});
