import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  classifyConflict,
  jsonEqual,
  resolveBatch,
  resolveIncoming,
  unionDependencies,
  type IncomingSkill,
} from '../src/core/conflicts.js';
import { canonicalJson } from '../src/remote/canonical.js';
import { skillContentHash, type Skill } from '../src/remote/contract.js';
import type {
  ConflictStrategy,
  ConflictType,
  ConflictUpsert,
  LocalSkillState,
  Severity,
  SkillOverrides,
} from '../src/store/types.js';

const BASE: Skill = {
  skill_id: 's1',
  name: 'Skill one',
  version: '1.0.0',
  description: 'base description',
  code: 'print(1)',
  command: 'run',
  python_packages: ['numpy'],
  npm_packages: [],
  parameters: { x: 1 },
  metadata: { a: 1 },
  updated_at: '2026-01-01T00:00:00Z',
};

function state(local: SkillOverrides, base: Skill = BASE): LocalSkillState {
  return { skillId: base.skill_id, base, local, contentHash: skillContentHash(base) };
}

function remote(patch: Partial<Skill>): Skill {
  return { ...BASE, updated_at: '2026-01-02T00:00:00Z', ...patch };
}

function resolve(incoming: Skill, s: LocalSkillState | undefined, strategy: ConflictStrategy) {
  return resolveIncoming(incoming, skillContentHash(incoming), s, strategy);
}

describe('three-way detection: what is not a conflict', () => {
  it('a plain upstream update of a skill without overrides', () => {
    for (const strategy of ['remote_wins', 'local_wins', 'merge', 'manual'] as const) {
      const r = resolve(remote({ version: '2.0.0', code: 'print(2)' }), undefined, strategy);
      expect(r.outcome).toBe('none');
      expect(r.upsert.local).toBeUndefined();
      expect(r.upsert.conflict).toBeUndefined();
      expect(r.upsert.skill.version).toBe('2.0.0');
    }
  });

  it('an upstream update of fields the user did not override keeps the overrides as they are', () => {
    for (const strategy of ['remote_wins', 'local_wins', 'merge', 'manual'] as const) {
      const r = resolve(
        remote({ version: '2.0.0', code: 'print(2)' }),
        state({ description: 'mine' }),
        strategy,
      );
      expect(r.outcome).toBe('none');
      expect(r.detected).toBeNull();
      expect(r.upsert.local).toBeUndefined(); // undefined = keep as stored
      expect(r.nextLocal).toEqual({ description: 'mine' });
    }
  });

  it('both sides changing a field to the same value converges and drops the override', () => {
    const r = resolve(remote({ version: '2.0.0' }), state({ version: '2.0.0' }), 'manual');
    expect(r.outcome).toBe('none');
    expect(r.upsert.local).toBeNull();
  });

  it('an override that only restates the old base lets the upstream change through', () => {
    const r = resolve(remote({ version: '2.0.0' }), state({ version: '1.0.0', code: 'mine' }), 'local_wins');
    expect(r.outcome).toBe('none');
    expect(r.upsert.local).toEqual({ code: 'mine' });
  });

  it('the same remote payload again (overlap window) changes nothing', () => {
    const s = state({ code: 'mine' }, remote({ code: 'theirs' }));
    for (const strategy of ['remote_wins', 'local_wins', 'merge', 'manual'] as const) {
      const r = resolve(remote({ code: 'theirs' }), s, strategy);
      expect(r.outcome).toBe('none');
      expect(r.upsert.local).toBeUndefined();
      expect(r.upsert.conflict).toBeUndefined();
      expect(r.upsert.resolveOpenConflict).toBeUndefined();
    }
  });
});

interface Row {
  type: ConflictType;
  severity: Severity;
  local: SkillOverrides;
  incoming: Partial<Skill>;
  /** Overrides after resolution per strategy (null = cleared). */
  after: Record<ConflictStrategy, SkillOverrides | null>;
  outcome: Record<ConflictStrategy, 'resolved' | 'manual'>;
}

