import { describe, expect, it } from 'vitest';
import {
  WS_MAX_MESSAGE_BYTES,
  catalogDigest,
  categoryContentHash,
  readCategories,
  readCategory,
  readErrorBody,
  readHealth,
  readInstallAnswer,
  readRatingAnswer,
  readSkill,
  readSkillPage,
  readWsMessage,
  skillContentHash,
  type Skill,
} from '../src/remote/contract.js';
import { canonicalJson } from '../src/remote/canonical.js';

const skill = { skill_id: 's1', name: 'One', version: '2.0.0' };

describe('readSkill', () => {
  it('accepts `id` as an alias of `skill_id` and normalises it away', () => {
    const r = readSkill({ id: 's1', name: 'One' });
    expect(r).toEqual({ ok: true, value: { skill_id: 's1', name: 'One', version: '1.0.0' } });
  });

  it('drops an `id` equal to `skill_id` but keeps a different one as an unknown field', () => {
    expect(readSkill({ ...skill, id: 's1' })).toEqual({ ok: true, value: skill });
    expect(readSkill({ ...skill, id: 99 })).toEqual({ ok: true, value: { ...skill, id: 99 } });
  });

  it('keeps unknown fields untouched', () => {
    const extra = { rank: 3, nested: { a: [1, { b: null }] }, flag: false };
    const r = readSkill({ ...skill, ...extra });
    expect(r.ok && r.value).toEqual({ ...skill, ...extra });
  });

  it.each([
    ['missing', undefined, '1.0.0'],
    ['null', null, '1.0.0'],
    ['free-form', 'v3-beta', 'v3-beta'],
  ])('version %s -> %s', (_n, version, expected) => {
    const r = readSkill({ skill_id: 'a', name: 'A', version });
    expect(r.ok && r.value.version).toBe(expected);
  });

  it('accepts every optional field at its contract type, and nulls', () => {
    const full = {
      skill_id: 'full',
      name: 'Full',
      version: '1.2.3',
      description: 'd',
      category: 'c',
      skill_type: 'python',
      author: 'me',
      tags: ['a'],
      python_packages: ['requests'],
      npm_packages: [],
      examples: ['x'],
      code: 'print(1)',
      command: 'run',
      local_files: { 'a.py': 'x' },
      parameters: {},
      metadata: { k: 1 },
      env_vars: { A: 'b' },
      content_hash: 'abc',
      average_rating: 4.5,
      rating_count: 2,
      install_count: 0,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-02T03:04:05.678+02:00',
      deleted_at: null,
    };
    expect(readSkill(full)).toEqual({ ok: true, value: full });
    const nulls = Object.fromEntries(Object.keys(full).map((k) => [k, null]));
    expect(readSkill({ ...nulls, skill_id: 'n', name: 'N' }).ok).toBe(true);
  });

  it.each<[string, unknown, string]>([
    ['not an object', 'skill', '$'],
    ['an array', [skill], '$'],
    ['null', null, '$'],
    ['no id', { name: 'x' }, '$.skill_id'],
    ['numeric id', { skill_id: 1, name: 'x' }, '$.skill_id'],
    ['empty id', { skill_id: '', name: 'x' }, '$.skill_id'],
    ['id too long', { skill_id: 'x'.repeat(513), name: 'x' }, '$.skill_id'],
    ['no name', { skill_id: 'a' }, '$.name'],
    ['empty name', { skill_id: 'a', name: '' }, '$.name'],
    ['numeric version', { ...skill, version: 2 }, '$.version'],
    ['description object', { ...skill, description: {} }, '$.description'],
    ['tags not array', { ...skill, tags: 'a,b' }, '$.tags'],
    ['tags with a number', { ...skill, tags: ['a', 1] }, '$.tags[1]'],
    ['local_files array', { ...skill, local_files: [] }, '$.local_files'],
    ['rating above 5', { ...skill, average_rating: 5.01 }, '$.average_rating'],
    ['rating NaN-ish string', { ...skill, average_rating: '4' }, '$.average_rating'],
    ['negative count', { ...skill, rating_count: -1 }, '$.rating_count'],
    ['fractional count', { ...skill, install_count: 0.5 }, '$.install_count'],
    ['loose date', { ...skill, created_at: 'May 3' }, '$.created_at'],
    ['impossible date', { ...skill, updated_at: '2026-02-30T99:00:00Z' }, '$.updated_at'],
    ['numeric date', { ...skill, deleted_at: 1 }, '$.deleted_at'],
  ])('refuses %s at %s', (_n, raw, path) => {
    const r = readSkill(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.path).toBe(path);
      expect(r.error.message).not.toBe('');
    }
  });

  it('prefixes error paths with the given path', () => {
    const r = readSkill({ name: 'x' }, 'skills[4]');
    expect(!r.ok && r.error.path).toBe('skills[4].skill_id');
  });
});

