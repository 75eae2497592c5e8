import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hashSkill } from '../src/sync/skill-hash.js';
import { skillContentHash, type Skill } from '../src/remote/contract.js';

describe('hashSkill', () => {
  it('equals skillContentHash on any JSON skill, whatever the key order (fast-check)', () => {
    const extra = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 });
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), extra, fc.boolean(), (id, fields, reverse) => {
        const base = { skill_id: id, name: 'n', version: '1', ...fields, updated_at: '2026-01-01T00:00:00Z' };
        const entries = Object.entries(base);
        if (reverse) entries.reverse();
        // Round-trip through JSON as the wire does (drops -0 and undefined the same way).
        const skill = JSON.parse(JSON.stringify(Object.fromEntries(entries))) as Skill;
        expect(hashSkill(skill)).toBe(skillContentHash(skill));
      }),
      { seed: 11, numRuns: 2000 },
    );
  });

  it('ignores timestamps and the server hash, like the reference', () => {
    const a = {
      skill_id: 'x',
      name: 'n',
      version: '1',
      tags: ['b', 'a'],
      metadata: { z: 1, a: { d: 2, c: [{ y: 1, x: 2 }] } },
    };
    const b = { ...a, updated_at: '2026-02-02T00:00:00Z', content_hash: 'abc', deleted_at: null };
    expect(hashSkill(b as Skill)).toBe(hashSkill(a as Skill));
    expect(hashSkill(a as Skill)).toBe(skillContentHash(a as Skill));
  });

  it('falls back to the reference for values that are not plain JSON data', () => {
    const s = { skill_id: 'x', name: 'n', version: '1', metadata: { when: new Date(0) } } as unknown as Skill;
    expect(hashSkill(s)).toBe(skillContentHash(s));
  });
});
