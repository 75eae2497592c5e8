/**
 * The simulator's marketplace API over real sockets: every endpoint, every extension on and
 * off, every layout and shape variant, auth, the rate limit, ratings and installs with
 * idempotency, and the digest against one computed by a client from the listing.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  catalogDigest,
  categoryContentHash,
  readCategories,
  readHealth,
  readSkill,
  readSkillPage,
  skillContentHash,
  type Skill,
} from '../src/remote/contract.js';
import {
  LAYOUTS,
  LAYOUT_NAMES,
  startSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../simulator/index.js';
import { FakeClock } from './helpers/fake-clock.js';

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  sim = await startSimulator({ skills: 250, ...options });
  return sim;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(
  url: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Reply> {
  const r = await request(url, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.body === undefined
      ? {}
      : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
  });
  const text = await r.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, headers: r.headers, text, json };
}

async function listAll(s: SimulatorHandle, query: string, pageSize = 100): Promise<Skill[]> {
  const out: Skill[] = [];
  for (let page = 1; page < 1000; page++) {
    const r = await call(`${s.url}${s.paths.skills}?page=${page}&page_size=${pageSize}${query}`);
    expect(r.status).toBe(200);
    const p = readSkillPage(r.json);
    if (!p.ok) throw new Error(p.error.message);
    out.push(...p.value.skills);
    if (p.value.received < pageSize) break;
  }
  return out;
}

async function listByCursor(
  s: SimulatorHandle,
  query: string,
  pageSize: number,
  between?: () => void,
): Promise<Skill[]> {
  const out: Skill[] = [];
  let cursor = '';
  for (let n = 0; n < 1000; n++) {
    const r = await call(
      `${s.url}${s.paths.skills}?page_size=${pageSize}&cursor=${encodeURIComponent(cursor)}${query}`,
    );
    expect(r.status).toBe(200);
    out.push(...(r.json.skills as Skill[]));
    if (r.json.next_cursor === null) break;
    cursor = r.json.next_cursor as string;
    between?.();
  }
  return out;
}

describe('simulator API: base endpoints', () => {
  it('answers /health with status, timestamp, version, features and epoch', async () => {
    const s = await start();
    const r = await call(`${s.url}/health`);
    expect(r.status).toBe(200);
    const h = readHealth(r.json);
    expect(h.ok && h.value.status).toBe('ok');
    expect(r.json.features).toEqual(['cursor', 'updated_since', 'idempotency', 'ws_seq', 'epoch']);
    expect(r.json.epoch).toBe(s.control.epoch());
    expect(typeof r.json.timestamp).toBe('string');
  });

  it('pages /skills by page and page_size and ends at a short page', async () => {
    const s = await start();
    const r = await call(`${s.url}/skills?page=2&page_size=100`);
    expect(r.json).toMatchObject({ page: 2, page_size: 100, total: 250, total_pages: 3, has_more: true });
    expect(r.json.skills).toHaveLength(100);
    expect(r.json.skills[0].skill_id).toBe('skill-00000100');
    const last = await call(`${s.url}/skills?page=3&page_size=100`);
    expect(last.json.skills).toHaveLength(50);
    expect(last.json.has_more).toBe(false);
    const beyond = await call(`${s.url}/skills?page=9&page_size=100`);
    expect(beyond.json.skills).toHaveLength(0);
    const dflt = await call(`${s.url}/skills`);
    expect(dflt.json.page_size).toBe(100);
    const all = await listAll(s, '', 64);
    expect(all.map((x) => x.skill_id)).toEqual(s.control.liveSkillIds());
    expect((await call(`${s.url}/skills?page=0`)).status).toBe(400);
    expect((await call(`${s.url}/skills?page_size=abc`)).status).toBe(400);
  });

  it('never serves a read-ahead page that is older than a change', async () => {
    const s = await start();
    const p1 = await call(`${s.url}/skills?page=1&page_size=100`);
    expect(p1.status).toBe(200);
    // Page 2 was prefetched; a rating on one of its skills must show in the page served.
    await call(`${s.url}/skills/skill-00000150/rate`, { method: 'POST', body: { user_id: 'ra', rating: 1 } });
    const p2 = await call(`${s.url}/skills?page=2&page_size=100`);
    const served = (p2.json.skills as Skill[]).find((x) => x.skill_id === 'skill-00000150');
    expect(served).toEqual(s.control.getSkill('skill-00000150'));
    // Without changes, the prefetched page 3 equals a fresh read.
    const p3 = await call(`${s.url}/skills?page=3&page_size=100`);
    const again = await call(`${s.url}/skills?page=3&page_size=100`);
    expect(p3.json.skills).toEqual(again.json.skills);
    const c1 = await call(`${s.url}/skills?cursor=&page_size=100`);
    s.control.configure({ idAlias: true });
    const c2 = await call(`${s.url}/skills?cursor=${c1.json.next_cursor}&page_size=100`);
    expect(c2.json.skills[0].id).toBe('skill-00000100');
  });

  it('caps the page size', async () => {
    const s = await start({ pageSizeCap: 40 });
    const r = await call(`${s.url}/skills?page=1&page_size=1000`);
    expect(r.json.page_size).toBe(40);
    expect(r.json.skills).toHaveLength(40);
    expect(r.json.total_pages).toBe(7);
  });

  it('filters by category, skill_type and query', async () => {
    const s = await start();
    const all = await listAll(s, '');
    const cat = all[0]?.category as string;
    const byCat = await listAll(s, `&category=${cat}`);
    expect(byCat.length).toBe(all.filter((x) => x.category === cat).length);
    expect(byCat.every((x) => x.category === cat)).toBe(true);
    const byType = await listAll(s, '&skill_type=python');
    expect(byType.length).toBe(all.filter((x) => x.skill_type === 'python').length);
    const word = (all[0]?.name as string).split(' ')[1] as string;
    const byQuery = await listAll(s, `&query=${word.toLowerCase()}`);
    expect(byQuery.length).toBe(all.filter((x) => x.name.includes(word)).length);
    expect(byQuery.length).toBeGreaterThan(0);
  });

  it('serves one skill, or 404 for an unknown or deleted one', async () => {
    const s = await start();
    const r = await call(`${s.url}/skills/skill-00000007`);
    expect(r.status).toBe(200);
    expect(r.json.skill_id).toBe('skill-00000007');
    expect(r.json).toEqual(s.control.getSkill('skill-00000007'));
    expect((await call(`${s.url}/skills/nope`)).status).toBe(404);
    expect((await call(`${s.url}/skills/skill-99999999`)).status).toBe(404);
    const [del] = s.control.mutate(1, ['delete']);
    const gone = await call(`${s.url}/skills/${del?.skillId}`);
    expect(gone.status).toBe(404);
    expect(s.control.getSkill(del?.skillId as string)?.deleted_at).toBeTypeOf('string');
  });

  it('answers categories bare or wrapped', async () => {
    const s = await start({ categories: 12 });
    const bare = await call(`${s.url}/categories`);
    expect(Array.isArray(bare.json)).toBe(true);
    expect(bare.json).toHaveLength(12);
    const counted = (bare.json as { skill_count: number }[]).reduce((a, c) => a + c.skill_count, 0);
    expect(counted).toBe(250);
    s.control.configure({ categoriesWrapped: true });
    const wrapped = await call(`${s.url}/categories`);
    expect(wrapped.json.categories).toEqual(bare.json);
    const read = readCategories(wrapped.json);
    expect(read.ok && read.value.categories).toHaveLength(12);
  });

  it('sends `id` instead of `skill_id` when asked, in listings, single reads and events', async () => {
    const s = await start({ idAlias: true });
    const r = await call(`${s.url}/skills?page_size=5`);
    expect(r.json.skills[0].id).toBe('skill-00000000');
    expect(r.json.skills[0].skill_id).toBeUndefined();
    const one = await call(`${s.url}/skills/skill-00000003`);
    expect(one.json.id).toBe('skill-00000003');
    const read = readSkill(one.json);
    expect(read.ok && read.value.skill_id).toBe('skill-00000003');
  });

  for (const layout of LAYOUT_NAMES) {
    it(`serves the ${layout} layout at its paths`, async () => {
      const s = await start({ layout });
      const paths = LAYOUTS[layout];
      expect(s.paths).toEqual(paths);
      expect((await call(`${s.url}${paths.health}`)).json.status).toBe('ok');
      expect((await call(`${s.url}${paths.skills}?page_size=3`)).json.skills).toHaveLength(3);
      expect((await call(`${s.url}${paths.skills}/skill-00000001`)).json.skill_id).toBe('skill-00000001');
      expect((await call(`${s.url}${paths.categories}`)).json).toHaveLength(30);
      const rated = await call(`${s.url}${paths.skills}/skill-00000001/rate`, {
        method: 'POST',
        body: { skill_id: 'skill-00000001', user_id: 'u', rating: 5 },
      });
      expect(rated.status).toBe(200);
      if (layout !== 'skills') expect((await call(`${s.url}/skills?page_size=3`)).status).toBe(404);
    });
  }
});

describe('simulator API: auth and rate limit', () => {
  it('refuses requests without the token and accepts Bearer or X-API-Token', async () => {
    const token = 'sekret-token-123';
    const s = await start({ token });
    const none = await call(`${s.url}/skills?page_size=1`);
    expect(none.status).toBe(401);
    expect(none.text).not.toContain(token);
    expect((await call(`${s.url}/health`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await call(`${s.url}/health`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
      200,
    );
    expect((await call(`${s.url}/health`, { headers: { 'x-api-token': token } })).status).toBe(200);
    expect(s.control.counters().requests['list_skills']?.['401']).toBe(1);
    s.control.configure({ token: null });
    expect((await call(`${s.url}/health`)).status).toBe(200);
  });

  it('answers 429 with Retry-After past the per-minute limit, per instance', async () => {
    const clock = new FakeClock();
    const s = await start({ rateLimitPerMinute: 3, clock });
    const h = { 'x-instance-id': 'a' };
    for (let k = 0; k < 3; k++) expect((await call(`${s.url}/health`, { headers: h })).status).toBe(200);
    clock.advance(20_000);
    const limited = await call(`${s.url}/health`, { headers: h });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('40');
    expect(limited.json.retry_after).toBe(40);
    expect((await call(`${s.url}/health`, { headers: { 'x-instance-id': 'b' } })).status).toBe(200);
    clock.advance(40_000);
    expect((await call(`${s.url}/health`, { headers: h })).status).toBe(200);
  });
});

describe('simulator API: extensions', () => {
  it('cursor: keyset pages cover the catalog and stay stable while it changes', async () => {
    const s = await start();
    const before = s.control.liveSkillIds();
    const seen = await listByCursor(s, '', 30, () => {
      s.control.mutate(3, ['update', 'create', 'delete']);
    });
    const ids = seen.map((x) => x.skill_id);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const after = new Set(s.control.liveSkillIds());
    // Every skill live from start to end was seen exactly once.
    for (const id of before) if (after.has(id)) expect(ids).toContain(id);
  });

  it('cursor off: no next_cursor and the cursor parameter is ignored', async () => {
    const s = await start({ features: { cursor: false } });
    const r = await call(`${s.url}/skills?page_size=10&cursor=abc`);
    expect(r.status).toBe(200);
    expect(r.json.next_cursor).toBeUndefined();
    expect(r.json.skills[0].skill_id).toBe('skill-00000000');
    expect((await call(`${s.url}/health`)).json.features).not.toContain('cursor');
  });

  it('cursor: a bad cursor is 400, a cursor from before a reset is 410', async () => {
    const s = await start();
    expect((await call(`${s.url}/skills?cursor=%%%`)).status).toBe(400);
    const first = await call(`${s.url}/skills?page_size=10&cursor=`);
    s.control.resetDataset();
    const r = await call(`${s.url}/skills?page_size=10&cursor=${first.json.next_cursor}`);
    expect(r.status).toBe(410);
  });

  it('updated_since: changes in (updated_at, skill_id) order, tombstones, server_time', async () => {
    const clock = new FakeClock();
    const s = await start({ clock });
    const t0 = new Date(clock.now()).toISOString();
    const changes = s.control.mutate(20, ['update', 'create', 'delete', 'rating']);
    const deleted = new Set(changes.filter((c) => c.kind === 'delete').map((c) => c.skillId));
    const r = await call(`${s.url}/skills?updated_since=${t0}&include_deleted=true&page_size=1000`);
    expect(r.status).toBe(200);
    expect(typeof r.json.server_time).toBe('string');
    const skills = r.json.skills as Skill[];
    const keys = skills.map((x) => [x.updated_at, x.skill_id].join('|'));
    expect([...keys].sort()).toEqual(keys);
    const touched = new Set(changes.map((c) => c.skillId));
    expect(new Set(skills.map((x) => x.skill_id))).toEqual(touched);
    for (const x of skills) expect(x.deleted_at !== null).toBe(deleted.has(x.skill_id));
    const liveOnly = await call(`${s.url}/skills?updated_since=${t0}&page_size=1000`);
    expect(liveOnly.json.skills.length).toBe(touched.size - deleted.size);
    // The watermark: nothing after server_time yet; a later change shows up from it.
    const next = await call(`${s.url}/skills?updated_since=${r.json.server_time}&include_deleted=true`);
    expect(next.json.skills.length).toBeLessThanOrEqual(1);
    clock.advance(5);
    const [upd] = s.control.mutate(1, ['update']);
    const after = await call(`${s.url}/skills?updated_since=${r.json.server_time}&include_deleted=true`);
    expect(after.json.skills.map((x: Skill) => x.skill_id)).toContain(upd?.skillId);
    expect((await call(`${s.url}/skills?updated_since=yesterday`)).status).toBe(400);
  });

  it('updated_since with cursor: keyset over (updated_at, skill_id)', async () => {
    const clock = new FakeClock();
    const s = await start({ clock });
    const t0 = new Date(clock.now()).toISOString();
    s.control.mutate(45, ['update', 'create', 'delete']);
    const viaCursor = await listByCursor(s, `&updated_since=${t0}&include_deleted=true`, 7);
    const viaPages = await listAll(s, `&updated_since=${t0}&include_deleted=true`, 7);
    expect(viaCursor.map((x) => x.skill_id)).toEqual(viaPages.map((x) => x.skill_id));
    expect(viaCursor.length).toBeGreaterThan(30);
  });

  it('updated_since with a filter pages and counts only matching skills', async () => {
    const clock = new FakeClock();
    const s = await start({ clock });
    const t0 = new Date(clock.now()).toISOString();
    s.control.mutate(120, ['update']);
    const all = await listAll(s, `&updated_since=${t0}`, 1000);
    const type = all[0]?.skill_type as string;
    const expected = all.filter((x) => x.skill_type === type).map((x) => x.skill_id);
    const viaPages = await listAll(s, `&updated_since=${t0}&skill_type=${type}`, 3);
    expect(viaPages.map((x) => x.skill_id)).toEqual(expected);
    const first = await call(`${s.url}/skills?updated_since=${t0}&skill_type=${type}&page_size=3`);
    expect(first.json.total).toBe(expected.length);
    const viaCursor = await listByCursor(s, `&updated_since=${t0}&skill_type=${type}`, 3);
    expect(viaCursor.map((x) => x.skill_id)).toEqual(expected);
  });

  it('updated_since off: the parameter is ignored and no server_time is sent', async () => {
    const s = await start({ features: { updated_since: false } });
    const r = await call(`${s.url}/skills?updated_since=2030-01-01T00:00:00Z&page_size=5`);
    expect(r.json.total).toBe(250);
    expect(r.json.server_time).toBeUndefined();
    expect(r.json.skills[0].deleted_at).toBeUndefined();
  });

  it('idempotency: a replayed key returns the first answer and takes effect once', async () => {
    const s = await start();
    const url = `${s.url}/skills/skill-00000009/rate`;
    const body = { skill_id: 'skill-00000009', user_id: 'alice', rating: 2 };
    const a = await call(url, { method: 'POST', body, headers: { 'idempotency-key': 'k-1' } });
    const b = await call(url, { method: 'POST', body, headers: { 'idempotency-key': 'k-1' } });
    expect(a.status).toBe(200);
    expect(b.text).toBe(a.text);
    expect(a.json).toMatchObject({ success: true, skill_id: 'skill-00000009', rating: 2 });
    const c = s.control.counters();
    expect(c.appliedByKey('k-1')).toBe(1);
    expect(c.ratingsApplied).toBe(1);
    // A later rating by the same user replaces the earlier one.
    const before = s.control.getSkill('skill-00000009') as Skill;
    const d = await call(url, {
      method: 'POST',
      body: { ...body, rating: 5 },
      headers: { 'idempotency-key': 'k-2' },
    });
    expect(d.json.rating_count).toBe(before.rating_count);
    expect(s.control.counters().ratingHistory('alice', 'skill-00000009')).toEqual([2, 5]);
    const inst = `${s.url}/skills/skill-00000009/install`;
    const i1 = await call(inst, {
      method: 'POST',
      body: { agent_id: 'a', instance_id: 'i' },
      headers: { 'idempotency-key': 'k-3' },
    });
    const i2 = await call(inst, {
      method: 'POST',
      body: { agent_id: 'a', instance_id: 'i' },
      headers: { 'idempotency-key': 'k-3' },
    });
    expect(i1.json.install_id).toBe(i2.json.install_id);
    expect(s.control.counters().installsApplied).toBe(1);
    expect(s.control.getSkill('skill-00000009')?.install_count).toBe((before.install_count as number) + 1);
  });

  it('idempotency off: a replay takes effect again', async () => {
    const s = await start({ features: { idempotency: false } });
    const url = `${s.url}/skills/skill-00000009/rate`;
    const body = { skill_id: 'skill-00000009', user_id: 'bob', rating: 3 };
    await call(url, { method: 'POST', body, headers: { 'idempotency-key': 'k-1' } });
    const b = await call(url, { method: 'POST', body, headers: { 'idempotency-key': 'k-1' } });
    expect(b.status).toBe(200);
    expect(s.control.counters().appliedByKey('k-1')).toBe(2);
    expect((await call(`${s.url}/health`)).json.features).not.toContain('idempotency');
  });

  it('validates ratings and installs', async () => {
    const s = await start();
    const rate = (id: string, body: unknown): Promise<Reply> =>
      call(`${s.url}/skills/${id}/rate`, { method: 'POST', body });
    expect((await rate('skill-00000001', { user_id: 'u', rating: 6 })).status).toBe(400);
    expect((await rate('skill-00000001', { user_id: '', rating: 3 })).status).toBe(400);
    expect(
      (await rate('skill-00000001', { skill_id: 'skill-00000002', user_id: 'u', rating: 3 })).status,
    ).toBe(400);
    expect((await rate('skill-00000001', 'not json')).status).toBe(400);
    expect((await rate('skill-77777777', { user_id: 'u', rating: 3 })).status).toBe(404);
    const inst = (body: unknown): Promise<Reply> =>
      call(`${s.url}/skills/skill-00000001/install`, { method: 'POST', body });
    expect((await inst({ agent_id: 'a' })).status).toBe(400);
    expect((await inst({ agent_id: 'a', instance_id: 'b' })).json.success).toBe(true);
    expect(s.control.counters().ratingsApplied).toBe(0);
  });

  it('epoch: announced in health, changed by a reset; off: absent', async () => {
    const s = await start();
    const e0 = (await call(`${s.url}/health`)).json.epoch as string;
    const d0 = s.control.digest();
    const e1 = s.control.resetDataset();
    expect(e1).not.toBe(e0);
    expect((await call(`${s.url}/health`)).json.epoch).toBe(e1);
    expect(s.control.digest()).not.toBe(d0);
    s.control.configure({ features: { epoch: false } });
    const h = (await call(`${s.url}/health`)).json;
    expect(h.epoch).toBeUndefined();
    expect(h.features).not.toContain('epoch');
  });
});

describe('simulator digest', () => {
  async function clientDigest(s: SimulatorHandle): Promise<string> {
    const skills = await listAll(s, '', 100);
    const cats = readCategories((await call(`${s.url}/categories`)).json);
    if (!cats.ok) throw new Error('categories');
    return catalogDigest(
      skills.map((x) => [x.skill_id, skillContentHash(x)] as const),
      cats.value.categories.map((c) => [c.name, categoryContentHash(c)] as const),
    );
  }

  it('equals the digest a client computes from the listing, and changes exactly with the catalog', async () => {
    const s = await start({ idAlias: true });
    const d0 = s.control.digest();
    expect(await clientDigest(s)).toBe(d0);
    expect(s.control.digest()).toBe(d0);
    for (const kind of ['update', 'create', 'delete', 'rating', 'category'] as const) {
      const before = s.control.digest();
      s.control.mutate(1, [kind]);
      const after = s.control.digest();
      expect(after).not.toBe(before);
      expect(await clientDigest(s)).toBe(after);
    }
    const d1 = s.control.digest();
    await call(`${s.url}/skills/skill-00000002/rate`, { method: 'POST', body: { user_id: 'z', rating: 1 } });
    expect(s.control.digest()).not.toBe(d1);
    expect(await clientDigest(s)).toBe(s.control.digest());
  });
});