describe('readSkillPage', () => {
  it('reads a page and its metadata, one bad record does not fail the page', () => {
    const r = readSkillPage({
      skills: [skill, { name: 'no id' }, { id: 's2', name: 'Two' }, 'junk'],
      page: 2,
      page_size: 4,
      total: 9,
      total_pages: 3,
      has_more: true,
      next_cursor: 'c2',
      server_time: '2026-11-29T05:00:00.000Z',
      unknown_top_level: 1,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.skills.map((s) => s.skill_id)).toEqual(['s1', 's2']);
    expect(r.value.invalid.map((i) => [i.index, i.key, i.error.path])).toEqual([
      [1, null, 'skills[1].skill_id'],
      [3, null, 'skills[3]'],
    ]);
    expect(r.value).toMatchObject({
      received: 4,
      page: 2,
      page_size: 4,
      total: 9,
      total_pages: 3,
      has_more: true,
      next_cursor: 'c2',
      server_time: '2026-11-29T05:00:00.000Z',
    });
  });

  it('keys an invalid record by its id when it has one (for quarantine)', () => {
    const r = readSkillPage({ skills: [{ skill_id: 'bad', name: 'B', tags: 3 }, { id: 'bad2' }] });
    expect(r.ok && r.value.invalid.map((i) => i.key)).toEqual(['bad', 'bad2']);
  });

  it('leaves absent metadata undefined and keeps next_cursor null as null', () => {
    const r = readSkillPage({ skills: [], next_cursor: null });
    expect(r.ok && r.value).toEqual({
      skills: [],
      invalid: [],
      received: 0,
      page: undefined,
      page_size: undefined,
      total: undefined,
      total_pages: undefined,
      has_more: undefined,
      next_cursor: null,
      server_time: undefined,
    });
  });

  it.each<[string, unknown, string]>([
    ['a bare array', [skill], '$'],
    ['a string', 'oops', '$'],
    ['no skills', { items: [] }, '$.skills'],
    ['skills not an array', { skills: {} }, '$.skills'],
    ['negative page', { skills: [], page: -1 }, '$.page'],
    ['page as string', { skills: [], page: '2' }, '$.page'],
    ['has_more not boolean', { skills: [], has_more: 'yes' }, '$.has_more'],
    ['numeric cursor', { skills: [], next_cursor: 5 }, '$.next_cursor'],
    ['bad server_time', { skills: [], server_time: 'now' }, '$.server_time'],
  ])('fails the page as a whole for %s', (_n, raw, path) => {
    const r = readSkillPage(raw);
    expect(!r.ok && r.error.path).toBe(path);
  });
});

describe('readCategories', () => {
  const cats = [{ name: 'data', display_name: 'Data' }, { category: 'web' }, { display_name: 'no name' }];
  it.each([
    ['bare', cats],
    ['wrapped', { categories: cats, total: 3 }],
  ])('reads the %s form with the `category` alias, per record', (_n, raw) => {
    const r = readCategories(raw);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.categories).toEqual([{ name: 'data', display_name: 'Data' }, { name: 'web' }]);
    expect(r.value.invalid.map((i) => [i.index, i.error.path])).toEqual([[2, 'categories[2].name']]);
  });

  it.each([
    ['a string', 'x'],
    ['null', null],
    ['wrong wrapper', { items: [] }],
    ['wrapped non-array', { categories: {} }],
  ])('fails as a whole for %s', (_n, raw) => {
    expect(readCategories(raw).ok).toBe(false);
  });

  it.each<[string, unknown, string]>([
    ['negative skill_count', { name: 'a', skill_count: -1 }, '$.skill_count'],
    ['numeric display_name', { name: 'a', display_name: 1 }, '$.display_name'],
    ['bad updated_at', { name: 'a', updated_at: 'later' }, '$.updated_at'],
    ['empty name', { name: '' }, '$.name'],
  ])('refuses a category with %s', (_n, raw, path) => {
    const r = readCategory(raw);
    expect(!r.ok && r.error.path).toBe(path);
  });
});

