/**
 * Property tests (fast-check, seeded) of the tolerant reader in src/remote/contract.ts: arbitrary
 * mixes of valid and invalid records never throw, keep every valid record, report every
 * invalid one; content hashes do not depend on key order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  catalogDigest,
  categoryContentHash,
  readCategories,
  readSkill,
  readSkillPage,
  readWsMessage,
  skillContentHash,
  type Skill,
} from '../src/remote/contract.js';

const SEED = 20261129;
const RUNS = { seed: SEED, numRuns: 200 };

const KNOWN = new Set([
  'skill_id',
  'id',
  'name',
  'version',
  'description',
  'category',
  'skill_type',
  'author',
  'tags',
  'python_packages',
  'npm_packages',
  'examples',
  'code',
  'command',
  'local_files',
  'parameters',
  'metadata',
  'env_vars',
  'content_hash',
  'average_rating',
  'rating_count',
  'install_count',
  'created_at',
  'updated_at',
  'deleted_at',
  '__proto__',
  'display_name',
  'skill_count',
  'icon_url',
]);

const id = fc.string({ minLength: 1, maxLength: 40 });
const text = fc.option(fc.string({ maxLength: 30 }), { nil: null });
const strings = fc.option(fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }), { nil: null });
const obj = fc.option(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  {
    nil: null,
  },
);
const iso = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const extras = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !KNOWN.has(k)),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 3 },
);

/** A skill as a server may send it: `skill_id` or `id`, optional fields valid, unknown fields. */
const validSkill = fc
  .tuple(
    fc.record(
      {
        skill_id: id,
        name: fc.string({ minLength: 1, maxLength: 30 }),
        version: fc.option(fc.string({ maxLength: 12 }), { nil: null }),
        description: text,
        category: text,
        author: text,
        code: text,
        tags: strings,
        python_packages: strings,
        local_files: obj,
        metadata: obj,
        average_rating: fc.option(fc.double({ min: 0, max: 5, noNaN: true }), { nil: null }),
        rating_count: fc.option(fc.nat(), { nil: null }),
        created_at: fc.option(iso, { nil: null }),
        updated_at: iso,
      },
      { requiredKeys: ['skill_id', 'name'] },
    ),
    extras,
    fc.boolean(),
  )
  .map(([base, extra, useIdAlias]) => {
    const out: Record<string, unknown> = { ...extra, ...base };
    if (useIdAlias) {
      out['id'] = out['skill_id'];
      delete out['skill_id'];
    }
    return out;
  });

/** A skill broken in exactly one way (or not an object at all). */
const invalidSkill = fc.oneof(
  fc.oneof(
    fc.constant(null),
    fc.integer(),
    fc.string(),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.boolean(),
  ),
  fc
    .tuple(
      validSkill,
      fc.constantFrom<[string, unknown]>(
        ['skill_id', 42],
        ['skill_id', ''],
        ['skill_id', 'x'.repeat(513)],
        ['name', ''],
        ['name', 7],
        ['version', 1],
        ['tags', ['ok', 3]],
        ['tags', 'not-an-array'],
        ['local_files', ['array']],
        ['average_rating', 5.5],
        ['average_rating', -0.1],
        ['rating_count', -1],
        ['rating_count', 1.5],
        ['install_count', '3'],
        ['created_at', 'yesterday'],
        ['updated_at', '2026-13-45T00:00:00Z'],
        ['description', { nested: true }],
      ),
    )
    .map(([skill, [key, bad]]) => {
      const out: Record<string, unknown> = { ...skill };
      if (key === 'skill_id') {
        delete out['id'];
        out['skill_id'] = bad;
      } else out[key] = bad;
      return out;
    }),
  validSkill.map((s) => {
    const out: Record<string, unknown> = { ...s };
    delete out['skill_id'];
    delete out['id'];
    return out;
  }),
);

const mixed = fc.array(
  fc.oneof(
    validSkill.map((raw) => ({ valid: true as const, raw })),
    invalidSkill.map((raw) => ({ valid: false as const, raw })),
  ),
  { maxLength: 40 },
);