const ROWS: Row[] = [
  {
    type: 'VERSION_MISMATCH',
    severity: 'HIGH',
    local: { version: '1.0.0-local' },
    incoming: { version: '2.0.0' },
    after: {
      remote_wins: null,
      local_wins: { version: '1.0.0-local' },
      merge: { version: '1.0.0-local' },
      manual: { version: '1.0.0-local' },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'manual', manual: 'manual' },
  },
  {
    type: 'CONTENT_MISMATCH',
    severity: 'CRITICAL',
    local: { code: 'print("mine")', description: 'mine' },
    incoming: { code: 'print("theirs")' },
    after: {
      remote_wins: { description: 'mine' },
      local_wins: { code: 'print("mine")', description: 'mine' },
      merge: { code: 'print("mine")', description: 'mine' },
      manual: { code: 'print("mine")', description: 'mine' },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'manual', manual: 'manual' },
  },
  {
    type: 'CONTENT_MISMATCH',
    severity: 'MEDIUM',
    local: { parameters: { x: 2 } },
    incoming: { parameters: { x: 3 } },
    after: {
      remote_wins: null,
      local_wins: { parameters: { x: 2 } },
      merge: { parameters: { x: 2 } },
      manual: { parameters: { x: 2 } },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'manual', manual: 'manual' },
  },
  {
    type: 'CONTENT_MISMATCH',
    severity: 'LOW',
    local: { description: 'mine' },
    incoming: { description: 'theirs' },
    after: {
      remote_wins: null,
      local_wins: { description: 'mine' },
      merge: { description: 'mine' },
      manual: { description: 'mine' },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'manual', manual: 'manual' },
  },
  {
    type: 'DEPENDENCY_CONFLICT',
    severity: 'HIGH',
    local: { python_packages: ['numpy', 'scipy'] },
    incoming: { python_packages: ['numpy', 'pandas'] },
    after: {
      remote_wins: null,
      local_wins: { python_packages: ['numpy', 'scipy'] },
      merge: { python_packages: ['numpy', 'pandas', 'scipy'] },
      manual: { python_packages: ['numpy', 'scipy'] },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'resolved', manual: 'manual' },
  },
  {
    type: 'DEPENDENCY_CONFLICT',
    severity: 'HIGH',
    local: { npm_packages: ['left-pad'] },
    incoming: { npm_packages: ['lodash'] },
    after: {
      remote_wins: null,
      local_wins: { npm_packages: ['left-pad'] },
      merge: { npm_packages: ['lodash', 'left-pad'] },
      manual: { npm_packages: ['left-pad'] },
    },
    outcome: { remote_wins: 'resolved', local_wins: 'resolved', merge: 'resolved', manual: 'manual' },
  },
];

describe('each strategy on each conflict type', () => {
  for (const row of ROWS) {
    for (const strategy of ['remote_wins', 'local_wins', 'merge', 'manual'] as const) {
      it(`${row.type} (${row.severity}, ${Object.keys(row.local).join('+')}) with ${strategy}`, () => {
        const incoming = remote(row.incoming);
        const s = state(row.local);
        const r = resolve(incoming, s, strategy);
        expect(r.detected?.type).toBe(row.type);
        expect(r.detected?.severity).toBe(row.severity);
        expect(r.outcome).toBe(row.outcome[strategy]);
        // The incoming payload always becomes the base: the cache equals the remote.
        expect(r.upsert.skill).toBe(incoming);
        expect(r.upsert.contentHash).toBe(skillContentHash(incoming));
        expect(r.nextLocal).toEqual(row.after[strategy]);
        if (jsonEqual(row.after[strategy], row.local)) expect(r.upsert.local).toBeUndefined();
        else expect(r.upsert.local).toEqual(row.after[strategy]);
        if (row.outcome[strategy] === 'manual') {
          const c = r.upsert.conflict as ConflictUpsert;
          expect(c.type).toBe(row.type);
          expect(c.severity).toBe(row.severity);
          expect(c.strategy).toBe(strategy);
          expect(c.base).toBe(BASE);
          expect(c.remote).toBe(incoming);
          expect(c.local).toEqual(row.local);
          expect(c.fields.length).toBeGreaterThan(0);
          expect(r.upsert.resolveOpenConflict).toBeUndefined();
        } else {
          expect(r.upsert.conflict).toBeUndefined();
          expect(r.upsert.resolveOpenConflict).toEqual({ resolution: strategy, resolvedBy: 'sync' });
        }
      });
    }
  }

  it('merge settles dependencies and leaves only the other both-sided fields to decide', () => {
    const r = resolve(
      remote({ python_packages: ['numpy', 'pandas'], command: 'theirs', version: '3.0.0' }),
      state({ python_packages: ['scipy'], command: 'mine', description: 'mine' }),
      'merge',
    );
    expect(r.outcome).toBe('manual');
    expect(r.upsert.conflict?.fields).toEqual(['command']);
    expect(r.upsert.conflict?.severity).toBe('CRITICAL');
    expect(r.nextLocal).toEqual({
      python_packages: ['numpy', 'pandas', 'scipy'],
      command: 'mine',
      description: 'mine',
    });
  });

  it('merge drops a dependency override the remote already covers', () => {
    const r = resolve(
      remote({ python_packages: ['numpy', 'scipy', 'pandas'] }),
      state({ python_packages: ['numpy', 'scipy'] }),
      'merge',
    );
    expect(r.outcome).toBe('resolved');
    expect(r.upsert.local).toBeNull();
  });
});