describe('readHealth, readErrorBody, rating and install answers', () => {
  it('reads health with and without extensions', () => {
    expect(readHealth({ status: 'ok', timestamp: 't', version: '1' })).toEqual({
      ok: true,
      value: { status: 'ok', timestamp: 't', version: '1', features: [], epoch: undefined },
    });
    const r = readHealth({ status: 'ok', features: ['cursor', 'future_thing'], epoch: 7, region: 'eu' });
    expect(r.ok && r.value).toMatchObject({ features: ['cursor', 'future_thing'], epoch: '7', region: 'eu' });
  });

  it.each([
    ['not an object', []],
    ['no status', { features: [] }],
    ['features not strings', { status: 'ok', features: [1] }],
    ['epoch object', { status: 'ok', epoch: {} }],
  ])('refuses health that is %s', (_n, raw) => {
    expect(readHealth(raw).ok).toBe(false);
  });

  it('reads error bodies leniently', () => {
    expect(readErrorBody({ error: 'rate_limited', message: 'slow down', retry_after: 3 })).toEqual({
      error: 'rate_limited',
      message: 'slow down',
      retry_after: 3,
    });
    expect(readErrorBody({ error: 'x', retry_after: {} })).toEqual({
      error: 'x',
      message: undefined,
      retry_after: undefined,
    });
    expect(readErrorBody({ message: 'no error field' })).toBeUndefined();
    expect(readErrorBody('text')).toBeUndefined();
  });

  it('reads rating answers', () => {
    const ok = {
      success: true,
      rating_id: 12,
      skill_id: 's1',
      rating: 4,
      average_rating: 4,
      rating_count: 1,
      created_at: '2026-01-01T00:00:00Z',
    };
    expect(readRatingAnswer(ok)).toEqual({ ok: true, value: { ...ok, rating_id: '12' } });
    expect(readRatingAnswer({ ...ok, success: false }).ok).toBe(false);
    expect(readRatingAnswer({ ...ok, rating_id: undefined }).ok).toBe(false);
    expect(readRatingAnswer({ ...ok, average_rating: '4' }).ok).toBe(false);
  });

  it('reads install answers', () => {
    expect(readInstallAnswer({ success: true, install_id: 'i1' })).toEqual({
      ok: true,
      value: { success: true, install_id: 'i1' },
    });
    expect(readInstallAnswer({ success: true }).ok).toBe(false);
    expect(readInstallAnswer(null).ok).toBe(false);
  });
});