/** The same JSON data with every object's keys in another order (recursively). */
function shuffleKeys(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, random));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) out[k] = shuffleKeys(v, random);
  return out;
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('readSkillPage (properties)', () => {
  it('a mix of valid and invalid records: never throws, keeps every valid record, reports every invalid one', () => {
    fc.assert(
      fc.property(mixed, fc.boolean(), (records, roundTrip) => {
        const body = { skills: records.map((r) => r.raw), page: 1, page_size: 100, total: records.length };
        // Through JSON too, as the client reads it.
        const input: unknown = roundTrip ? JSON.parse(JSON.stringify(body)) : body;
        const r = readSkillPage(input);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        const page = r.value;
        expect(page.received).toBe(records.length);
        expect(page.skills.length + page.invalid.length).toBe(records.length);
        const validIdx = records.flatMap((rec, i) => (rec.valid ? [i] : []));
        const invalidIdx = records.flatMap((rec, i) => (rec.valid ? [] : [i]));
        expect(page.invalid.map((x) => x.index)).toEqual(invalidIdx);
        expect(page.skills.map((s) => s.skill_id)).toEqual(
          validIdx.map((i) => {
            const raw = records[i]?.raw as Record<string, unknown>;
            return raw['skill_id'] ?? raw['id'];
          }),
        );
        for (const bad of page.invalid) {
          expect(bad.error.path.startsWith(`skills[${bad.index}]`)).toBe(true);
          expect(bad.error.message.length).toBeGreaterThan(0);
          expect(bad.raw).toBe((input as { skills: unknown[] }).skills[bad.index]);
        }
      }),
      RUNS,
    );
  });

  it('keeps unknown fields untouched and reads a missing version as 1.0.0', () => {
    fc.assert(
      fc.property(validSkill, (raw) => {
        const r = readSkill(raw);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        for (const [k, v] of Object.entries(raw)) {
          if (k === 'id' || k === 'version') continue;
          expect(r.value[k]).toEqual(v);
        }
        expect(r.value.version).toBe(typeof raw['version'] === 'string' ? raw['version'] : '1.0.0');
        expect('id' in r.value).toBe(false);
      }),
      RUNS,
    );
  });

  it('reading is idempotent: a read skill reads back as itself', () => {
    fc.assert(
      fc.property(validSkill, (raw) => {
        const once = readSkill(raw);
        if (!once.ok) throw new Error('valid skill refused');
        const twice = readSkill(once.value);
        expect(twice).toEqual(once);
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary JSON, as a page or as a record', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        expect(() => readSkillPage(v)).not.toThrow();
        expect(() => readSkillPage({ skills: [v] })).not.toThrow();
        expect(() => readCategories(v)).not.toThrow();
        expect(() => readCategories({ categories: [v] })).not.toThrow();
        const r = readSkillPage({ skills: [v, v] });
        expect(r.ok && r.value.skills.length + r.value.invalid.length).toBe(2);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('never throws on arbitrary WebSocket frames', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc
            .record({
              type: fc.constantFrom('skill_update', 'skill_delete', 'rating_update', 'reset', 'x'),
              data: fc.jsonValue({ maxDepth: 2 }),
            })
            .map((v) => JSON.stringify(v)),
        ),
        (frame) => {
          expect(() => readWsMessage(frame)).not.toThrow();
          expect(() => readWsMessage(Buffer.from(frame))).not.toThrow();
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('readCategories (properties)', () => {
  const validCategory = fc
    .tuple(
      fc.record(
        {
          name: id,
          display_name: text,
          description: text,
          skill_count: fc.option(fc.nat(), { nil: null }),
          updated_at: iso,
        },
        { requiredKeys: ['name'] },
      ),
      extras,
      fc.boolean(),
    )
    .map(([base, extra, alias]) => {
      const out: Record<string, unknown> = { ...extra, ...base };
      if (alias) {
        out['category'] = out['name'];
        delete out['name'];
      }
      return out;
    });
  const invalidCategory = fc.oneof(
    fc.oneof(fc.constant(null), fc.integer(), fc.string()),
    validCategory.map((c) => ({ ...c, name: undefined, category: undefined })),
    validCategory.map((c) => ({ ...c, skill_count: -2 })),
    validCategory.map((c) => ({ ...c, display_name: 3 })),
  );

  it('bare or wrapped, a mix never throws, keeps every valid category, reports every invalid one', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            validCategory.map((raw) => ({ valid: true as const, raw })),
            invalidCategory.map((raw) => ({ valid: false as const, raw })),
          ),
          { maxLength: 30 },
        ),
        fc.boolean(),
        (records, wrapped) => {
          const list = JSON.parse(JSON.stringify(records.map((r) => r.raw))) as unknown[];
          const r = readCategories(wrapped ? { categories: list } : list);
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          const validIdx = records.flatMap((rec, i) => (rec.valid ? [i] : []));
          expect(r.value.invalid.map((x) => x.index)).toEqual(
            records.flatMap((rec, i) => (rec.valid ? [] : [i])),
          );
          expect(r.value.categories.map((c) => c.name)).toEqual(
            validIdx.map((i) => {
              const raw = records[i]?.raw as Record<string, unknown>;
              return raw['name'] ?? raw['category'];
            }),
          );
        },
      ),
      RUNS,
    );
  });
});

describe('content hashing (properties)', () => {
  it('a skill hash does not depend on key order, at any depth', () => {
    fc.assert(
      fc.property(validSkill, fc.integer(), (raw, seed) => {
        const a = readSkill(raw);
        const b = readSkill(shuffleKeys(raw, mulberry(seed)));
        if (!a.ok || !b.ok) throw new Error('valid skill refused');
        expect(skillContentHash(b.value)).toBe(skillContentHash(a.value));
      }),
      RUNS,
    );
  });

  it('a skill hash does not depend on the id alias, timestamps or the server hash', () => {
    fc.assert(
      fc.property(validSkill, iso, (raw, when) => {
        const a = readSkill(raw);
        if (!a.ok) throw new Error('valid skill refused');
        const { skill_id, ...rest } = a.value;
        const b = readSkill({ ...rest, id: skill_id, updated_at: when, created_at: when, content_hash: 'x' });
        if (!b.ok) throw new Error('alias refused');
        expect(skillContentHash(b.value)).toBe(skillContentHash(a.value));
      }),
      RUNS,
    );
  });

  it('a skill hash changes when content changes', () => {
    fc.assert(
      fc.property(validSkill, fc.string({ minLength: 1, maxLength: 20 }), (raw, suffix) => {
        const a = readSkill(raw);
        if (!a.ok) throw new Error('valid skill refused');
        const changed: Skill = { ...a.value, name: a.value.name + suffix };
        expect(skillContentHash(changed)).not.toBe(skillContentHash(a.value));
      }),
      RUNS,
    );
  });

  it('a category hash does not depend on key order or skill_count', () => {
    fc.assert(
      fc.property(
        id,
        fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 })),
        fc.nat(),
        fc.integer(),
        (name, extra, count, seed) => {
          const c = { ...extra, name, skill_count: 1 };
          const shuffled = {
            ...(shuffleKeys(c, mulberry(seed)) as Record<string, unknown>),
            skill_count: count,
          };
          expect(categoryContentHash({ ...shuffled, name })).toBe(categoryContentHash(c));
        },
      ),
      RUNS,
    );
  });

  it('the catalog digest does not depend on the order of its inputs', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(id, fc.string({ minLength: 8, maxLength: 8 })), {
          selector: (t) => t[0],
          maxLength: 30,
        }),
        fc.uniqueArray(fc.tuple(id, fc.string({ minLength: 8, maxLength: 8 })), {
          selector: (t) => t[0],
          maxLength: 10,
        }),
        fc.integer(),
        (skills, cats, seed) => {
          const rnd = mulberry(seed);
          const shuffle = <T>(xs: T[]): T[] => [...xs].sort(() => rnd() - 0.5);
          expect(catalogDigest(shuffle(skills), shuffle(cats))).toBe(catalogDigest(skills, cats));
        },
      ),
      RUNS,
    );
  });
});
