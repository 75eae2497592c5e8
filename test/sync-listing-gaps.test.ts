/**
 * Page-numbered listings over a catalog that changes under them: offsets shift, a record can be
 * skipped, and such a listing must neither delete nor move the watermark past what it skipped.
 *
 * The real simulator over loopback sockets, cursor off (page-numbered listings), 15 skills in
 * pages of 5. The catalog changes at exact moments: through the simulator's control API between
 * runs, or from the engine's pageApplied event after page 1 (without prefetch, page 2 is
 * requested only after that). A run fails on page 2 through a 503 fault rule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simId, simIds, startPagedSimRig, type PagedSimRig } from './helpers/paged-sim-rig.js';
import type { FeatureSwitches } from '../simulator/index.js';

let rig: PagedSimRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

async function setUp(features: Partial<FeatureSwitches>): Promise<PagedSimRig> {
  // overlapMs 0: an incremental listing starts exactly at the watermark, so what it lists
  // depends only on the watermark the previous listing left.
  rig = await startPagedSimRig({
    skills: 15,
    features: { cursor: false, ...features },
    engine: { overlapMs: 0 },
  });
  return rig;
}

/** The version the store holds for a skill. */
async function storedVersion(r: PagedSimRig, id: string): Promise<string | undefined> {
  return (await r.store.getSkill(id, r.clock.now()))?.base.version;
}

/** The version the simulator serves now. */
function remoteVersion(r: PagedSimRig, id: string): string | undefined {
  return r.sim.control.getSkill(id)?.version;
}

/** Runs `change` once, when the engine has applied page 1 of a listing in `mode`. */
function afterFirstPage(r: PagedSimRig, mode: 'full' | 'incremental', change: () => void): void {
  const off = r.engine.on('pageApplied', (p) => {
    if (p.mode !== mode || p.pages !== 1) return;
    off();
    change();
  });
}

describe('a resumed page-numbered listing', () => {
  it('does not delete a skill its shifted pages never listed', async () => {
    const r = await setUp({ updated_since: false });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    expect(await r.storedIds()).toEqual(simIds(15));

    // A full run fails on page 2 (503 on every attempt): its checkpoint says page 2.
    r.sim.control.setFaults([{ fault: 'error', status: 503, route: 'list_skills', after: 1, times: 2 }]);
    const failed = await r.engine.syncAll({ trigger: 'manual' });
    expect(failed.status).toBe('partial');
    expect(failed.error?.code).toBe('SKILLSYNC_ERR_REMOTE_UNAVAILABLE');
    expect(r.sim.control.faultLog()).toHaveLength(2);
    expect((await r.store.getCheckpoint())?.nextPage).toBe(2);

    // Meanwhile the first skill is deleted: the resumed pages shift by one and the sixth
    // (skill-00000005) is never listed.
    r.sim.control.clearFaults();
    r.sim.control.deleteSkill(simId(0));
    const listed = r.calls.length;
    const resumed = await r.engine.syncAll({ trigger: 'manual' });
    expect(resumed.status).toBe('success');
    expect(resumed.run?.resumedFromCheckpoint).toBe(true);
    expect(r.calls.slice(listed).map((c) => c.page)).toEqual([2, 3]);
    expect(await r.storedIds()).toContain(simId(5));
    expect(resumed.run?.deleted).toBe(0);

    // The next, fresh listing sees everything and removes only what the remote removed.
    const fresh = await r.engine.syncAll({ trigger: 'manual' });
    expect(fresh.status).toBe('success');
    expect(fresh.run?.resumedFromCheckpoint).toBe(false);
    expect(fresh.run?.deleted).toBe(1);
    expect(await r.storedIds()).toEqual(r.sim.control.liveSkillIds());
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });
});

describe('the watermark after a page-numbered listing over a changing catalog', () => {
  it('incremental: a deletion during the listing (a tombstone at its end) keeps the watermark back', async () => {
    const r = await setUp({ updated_since: true });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    const first = (await r.store.getSyncState()).watermark;
    expect(first).not.toBeNull();

    const old6 = await storedVersion(r, simId(5));
    for (const id of simIds(10)) r.sim.control.updateSkill(id);
    expect(remoteVersion(r, simId(5))).not.toBe(old6);
    // While the incremental listing runs, the first skill is deleted: its tombstone moves to
    // the end and skill-00000005 (updated) slides from page 2 onto page 1, already read.
    afterFirstPage(r, 'incremental', () => r.sim.control.deleteSkill(simId(0)));
    const listed = r.calls.length;
    const inc = await r.engine.syncAll({ trigger: 'schedule' });
    expect(inc.status).toBe('success');
    expect(inc.run?.mode).toBe('incremental');
    expect(r.calls.slice(listed).map((c) => c.page)).toEqual([1, 2]);
    expect(r.calls.slice(listed).every((c) => c.updatedSince !== undefined)).toBe(true);
    expect(await storedVersion(r, simId(5))).toBe(old6);
    const after = (await r.store.getSyncState()).watermark;
    // Not moved past skill-00000005: the next incremental listing lists it again.
    expect(after).not.toBeNull();
    expect(Date.parse(after ?? '')).toBeLessThanOrEqual(Date.parse(first ?? ''));

    const next = await r.engine.syncAll({ trigger: 'schedule' });
    expect(next.status).toBe('success');
    expect(next.run?.mode).toBe('incremental');
    expect(await storedVersion(r, simId(5))).toBe(remoteVersion(r, simId(5)));
    expect(await r.storedIds()).toEqual(r.sim.control.liveSkillIds());
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });

  it('full: a listing whose pages shifted sets no watermark, so the next run lists in full again', async () => {
    const r = await setUp({ updated_since: true });
    expect((await r.engine.syncAll({ trigger: 'manual' })).status).toBe('success');
    const old6 = await storedVersion(r, simId(5));
    r.sim.control.updateSkill(simId(5));
    // A full listing during which the first skill is deleted: skill-00000005's update is never
    // listed (it slides onto page 1, already read).
    afterFirstPage(r, 'full', () => r.sim.control.deleteSkill(simId(0)));
    const full = await r.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(full.status).toBe('success');
    expect(full.run?.mode).toBe('full');
    expect(full.run?.deleted).toBe(0);
    expect(await storedVersion(r, simId(5))).toBe(old6);
    expect((await r.store.getSyncState()).watermark).toBeNull();

    const next = await r.engine.syncAll({ trigger: 'schedule' });
    expect(next.status).toBe('success');
    expect(next.run?.mode).toBe('full');
    expect(await storedVersion(r, simId(5))).toBe(remoteVersion(r, simId(5)));
    expect(await r.storedIds()).toEqual(r.sim.control.liveSkillIds());
    expect(await r.store.digest()).toBe(r.sim.control.digest());
  });
});