describe('readWsMessage', () => {
  const frame = (v: unknown): string => JSON.stringify(v);
  it.each<[string, unknown, unknown]>([
    ['ping', { type: 'ping' }, { type: 'ping' }],
    ['pong with seq', { type: 'pong', seq: 3 }, { type: 'pong', seq: 3 }],
    [
      'skill_update (id alias)',
      { type: 'skill_update', data: { id: 's1', name: 'One' }, seq: 1, timestamp: '2026-01-01T00:00:00Z' },
      {
        type: 'skill_update',
        data: { skill_id: 's1', name: 'One', version: '1.0.0' },
        seq: 1,
        timestamp: '2026-01-01T00:00:00Z',
      },
    ],
    [
      'skill_delete',
      { type: 'skill_delete', data: { skill_id: 's1' } },
      { type: 'skill_delete', data: { skill_id: 's1' } },
    ],
    [
      'category_update',
      { type: 'category_update', data: { category: 'web' } },
      { type: 'category_update', data: { name: 'web' } },
    ],
    [
      'category_delete',
      { type: 'category_delete', data: { name: 'web' } },
      { type: 'category_delete', data: { name: 'web' } },
    ],
    [
      'rating_update',
      { type: 'rating_update', data: { skill_id: 's1', average_rating: 3.5, rating_count: 2, rating: 4 } },
      { type: 'rating_update', data: { skill_id: 's1', average_rating: 3.5, rating_count: 2, rating: 4 } },
    ],
    ['reset', { type: 'reset', data: { epoch: 9 } }, { type: 'reset', data: { epoch: '9' } }],
    ['unknown type', { type: 'brand_new', data: 1 }, { type: 'unknown', rawType: 'brand_new' }],
  ])('reads %s', (_n, msg, expected) => {
    expect(readWsMessage(frame(msg))).toEqual({ ok: true, value: expected });
  });

  it.each<[string, string, string]>([
    ['not JSON', '{', '$'],
    ['not an object', '[1]', '$'],
    ['no type', frame({ data: {} }), '$.type'],
    ['negative seq', frame({ type: 'ping', seq: -1 }), '$.seq'],
    ['bad timestamp', frame({ type: 'ping', timestamp: 'x' }), '$.timestamp'],
    ['skill_update without name', frame({ type: 'skill_update', data: { skill_id: 's' } }), '$.data.name'],
    ['skill_delete without id', frame({ type: 'skill_delete', data: {} }), '$.data.skill_id'],
    [
      'rating out of range',
      frame({ type: 'rating_update', data: { skill_id: 's', rating: 6 } }),
      '$.data.rating',
    ],
    [
      'average out of range',
      frame({ type: 'rating_update', data: { skill_id: 's', average_rating: 9 } }),
      '$.data.average_rating',
    ],
    ['reset without epoch', frame({ type: 'reset', data: {} }), '$.data.epoch'],
  ])('refuses %s', (_n, raw, path) => {
    const r = readWsMessage(raw);
    expect(!r.ok && r.error.path).toBe(path);
  });

  it('refuses an oversized frame before parsing it', () => {
    const big = frame({ type: 'ping', pad: 'x'.repeat(WS_MAX_MESSAGE_BYTES) });
    const r = readWsMessage(Buffer.from(big));
    expect(!r.ok && r.error.message).toMatch(/exceeds/);
  });
});

describe('hashing', () => {
  it('canonical JSON sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('the skill hash ignores key order, timestamps and the server hash; not content or ratings', () => {
    const base: Skill = { skill_id: 'a', name: 'A', version: '1.0.0', tags: ['x', 'y'], average_rating: 4 };
    const h = skillContentHash(base);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(
      skillContentHash({ tags: ['x', 'y'], version: '1.0.0', average_rating: 4, name: 'A', skill_id: 'a' }),
    ).toBe(h);
    expect(skillContentHash({ ...base, updated_at: '2026-01-01T00:00:00Z', content_hash: 'zzz' })).toBe(h);
    expect(skillContentHash({ ...base, tags: ['y', 'x'] })).not.toBe(h);
    expect(skillContentHash({ ...base, average_rating: 4.5 })).not.toBe(h);
    expect(skillContentHash({ ...base, unknown: 1 })).not.toBe(h);
  });

  it('the category hash ignores skill_count and timestamps', () => {
    const h = categoryContentHash({ name: 'web', display_name: 'Web' });
    expect(categoryContentHash({ display_name: 'Web', name: 'web', skill_count: 9, updated_at: 'x' })).toBe(
      h,
    );
    expect(categoryContentHash({ name: 'web', display_name: 'WEB' })).not.toBe(h);
  });

  it('the catalog digest depends on membership and hashes, not order', () => {
    const d = catalogDigest(
      [
        ['a', 'h1'],
        ['b', 'h2'],
      ],
      [['web', 'c1']],
    );
    expect(
      catalogDigest(
        [
          ['b', 'h2'],
          ['a', 'h1'],
        ],
        [['web', 'c1']],
      ),
    ).toBe(d);
    expect(catalogDigest([['a', 'h1']], [['web', 'c1']])).not.toBe(d);
    expect(
      catalogDigest(
        [
          ['a', 'h1'],
          ['b', 'h3'],
        ],
        [['web', 'c1']],
      ),
    ).not.toBe(d);
    // A skill and a category with the same id and hash are not interchangeable.
    expect(catalogDigest([['x', 'h']], [])).not.toBe(catalogDigest([], [['x', 'h']]));
  });
});
