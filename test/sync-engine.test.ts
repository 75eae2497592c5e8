import { afterEach, describe, expect, it } from 'vitest';
import { startSyncRig, type SyncRig, type SyncRigOptions } from './helpers/sync-rig.js';
import type { LayoutName } from '../simulator/index.js';
import type { Skill } from '../src/remote/contract.js';
import type { SyncResult } from '../src/sync/sync-engine.js';

let rig: SyncRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

async function open(options: SyncRigOptions): Promise<SyncRig> {
  rig = await startSyncRig(options);
  return rig;
}

function requestsTo(r: SyncRig, route: string): number {
  const byStatus = r.sim.control.counters().requests[route] ?? {};
  return Object.values(byStatus).reduce((a, b) => a + b, 0);
}

function expectOk(r: SyncResult): void {
  expect(r.error).toBeNull();
  expect(r.status).toBe('success');
}

describe('convergence: digest equality with and without each extension and each layout', () => {
  const matrix: {
    name: string;
    features: { cursor: boolean; updated_since: boolean };
    layout: LayoutName;
  }[] = [
    { name: 'cursor + updated_since', features: { cursor: true, updated_since: true }, layout: 'skills' },
    {
      name: 'updated_since only (pages)',
      features: { cursor: false, updated_since: true },
      layout: 'skills',
    },
    { name: 'cursor only', features: { cursor: true, updated_since: false }, layout: 'skills' },
    { name: 'base contract only', features: { cursor: false, updated_since: false }, layout: 'skills' },
    { name: 'marketplace layout', features: { cursor: true, updated_since: true }, layout: 'marketplace' },
    {
      name: 'skills-marketplace layout, base only',
      features: { cursor: false, updated_since: false },
      layout: 'skills-marketplace',
    },
  ];
  for (const m of matrix) {
    it(m.name, async () => {
      const r = await open({
        sim: { skills: 700, seed: 5, features: m.features, layout: m.layout },
        engine: { pageSize: 50 },
      });
      const full = await r.engine.syncAll({ trigger: 'manual', mode: 'auto' });
      expectOk(full);
      expect(full.run?.mode).toBe('full');
      expect(await r.store.digest()).toBe(r.sim.control.digest());

      // Live changes of every kind (including deletes and categories), then an automatic run.
      r.sim.control.mutate(60);
      const next = await r.engine.syncAll({ trigger: 'schedule', mode: 'auto' });
      expectOk(next);
      expect(next.run?.mode).toBe(m.features.updated_since ? 'incremental' : 'full');
      expect(await r.store.digest()).toBe(r.sim.control.digest());
      if (m.features.updated_since) {
        // Incremental: only the changes (plus the overlap window) were listed.
        expect((next.run?.upserted ?? 0) + (next.run?.unchanged ?? 0)).toBeLessThan(200);
      }
      const state = await r.store.getSyncState();
      expect(state.status).toBe('success');
      expect(state.skillsCached).toBe(r.sim.control.stats().liveSkills);
      expect(state.categoriesCached).toBe(r.sim.control.stats().categories);
      expect(state.watermark === null).toBe(!m.features.updated_since);
    });
  }

  it('id alias and wrapped categories read the same catalog', async () => {
    const r = await open({ sim: { skills: 300, idAlias: true, categoriesWrapped: true } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('follows the server page cap', async () => {
    const r = await open({
      sim: { skills: 450, pageSizeCap: 100, features: { cursor: false } },
      engine: { pageSize: 1000 },
    });
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expectOk(res);
    expect(res.run?.pages).toBe(5);
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('an epoch change (dataset reset) leads to a full listing', async () => {
    const r = await open({ sim: { skills: 200 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    r.sim.control.resetDataset(99);
    const res = await r.engine.syncAll({ trigger: 'schedule' });
    expect(res.run?.mode).toBe('full');
    expect(await r.store.digest()).toBe(r.sim.control.digest());
    expect((await r.store.getSyncState()).epoch).toBe(r.sim.control.epoch());
  });

  it('410 on an incremental listing falls back to a full listing in the same run', async () => {
    const r = await open({ sim: { skills: 200 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    r.sim.control.mutate(5);
    r.sim.control.setFaults([{ fault: 'gone', times: 1 }]);
    const res = await r.engine.syncAll({ trigger: 'schedule' });
    expectOk(res);
    expect(res.run?.mode).toBe('full');
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });
});

describe("the original service's promised behaviours, corrected", () => {
  it('single page', async () => {
    const r = await open({ sim: { skills: 40 } });
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expectOk(res);
    expect(res.run?.pages).toBe(1);
    expect(requestsTo(r, 'list_skills')).toBe(1);
  });

  it('pagination', async () => {
    const r = await open({ sim: { skills: 1001, features: { cursor: false } }, engine: { pageSize: 100 } });
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expectOk(res);
    expect(res.run?.pages).toBe(11);
    expect((await r.store.stats(Date.now())).skills).toBe(1001);
  });

  it('an empty marketplace is a success with nothing in it, not an error', async () => {
    const r = await open({ sim: { skills: 0 } });
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expectOk(res);
    expect(res.run?.upserted).toBe(0);
    expect((await r.store.getSyncState()).skillsCached).toBe(0);
  });

  it('network errors: an outage is failed, never an empty marketplace, and the cache stays', async () => {
    const r = await open({ sim: { skills: 120 }, client: { maxAttempts: 1 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    const digest = await r.store.digest();
    r.sim.control.setFaults([{ fault: 'reset' }]);
    const res = await r.engine.syncAll({ trigger: 'schedule' });
    expect(res.status).toBe('failed');
    expect(res.error?.code).toBe('SKILLSYNC_ERR_REMOTE_NETWORK');
    expect(await r.store.digest()).toBe(digest);
    const state = await r.store.getSyncState();
    expect(state).toMatchObject({
      status: 'failed',
      consecutiveErrors: 1,
      failedSyncs: 1,
      successfulSyncs: 1,
    });
    expect(state.lastError).toMatch(/NETWORK/);
    expect(state.lastSuccessAt).not.toBeNull();
    expect(state.skillsCached).toBe(120);
  });

  it('categories are cached (and an empty categories answer never wipes them)', async () => {
    const r = await open({ sim: { skills: 50, categories: 12 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    expect((await r.store.listCategories(Date.now())).length).toBe(12);
    r.sim.control.setFaults([{ fault: 'empty_catalog', route: 'categories' }]);
    await r.engine.syncAll({ trigger: 'manual' });
    expect((await r.store.listCategories(Date.now())).length).toBe(12);
  });

  it('cache upserts: a second listing of the same catalog rewrites nothing', async () => {
    const r = await open({ sim: { skills: 300 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual', mode: 'full' }));
    const again = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expectOk(again);
    expect(again.run?.upserted).toBe(0);
    expect(again.run?.unchanged).toBe(300);
  });

  it('invalidation count: deletions are counted (full listing and tombstones)', async () => {
    const r = await open({ sim: { skills: 300, features: { updated_since: false } } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    const gone = r.sim.control.mutate(10, ['delete']).length;
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expectOk(res);
    expect(res.run?.deleted).toBe(gone);
    expect(await r.store.digest()).toBe(r.sim.control.digest());

    const r2 = rig as SyncRig;
    await r2.close();
    const t = await open({ sim: { skills: 300 } });
    expectOk(await t.engine.syncAll({ trigger: 'manual' }));
    const n = t.sim.control.mutate(7, ['delete']).length;
    const inc = await t.engine.syncAll({ trigger: 'manual' });
    expect(inc.run?.mode).toBe('incremental');
    expect(inc.run?.deleted).toBe(n);
  });

  it('concurrent rejection: a second run while one runs gets the running run id', async () => {
    const r = await open({ sim: { skills: 2000 }, engine: { pageSize: 100 } });
    const first = r.engine.syncAll({ trigger: 'manual' });
    const second = await r.engine.syncAll({ trigger: 'manual' });
    expect(second.status).toBe('rejected');
    expect(second.alreadyInProgress).toBe(true);
    expect(second.error?.code).toBe('SKILLSYNC_ERR_SYNC_IN_PROGRESS');
    const done = await first;
    expect(second.runId).toBe(done.runId);
    expect((await r.store.listRuns({ limit: 10, offset: 0 })).total).toBe(1);
  });

  it('partial failure: a failed part makes the run partial, never success', async () => {
    const r = await open({ sim: { skills: 100 }, client: { maxAttempts: 1 } });
    r.sim.control.setFaults([{ fault: 'error', route: 'categories', status: 500 }]);
    const res = await r.engine.syncAll({ trigger: 'manual' });
    expect(res.status).toBe('partial');
    expect(res.run?.status).toBe('partial');
    expect((await r.store.stats(Date.now())).skills).toBe(100);
    const state = await r.store.getSyncState();
    expect(state.status).toBe('partial');
    expect(state.lastSuccessAt).toBeNull();
    expect(state.successfulSyncs).toBe(0);
  });

  it('conflict metrics are per run (reset each run) and cumulative in the state', async () => {
    const r = await open({ sim: { skills: 50 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    const ids = r.sim.control.liveSkillIds().slice(0, 3);
    for (const id of ids) await r.store.setLocalOverrides(id, { description: `mine ${id}` }, Date.now());
    // The remote changes skills; those of the overridden ones whose description changed conflict.
    const descBefore = ids.map((id) => r.sim.control.getSkill(id)?.description);
    r.sim.control.mutate(40, ['update']);
    const changed = ids.filter((id, i) => r.sim.control.getSkill(id)?.description !== descBefore[i]);
    const one = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(changed.length).toBeGreaterThan(0);
    const detected = one.run?.conflictsDetected ?? 0;
    expect(detected).toBe(changed.length);
    expect(one.run?.conflictsResolved).toBe(changed.length); // remote_wins settles them
    const two = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(two.run?.conflictsDetected).toBe(0);
    expect(two.run?.conflictsResolved).toBe(0);
    const state = await r.store.getSyncState();
    expect(state.conflictsDetectedTotal).toBe(detected);
    expect(state.conflictsResolvedTotal).toBe(detected);
  });
});

describe('conflicts through the engine', () => {
  it('manual: one open conflict per skill, updated in place; remote_wins later closes it', async () => {
    const r = await open({ sim: { skills: 20 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    const id = r.sim.control.liveSkillIds()[0] as string;
    const before = (await r.store.getSkill(id, Date.now()))?.base;
    await r.store.setLocalOverrides(id, { version: 'local-1' }, Date.now());
    r.engine.setStrategy('manual');
    // Two remote versions of the skill, each changing the overridden field.
    for (let round = 0; round < 2; round++) {
      const sk = { ...r.sim.control.getSkill(id) };
      let tries = 0;
      while (r.sim.control.getSkill(id)?.version === sk.version && tries++ < 500)
        r.sim.control.mutate(5, ['update']);
      const res = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
      expectOk(res);
      expect(res.run?.conflictsManual).toBeGreaterThanOrEqual(1);
    }
    const open1 = await r.store.listConflicts({ status: 'open', limit: 10, offset: 0 });
    expect(open1.items.filter((c) => c.skillId === id)).toHaveLength(1);
    const rec = await r.store.getSkill(id, Date.now());
    expect(rec?.effective.version).toBe('local-1');
    expect(rec?.base.version).not.toBe(before?.version);
    expect(await r.store.digest()).toBe(r.sim.control.digest());

    r.engine.setStrategy('remote_wins');
    const v = r.sim.control.getSkill(id)?.version;
    let tries = 0;
    while (r.sim.control.getSkill(id)?.version === v && tries++ < 500) r.sim.control.mutate(5, ['update']);
    const res = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(res.run?.conflictsResolved).toBeGreaterThanOrEqual(1);
    const after = await r.store.getSkill(id, Date.now());
    expect(after?.local).toBeNull();
    expect(after?.effective.version).toBe(r.sim.control.getSkill(id)?.version);
    expect(
      (await r.store.listConflicts({ status: 'open', limit: 10, offset: 0 })).items.filter(
        (c) => c.skillId === id,
      ),
    ).toHaveLength(0);
  });

  it('applySkill (the WebSocket path) resolves conflicts like polling and is version-guarded', async () => {
    const r = await open({ sim: { skills: 10 } });
    expectOk(await r.engine.syncAll({ trigger: 'manual' }));
    const id = r.sim.control.liveSkillIds()[0] as string;
    const base = (await r.store.getSkill(id, Date.now()))?.base;
    if (!base) throw new Error('missing skill');
    await r.store.setLocalOverrides(id, { code: 'mine' }, Date.now());
    r.engine.setStrategy('local_wins');
    const newer = {
      ...base,
      code: 'theirs',
      updated_at: new Date(Date.parse(base.updated_at ?? '') + 1000).toISOString(),
    };
    expect(await r.engine.applySkill(newer, 'websocket')).toBe('applied');
    const rec = await r.store.getSkill(id, Date.now());
    expect(rec?.base.code).toBe('theirs');
    expect(rec?.effective.code).toBe('mine');
    expect(await r.engine.applySkill(base, 'websocket')).toBe('stale');
    expect((await r.store.getSyncState()).conflictsDetectedTotal).toBe(1);
  });

  for (const strategy of ['manual', 'remote_wins', 'merge'] as const) {
    it(`applySkills (one batch, ids may repeat) gives what applySkill one at a time gives (${strategy})`, async () => {
      const a = await open({ sim: { skills: 10, seed: 5 } });
      const b = await startSyncRig({ sim: { skills: 10, seed: 5 } });
      try {
        const now = Date.now();
        for (const r of [a, b]) {
          expectOk(await r.engine.syncAll({ trigger: 'manual' }));
          r.engine.setStrategy(strategy);
        }
        const [k, m, n] = a.sim.control.liveSkillIds() as [string, string, string];
        const stored = async (id: string): Promise<Skill> => (await a.store.getSkill(id, now))!.base;
        const [baseK, baseM, baseN] = [await stored(k), await stored(m), await stored(n)];
        for (const r of [a, b]) await r.store.setLocalOverrides(k, { code: 'mine', tags: ['x'] }, now);
        const later = (s: Skill, ms: number, patch: Partial<Skill>): Skill => ({
          ...s,
          ...patch,
          updated_at: new Date(Date.parse(s.updated_at ?? '') + ms).toISOString(),
        });
        const events = [
          later(baseK, 2_000, { code: 'theirs-2' }),
          later(baseM, 2_000, { description: 'm2' }),
          later(baseN, 2_000, { description: 'n2' }),
          later(baseN, 1_000, { description: 'n1' }), // reordered: older than n2
          later(baseK, 1_000, { code: 'theirs-1' }), // reordered: older than theirs-2
          later(baseK, 3_000, { code: 'theirs-3', tags: ['y'] }),
          later(baseM, 2_000, { description: 'm2' }), // a repeat
          later(baseK, 4_000, { code: 'mine', tags: ['y'] }), // upstream now agrees on code
        ];
        const batched = await a.engine.applySkills(events, 'websocket');
        const oneByOne: string[] = [];
        for (const e of events) oneByOne.push(await b.engine.applySkill(e, 'websocket'));
        expect(batched).toEqual(oneByOne);
        expect(batched).toEqual([
          'applied',
          'applied',
          'applied',
          'stale',
          'stale',
          'applied',
          'duplicate',
          'applied',
        ]);
        const view = async (r: SyncRig, id: string): Promise<unknown> => {
          const rec = (await r.store.getSkill(id, now))!;
          return [rec.base, rec.local, rec.effective, rec.contentHash, rec.hasOpenConflict];
        };
        for (const id of [k, m, n]) expect(await view(a, id)).toEqual(await view(b, id));
        const conflicts = async (r: SyncRig): Promise<unknown> =>
          (await r.store.listConflicts({ limit: 10, offset: 0 })).items.map((c) => [
            c.skillId,
            c.status,
            c.resolution,
            c.type,
            c.fields,
          ]);
        expect(await conflicts(a)).toEqual(await conflicts(b));
        const totals = async (r: SyncRig): Promise<unknown> => {
          const st = await r.store.getSyncState();
          return [st.conflictsDetectedTotal, st.conflictsResolvedTotal];
        };
        expect(await totals(a)).toEqual(await totals(b));
        expect(((await totals(a)) as number[])[0]).toBeGreaterThan(0);
      } finally {
        await b.close();
      }
    });
  }
});
