/**
 * The marketplace client against the real simulator over real sockets (port 0). Backoff and
 * budget time runs on a FakeClock, shared with the simulator where its rate limiter or
 * Retry-After dates matter, so the tests assert requested delays instead of waiting for them.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SkillsyncError, type ErrorCode } from '../src/core/errors.js';
import { skillContentHash, type Skill } from '../src/remote/contract.js';
import {
  createMarketplaceClient,
  deriveInstanceId,
  type MarketplaceClient,
  type MarketplaceClientOptions,
  type RemoteRequestEvent,
} from '../src/remote/marketplace-client.js';
import { PATH_LAYOUTS } from '../src/remote/paths.js';
import { RequestBudget } from '../src/remote/request-budget.js';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../simulator/index.js';
import { FakeClock } from './helpers/fake-clock.js';

const TOKEN = 'tok-3f9a1c77-very-secret';
const one = (): number => 1;

/**
 * Settles `run` while firing FakeClock timers whenever the event loop is otherwise idle: real
 * socket I/O proceeds between turns, and backoff/budget sleeps end as soon as they are due.
 * `idle` says no request is on the wire: time must not jump while the simulator (on the same
 * clock) has yet to see a request that was granted earlier.
 */
async function drive<T>(clock: FakeClock, run: Promise<T>, idle: () => boolean = () => true): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  run.then(
    (value) => (outcome = { ok: true, value }),
    (error: unknown) => (outcome = { ok: false, error }),
  );
  while (outcome === undefined) {
    await new Promise((r) => setImmediate(r));
    if (outcome === undefined && idle()) clock.runNext();
  }
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}

async function failure(p: Promise<unknown>): Promise<SkillsyncError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SkillsyncError);
    return e as SkillsyncError;
  }
  throw new Error('expected a failure');
}

const opened: { close(): Promise<void> }[] = [];
async function sim(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const s = await startSimulator({ skills: 40, seed: 11, token: TOKEN, ...options });
  opened.push(s);
  return s;
}
function client(
  s: SimulatorHandle,
  options: MarketplaceClientOptions = {},
  clock: FakeClock = new FakeClock(Date.now()),
): MarketplaceClient {
  const c = createMarketplaceClient(
    { baseUrl: s.url, token: TOKEN, random: one, requestsPerMinute: 0, paths: s.layout, ...options },
    clock,
  );
  opened.push(c);
  return c;
}
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
});

const requestsAt = (s: SimulatorHandle, route: string): Record<string, number> =>
  s.control.counters().requests[route] ?? {};

