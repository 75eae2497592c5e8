import { describe, expect, it } from 'vitest';
import { DEFAULT_PATHS, PATH_LAYOUTS, PATH_PRESETS, fillPath, resolvePaths } from '../src/remote/paths.js';
import { LAYOUTS } from '../simulator/index.js';

describe('path presets', () => {
  it.each([
    ['skills', '/skills', '/skills/{skill_id}/rate', '/health'],
    ['marketplace', '/marketplace/skills', '/marketplace/skills/{skill_id}/rate', '/marketplace/health'],
    [
      'skills-marketplace',
      '/skills/marketplace/skills',
      '/skills/marketplace/skills/{skill_id}/rate',
      '/skills/marketplace/health',
    ],
  ] as const)('%s', (layout, skills, rate, health) => {
    const p = resolvePaths(layout);
    expect(p).toMatchObject({ skills, rate, health });
    expect(p.skill).toBe(`${skills}/{skill_id}`);
    expect(p.install).toBe(`${skills}/{skill_id}/install`);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('match the simulator layouts of the same name', () => {
    for (const layout of PATH_LAYOUTS) {
      const sim = LAYOUTS[layout];
      const p = PATH_PRESETS[layout];
      expect({ skills: p.skills, categories: p.categories, health: p.health }).toEqual(sim);
    }
  });

  it('defaults to the /skills layout', () => {
    expect(resolvePaths(undefined)).toBe(DEFAULT_PATHS);
    expect(resolvePaths({})).toEqual(PATH_PRESETS.skills);
    expect(resolvePaths({ layout: 'marketplace', skills: '', health: '' })).toEqual(PATH_PRESETS.marketplace);
  });

  it('overrides single endpoints on top of a layout', () => {
    const p = resolvePaths({ layout: 'marketplace', health: '/status', rate: '/ratings/{skill_id}' });
    expect(p).toEqual({ ...PATH_PRESETS.marketplace, health: '/status', rate: '/ratings/{skill_id}' });
  });

  it.each([
    ['a relative path', { skills: 'skills' }, /must start with/],
    ['a query', { health: '/health?x=1' }, /no query/],
    ['a per-skill route without {skill_id}', { install: '/install' }, /\{skill_id\}/],
    ['an unknown layout', 'v3' as never, /unknown path layout/],
  ])('rejects %s', (_n, spec, message) => {
    expect(() => resolvePaths(spec)).toThrow(message);
  });

  it('fills {skill_id} URL-encoded', () => {
    expect(fillPath('/skills/{skill_id}/rate', 'a b/c?d')).toBe('/skills/a%20b%2Fc%3Fd/rate');
    expect(fillPath('/skills', undefined)).toBe('/skills');
  });
});
