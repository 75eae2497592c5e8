/**
 * Hostile input at every route (fast-check, seeded): wrong types, huge strings, SQL fragments,
 * unicode, prototype keys, broken JSON, odd content types and auth headers. The service must
 * never answer 5xx, never leak a stack trace, a file path or a secret, and every error must
 * have the documented shape.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service-fixture.js';

let t: TestService;
const routes: { method: string; path: string }[] = [];

beforeAll(async () => {
  t = await startTestService({ simulator: { skills: 50 } });
  const doc = t.service.app.swagger() as { paths: Record<string, Record<string, unknown>> };
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const method of Object.keys(methods)) routes.push({ method: method.toUpperCase(), path });
  }
});
afterAll(async () => {
  while (t.service.engine.running) await new Promise((r) => setTimeout(r, 20));
  await t.close();
});

const HOSTILE = [
  "' OR 1=1 --",
  '"; DROP TABLE skills; --',
  '1; SELECT * FROM sqlite_master',
  '%',
  '%%',
  '_',
  '\\',
  '*',
  'NEAR(a b)',
  '"unterminated',
  'a AND OR NOT',
  '../../etc/passwd',
  '\u0000',
  '\uFEFF\u202E',
  '😀🏳️‍🌈',
  'é'.normalize('NFD'),
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'NaN',
  '-1',
  '0',
  '1e309',
  '9007199254740993',
  'true',
  'null',
  '',
  ' ',
  'x'.repeat(5000),
];

const text = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.string({ maxLength: 50 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer().map(String),
  fc.double().map(String),
);

const QUERY_KEYS = [
  'query',
  'category',
  'skill_type',
  'tag',
  'sort',
  'page',
  'page_size',
  'status',
  'severity',
  'type',
];
const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), text), text), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));

const body = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.constantFrom(
    '{',
    '{"rating": 5',
    'null',
    '[]',
    '"str"',
    '{"__proto__": {"admin": true}}',
    '{"constructor": {"prototype": {"x": 1}}}',
    '{"user_id": "u", "rating": 5, "comment": null}',
    '{"strategy": "remote_wins"}',
    '{"ids": [1, 2, 3], "strategy": "merge"}',
    '{"mode": "full"}',
    '{"sync_interval_minutes": 1e309}',
    `{"description": "${'y'.repeat(2000)}"}`,
  ),
  fc
    .dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 4 })
    .map((o) => JSON.stringify(o)),
);

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
);

const auth = fc.oneof(
  fc.constant<string | null>(null),
  fc.constant('good'),
  text.map((s) => `Bearer ${s}`),
  fc.constantFrom('Bearer', 'Bearer ', 'Basic abc', 'bearer  x', `Bearer ${'a'.repeat(10_000)}`),
);

function fillPath(path: string, id: string): string {
  return path.replace(/\{[^}]+\}/g, encodeURIComponent(id));
}

function assertSafe(status: number, raw: string, where: string): void {
  expect(status, where).toBeLessThan(500);
  expect(raw, where).not.toMatch(/\n\s+at .+[(:]\d+/);
  expect(raw, where).not.toContain('node_modules');
  expect(raw, where).not.toContain('/work/');
  expect(raw, where).not.toContain(t.adminToken);
  expect(raw, where).not.toContain(t.apiToken);
  if (status >= 400) {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    expect(Object.keys(parsed).sort(), where).toEqual(
      expect.arrayContaining(['code', 'error', 'message', 'statusCode']),
    );
    expect(parsed['statusCode'], where).toBe(status);
    expect(String(parsed['code']), where).toMatch(/^SKILLSYNC_ERR_[A-Z_]+$/);
  }
}

describe('hostile input at every route', () => {
  it('finds the routes', () => {
    expect(routes.length).toBeGreaterThanOrEqual(30);
  });

  it('never 5xx, never a stack or a secret (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.oneof(text, fc.constantFrom('1', '2', 'skill-00000001')),
        queryString,
        fc.option(body, { nil: undefined }),
        contentType,
        auth,
        async (routeIndex, id, qs, payload, type, authorization) => {
          const route = routes[routeIndex % routes.length]!;
          const url = `${fillPath(route.path, id)}${qs ? `?${qs}` : ''}`;
          const headers: Record<string, string> = {};
          if (authorization === 'good') headers['authorization'] = `Bearer ${t.adminToken}`;
          else if (authorization !== null) headers['authorization'] = authorization;
          if (payload !== undefined) headers['content-type'] = type;
          const res = await t.service.app.inject({
            method: route.method as 'GET',
            url,
            headers,
            ...(payload !== undefined && route.method !== 'GET' ? { payload } : {}),
          });
          assertSafe(res.statusCode, res.body, `${route.method} ${url.slice(0, 200)}`);
        },
      ),
      { seed: 20261129, numRuns: 1500 },
    );
  }, 120_000);

  it('every route stays safe with well-typed but extreme values', async () => {
    const extremes = ['0', '-1', '1000000000000', '1.5', '', 'x'.repeat(300)];
    for (const route of routes) {
      for (const v of extremes) {
        const url = `${fillPath(route.path, v)}?page=${encodeURIComponent(v)}&page_size=${encodeURIComponent(v)}`;
        const res = await t.service.app.inject({
          method: route.method as 'GET',
          url,
          headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
          ...(route.method === 'GET'
            ? {}
            : { payload: '{"mode":"incremental","strategy":"merge","ids":[1]}' }),
        });
        assertSafe(res.statusCode, res.body, `${route.method} ${url.slice(0, 120)}`);
      }
    }
  }, 60_000);
});
