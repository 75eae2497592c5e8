/**
 * Every route through app.inject() on the real service (SQLite, real engine, outbox and
 * marketplace client) against the simulator: success, validation errors, auth and not found.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skillView } from '../src/api/views.js';
import { startTestService, type TestService } from './helpers/service-fixture.js';

let t: TestService;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function call(method: string, url: string, options: { body?: unknown; admin?: boolean } = {}) {
  const res = await t.service.app.inject({
    method: method as 'GET',
    url,
    headers: options.admin === false ? {} : t.auth,
    ...(options.body === undefined ? {} : { payload: options.body as Json }),
  });
  return {
    status: res.statusCode,
    body: String(res.headers['content-type'] ?? '').includes('json') ? (res.json() as Json) : {},
    raw: res.body,
  };
}

function expectError(res: { status: number; body: Json }, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    statusCode: status,
    code,
    error: expect.any(String),
    message: expect.any(String),
  });
}

async function waitIdle(): Promise<void> {
  while (t.service.engine.running) await new Promise((r) => setTimeout(r, 20));
}

/** `{"<field>": [[[...]]]}` with `depth` levels of arrays, as raw JSON (no recursion here). */
function nested(field: string, depth: number): string {
  return `{"${field}":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

async function putRaw(url: string, method: 'PUT' | 'POST', payload: string) {
  const res = await t.service.app.inject({
    method,
    url,
    headers: { ...t.auth, 'content-type': 'application/json' },
    payload,
  });
  return { status: res.statusCode, body: res.json() as Json };
}

beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t.close();
});

describe('catalog', () => {
  it('lists with paging, total and freshness', async () => {
    const res = await call('GET', '/api/marketplace/skills?page=2&page_size=7', { admin: false });
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(7);
    expect(res.body.total).toBe(200);
    expect(res.body.total_pages).toBe(29);
    expect(res.body.page).toBe(2);
    expect(res.body.freshness).toMatchObject({ stale: false, source: 'cache', remote: 'ok' });
    expect(res.body.items[0].freshness).toMatchObject({ stale: false, served_from: 'cache', source: 'full' });
  });

  it('filters by category, skill_type, tag and text, and sorts', async () => {
    const all = (await call('GET', '/api/marketplace/skills?page_size=100&page=1')).body.items as Json[];
    const sample = all[0]!.skill as Json;
    const byCat = await call(
      'GET',
      `/api/marketplace/skills?category=${encodeURIComponent(sample.category)}&page_size=100`,
    );
    expect(byCat.body.total).toBeGreaterThan(0);
    for (const i of byCat.body.items) expect(i.skill.category).toBe(sample.category);
    const byType = await call('GET', `/api/marketplace/skills?skill_type=${sample.skill_type}&page_size=100`);
    for (const i of byType.body.items) expect(i.skill.skill_type).toBe(sample.skill_type);
    if (sample.tags?.[0]) {
      const byTag = await call(
        'GET',
        `/api/marketplace/skills?tag=${encodeURIComponent(sample.tags[0])}&page_size=100`,
      );
      for (const i of byTag.body.items) expect(i.skill.tags).toContain(sample.tags[0]);
    }
    const word = String(sample.name).split(' ')[0]!;
    const byText = await call(
      'GET',
      `/api/marketplace/skills?query=${encodeURIComponent(word)}&category=${encodeURIComponent(sample.category)}`,
    );
    expect(byText.body.items.map((i: Json) => i.skill.skill_id)).toContain(sample.skill_id);
    const sorted = await call('GET', '/api/marketplace/skills?sort=installs&page_size=50');
    const installs = sorted.body.items.map((i: Json) => i.skill.install_count as number);
    expect(installs).toEqual([...installs].sort((a, b) => b - a));
    const byName = await call('GET', '/api/marketplace/skills?sort=name&page_size=50');
    const names = byName.body.items.map((i: Json) => i.skill.name as string);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it.each([
    ['page_size=101'],
    ['page_size=0'],
    ['page=0'],
    ['page=abc'],
    ['sort=random'],
    ['unknown=1'],
    [`query=${'x'.repeat(201)}`],
    ['category='],
  ])('refuses %s with SKILLSYNC_ERR_API_VALIDATION', async (qs) => {
    expectError(await call('GET', `/api/marketplace/skills?${qs}`), 400, 'SKILLSYNC_ERR_API_VALIDATION');
  });

  it('gets one skill with freshness, or 404', async () => {
    const id = t.sim.control.liveSkillIds()[3]!;
    const res = await call('GET', `/api/marketplace/skills/${id}`);
    expect(res.status).toBe(200);
    expect(res.body.skill.skill_id).toBe(id);
    expect(res.body.local_overrides).toBeNull();
    expect(res.body.freshness.stale).toBe(false);
    // The answer is written as JSON text (the stored payload spliced in): the same document as
    // the record through the view and its schema.
    const record = (await t.service.store.getSkill(id, Date.now()))!;
    expect(res.body.skill).toEqual(JSON.parse(JSON.stringify(record.effective)));
    expect(res.body.freshness).toEqual({
      ...skillView(record, Date.now()).freshness,
      age_seconds: res.body.freshness.age_seconds,
    });
    expectError(
      await call('GET', '/api/marketplace/skills/no-such-skill'),
      404,
      'SKILLSYNC_ERR_API_NOT_FOUND',
    );
  });

  it('lists categories with counts that add up to the catalog', async () => {
    const res = await call('GET', '/api/marketplace/categories');
    expect(res.status).toBe(200);
    expect(res.body.categories.length).toBe(30);
    const sum = (res.body.categories as Json[]).reduce((n, c) => n + (c.skill_count as number), 0);
    expect(sum).toBe(200);
    expect(res.body.freshness.synced_at).not.toBeNull();
  });

  it('answers 404 in the error shape for an unknown route', async () => {
    expectError(await call('GET', '/api/nope'), 404, 'SKILLSYNC_ERR_API_NOT_FOUND');
  });
});

describe('local actions', () => {
  it('rates a skill into the outbox (202), refuses bad input, 404 for unknown skill', async () => {
    const id = t.sim.control.liveSkillIds()[5]!;
    const ok = await call('POST', `/api/marketplace/skills/${id}/ratings`, {
      body: { user_id: 'u1', rating: 4, comment: 'nice' },
    });
    expect(ok.status).toBe(202);
    expect(ok.body.rating).toMatchObject({
      skill_id: id,
      user_id: 'u1',
      rating: 4,
      upload_status: 'pending',
    });
    expect(ok.body.outbox).toMatchObject({ kind: 'rating', status: 'pending' });
    for (const body of [
      { user_id: 'u1', rating: 6 },
      { user_id: 'u1', rating: 0 },
      { user_id: '', rating: 3 },
      { rating: 3 },
      { user_id: 'u1', rating: 3, comment: 'x'.repeat(1001) },
      { user_id: 'u1', rating: 3, extra: true },
    ]) {
      expectError(
        await call('POST', `/api/marketplace/skills/${id}/ratings`, { body }),
        400,
        'SKILLSYNC_ERR_API_VALIDATION',
      );
    }
    const unknown = await call('POST', '/api/marketplace/skills/nope/ratings', {
      body: { user_id: 'u', rating: 3 },
    });
    expectError(unknown, 404, 'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL');
  });

  it('records an install (202) and validates it', async () => {
    const id = t.sim.control.liveSkillIds()[6]!;
    const ok = await call('POST', `/api/marketplace/skills/${id}/install`, { body: { agent_id: 'agent-7' } });
    expect(ok.status).toBe(202);
    expect(ok.body.outbox).toMatchObject({ kind: 'install', status: 'pending' });
    expectError(
      await call('POST', `/api/marketplace/skills/${id}/install`, { body: {} }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    expectError(
      await call('POST', '/api/marketplace/skills/nope/install', { body: { agent_id: 'a' } }),
      404,
      'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
    );
  });

  it('caps the nesting of an override value at 32 levels (a 5,000-deep body overflowed the stack: 500)', async () => {
    const id = t.sim.control.liveSkillIds()[8]!;
    const url = `/api/marketplace/skills/${id}/local`;
    for (const depth of [5000, 33]) {
      const res = await putRaw(url, 'PUT', nested('extra', depth));
      expectError(res, 400, 'SKILLSYNC_ERR_API_VALIDATION');
      expect(res.body.message).toBe(
        'body/extra: an override value nests at most 32 levels of arrays and objects',
      );
    }
    expect((await call('GET', `/api/marketplace/skills/${id}`)).body.local_overrides).toBeNull();
    const ok = await putRaw(url, 'PUT', nested('extra', 32));
    expect(ok.status).toBe(200);
    expect(JSON.stringify(ok.body.local_overrides)).toBe(nested('extra', 32));
    expect((await call('DELETE', url)).status).toBe(200);
  });

  it('sets and clears local overrides', async () => {
    const id = t.sim.control.liveSkillIds()[7]!;
    const put = await call('PUT', `/api/marketplace/skills/${id}/local`, {
      body: { description: 'my own words' },
    });
    expect(put.status).toBe(200);
    expect(put.body.skill.description).toBe('my own words');
    expect(put.body.local_overrides).toEqual({ description: 'my own words' });
    const get = await call('GET', `/api/marketplace/skills/${id}`);
    expect(get.body.skill.description).toBe('my own words');
    // With overrides the catalog read serialises the effective skill: the PUT's document.
    const sameAge = (b: Json) => ({ ...b, freshness: { ...b.freshness, age_seconds: 0 } });
    expect(sameAge(get.body)).toEqual(sameAge(put.body));
    const del = await call('DELETE', `/api/marketplace/skills/${id}/local`);
    expect(del.status).toBe(200);
    expect(del.body.local_overrides).toBeNull();
    expect(del.body.skill.description).not.toBe('my own words');
    expectError(
      await call('PUT', `/api/marketplace/skills/${id}/local`, { body: { skill_id: 'x' } }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    expectError(
      await call('PUT', `/api/marketplace/skills/${id}/local`, { body: {} }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    expectError(
      await call('PUT', `/api/marketplace/skills/${id}/local`, { body: [1] }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    // A known field keeps its type (it used to be stored, then every answer with it was a 500).
    for (const body of [{ description: 5 }, { tags: 'one' }, { average_rating: 'high' }, { name: null }]) {
      expectError(
        await call('PUT', `/api/marketplace/skills/${id}/local`, { body }),
        400,
        'SKILLSYNC_ERR_API_VALIDATION',
      );
    }
    expect((await call('GET', `/api/marketplace/skills/${id}`)).body.local_overrides).toBeNull();
    expectError(
      await call('PUT', '/api/marketplace/skills/nope/local', { body: { name: 'x' } }),
      404,
      'SKILLSYNC_ERR_API_NOT_FOUND',
    );
    expectError(
      await call('DELETE', '/api/marketplace/skills/nope/local'),
      404,
      'SKILLSYNC_ERR_API_NOT_FOUND',
    );
  });
});

describe('admin: sync', () => {
  it('reports status', async () => {
    const res = await call('GET', '/api/admin/sync/status');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'success', running_run_id: null });
    expect(res.body.counts.skills).toBe(200);
    expect(res.body.counts.categories).toBe(30);
    expect(res.body.websocket.configured).toBe(false);
  });

  it('triggers a run (202 with its id), 409 with the running id while it runs, lists runs', async () => {
    t.sim.control.setFaults({ rules: [{ fault: 'latency', route: 'list_skills', latencyMs: 400 }] });
    try {
      const first = await call('POST', '/api/admin/sync/trigger', { body: { mode: 'full' } });
      expect(first.status).toBe(202);
      expect(first.body).toEqual({ run_id: expect.any(Number), mode: 'full' });
      const second = await call('POST', '/api/admin/sync/trigger', { body: {} });
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({
        code: 'SKILLSYNC_ERR_SYNC_IN_PROGRESS',
        run_id: first.body.run_id,
        statusCode: 409,
      });
      expect((await call('GET', '/api/admin/sync/status')).body.running_run_id).toBe(first.body.run_id);
      await waitIdle();
      const runs = await call('GET', '/api/admin/sync/runs?page_size=5');
      expect(runs.status).toBe(200);
      expect(runs.body.total).toBeGreaterThanOrEqual(2);
      expect(runs.body.items[0]).toMatchObject({
        id: first.body.run_id,
        trigger: 'manual',
        mode: 'full',
        status: 'success',
      });
    } finally {
      t.sim.control.clearFaults();
      await waitIdle();
    }
    expectError(
      await call('POST', '/api/admin/sync/trigger', { body: { mode: 'sideways' } }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    expectError(await call('GET', '/api/admin/sync/runs?page=-1'), 400, 'SKILLSYNC_ERR_API_VALIDATION');
  });

  it('reads and changes runtime config: validated, persisted, applied live', async () => {
    const get = await call('GET', '/api/admin/sync/config');
    expect(get.status).toBe(200);
    expect(get.body.runtime.sync_interval_minutes).toBe(15);
    expect(get.body.effective.adminToken).toBe('[redacted]');
    expect(JSON.stringify(get.body)).not.toContain(t.adminToken);
    expect(JSON.stringify(get.body)).not.toContain(t.apiToken);

    const put = await call('PUT', '/api/admin/sync/config', {
      body: { conflict_strategy: 'merge', page_size: 50 },
    });
    expect(put.status).toBe(200);
    expect(put.body.runtime).toMatchObject({ conflict_strategy: 'merge', page_size: 50 });
    expect(t.service.engine.options.strategy).toBe('merge');
    expect(t.service.engine.options.pageSize).toBe(50);
    expect(await t.service.store.getConfigOverrides()).toMatchObject({
      conflictStrategy: 'merge',
      pageSize: 50,
    });

    for (const body of [
      {},
      { sync_interval_minutes: 4 },
      { sync_interval_minutes: 61 },
      { conflict_strategy: 'x' },
      { admin_token: 'x' },
      { page_size: '5O' },
    ]) {
      expectError(await call('PUT', '/api/admin/sync/config', { body }), 400, 'SKILLSYNC_ERR_API_VALIDATION');
    }
    const cleared = await call('PUT', '/api/admin/sync/config', {
      body: { conflict_strategy: null, page_size: null },
    });
    expect(cleared.body.runtime).toMatchObject({ conflict_strategy: 'remote_wins', page_size: 100 });
    expect(t.service.engine.options.strategy).toBe('remote_wins');
    expect(cleared.body.overrides).toEqual({});
  });

  it('confirms held deletions, 409 when nothing is held', async () => {
    expectError(
      await call('POST', '/api/admin/sync/deletions/confirm'),
      409,
      'SKILLSYNC_ERR_SYNC_NOTHING_HELD',
    );
  });
});

describe('admin: websocket without a configured URL', () => {
  it('reports it and refuses actions with 409', async () => {
    const res = await call('GET', '/api/admin/websocket/status');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ configured: false, connected: false });
    for (const action of ['reconnect', 'enable', 'disable']) {
      expectError(await call('POST', `/api/admin/websocket/${action}`), 409, 'SKILLSYNC_ERR_WS_DISABLED');
    }
  });
});

describe('admin: conflicts', () => {
  async function makeConflict(): Promise<{ skillId: string; fields: string[] }> {
    await call('PUT', '/api/admin/sync/config', { body: { conflict_strategy: 'manual' } });
    const [rec] = t.sim.control.mutate(1, ['update']);
    const skillId = rec!.skillId!;
    const remote = t.sim.control.getSkill(skillId)! as Json;
    const local = (await call('GET', `/api/marketplace/skills/${skillId}`)).body.skill as Json;
    const changed = Object.keys(remote).filter(
      (k) =>
        !['updated_at', 'content_hash', 'skill_id'].includes(k) &&
        JSON.stringify(remote[k]) !== JSON.stringify(local[k]),
    );
    expect(changed.length).toBeGreaterThan(0);
    const overrides = Object.fromEntries(
      changed.map((k) => [k, typeof remote[k] === 'string' ? `local ${k}` : ['local']]),
    );
    expect((await call('PUT', `/api/marketplace/skills/${skillId}/local`, { body: overrides })).status).toBe(
      200,
    );
    const run = await t.service.engine.syncAll({ trigger: 'manual', mode: 'incremental' });
    expect(run.status).toBe('success');
    await call('PUT', '/api/admin/sync/config', { body: { conflict_strategy: null } });
    return { skillId, fields: changed };
  }

  it('lists with filters and a true total, shows a field diff, resolves, refuses double resolution', async () => {
    const { skillId, fields } = await makeConflict();
    const list = await call('GET', '/api/admin/conflicts');
    expect(list.status).toBe(200);
    expect(list.body.total).toBe(1);
    const c = list.body.items[0] as Json;
    expect(c).toMatchObject({ skill_id: skillId, status: 'open' });
    const filtered = await call('GET', `/api/admin/conflicts?severity=${c.severity}&type=${c.type}`);
    expect(filtered.body.total).toBe(1);
    const other = (['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const).find((s) => s !== c.severity)!;
    expect((await call('GET', `/api/admin/conflicts?severity=${other}`)).body.total).toBe(0);

    const detail = await call('GET', `/api/admin/conflicts/${c.id}`);
    expect(detail.status).toBe(200);
    const conflicting = (detail.body.diff as Json[]).filter((d) => d.conflicting).map((d) => d.field);
    expect(conflicting.sort()).toEqual([...(c.fields as string[])].sort());
    for (const f of conflicting) expect(fields).toContain(f);

    const resolved = await call('POST', `/api/admin/conflicts/${c.id}/resolve`, {
      body: { strategy: 'remote_wins' },
    });
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({
      status: 'resolved',
      resolution: 'remote_wins',
      resolved_by: 'admin',
    });
    const skill = (await call('GET', `/api/marketplace/skills/${skillId}`)).body as Json;
    for (const f of conflicting) expect(skill.local_overrides?.[f]).toBeUndefined();
    expect(skill.has_open_conflict).toBe(false);

    expectError(
      await call('POST', `/api/admin/conflicts/${c.id}/resolve`, { body: { strategy: 'local_wins' } }),
      409,
      'SKILLSYNC_ERR_CONFLICT_RESOLVED',
    );
    expectError(
      await call('POST', '/api/admin/conflicts/999999/resolve', { body: { strategy: 'merge' } }),
      404,
      'SKILLSYNC_ERR_CONFLICT_NOT_FOUND',
    );
    expectError(await call('GET', '/api/admin/conflicts/999999'), 404, 'SKILLSYNC_ERR_CONFLICT_NOT_FOUND');
    expectError(await call('GET', '/api/admin/conflicts/abc'), 400, 'SKILLSYNC_ERR_API_VALIDATION');
    expectError(
      await call('POST', `/api/admin/conflicts/${c.id}/resolve`, { body: { strategy: 'newest' } }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
    expectError(
      await call('GET', '/api/admin/conflicts?severity=URGENT'),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
  });

  it('resolves with explicit data', async () => {
    const { skillId } = await makeConflict();
    const c = (await call('GET', '/api/admin/conflicts')).body.items[0] as Json;
    const field = (c.fields as string[])[0]!;
    const res = await call('POST', `/api/admin/conflicts/${c.id}/resolve`, {
      body: { data: { [field]: 'decided by hand' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.resolution).toBe('explicit');
    const skill = (await call('GET', `/api/marketplace/skills/${skillId}`)).body as Json;
    expect(skill.skill[field]).toBe('decided by hand');
  });

  it('refuses explicit data that would mistype a skill field, and leaves the conflict open', async () => {
    const { skillId } = await makeConflict();
    const c = (await call('GET', '/api/admin/conflicts')).body.items[0] as Json;
    const before = (await call('GET', `/api/marketplace/skills/${skillId}`)).body as Json;
    const res = await call('POST', `/api/admin/conflicts/${c.id}/resolve`, {
      body: { data: { description: 5, tags: 'not-a-list' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('SKILLSYNC_ERR_API_VALIDATION');
    expect(res.body.message).toMatch(/^body\/data\/(description|tags): /);
    expect((await call('GET', `/api/admin/conflicts/${c.id}`)).body.status).toBe('open');
    const after = await call('GET', `/api/marketplace/skills/${skillId}`);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before);
    // Well-typed data still resolves it.
    const ok = await call('POST', `/api/admin/conflicts/${c.id}/resolve`, {
      body: { data: { description: 'decided by hand', tags: ['hand'] } },
    });
    expect(ok.status).toBe(200);
  });

  it('caps the nesting of explicit data at 32 levels and leaves the conflict open', async () => {
    await makeConflict();
    const c = (await call('GET', '/api/admin/conflicts')).body.items[0] as Json;
    const url = `/api/admin/conflicts/${c.id}/resolve`;
    for (const depth of [5000, 33]) {
      const res = await putRaw(url, 'POST', `{"data":${nested('extra', depth)}}`);
      expectError(res, 400, 'SKILLSYNC_ERR_API_VALIDATION');
      expect(res.body.message).toBe(
        'body/data/extra: an override value nests at most 32 levels of arrays and objects',
      );
    }
    expect((await call('GET', `/api/admin/conflicts/${c.id}`)).body.status).toBe('open');
    const ok = await putRaw(url, 'POST', `{"data":${nested('extra', 32)}}`);
    expect(ok.status).toBe(200);
  });

  it('bulk-resolves all or nothing', async () => {
    await makeConflict();
    await makeConflict();
    const open = (await call('GET', '/api/admin/conflicts')).body.items as Json[];
    expect(open).toHaveLength(2);
    const resolvedBefore = (await call('GET', '/api/admin/conflicts?status=resolved')).body.items[0] as Json;
    const refused = await call('POST', '/api/admin/conflicts/bulk-resolve', {
      body: { ids: [open[0]!.id, resolvedBefore.id], strategy: 'local_wins' },
    });
    expectError(refused, 409, 'SKILLSYNC_ERR_CONFLICT_RESOLVED');
    expect((await call('GET', '/api/admin/conflicts')).body.total).toBe(2);
    const missing = await call('POST', '/api/admin/conflicts/bulk-resolve', {
      body: { ids: [open[0]!.id, 424242], strategy: 'merge' },
    });
    expectError(missing, 404, 'SKILLSYNC_ERR_CONFLICT_NOT_FOUND');
    const ok = await call('POST', '/api/admin/conflicts/bulk-resolve', {
      body: { ids: open.map((c) => c.id), strategy: 'local_wins' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.resolved).toHaveLength(2);
    expect((await call('GET', '/api/admin/conflicts')).body.total).toBe(0);
    expectError(
      await call('POST', '/api/admin/conflicts/bulk-resolve', { body: { ids: [], strategy: 'merge' } }),
      400,
      'SKILLSYNC_ERR_API_VALIDATION',
    );
  });
});

describe('admin: outbox, cache, explain', () => {
  it('lists by status, retries and discards', async () => {
    const id = t.sim.control.liveSkillIds()[9]!;
    await call('POST', `/api/marketplace/skills/${id}/ratings`, { body: { user_id: 'u9', rating: 2 } });
    const pending = await call('GET', '/api/admin/outbox?status=pending');
    expect(pending.status).toBe(200);
    expect(pending.body.total).toBeGreaterThanOrEqual(1);
    const item = (pending.body.items as Json[]).find(
      (i) => i.payload['skill_id'] === id || String(i.chain_key).includes(id),
    )!;
    expect(item).toBeDefined();
    expectError(await call('POST', `/api/admin/outbox/${item.id}/retry`), 409, 'SKILLSYNC_ERR_OUTBOX_STATE');
    expectError(await call('POST', '/api/admin/outbox/987654/retry'), 404, 'SKILLSYNC_ERR_OUTBOX_NOT_FOUND');
    const del = await call('DELETE', `/api/admin/outbox/${item.id}`);
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ discarded: item.id });
    expectError(await call('DELETE', '/api/admin/outbox/987654'), 404, 'SKILLSYNC_ERR_OUTBOX_NOT_FOUND');
    expectError(await call('GET', '/api/admin/outbox?status=lost'), 400, 'SKILLSYNC_ERR_API_VALIDATION');
  });

  it('dead items can be retried', async () => {
    const id = t.sim.control.liveSkillIds()[10]!;
    t.sim.control.setFaults({ rules: [{ fault: 'poison', skillId: id }] });
    try {
      const queued = await call('POST', `/api/marketplace/skills/${id}/install`, {
        body: { agent_id: 'agent-dead' },
      });
      await t.service.uploader.start();
      await t.service.uploader.runNow();
      await t.service.uploader.whenIdle();
      const item = await t.service.store.getOutboxItem(queued.body.outbox.id as number);
      expect(item?.status).toBe('dead');
      t.sim.control.clearFaults();
      const retried = await call('POST', `/api/admin/outbox/${item!.id}/retry`);
      expect(retried.status).toBe(200);
      expect(retried.body.status).toBe('pending');
    } finally {
      t.sim.control.clearFaults();
    }
  });

  it('sweeps the cache and explains a record', async () => {
    const sweep = await call('POST', '/api/admin/cache/invalidate');
    expect(sweep.status).toBe(200);
    expect(sweep.body).toEqual({ skills_removed: 0, categories_removed: 0 });
    const id = t.sim.control.liveSkillIds()[5]!;
    const explain = await call('GET', `/api/admin/skills/${id}/explain`);
    expect(explain.status).toBe(200);
    expect(explain.body.skill_id).toBe(id);
    expect(explain.body.ratings).toEqual([expect.objectContaining({ user_id: 'u1', rating: 4 })]);
    expect(explain.body.story.length).toBeGreaterThan(3);
    expectError(await call('GET', '/api/admin/skills/nope/explain'), 404, 'SKILLSYNC_ERR_API_NOT_FOUND');
  });
});

describe('admin auth on every admin route', () => {
  async function adminRoutes(): Promise<[string, string][]> {
    const doc = (await call('GET', '/docs/json', { admin: false })).body;
    const out: [string, string][] = [];
    for (const [path, methods] of Object.entries(doc.paths as Json)) {
      if (!path.startsWith('/api/admin')) continue;
      for (const method of Object.keys(methods as Json))
        out.push([method.toUpperCase(), path.replace(/\{id\}/, '1')]);
    }
    return out;
  }

  it('covers the documented admin routes', async () => {
    const routes = await adminRoutes();
    expect(routes.length).toBe(19);
  });

  it('answers 401 for a missing or wrong token, before validating anything', async () => {
    for (const [method, url] of await adminRoutes()) {
      const missing = await t.service.app.inject({ method: method as 'GET', url });
      expectError(
        { status: missing.statusCode, body: missing.json() },
        401,
        'SKILLSYNC_ERR_API_UNAUTHORIZED',
      );
      const wrong = await t.service.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${t.adminToken}x` },
      });
      expectError({ status: wrong.statusCode, body: wrong.json() }, 401, 'SKILLSYNC_ERR_API_UNAUTHORIZED');
      const basic = await t.service.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Basic ${t.adminToken}` },
      });
      expect(basic.statusCode).toBe(401);
    }
  });

  it('answers 403 on every admin route when no admin token is configured', async () => {
    const routes = await adminRoutes();
    const open = await startTestService({ env: { SKILLSYNC_ADMIN_TOKEN: '' }, sync: false });
    try {
      for (const [method, url] of routes) {
        const res = await open.service.app.inject({
          method: method as 'GET',
          url,
          headers: { authorization: 'Bearer ' },
        });
        expectError({ status: res.statusCode, body: res.json() }, 403, 'SKILLSYNC_ERR_API_ADMIN_DISABLED');
      }
    } finally {
      await open.close();
    }
  });
});

describe('ops', () => {
  it('healthz, readyz, metrics, openapi', async () => {
    expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      store: 'ok',
      cache_usable: true,
      skills_cached: 200,
    });
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    for (const name of [
      'skillsync_skills_cached 200',
      'skillsync_categories_cached 30',
      'skillsync_remote_requests_total',
      'skillsync_sync_runs_total',
      'skillsync_sync_run_duration_seconds_bucket',
      'skillsync_ws_connected 0',
      'skillsync_conflicts_open',
      'skillsync_outbox_items{status="pending"}',
      'skillsync_cache_oldest_age_seconds',
      'skillsync_http_requests_total{route="/healthz",status="200"}',
    ]) {
      expect(metrics.raw).toContain(name);
    }
    const doc = (await call('GET', '/docs/json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    for (const [path, methods] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(methods as Json)) {
        expect(op.responses, `${method} ${path}`).toHaveProperty('200' in op.responses ? '200' : '202');
        expect(op.responses, `${method} ${path}`).toHaveProperty('400');
      }
    }
  });

  it('readyz is 503 before the first sync with an empty store', async () => {
    const fresh = await startTestService({ sync: false });
    try {
      const res = await fresh.service.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not_ready', store: 'ok', cache_usable: false });
    } finally {
      await fresh.close();
    }
  });

  it('serves the catalog from the store while the remote is down', async () => {
    const down = await startTestService();
    try {
      await down.sim.close();
      const res = await down.service.app.inject({
        method: 'GET',
        url: '/api/marketplace/skills?page_size=3',
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ total: 200, freshness: { source: 'cache' } });
      const one = await down.service.app.inject({
        method: 'GET',
        url: `/api/marketplace/skills/${res.json().items[0].skill.skill_id}`,
      });
      expect(one.statusCode).toBe(200);
      const ready = await down.service.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.json()).toMatchObject({ status: 'ready' });
    } finally {
      await down.service.stop();
    }
  });
});

describe('admin: held deletions', () => {
  it('a listing that would delete too much is held, shown in the status and confirmed by the operator', async () => {
    const own = await startTestService({ simulator: { skills: 40 } });
    try {
      // Remove 20 of 40 skills upstream (50% > the 25% guard): the next full listing holds them.
      own.sim.control.mutate(20, ['delete']);
      const live = own.sim.control.liveSkillIds().length;
      const run = await own.service.engine.syncAll({ trigger: 'manual', mode: 'full' });
      expect(run.run?.deletionsHeld).toBe(40 - live);
      const status = await own.service.app.inject({
        method: 'GET',
        url: '/api/admin/sync/status',
        headers: own.auth,
      });
      expect(status.json().held_deletions.count).toBe(40 - live);
      const confirm = await own.service.app.inject({
        method: 'POST',
        url: '/api/admin/sync/deletions/confirm',
        headers: own.auth,
      });
      expect(confirm.statusCode).toBe(200);
      expect(confirm.json()).toEqual({ deleted: 40 - live });
      expect((await own.service.store.stats(Date.now())).skills).toBe(live);
    } finally {
      await own.close();
    }
  });
});
