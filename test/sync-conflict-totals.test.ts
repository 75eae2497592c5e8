/**
 * The cumulative conflict totals in the sync state: counted once, by the store, in the
 * transaction that records the conflict (polling, WebSocket and operator alike), and never
 * overwritten by a run's end with the totals it read at its start.
 *
 * Detected counts conflicts: a manual one once when it opens (not again when a later sync
 * updates it in place), one settled by a strategy at once counts as detected and resolved.
 * So detected - resolved is the number of open conflicts.
 *
 * The real simulator over loopback sockets (15 skills, page-numbered, pages of 5): skills change
 * through its control API, WebSocket-path skills are read from it with the real client, and the
 * changes "during a run" are made from a store hook once the run's first page is written (the
 * engine waits for it before it asks for page 2).
 */
import { interceptStore } from './helpers/store-intercept.js';
import { afterEach, describe, expect, it } from 'vitest';
import { simId, startPagedSimRig, type PagedSimRig } from './helpers/paged-sim-rig.js';
import type { Skill } from '../src/remote/contract.js';
import type { Store } from '../src/store/store.js';

let rig: PagedSimRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('conflict totals', () => {
  it('count each conflict once, and a run does not overwrite what happened during it', async () => {
    // Runs once, after the next page the engine writes, before the engine goes on.
    let afterNextPage: (() => Promise<void>) | null = null;
    const hooked = (store: Store): Store =>
      interceptStore(store, (name, fn) =>
        name !== 'applySkillPage'
          ? undefined
          : async (...args: unknown[]) => {
              const out = (await fn(...args)) as unknown;
              const hook = afterNextPage;
              afterNextPage = null;
              await hook?.();
              return out;
            },
      );
    const r = (rig = await startPagedSimRig({
      skills: 15,
      features: { cursor: false, updated_since: false },
      engine: { strategy: 'manual' },
      wrapStore: hooked,
    }));
    const { store, engine, clock, sim } = r;
    const totals = async (): Promise<[number, number, number]> => {
      const s = await store.getSyncState();
      const open = (await store.listConflicts({ status: 'open', limit: 100, offset: 0 })).total;
      return [s.conflictsDetectedTotal, s.conflictsResolvedTotal, open];
    };
    // A skill as a WebSocket event would carry it: read from the simulator with the real client.
    const live = async (id: string): Promise<Skill> => {
      const skill = await r.remote.getSkill(id);
      if (skill === null) throw new Error(`${id} is not live`);
      return skill;
    };
    const [s1, s2, s3, s4] = [simId(1), simId(2), simId(3), simId(4)];

    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    for (const id of [s1, s2, s3])
      await store.setLocalOverrides(id, { description: `mine ${id}` }, clock.now());

    // Polling, manual: one conflict opened.
    sim.control.updateSkill(s1);
    const run = await engine.syncAll({ trigger: 'manual' });
    expect(run.status).toBe('success');
    expect(run.run?.conflictsManual).toBe(1);
    expect(await totals()).toEqual([1, 0, 1]);
    // A later version of the same skill updates the open conflict in place: no new conflict.
    sim.control.updateSkill(s1);
    expect((await engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect(await totals()).toEqual([1, 0, 1]);

    // WebSocket, manual: one more conflict (it counted twice: store and engine).
    sim.control.updateSkill(s2);
    expect(await engine.applySkill(await live(s2), 'websocket')).toBe('applied');
    expect(await totals()).toEqual([2, 0, 2]);

    // WebSocket, remote_wins closes s1's open conflict: one resolution (it counted twice).
    engine.setStrategy('remote_wins');
    sim.control.updateSkill(s1);
    expect(await engine.applySkills([await live(s1)], 'websocket')).toEqual(['applied']);
    expect(await totals()).toEqual([2, 1, 1]);

    // A conflict settled at once by the strategy: detected and resolved together.
    sim.control.updateSkill(s3);
    expect(await engine.applySkill(await live(s3), 'websocket')).toBe('applied');
    expect(await totals()).toEqual([3, 2, 1]);

    // During a run: an operator resolves s2's conflict and a WebSocket event opens another.
    await store.setLocalOverrides(s4, { description: `mine ${s4}` }, clock.now());
    engine.setStrategy('manual');
    let ranDuringRun = false;
    afterNextPage = async () => {
      expect(engine.running).toBe(true);
      const [c] = (await store.listConflicts({ status: 'open', limit: 10, offset: 0 })).items;
      expect(c?.skillId).toBe(s2);
      await store.resolveConflict(c!.id, {
        local: null,
        resolution: 'remote_wins',
        resolvedBy: 'operator',
        now: clock.now(),
      });
      sim.control.updateSkill(s4);
      expect(await engine.applySkill(await live(s4), 'websocket')).toBe('applied');
      ranDuringRun = true;
    };
    const during = await engine.syncAll({ trigger: 'manual' });
    expect(during.status).toBe('success');
    expect(ranDuringRun).toBe(true);
    expect(during.run?.pages).toBe(3);
    expect(await totals()).toEqual([4, 3, 1]);
  });
});