describe('classification', () => {
  it('takes the most severe field, ties going version, dependencies, content', () => {
    expect(classifyConflict(['version', 'python_packages'])).toEqual({
      type: 'VERSION_MISMATCH',
      severity: 'HIGH',
    });
    expect(classifyConflict(['version', 'local_files'])).toEqual({
      type: 'CONTENT_MISMATCH',
      severity: 'CRITICAL',
    });
    expect(classifyConflict(['env_vars', 'tags'])).toEqual({ type: 'CONTENT_MISMATCH', severity: 'MEDIUM' });
    expect(classifyConflict(['tags'])).toEqual({ type: 'CONTENT_MISMATCH', severity: 'LOW' });
    expect(classifyConflict(['npm_packages', 'metadata'])).toEqual({
      type: 'DEPENDENCY_CONFLICT',
      severity: 'HIGH',
    });
  });

  it('unions dependencies remote first, without duplicates', () => {
    expect(unionDependencies(['b', 'a'], ['c', 'a', 'd'])).toEqual(['b', 'a', 'c', 'd']);
    expect(unionDependencies(undefined, ['x'])).toEqual(['x']);
  });
});

// ---- properties -----------------------------------------------------------------------------

const STRATEGIES = ['remote_wins', 'local_wins', 'merge', 'manual'] as const;
const IDS = ['a', 'b', 'c'];

const fieldValue = {
  version: fc.constantFrom('1.0.0', '1.1.0', '2.0.0'),
  code: fc.constantFrom('c1', 'c2', 'c3'),
  description: fc.constantFrom('d1', 'd2'),
  python_packages: fc.subarray(['numpy', 'pandas', 'scipy', 'torch']),
  npm_packages: fc.subarray(['lodash', 'react', 'zod']),
  parameters: fc.constantFrom({ x: 1 }, { x: 2 }, { y: 1 }),
};
const patchArb = fc.record(fieldValue, { requiredKeys: [] });

const updateArb = fc.record({ id: fc.constantFrom(...IDS), patch: patchArb });

interface ModelEntry {
  base: Skill;
  local: SkillOverrides | null;
  conflict: ConflictUpsert | null;
}

function initialModel(locals: Record<string, SkillOverrides>): Map<string, ModelEntry> {
  const m = new Map<string, ModelEntry>();
  for (const id of IDS) {
    const local = locals[id];
    m.set(id, {
      base: { ...BASE, skill_id: id },
      local: local && Object.keys(local).length > 0 ? local : null,
      conflict: null,
    });
  }
  return m;
}

/** Applies one batch the way the store applies a page: read states, resolve, write in order. */
function applyBatch(model: Map<string, ModelEntry>, batch: IncomingSkill[], strategy: ConflictStrategy) {
  const states = new Map<string, LocalSkillState>();
  for (const { skill } of batch) {
    const e = model.get(skill.skill_id);
    if (e?.local)
      states.set(skill.skill_id, {
        skillId: skill.skill_id,
        base: e.base,
        local: e.local,
        contentHash: skillContentHash(e.base),
      });
  }
  const r = resolveBatch(batch, states, strategy);
  for (const u of r.items) {
    const e = model.get(u.skill.skill_id) as ModelEntry;
    e.base = u.skill;
    if (u.local !== undefined) e.local = u.local;
    if (u.conflict) e.conflict = u.conflict;
    if (u.resolveOpenConflict) e.conflict = null;
  }
  return r;
}

