/**
 * Every HTTP fault of the simulator over real sockets, seeded repeatability (same seed, same
 * fault sequence), rule scoping (route, after, times), validation of fault specs in-process
 * and through the control HTTP API.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { readSkillPage } from '../src/remote/contract.js';
import { SkillsyncError } from '../src/core/errors.js';
import {
  parseFaultArg,
  startSimulator,
  validateFaultSpec,
  type FaultRule,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../simulator/index.js';
import { FakeClock } from './helpers/fake-clock.js';

const handles: SimulatorHandle[] = [];
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function start(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const h = await startSimulator({ skills: 120, ...options });
  handles.push(h);
  return h;
}

async function get(
  url: string,
  init: {
    method?: 'GET' | 'POST';
    body?: unknown;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
) {
  const r = await request(url, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text };
}

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

async function until(cond: () => boolean): Promise<void> {
  for (let k = 0; k < 10_000 && !cond(); k++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

async function statuses(s: SimulatorHandle, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push((await get(`${s.url}/skills?page_size=5`)).status);
  return out;
}

describe('simulator HTTP faults', () => {
  it('error: status and rate, the same sequence for the same seed', async () => {
    const rules: FaultRule[] = [{ fault: 'error', status: 502, rate: 0.5, route: 'list_skills' }];
    const a = await start({ seed: 4, faults: rules });
    const b = await start({ seed: 4, faults: rules });
    const c = await start({ seed: 5, faults: rules });
    const sa = await statuses(a, 40);
    expect(await statuses(b, 40)).toEqual(sa);
    expect(await statuses(c, 40)).not.toEqual(sa);
    const failed = sa.filter((x) => x === 502).length;
    expect(failed).toBeGreaterThan(8);
    expect(failed).toBeLessThan(32);
    expect(sa.every((x) => x === 200 || x === 502)).toBe(true);
    expect(a.control.faultLog().length).toBe(failed);
    expect(a.control.faultLog()).toEqual(b.control.faultLog());
    // Other routes are untouched.
    expect((await get(`${a.url}/health`)).status).toBe(200);
    for (const status of [500, 503]) {
      a.control.setFaults([{ fault: 'error', status }]);
      expect((await get(`${a.url}/health`)).status).toBe(status);
    }
  });

  it('after and times scope a rule', async () => {
    const s = await start({ faults: [{ fault: 'error', after: 2, times: 3 }] });
    expect(await statuses(s, 8)).toEqual([200, 200, 503, 503, 503, 200, 200, 200]);
  });

  it('rate_limit: Retry-After in seconds or as an HTTP date', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, faults: [{ fault: 'rate_limit', retryAfterSeconds: 7 }] });
    const r = await get(`${s.url}/skills`);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(JSON.parse(r.text).retry_after).toBe(7);
    s.control.setFaults([{ fault: 'rate_limit', retryAfterSeconds: 30, retryAfterFormat: 'http_date' }]);
    const d = await get(`${s.url}/skills`);
    expect(d.headers['retry-after']).toBe(new Date(clock.now() + 30_000).toUTCString());
  });

  it('latency: the answer waits for the (injected) clock', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, faults: [{ fault: 'latency', latencyMs: 5000 }] });
    let done = false;
    const p = get(`${s.url}/health`).then((r) => {
      done = true;
      return r;
    });
    await until(() => clock.requestedDelays.includes(5000));
    expect(done).toBe(false);
    clock.advance(5000);
    expect((await p).status).toBe(200);
  });

  it('hang: never answers', async () => {
    const s = await start({ faults: [{ fault: 'hang', route: 'health' }] });
    const ac = new AbortController();
    let settled = false;
    const p = get(`${s.url}/health`, { signal: ac.signal }).then(
      () => (settled = true),
      () => 'aborted',
    );
    await until(() => s.control.counters().requests['health']?.['0'] === 1);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    ac.abort();
    expect(await p).toBe('aborted');
  });

  it('reset: the connection drops mid-body', async () => {
    const s = await start({ faults: [{ fault: 'reset', route: 'list_skills' }] });
    await expect(get(`${s.url}/skills?page_size=100`)).rejects.toThrow();
    expect(s.control.counters().requests['list_skills']?.['0']).toBe(1);
  });

  it('truncate and malformed: 200 with a body that is not JSON', async () => {
    const s = await start({ faults: [{ fault: 'truncate' }] });
    const t = await get(`${s.url}/skills?page_size=20`);
    expect(t.status).toBe(200);
    expect(t.text.startsWith('{"skills":[')).toBe(true);
    expect(parses(t.text)).toBe(false);
    s.control.setFaults([{ fault: 'malformed' }]);
    const m = await get(`${s.url}/categories`);
    expect(m.status).toBe(200);
    expect(parses(m.text)).toBe(false);
  });

  it('invalid_records: some records in a page fail validation, seeded', async () => {
    const rules: FaultRule[] = [{ fault: 'invalid_records', invalidRate: 0.3 }];
    const a = await start({ seed: 9, faults: rules });
    const b = await start({ seed: 9, faults: rules });
    const pa = readSkillPage(JSON.parse((await get(`${a.url}/skills?page_size=50`)).text));
    const pb = readSkillPage(JSON.parse((await get(`${b.url}/skills?page_size=50`)).text));
    if (!pa.ok || !pb.ok) throw new Error('page must parse');
    expect(pa.value.invalid.length).toBeGreaterThan(3);
    expect(pa.value.invalid.length + pa.value.skills.length).toBe(50);
    expect(pa.value.invalid.map((x) => x.index)).toEqual(pb.value.invalid.map((x) => x.index));
  });

  it('ignore_page: every page is page 1', async () => {
    const s = await start({ faults: [{ fault: 'ignore_page' }] });
    const p1 = JSON.parse((await get(`${s.url}/skills?page=1&page_size=10`)).text);
    const p2 = JSON.parse((await get(`${s.url}/skills?page=2&page_size=10`)).text);
    expect(p2.skills).toEqual(p1.skills);
  });

  it('gone: 410 on cursor and updated_since listings only', async () => {
    const s = await start({ faults: [{ fault: 'gone' }] });
    expect((await get(`${s.url}/skills?page=1`)).status).toBe(200);
    expect((await get(`${s.url}/skills?cursor=`)).status).toBe(410);
    expect((await get(`${s.url}/skills?updated_since=2020-01-01T00:00:00Z`)).status).toBe(410);
  });

  it('empty_catalog: a listing and categories that are empty by mistake', async () => {
    const s = await start({ faults: [{ fault: 'empty_catalog', times: 2 }] });
    const l = JSON.parse((await get(`${s.url}/skills`)).text);
    expect(l).toMatchObject({ skills: [], total: 0, total_pages: 0, has_more: false });
    expect(JSON.parse((await get(`${s.url}/categories`)).text)).toEqual([]);
    expect(JSON.parse((await get(`${s.url}/skills`)).text).total).toBe(120);
  });

  it('lost_response: the POST takes effect, the answer never arrives; a replay is idempotent', async () => {
    const s = await start({ faults: [{ fault: 'lost_response', times: 1 }] });
    const url = `${s.url}/skills/skill-00000003/rate`;
    const body = { user_id: 'u1', rating: 4 };
    const headers = { 'idempotency-key': 'lost-1' };
    await expect(get(url, { method: 'POST', body, headers })).rejects.toThrow();
    expect(s.control.counters().appliedByKey('lost-1')).toBe(1);
    const again = await get(url, { method: 'POST', body, headers });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text).rating).toBe(4);
    expect(s.control.counters().appliedByKey('lost-1')).toBe(1);
    expect(s.control.counters().ratingsApplied).toBe(1);
  });

  it('poison: always 422 for one skill or one user', async () => {
    const s = await start({ faults: [{ fault: 'poison', skillId: 'skill-00000005' }] });
    const rate = (id: string, user: string) =>
      get(`${s.url}/skills/${id}/rate`, { method: 'POST', body: { user_id: user, rating: 3 } });
    expect((await rate('skill-00000005', 'a')).status).toBe(422);
    expect((await rate('skill-00000005', 'a')).status).toBe(422);
    expect((await rate('skill-00000006', 'a')).status).toBe(200);
    expect((await get(`${s.url}/skills/skill-00000005`)).status).toBe(422);
    s.control.setFaults([{ fault: 'poison', userId: 'mallory', status: 409 }]);
    expect((await rate('skill-00000006', 'mallory')).status).toBe(409);
    expect((await rate('skill-00000006', 'alice')).status).toBe(200);
    expect(s.control.counters().ratingsApplied).toBe(2);
  });

  it('reset_dataset: a request triggers a new epoch', async () => {
    const s = await start({ faults: [{ fault: 'reset_dataset', route: 'health', times: 1 }] });
    const e0 = s.control.epoch();
    const h = JSON.parse((await get(`${s.url}/health`)).text);
    expect(h.epoch).not.toBe(e0);
    expect(JSON.parse((await get(`${s.url}/health`)).text).epoch).toBe(h.epoch);
  });

  it('clearFaults restores normal answers', async () => {
    const s = await start({ faults: [{ fault: 'error' }] });
    expect((await get(`${s.url}/health`)).status).toBe(503);
    s.control.clearFaults();
    expect((await get(`${s.url}/health`)).status).toBe(200);
  });
});

describe('fault spec validation', () => {
  const bad = (spec: unknown, pattern: RegExp): void => {
    let caught: unknown;
    try {
      validateFaultSpec(spec);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SkillsyncError);
    expect((caught as SkillsyncError).code).toBe('SKILLSYNC_ERR_SIM_BAD_SETTING');
    expect((caught as SkillsyncError).message).toMatch(pattern);
  };

  it('rejects unknown faults, out-of-range rates and misplaced settings with a clear message', () => {
    bad([{ fault: 'explode' }], /unknown fault "explode"/);
    bad([{ fault: 'error', rate: 1.5 }], /rate: must be a number from 0 to 1/);
    bad([{ fault: 'error', status: 404 }], /status: must be one of 500, 502, 503/);
    bad([{ fault: 'latency', latencyMs: -1 }], /latencyMs/);
    bad([{ fault: 'hang', latencyMs: 5 }], /not a setting of fault hang/);
    bad([{ fault: 'gone', route: 'health' }], /applies to list_skills/);
    bad([{ fault: 'poison' }], /needs skillId/);
    bad([{ fault: 'ws_close_every' }], /needs everyMs/);
    bad([{ fault: 'ws_close_every', everyMs: 10, code: 4000 }], /1000, 1001 or 1011/);
    bad({ rules: [], extra: 1 }, /unknown key/);
    bad('error', /must be/);
    expect(validateFaultSpec({ seed: 3, rules: [{ fault: 'error', rate: 0.2 }] })).toEqual({
      seed: 3,
      rules: [{ fault: 'error', rate: 0.2 }],
    });
  });

  it('parses the CLI form', () => {
    expect(parseFaultArg('error:status=500,rate=0.25,route=list_skills|get_skill')).toEqual({
      fault: 'error',
      status: 500,
      rate: 0.25,
      route: ['list_skills', 'get_skill'],
    });
    expect(parseFaultArg('rate_limit:retryAfterSeconds=3,retryAfterFormat=http_date')).toEqual({
      fault: 'rate_limit',
      retryAfterSeconds: 3,
      retryAfterFormat: 'http_date',
    });
    expect(() => parseFaultArg('error:rate')).toThrow(/key=value/);
    expect(() => parseFaultArg('nope')).toThrow(/unknown fault/);
  });

  it('the in-process control and start options reject bad specs', async () => {
    await expect(startSimulator({ faults: [{ fault: 'error', rate: 2 }] })).rejects.toThrow(/rate/);
    const s = await start();
    expect(() => s.control.setFaults([{ fault: 'bogus' } as unknown as FaultRule])).toThrow(/unknown fault/);
  });
});

describe('control HTTP API', () => {
  const send = async (url: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', body?: unknown) => {
    const r = await request(url, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.statusCode, json: (await r.body.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  it('sets and clears faults, mutates, pauses, resets, configures and reads', async () => {
    const s = await start({ changesPerSecond: 5 });
    const c = s.controlUrl;
    expect((await send(`${c}/faults`, 'PUT', { rules: [{ fault: 'error', status: 500 }] })).status).toBe(200);
    expect((await get(`${s.url}/health`)).status).toBe(500);
    const log = await send(`${c}/faults`, 'GET');
    expect(log.json.log).toHaveLength(1);
    expect((await send(`${c}/faults`, 'DELETE')).json.spec.rules).toEqual([]);
    expect((await get(`${s.url}/health`)).status).toBe(200);
    const d0 = (await send(`${c}/digest`, 'GET')).json.digest;
    expect(d0).toBe(s.control.digest());
    const m = await send(`${c}/mutate`, 'POST', { n: 3, kinds: ['update'] });
    expect(m.json.applied).toHaveLength(3);
    expect((await send(`${c}/digest`, 'GET')).json.digest).not.toBe(d0);
    expect((await send(`${c}/pause`, 'POST')).json.paused).toBe(true);
    expect((await send(`${c}/stats`, 'GET')).json.paused).toBe(true);
    await send(`${c}/resume`, 'POST');
    expect((await send(`${c}/stats`, 'GET')).json.paused).toBe(false);
    const e = (await send(`${c}/reset`, 'POST', { seed: 77 })).json.epoch;
    expect(e).toBe(s.control.epoch());
    expect((await send(`${c}/emit-events`, 'POST', { enabled: false })).status).toBe(200);
    expect(s.control.stats().emitEvents).toBe(false);
    expect((await send(`${c}/configure`, 'POST', { pageSizeCap: 7 })).status).toBe(200);
    expect(JSON.parse((await get(`${s.url}/skills?page_size=100`)).text).page_size).toBe(7);
    expect((await send(`${c}/skills/skill-00000001`, 'GET')).json.skill_id).toBe('skill-00000001');
    expect((await send(`${c}/skills/nope`, 'GET')).status).toBe(404);
    const counters = (await send(`${c}/counters`, 'GET')).json;
    expect(counters.byStatus['500']).toBe(1);
  });

  it('answers 400 naming the bad setting', async () => {
    const s = await start();
    const c = s.controlUrl;
    const cases: [string, 'POST' | 'PUT', unknown, RegExp][] = [
      ['/faults', 'PUT', { rules: [{ fault: 'meteor' }] }, /unknown fault/],
      ['/faults', 'PUT', { rules: [{ fault: 'error', rate: -0.1 }] }, /rate: must be a number from 0 to 1/],
      ['/mutate', 'POST', { n: -1 }, /n: must be an integer/],
      ['/mutate', 'POST', { kinds: ['explode'] }, /unknown mutation kind/],
      ['/emit-events', 'POST', { enabled: 'yes' }, /emitEvents: must be true or false/],
      ['/configure', 'POST', { pageSizeCap: 5000 }, /pageSizeCap: must be an integer from 1 to 1000/],
      ['/configure', 'POST', { layout: 'skills' }, /layout: unknown or not changeable/],
      ['/configure', 'POST', { features: { warp: true } }, /features.warp: unknown feature/],
      ['/reset', 'POST', { seed: 'x' }, /seed: must be an integer/],
    ];
    for (const [path, method, body, pattern] of cases) {
      const r = await send(`${c}${path}`, method, body);
      expect(r.status).toBe(400);
      expect(r.json.message).toMatch(pattern);
    }
    expect(s.control.stats().totalSkills).toBe(120);
  });
});