describe('headers and auth', () => {
  let s: SimulatorHandle;
  beforeAll(async () => {
    s = await sim();
  });

  it('sends both auth headers, the instance id, Accept and a User-Agent on every request', async () => {
    const sent: string[] = [];
    const onHeaders = (m: unknown): void => {
      sent.push((m as { headers: string }).headers);
    };
    diagnosticsChannel.subscribe('undici:client:sendHeaders', onHeaders);
    try {
      const c = client(s, { instanceId: 'node-7' });
      await c.health();
      await c.listSkills({ pageSize: 5, page: 1 });
      await c.rate(
        {
          skill_id: (await c.listSkills({ pageSize: 1, page: 1 })).skills[0]!.skill_id,
          user_id: 'u',
          rating: 4,
        },
        'key-h1',
      );
    } finally {
      diagnosticsChannel.unsubscribe('undici:client:sendHeaders', onHeaders);
    }
    expect(sent).toHaveLength(4);
    for (const h of sent) {
      const lower = h.toLowerCase();
      expect(h).toContain(`authorization: Bearer ${TOKEN}\r\n`);
      expect(h).toContain(`x-api-token: ${TOKEN}\r\n`);
      expect(lower).toContain('x-instance-id: node-7\r\n');
      expect(lower).toContain('accept: application/json\r\n');
      expect(lower).toMatch(/user-agent: skillsync\//);
    }
    expect(sent[3]!.toLowerCase()).toContain('idempotency-key: key-h1\r\n');
  });

  it('derives the instance id from a hash of the token, never the token itself', () => {
    const c = client(s);
    expect(c.instanceId).toBe(deriveInstanceId(TOKEN));
    expect(c.instanceId).not.toContain(TOKEN);
    expect(deriveInstanceId('other')).not.toBe(c.instanceId);
  });

  it('a refused token is AUTH at once: one request, no retry, no sleep', async () => {
    const clock = new FakeClock(Date.now());
    const before = requestsAt(s, 'list_skills')['401'] ?? 0;
    const c = client(s, { token: 'wrong-token-xyz' }, clock);
    const err = await failure(c.listSkills({ pageSize: 10, page: 1 }));
    expect(err.code).toBe<ErrorCode>('SKILLSYNC_ERR_REMOTE_AUTH');
    expect(err.retryable).toBe(false);
    expect(err).toMatchObject({ httpStatus: 401 });
    expect((requestsAt(s, 'list_skills')['401'] ?? 0) - before).toBe(1);
    expect(clock.requestedDelays).toEqual([]);
    // The token is nowhere in what the error shows.
    for (const text of [err.message, JSON.stringify(err), inspect(err, { depth: 5 }), String(err.stack)]) {
      expect(text).not.toContain('wrong-token-xyz');
    }
  });

  it('no token sends no auth headers and gets AUTH', async () => {
    const c = client(s, { token: '' });
    expect((await failure(c.health())).code).toBe('SKILLSYNC_ERR_REMOTE_AUTH');
  });

  it('the token never appears in a URL, an event or an error of any kind', async () => {
    const events: RemoteRequestEvent[] = [];
    const c = client(s, { onRequest: (e) => events.push(e) });
    s.control.setFaults({ rules: [{ fault: 'error', status: 500 }] });
    try {
      const err = await failure(c.listSkills({ pageSize: 3, page: 2, retry: false }));
      expect(err.message).toMatch(/^GET \/api\/v1\/marketplace\/skills answered 500/);
      expect(err.message).not.toContain('?');
      for (const text of [
        err.message,
        JSON.stringify(err),
        inspect(err, { depth: 5 }),
        JSON.stringify(events),
      ]) {
        expect(text).not.toContain(TOKEN);
      }
    } finally {
      s.control.clearFaults();
    }
  });
});

describe('layouts, shapes and query parameters', () => {
  it.each(PATH_LAYOUTS)('layout %s: every endpoint through its preset', async (layout) => {
    const s = await sim({ layout });
    const c = client(s);
    const health = await c.health();
    expect(health.status).toBe('ok');
    const page = await c.listSkills({ pageSize: 10, page: 1 });
    expect(page.skills).toHaveLength(10);
    const first = page.skills[0] as Skill;
    expect(await c.getSkill(first.skill_id)).toEqual(first);
    expect(await c.getSkill('no-such-skill')).toBeNull();
    expect((await c.listCategories()).categories.length).toBeGreaterThan(0);
    const rated = await c.rate({ skill_id: first.skill_id, user_id: 'u1', rating: 5 }, `k-${layout}`);
    expect(rated).toMatchObject({ success: true, skill_id: first.skill_id, rating: 5 });
    const installed = await c.install(
      first.skill_id,
      { agent_id: 'a1', instance_id: c.instanceId },
      `i-${layout}`,
    );
    expect(installed.success).toBe(true);
  });

  it('a client on the wrong layout gets NOT_FOUND, not an empty catalog', async () => {
    const s = await sim({ layout: 'marketplace' });
    const c = client(s, { paths: 'skills' });
    expect((await failure(c.listSkills({ pageSize: 10, page: 1 }))).code).toBe(
      'SKILLSYNC_ERR_REMOTE_NOT_FOUND',
    );
  });

  it('per-endpoint path overrides', async () => {
    const s = await sim({ layout: 'skills-marketplace' });
    const c = client(s, {
      paths: {
        skills: '/skills/marketplace/skills',
        skill: '/skills/marketplace/skills/{skill_id}',
        health: '/skills/marketplace/health',
        categories: '/skills/marketplace/categories',
      },
    });
    expect((await c.health()).status).toBe('ok');
    expect((await c.listCategories()).categories.length).toBeGreaterThan(0);
  });

  it('categories bare and wrapped read the same', async () => {
    const bare = await client(await sim({ categoriesWrapped: false })).listCategories();
    const wrapped = await client(await sim({ categoriesWrapped: true })).listCategories();
    expect(bare.invalid).toEqual([]);
    expect(wrapped.categories).toEqual(bare.categories);
    expect(bare.categories.length).toBeGreaterThan(0);
  });

  it('`id` instead of `skill_id` reads as the same skills, with the same hashes', async () => {
    const plain = await client(await sim({ idAlias: false })).listSkills({ pageSize: 40, page: 1 });
    const aliased = client(await sim({ idAlias: true }));
    const page = await aliased.listSkills({ pageSize: 40, page: 1 });
    expect(page.invalid).toEqual([]);
    expect(page.skills.map((x) => x.skill_id)).toEqual(plain.skills.map((x) => x.skill_id));
    expect(page.skills.map(skillContentHash)).toEqual(plain.skills.map(skillContentHash));
    const one = await aliased.getSkill(page.skills[3]!.skill_id);
    expect(one?.skill_id).toBe(page.skills[3]!.skill_id);
    expect(one && 'id' in one).toBe(false);
  });

  it('follows the server page-size cap', async () => {
    const page = await client(await sim({ pageSizeCap: 7 })).listSkills({ pageSize: 100, page: 2 });
    expect(page.skills).toHaveLength(7);
    expect(page).toMatchObject({ page: 2, page_size: 7, total: 40, total_pages: 6 });
  });

  it('detects features and epoch, and pages with cursor and updated_since', async () => {
    const s = await sim();
    const c = client(s);
    const detected = await c.detectFeatures();
    expect([...detected.features].sort()).toEqual([
      'cursor',
      'epoch',
      'idempotency',
      'updated_since',
      'ws_seq',
    ]);
    expect(detected.epoch).toBe(s.control.epoch());
    expect(c.has('cursor')).toBe(true);

    const ids: string[] = [];
    let cursor = '';
    let serverTime: string | undefined;
    for (let guard = 0; guard < 20; guard++) {
      const page = await c.listSkills({ pageSize: 15, cursor });
      ids.push(...page.skills.map((x) => x.skill_id));
      serverTime ??= page.server_time;
      if (page.next_cursor === null || page.next_cursor === undefined) break;
      cursor = page.next_cursor;
    }
    expect(ids).toEqual(s.control.liveSkillIds());
    expect(serverTime).toMatch(/^\d{4}-/);

    s.control.mutate(6, ['update', 'delete']);
    const changes = await c.listSkills({ pageSize: 100, updatedSince: serverTime as string });
    expect(changes.skills.length).toBeGreaterThan(0);
    expect(changes.skills.length).toBeLessThanOrEqual(6);
    expect(changes.skills.some((x) => typeof x.deleted_at === 'string')).toBe(true);
  });

  it('a base-only server: no features, page numbers work', async () => {
    const s = await sim({
      features: { cursor: false, updated_since: false, idempotency: false, ws_seq: false, epoch: false },
    });
    const c = client(s);
    const detected = await c.detectFeatures();
    expect(detected.features.size).toBe(0);
    expect(detected.epoch).toBeUndefined();
    const page = await c.listSkills({ pageSize: 10, page: 4 });
    expect(page.skills).toHaveLength(10);
    expect(page.next_cursor).toBeUndefined();
  });
});

describe('faults and retries', () => {
  let s: SimulatorHandle;
  beforeAll(async () => {
    s = await sim();
  });
  afterEach(() => {
    s.control.clearFaults();
  });

  it('5xx twice then success: retried with the 1 s, 2 s ladder', async () => {
    s.control.setFaults({ rules: [{ fault: 'error', status: 503, route: 'list_skills', times: 2 }] });
    const clock = new FakeClock(Date.now());
    const events: RemoteRequestEvent[] = [];
    const c = client(s, { onRequest: (e) => events.push(e) }, clock);
    const page = await drive(clock, c.listSkills({ pageSize: 10, page: 1 }));
    expect(page.skills).toHaveLength(10);
    expect(clock.requestedDelays).toEqual([1_000, 2_000]);
    expect(events.map((e) => [e.route, e.attempt, e.status, e.code])).toEqual([
      ['skills', 1, 503, 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE'],
      ['skills', 2, 503, 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE'],
      ['skills', 3, 200, undefined],
    ]);
  });

  it('5xx for ever: 5 attempts in all, then the last error', async () => {
    s.control.setFaults({ rules: [{ fault: 'error', status: 502, route: 'categories' }] });
    const clock = new FakeClock(Date.now());
    const before = requestsAt(s, 'categories')['502'] ?? 0;
    const c = client(s, {}, clock);
    const err = await failure(drive(clock, c.listCategories()));
    expect(err).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE', httpStatus: 502, retryable: true });
    expect((requestsAt(s, 'categories')['502'] ?? 0) - before).toBe(5);
    expect(clock.requestedDelays).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('retry: false makes one attempt (the outbox retries by itself)', async () => {
    s.control.setFaults({ rules: [{ fault: 'error', status: 500, route: 'health' }] });
    const clock = new FakeClock(Date.now());
    const err = await failure(client(s, {}, clock).health({ retry: false }));
    expect(err.code).toBe('SKILLSYNC_ERR_REMOTE_UNAVAILABLE');
    expect(clock.requestedDelays).toEqual([]);
  });

  it.each([
    ['seconds', 7, 'seconds' as const],
    ['an HTTP date', 5, 'http_date' as const],
  ])(
    '429 with Retry-After in %s is waited out, paused for every caller, not counted as a failure',
    async (_n, secs, format) => {
      // The simulator and the client share one fake clock, so the HTTP date is exact to the second.
      const clock = new FakeClock(Date.now());
      const t = await sim({ clock });
      t.control.setFaults({
        rules: [
          {
            fault: 'rate_limit',
            route: 'list_skills',
            times: 6,
            retryAfterSeconds: secs,
            retryAfterFormat: format,
          },
        ],
      });
      const events: RemoteRequestEvent[] = [];
      const c = client(t, { onRequest: (e) => events.push(e) }, clock);
      const page = await drive(clock, c.listSkills({ pageSize: 5, page: 1 }));
      expect(page.skills).toHaveLength(5);
      // Six 429s (more than the 5-attempt budget) and then success.
      expect(events.map((e) => e.status)).toEqual([429, 429, 429, 429, 429, 429, 200]);
      const retryDelays = clock.requestedDelays.filter((d) => d > 0);
      expect(retryDelays).toHaveLength(6);
      for (const d of retryDelays) {
        // An HTTP date has second precision: the wait is the date minus now, rounded down by <1 s.
        if (format === 'seconds') expect(d).toBe(secs * 1000);
        else {
          expect(d).toBeGreaterThan((secs - 1) * 1000);
          expect(d).toBeLessThanOrEqual(secs * 1000);
        }
      }
    },
  );

  it('a request that hangs times out (headers timeout) and is retried', async () => {
    s.control.setFaults({ rules: [{ fault: 'hang', route: 'health', times: 1 }] });
    const clock = new FakeClock(Date.now());
    const events: RemoteRequestEvent[] = [];
    const c = client(s, { headersTimeoutMs: 150, onRequest: (e) => events.push(e) }, clock);
    const health = await drive(clock, c.health());
    expect(health.status).toBe('ok');
    expect(events.map((e) => e.code)).toEqual(['SKILLSYNC_ERR_REMOTE_TIMEOUT', undefined]);
    expect(clock.requestedDelays).toEqual([1_000]);
  });

  it('a hang without retries is a TIMEOUT error', async () => {
    s.control.setFaults({ rules: [{ fault: 'hang', route: 'health', times: 1 }] });
    const err = await failure(client(s, { headersTimeoutMs: 100 }).health({ retry: false }));
    expect(err.code).toBe('SKILLSYNC_ERR_REMOTE_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain(TOKEN);
  });

  it('a connection reset mid-body is retried', async () => {
    s.control.setFaults({ rules: [{ fault: 'reset', route: 'list_skills', times: 1 }] });
    const clock = new FakeClock(Date.now());
    const events: RemoteRequestEvent[] = [];
    const c = client(s, { onRequest: (e) => events.push(e) }, clock);
    const page = await drive(clock, c.listSkills({ pageSize: 20, page: 1 }));
    expect(page.skills).toHaveLength(20);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ status: 200, code: 'SKILLSYNC_ERR_REMOTE_NETWORK' });
    expect(clock.requestedDelays).toEqual([1_000]);
  });

  it.each(['malformed', 'truncate'] as const)(
    'a %s body is MALFORMED (retryable), and retried',
    async (fault) => {
      s.control.setFaults({ rules: [{ fault, route: 'list_skills', times: 1 }] });
      const err = await failure(client(s).listSkills({ pageSize: 10, page: 1, retry: false }));
      expect(err).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_MALFORMED', retryable: true, httpStatus: 200 });
      s.control.setFaults({ rules: [{ fault, route: 'list_skills', times: 1 }] });
      const clock = new FakeClock(Date.now());
      expect(
        (await drive(clock, client(s, {}, clock).listSkills({ pageSize: 10, page: 1 }))).skills,
      ).toHaveLength(10);
      expect(clock.requestedDelays).toEqual([1_000]);
    },
  );

  it('a body over the size cap is refused, not buffered', async () => {
    const err = await failure(client(s, { maxBodyBytes: 1_000 }).listSkills({ pageSize: 40, page: 1 }));
    expect(err).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_MALFORMED', retryable: false });
    expect(err.message).toMatch(/larger than 1000 bytes/);
  });

  it('invalid records come back per record, the rest of the page is kept', async () => {
    s.control.setFaults({ rules: [{ fault: 'invalid_records', invalidRate: 0.3 }] });
    const page = await client(s).listSkills({ pageSize: 40, page: 1 });
    expect(page.invalid.length).toBeGreaterThan(0);
    expect(page.skills.length + page.invalid.length).toBe(40);
    expect(page.received).toBe(40);
  });

  it('410 is GONE, not retried: the engine restarts the listing', async () => {
    const c = client(s);
    const first = await c.listSkills({ pageSize: 10, cursor: '' });
    s.control.setFaults({ rules: [{ fault: 'gone' }] });
    const before = requestsAt(s, 'list_skills')['410'] ?? 0;
    const err = await failure(c.listSkills({ pageSize: 10, cursor: first.next_cursor as string }));
    expect(err).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_GONE', httpStatus: 410, retryable: false });
    expect((requestsAt(s, 'list_skills')['410'] ?? 0) - before).toBe(1);
  });

  it('400/422 are permanent BAD_REQUEST, 409 is CONFLICT, 404 is NOT_FOUND: one request each', async () => {
    const c = client(s);
    const id = s.control.liveSkillIds()[0] as string;
    expect((await failure(c.rate({ skill_id: id, user_id: 'u', rating: 9 }, 'bad-1'))).code).toBe(
      'SKILLSYNC_ERR_REMOTE_BAD_REQUEST',
    );
    s.control.setFaults({ rules: [{ fault: 'poison', status: 422, skillId: id }] });
    expect(await failure(c.rate({ skill_id: id, user_id: 'u', rating: 3 }, 'bad-2'))).toMatchObject({
      code: 'SKILLSYNC_ERR_REMOTE_BAD_REQUEST',
      httpStatus: 422,
    });
    s.control.setFaults({ rules: [{ fault: 'poison', status: 409, skillId: id }] });
    expect((await failure(c.rate({ skill_id: id, user_id: 'u', rating: 3 }, 'bad-3'))).code).toBe(
      'SKILLSYNC_ERR_REMOTE_CONFLICT',
    );
    s.control.clearFaults();
    expect(
      (await failure(c.install('missing-skill', { agent_id: 'a', instance_id: 'i' }, 'bad-4'))).code,
    ).toBe('SKILLSYNC_ERR_REMOTE_NOT_FOUND');
    const rateCounts = requestsAt(s, 'rate');
    expect((rateCounts['400'] ?? 0) + (rateCounts['422'] ?? 0) + (rateCounts['409'] ?? 0)).toBe(3);
  });

  it('rate and install send Idempotency-Key: a replay takes effect once', async () => {
    const c = client(s);
    const id = s.control.liveSkillIds()[1] as string;
    const a = await c.rate({ skill_id: id, user_id: 'idem-user', rating: 2 }, 'idem-key-1');
    const b = await c.rate({ skill_id: id, user_id: 'idem-user', rating: 2 }, 'idem-key-1');
    expect(b.rating_id).toBe(a.rating_id);
    const i1 = await c.install(id, { agent_id: 'a', instance_id: c.instanceId }, 'idem-inst-1');
    const i2 = await c.install(id, { agent_id: 'a', instance_id: c.instanceId }, 'idem-inst-1');
    expect(i2.install_id).toBe(i1.install_id);
    const counters = s.control.counters();
    expect(counters.appliedByKey('idem-key-1')).toBe(1);
    expect(counters.appliedByKey('idem-inst-1')).toBe(1);
  });

  it('a lost response to a POST is retried with the same Idempotency-Key: applied once', async () => {
    s.control.setFaults({ rules: [{ fault: 'lost_response', route: 'rate', times: 1 }] });
    const clock = new FakeClock(Date.now());
    const events: RemoteRequestEvent[] = [];
    const c = client(s, { onRequest: (e) => events.push(e) }, clock);
    const id = s.control.liveSkillIds()[2] as string;
    const answer = await drive(
      clock,
      c.rate({ skill_id: id, user_id: 'lost-user', rating: 3 }, 'lost-key-1'),
    );
    expect(answer).toMatchObject({ success: true, rating: 3 });
    expect(events.map((e) => e.code)).toEqual(['SKILLSYNC_ERR_REMOTE_NETWORK', undefined]);
    expect(s.control.counters().appliedByKey('lost-key-1')).toBe(1);
  });

  it('an abort cancels a request in flight (REMOTE_ABORTED)', async () => {
    s.control.setFaults({ rules: [{ fault: 'hang', route: 'health' }] });
    const ac = new AbortController();
    const hung = (): number => requestsAt(s, 'health')['0'] ?? 0;
    const before = hung();
    const pending = failure(client(s).health({ signal: ac.signal }));
    // Abort once the simulator holds the request (it counts a hang as status 0).
    while (hung() === before) await new Promise((r) => setImmediate(r));
    ac.abort();
    const err = await pending;
    expect(err.code).toBe('SKILLSYNC_ERR_REMOTE_ABORTED');
    expect(err.retryable).toBe(false);
  });

  it('an abort cancels a pending backoff sleep', async () => {
    s.control.setFaults({ rules: [{ fault: 'error', status: 503, route: 'health' }] });
    const clock = new FakeClock(Date.now());
    const ac = new AbortController();
    const pending = failure(client(s, {}, clock).health({ signal: ac.signal }));
    while (clock.pendingCount === 0) await new Promise((r) => setImmediate(r));
    expect(clock.requestedDelays).toEqual([1_000]);
    ac.abort();
    expect((await pending).code).toBe('SKILLSYNC_ERR_REMOTE_ABORTED');
    expect(clock.pendingCount).toBe(0);
  });

  it('an already aborted signal sends nothing', async () => {
    const before = s.control.counters().requests['health'] ?? {};
    const err = await failure(client(s).health({ signal: AbortSignal.abort() }));
    expect(err.code).toBe('SKILLSYNC_ERR_REMOTE_ABORTED');
    expect(s.control.counters().requests['health'] ?? {}).toEqual(before);
  });
});

describe('request budget against the simulator rate limit', () => {
  it('the budget keeps every minute window within the limit: no 429, every request served', async () => {
    const clock = new FakeClock(Date.now());
    const t = await sim({ clock, rateLimitPerMinute: 5 });
    const grantedAt: number[] = [];
    const c = client(t, { requestsPerMinute: 5, onRequest: () => grantedAt.push(clock.now()) }, clock);
    const calls = Array.from({ length: 17 }, (_, i) => c.listSkills({ pageSize: 2, page: (i % 5) + 1 }));
    const pages = await drive(clock, Promise.all(calls), () => c.budget.granted === grantedAt.length);
    expect(pages).toHaveLength(17);
    const counters = t.control.counters();
    expect(counters.byStatus['429'] ?? 0).toBe(0);
    expect(counters.byStatus['200']).toBe(17);
    grantedAt.sort((a, b) => a - b);
    for (let i = 5; i < grantedAt.length; i++) {
      expect((grantedAt[i] as number) - (grantedAt[i - 5] as number)).toBeGreaterThanOrEqual(60_000);
    }
    expect(clock.requestedDelays.filter((d) => d > 0).length).toBeGreaterThan(0);
  });

  it('without a budget, 429s pause every caller until Retry-After, and all requests end well', async () => {
    const clock = new FakeClock(Date.now());
    const t = await sim({ clock, rateLimitPerMinute: 4 });
    let done = 0;
    const c = client(t, { requestsPerMinute: 0, onRequest: () => done++ }, clock);
    const pages = await drive(
      clock,
      Promise.all(Array.from({ length: 8 }, () => c.health())),
      () => c.budget.granted === done,
    );
    expect(pages.every((p) => p.status === 'ok')).toBe(true);
    const counters = t.control.counters();
    expect(counters.byStatus['200']).toBe(8);
    expect(counters.byStatus['429'] ?? 0).toBeGreaterThan(0);
    expect(c.budget.pausedUntil).toBeGreaterThan(0);
  });

  it('one budget can be shared by two clients', async () => {
    const clock = new FakeClock(Date.now());
    const t = await sim({ clock, rateLimitPerMinute: 3 });
    const budget = new RequestBudget({ requestsPerMinute: 3 }, clock);
    let done = 0;
    const a = client(t, { budget, instanceId: 'same', onRequest: () => done++ }, clock);
    const b = client(t, { budget, instanceId: 'same', onRequest: () => done++ }, clock);
    await drive(
      clock,
      Promise.all([a.health(), b.health(), a.health(), b.health(), a.health(), b.health()]),
      () => budget.granted === done,
    );
    expect(budget.granted).toBe(6);
    expect(t.control.counters().byStatus['429'] ?? 0).toBe(0);
  });
});

describe('options', () => {
  it('rejects bad settings at construction', () => {
    expect(() => createMarketplaceClient({ baseUrl: 'http://user:pw@127.0.0.1:1/x' })).toThrow(/credentials/);
    expect(() => createMarketplaceClient({ baseUrl: 'http://127.0.0.1:1/x?token=abc' })).toThrow(/query/);
    expect(() => createMarketplaceClient({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => createMarketplaceClient({ headersTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => createMarketplaceClient({ paths: { skill: '/skills/x' } })).toThrow(/skill_id/);
  });

  it('onRequest sees every attempt with its route and status; a throwing hook breaks nothing', async () => {
    const s = await sim();
    const events: RemoteRequestEvent[] = [];
    const c = client(s, {
      onRequest: (e) => {
        events.push(e);
        throw new Error('metrics down');
      },
    });
    expect(await c.getSkill('nope')).toBeNull();
    await c.listCategories();
    expect(events.map((e) => [e.method, e.route, e.path, e.status, e.code, e.attempt])).toEqual([
      ['GET', 'skill', '/api/v1/marketplace/skills/nope', 404, undefined, 1],
      ['GET', 'categories', '/api/v1/marketplace/categories', 200, undefined, 1],
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
  });

  it('keeps at most 10 keep-alive connections, however many callers', async () => {
    const s = await sim();
    s.control.setFaults({ rules: [{ fault: 'latency', latencyMs: 50, route: 'health' }] });
    let connects = 0;
    const onConnected = (): void => {
      connects++;
    };
    diagnosticsChannel.subscribe('undici:client:connected', onConnected);
    try {
      const c = client(s);
      await Promise.all(Array.from({ length: 30 }, () => c.health()));
      await Promise.all(Array.from({ length: 30 }, () => c.health()));
    } finally {
      diagnosticsChannel.unsubscribe('undici:client:connected', onConnected);
    }
    expect(connects).toBeGreaterThan(1);
    expect(connects).toBeLessThanOrEqual(10);
  });

  it('a connection refused is a retryable NETWORK error', async () => {
    const s = await sim();
    const url = s.url;
    await s.close();
    const c = createMarketplaceClient({ baseUrl: url, token: TOKEN });
    opened.push(c);
    const err = await failure(c.health({ retry: false }));
    expect(err).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_NETWORK', retryable: true });
  });
});