function materialise(updates: { id: string; patch: Partial<Skill> }[]): IncomingSkill[] {
  // Each update is a full remote payload: the previous remote version of that skill plus the patch.
  const current = new Map(IDS.map((id) => [id, { ...BASE, skill_id: id } as Skill]));
  return updates.map(({ id, patch }, i) => {
    const skill: Skill = {
      ...(current.get(id) as Skill),
      ...patch,
      updated_at: new Date(Date.UTC(2026, 1, 1) + i * 1000).toISOString(),
    };
    current.set(id, skill);
    return { skill, contentHash: skillContentHash(skill) };
  });
}

const snapshot = (m: Map<string, ModelEntry>) => canonicalJson([...m.entries()]);

describe('properties (fast-check, seeded)', () => {
  it('every strategy converges to the same result however the same updates are split into runs', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STRATEGIES),
        fc.dictionary(fc.constantFrom(...IDS), patchArb),
        fc.array(updateArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        (strategy, locals, updates, cuts) => {
          const incoming = materialise(updates);
          const oneByOne = initialModel(locals);
          for (const item of incoming) applyBatch(oneByOne, [item], strategy);
          const split = initialModel(locals);
          let batch: IncomingSkill[] = [];
          incoming.forEach((item, i) => {
            batch.push(item);
            if (cuts[i] || i === incoming.length - 1) {
              applyBatch(split, batch, strategy);
              batch = [];
            }
          });
          const all = initialModel(locals);
          applyBatch(all, incoming, strategy);
          expect(snapshot(split)).toBe(snapshot(oneByOne));
          expect(snapshot(all)).toBe(snapshot(oneByOne));
        },
      ),
      { seed: 20261129, numRuns: 400 },
    );
  });

  it('re-delivering the last update (watermark overlap) changes nothing', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STRATEGIES),
        fc.dictionary(fc.constantFrom(...IDS), patchArb),
        fc.array(updateArb, { minLength: 1, maxLength: 8 }),
        (strategy, locals, updates) => {
          const incoming = materialise(updates);
          const model = initialModel(locals);
          applyBatch(model, incoming, strategy);
          const before = snapshot(model);
          // The latest payload of each skill comes again (older ones the version guard refuses).
          const latest = [...new Map(incoming.map((i) => [i.skill.skill_id, i])).values()];
          const again = applyBatch(model, latest, strategy);
          expect(again.detected).toBe(0);
          expect(snapshot(model)).toBe(before);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('merge is deterministic: same inputs in any key order give the same result', () => {
    const shuffle = <T extends object>(o: T, order: number[]): T => {
      const keys = Object.keys(o);
      const sorted = keys
        .map((k, i) => [k, order[i % order.length] ?? 0] as const)
        .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
      return Object.fromEntries(sorted.map(([k]) => [k, (o as Record<string, unknown>)[k]])) as T;
    };
    fc.assert(
      fc.property(
        patchArb,
        patchArb,
        fc.array(fc.nat(100), { minLength: 1, maxLength: 10 }),
        (localPatch, remotePatch, order) => {
          const incoming = remote(remotePatch);
          const s = state(localPatch as SkillOverrides);
          const a = resolve(incoming, s, 'merge');
          const b = resolve(
            shuffle(incoming, order),
            state(shuffle(localPatch, order) as SkillOverrides),
            'merge',
          );
          const c = resolve(incoming, s, 'merge');
          const view = (r: typeof a) =>
            canonicalJson({ local: r.upsert.local ?? 'keep', c: r.upsert.conflict ?? null, o: r.outcome });
          expect(view(b)).toBe(view(a));
          expect(view(c)).toBe(view(a));
          // The effective result never loses a one-sided change.
          const effective = { ...incoming, ...(a.nextLocal ?? {}) };
          for (const [k, v] of Object.entries(remotePatch))
            if (!(k in localPatch) || jsonEqual((localPatch as SkillOverrides)[k], BASE[k]))
              expect(jsonEqual(effective[k], v)).toBe(true);
          for (const [k, v] of Object.entries(localPatch))
            if (jsonEqual((incoming as Skill)[k], BASE[k])) expect(jsonEqual(effective[k], v)).toBe(true);
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });
});
