/**
 * The Store contract: one vitest suite that every implementation runs (kysely loops its suites
 * over dialects; drizzle exports tests() per driver). Call it from a test file:
 *
 *   runStoreContract('sqlite :memory:', () => openSqliteStore({ path: ':memory:' }));
 *
 * `openFresh` must return an EMPTY store of its own (own file / schema) each time; the suite
 * closes it after each test. Only the Store interface is used, so what passes here is what the
 * sync engine, the uploader and the API may rely on.
 *
 * Orders the contract fixes: listConflicts, listRuns and listQuarantine newest first (id
 * desc); listOutbox and listRatings oldest first; listCategories by name; searchSkills ties
 * broken by skill_id. Text search matches whole words or word prefixes in name, description
 * and tags, every word required; the tag filter is an exact, case-insensitive tag.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogDigest, categoryContentHash, skillContentHash } from '../../src/remote/contract.js';
import type { Category, Skill } from '../../src/remote/contract.js';
import type { Store } from '../../src/store/store.js';
import type {
  ApplyPageInput,
  ConflictUpsert,
  EnqueueInput,
  ListingCheckpoint,
  SkillUpsert,
} from '../../src/store/types.js';

const T0 = Date.UTC(2026, 0, 1);
const TTL = 60_000;
const ISO = (ms: number): string => new Date(ms).toISOString();

export function mkSkill(id: string, extra: Partial<Skill> = {}): Skill {
  return {
    skill_id: id,
    name: `skill ${id}`,
    version: '1.0.0',
    description: `description of ${id}`,
    category: 'general',
    skill_type: 'tool',
    tags: ['alpha'],
    average_rating: 3,
    rating_count: 1,
    install_count: 10,
    updated_at: ISO(T0),
    ...extra,
  };
}

export function up(skill: Skill, extra: Partial<SkillUpsert> = {}): SkillUpsert {
  return { skill, contentHash: skillContentHash(skill), ...extra };
}

function page(items: SkillUpsert[], extra: Partial<ApplyPageInput> = {}): ApplyPageInput {
  return {
    items,
    tombstones: [],
    source: 'full',
    now: T0,
    ttlMs: TTL,
    epoch: 'e1',
    guard: 'listing',
    checkpoint: null,
    ...extra,
  };
}

function checkpoint(extra: Partial<ListingCheckpoint> = {}): ListingCheckpoint {
  return {
    runId: 1,
    mode: 'full',
    startedAt: T0,
    nextPage: 2,
    cursor: null,
    pageSize: 100,
    updatedSince: null,
    epoch: 'e1',
    pagesApplied: 1,
    skillsApplied: 2,
    ...extra,
  };
}

function conflict(base: Skill, remote: Skill, extra: Partial<ConflictUpsert> = {}): ConflictUpsert {
  return {
    type: 'CONTENT_MISMATCH',
    severity: 'MEDIUM',
    base,
    local: { description: 'mine' },
    remote,
    strategy: 'manual',
    fields: ['description'],
    ...extra,
  };
}

function ratingOutbox(key: string, chainKey: string, now = T0, skillId = 'a'): EnqueueInput {
  return {
    kind: 'rating',
    chainKey,
    payload: { skill_id: skillId, user_id: 'u1', rating: 4 },
    idempotencyKey: key,
    now,
  };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ code });
}

export function runStoreContract(name: string, openFresh: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await openFresh();
    });
    afterEach(async () => {
      await store.close();
    });

    const seed = async (skills: Skill[], now = T0): Promise<void> => {
      await store.applySkillPage(
        page(
          skills.map((s) => up(s)),
          { now },
        ),
      );
    };

    // ---- applySkillPage -----------------------------------------------------------------
    describe('applySkillPage', () => {
      it('inserts new skills with their freshness, keeping unknown fields', async () => {
        const a = mkSkill('a', { x_unknown: { nested: [1, 2] } });
        const res = await store.applySkillPage(page([up(a), up(mkSkill('b'))], { source: 'full' }));
        expect(res).toEqual({ upserted: 2, unchanged: 0, stale: 0, deleted: 0, conflictsRecorded: 0 });
        const rec = await store.getSkill('a', T0);
        expect(rec).not.toBeNull();
        expect(rec!.base).toEqual(a);
        expect(rec!.effective).toEqual(a);
        expect(rec!.local).toBeNull();
        expect(rec!.contentHash).toBe(skillContentHash(a));
        expect(rec!.remoteUpdatedAt).toBe(ISO(T0));
        expect(rec!.fetchedAt).toBe(T0);
        expect(rec!.expiresAt).toBe(T0 + TTL);
        expect(rec!.source).toBe('full');
        expect(rec!.epoch).toBe('e1');
        expect(rec!.hasOpenConflict).toBe(false);
        expect(rec!.stale).toBe(false);
        expect((await store.getSkill('a', T0 + TTL - 1))!.stale).toBe(false);
        expect((await store.getSkill('a', T0 + TTL))!.stale).toBe(true);
        expect(await store.getSkill('zz', T0)).toBeNull();
      });

      it('does not rewrite unchanged rows: only fetchedAt/expiresAt move', async () => {
        const a = mkSkill('a');
        await store.applySkillPage(page([up(a)], { source: 'full' }));
        // Same content hash with a different payload: the store must keep the stored base.
        const same = { ...a, x_changed_but_same_hash: true };
        const res = await store.applySkillPage(
          page([{ skill: same, contentHash: skillContentHash(a) }], {
            now: T0 + 5000,
            source: 'incremental',
            guard: 'version',
          }),
        );
        expect(res).toMatchObject({ upserted: 0, unchanged: 1, stale: 0 });
        const rec = (await store.getSkill('a', T0 + 5000))!;
        expect(rec.base).toEqual(a);
        expect(rec.source).toBe('full');
        expect(rec.fetchedAt).toBe(T0 + 5000);
        expect(rec.expiresAt).toBe(T0 + 5000 + TTL);
      });

      it('search follows changes applied in any order, with new, changed and repeated skills on one page', async () => {
        const ids = Array.from({ length: 120 }, (_, i) => `o${String(i).padStart(3, '0')}`);
        await seed(ids.map((id) => mkSkill(id, { description: 'alphaword' })));
        // Reverse and interleaved order, a skill twice on the page (the last one wins), new skills.
        const order = [...ids].reverse().filter((_, i) => i % 2 === 0);
        const items = order.map((id) =>
          up(mkSkill(id, { description: 'betaword', updated_at: ISO(T0 + 1000) })),
        );
        items.push(up(mkSkill('o001', { description: 'gammaword', updated_at: ISO(T0 + 2000) })));
        items.push(up(mkSkill('newcomer', { description: 'betaword', updated_at: ISO(T0 + 1000) })));
        const res = await store.applySkillPage(page(items, { now: T0 + 1000, source: 'incremental' }));
        // o001 twice on one page: counted once or twice depending on the store; the content is what matters.
        expect(res.upserted).toBeGreaterThanOrEqual(order.length + 1);
        const q = async (text: string) =>
          (await store.searchSkills({ text, page: 1, pageSize: 200, now: T0 + 1000 })).total;
        expect(order).toContain('o001');
        // The updated half less o001 (gamma), plus the newcomer; the other half kept alpha.
        expect(await q('betaword')).toBe(order.length);
        expect(await q('gammaword')).toBe(1);
        expect(await q('alphaword')).toBe(ids.length - order.length);
        expect(await store.integrityCheck()).toEqual([]);
      });

      it('replaces the base when the content changes', async () => {
        await seed([mkSkill('a')]);
        const changed = mkSkill('a', { description: 'new words', updated_at: ISO(T0 + 1000) });
        const res = await store.applySkillPage(
          page([up(changed)], { now: T0 + 1000, source: 'incremental' }),
        );
        expect(res).toMatchObject({ upserted: 1, unchanged: 0 });
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.base).toEqual(changed);
        expect(rec.source).toBe('incremental');
        expect(rec.remoteUpdatedAt).toBe(ISO(T0 + 1000));
      });

      it('version guard: older is stale, equal time with new content applies, equal content is unchanged', async () => {
        await seed([mkSkill('a', { updated_at: ISO(T0 + 1000) })]);
        const older = mkSkill('a', { description: 'older', updated_at: ISO(T0) });
        const equalNew = mkSkill('a', { description: 'tie', updated_at: ISO(T0 + 1000) });
        let res = await store.applySkillPage(page([up(older)], { guard: 'version', now: T0 + 1 }));
        expect(res).toMatchObject({ upserted: 0, unchanged: 0, stale: 1 });
        const afterStale = (await store.getSkill('a', T0))!;
        expect(afterStale.base.description).toBe('description of a');
        expect(afterStale.fetchedAt).toBe(T0);
        res = await store.applySkillPage(page([up(equalNew)], { guard: 'version', now: T0 + 2 }));
        expect(res).toMatchObject({ upserted: 1, stale: 0 });
        expect((await store.getSkill('a', T0))!.base.description).toBe('tie');
        res = await store.applySkillPage(page([up(equalNew)], { guard: 'version', now: T0 + 3 }));
        expect(res).toMatchObject({ upserted: 0, unchanged: 1, stale: 0 });
      });

      it('version guard: a missing updated_at on either side applies', async () => {
        const noTime = mkSkill('a', { description: 'no time' });
        delete noTime.updated_at;
        await seed([noTime]);
        const older = mkSkill('a', { description: 'timed', updated_at: ISO(T0 - 99_000) });
        let res = await store.applySkillPage(page([up(older)], { guard: 'version' }));
        expect(res).toMatchObject({ upserted: 1, stale: 0 });
        const incomingNoTime = mkSkill('a', { description: 'incoming without time' });
        delete incomingNoTime.updated_at;
        res = await store.applySkillPage(page([up(incomingNoTime)], { guard: 'version' }));
        expect(res).toMatchObject({ upserted: 1, stale: 0 });
        expect((await store.getSkill('a', T0))!.base.description).toBe('incoming without time');
      });

      it("guard 'listing' applies whatever differs, even older", async () => {
        await seed([mkSkill('a', { updated_at: ISO(T0 + 1000) })]);
        const older = mkSkill('a', { description: 'older', updated_at: ISO(T0) });
        const res = await store.applySkillPage(page([up(older)], { guard: 'listing' }));
        expect(res).toMatchObject({ upserted: 1, stale: 0 });
        expect((await store.getSkill('a', T0))!.base.description).toBe('older');
      });

      it('applies tombstones and counts them', async () => {
        await seed([mkSkill('a'), mkSkill('b')]);
        const res = await store.applySkillPage(
          page([], {
            tombstones: [
              { skillId: 'a', deletedAt: ISO(T0 + 5) },
              { skillId: 'missing', deletedAt: ISO(T0 + 5) },
            ],
            source: 'incremental',
          }),
        );
        expect(res.deleted).toBe(1);
        expect(await store.getSkill('a', T0)).toBeNull();
        expect(await store.getSkill('b', T0)).not.toBeNull();
      });

      it('saves the checkpoint and watermark with the page, and clears the checkpoint with null', async () => {
        const cp = checkpoint();
        await store.applySkillPage(page([up(mkSkill('a'))], { checkpoint: cp, watermark: ISO(T0) }));
        expect(await store.getCheckpoint()).toEqual(cp);
        expect((await store.getSyncState()).watermark).toBe(ISO(T0));
        await store.applySkillPage(page([up(mkSkill('b'))], { checkpoint: null }));
        expect(await store.getCheckpoint()).toBeNull();
      });

      it('is all or nothing: a page that fails half way leaves no trace', async () => {
        const cp1 = checkpoint({ pagesApplied: 1 });
        await store.applySkillPage(page([up(mkSkill('a'))], { checkpoint: cp1 }));
        const bad = mkSkill('z', { x_bad: 1n as unknown as number });
        const items = [
          up(mkSkill('a', { description: 'changed' })),
          up(mkSkill('b')),
          { skill: bad, contentHash: 'h' },
        ];
        await expect(
          store.applySkillPage(page(items, { checkpoint: checkpoint({ pagesApplied: 2 }) })),
        ).rejects.toThrow();
        expect(await store.getCheckpoint()).toEqual(cp1);
        expect(await store.getSkill('b', T0)).toBeNull();
        expect((await store.getSkill('a', T0))!.base.description).toBe('description of a');
        expect(await store.integrityCheck()).toEqual([]);
      });

      it('the last copy of a skill repeated in one page wins', async () => {
        const first = mkSkill('a', { description: 'first' });
        const second = mkSkill('a', { description: 'second' });
        await store.applySkillPage(page([up(first), up(second)]));
        expect((await store.getSkill('a', T0))!.base.description).toBe('second');
      });

      it('item.local sets, keeps (undefined) or clears (null) the overrides', async () => {
        await store.applySkillPage(page([up(mkSkill('a'), { local: { description: 'mine' } })]));
        let rec = (await store.getSkill('a', T0))!;
        expect(rec.local).toEqual({ description: 'mine' });
        expect(rec.effective.description).toBe('mine');
        expect(rec.base.description).toBe('description of a');
        const v2 = mkSkill('a', { version: '2.0.0', updated_at: ISO(T0 + 1) });
        await store.applySkillPage(page([up(v2)], { guard: 'version' }));
        rec = (await store.getSkill('a', T0))!;
        expect(rec.local).toEqual({ description: 'mine' });
        expect(rec.effective.version).toBe('2.0.0');
        // Unchanged content with local: null still clears.
        await store.applySkillPage(page([up(v2, { local: null })], { guard: 'version' }));
        rec = (await store.getSkill('a', T0))!;
        expect(rec.local).toBeNull();
        expect(rec.effective).toEqual(v2);
      });

      it('records and resolves conflicts carried by items', async () => {
        const base = mkSkill('a');
        await store.applySkillPage(page([up(base, { local: { description: 'mine' } })]));
        const remote = mkSkill('a', { description: 'theirs', updated_at: ISO(T0 + 1) });
        const res = await store.applySkillPage(page([up(remote, { conflict: conflict(base, remote) })]));
        expect(res.conflictsRecorded).toBe(1);
        expect((await store.getSkill('a', T0))!.hasOpenConflict).toBe(true);
        const remote2 = mkSkill('a', { description: 'theirs again', updated_at: ISO(T0 + 2) });
        await store.applySkillPage(
          page([
            up(remote2, {
              local: null,
              resolveOpenConflict: { resolution: 'remote_wins', resolvedBy: 'sync' },
            }),
          ]),
        );
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.hasOpenConflict).toBe(false);
        expect(rec.local).toBeNull();
        const list = await store.listConflicts({ limit: 10, offset: 0 });
        expect(list.total).toBe(1);
        expect(list.items[0]).toMatchObject({
          status: 'resolved',
          resolution: 'remote_wins',
          resolvedBy: 'sync',
        });
        const state = await store.getSyncState();
        expect(state.conflictsDetectedTotal).toBe(1);
        expect(state.conflictsResolvedTotal).toBe(1);
      });

      it('counts each conflict once in the totals, on every write path', async () => {
        const totals = async (): Promise<number[]> => {
          const s = await store.getSyncState();
          return [s.conflictsDetectedTotal, s.conflictsResolvedTotal];
        };
        const ev = { now: T0 + 10, ttlMs: TTL, epoch: 'e1', source: 'websocket' as const };
        const settle = { resolution: 'remote_wins', resolvedBy: 'sync' };
        const base = mkSkill('a');
        await store.applySkillPage(page([up(base, { local: { description: 'mine' } })]));
        const r1 = mkSkill('a', { description: 'theirs 1', updated_at: ISO(T0 + 1) });
        await store.applySkillPage(page([up(r1, { conflict: conflict(base, r1) })]));
        expect(await totals()).toEqual([1, 0]);
        // The open conflict updated in place is not a new one.
        const r2 = mkSkill('a', { description: 'theirs 2', updated_at: ISO(T0 + 2) });
        await store.applySkillEvent(up(r2, { conflict: conflict(base, r2) }), ev);
        expect(await totals()).toEqual([1, 0]);
        // Closed by a strategy.
        const r3 = mkSkill('a', { description: 'theirs 3', updated_at: ISO(T0 + 3) });
        await store.applySkillEvents([up(r3, { local: null, resolveOpenConflict: settle })], ev);
        expect(await totals()).toEqual([1, 1]);
        // Settled by a strategy with none open: detected and resolved at once, on each path.
        let t = T0 + 4;
        for (const write of ['event', 'events', 'page'] as const) {
          await store.setLocalOverrides('a', { description: 'mine again' }, t++);
          const r = up(mkSkill('a', { description: `theirs ${t}`, updated_at: ISO(t++) }), {
            local: null,
            resolveOpenConflict: settle,
          });
          if (write === 'event') await store.applySkillEvent(r, ev);
          else if (write === 'events') await store.applySkillEvents([r], ev);
          else await store.applySkillPage(page([r], { guard: 'version' }));
        }
        expect(await totals()).toEqual([4, 4]);
        // A stale event records nothing.
        const old = mkSkill('a', { description: 'old', updated_at: ISO(T0 + 2) });
        expect(await store.applySkillEvent(up(old, { resolveOpenConflict: settle }), ev)).toBe('stale');
        expect(await totals()).toEqual([4, 4]);
      });
    });

    // ---- applySkillEvents -------------------------------------------------------------
    describe('applySkillEvents', () => {
      const opts = { now: T0 + 10, ttlMs: TTL, epoch: 'e1', source: 'websocket' as const };

      it('gives each item the outcome applySkillEvent would, in order, and saves no checkpoint', async () => {
        await store.applySkillEvent(up(mkSkill('a', { updated_at: ISO(T0 + 100) })), opts);
        await store.applySkillEvent(up(mkSkill('b', { updated_at: ISO(T0 + 100) })), opts);
        const outcomes = await store.applySkillEvents(
          [
            up(mkSkill('a', { description: 'older', updated_at: ISO(T0 + 99) })),
            up(mkSkill('b', { updated_at: ISO(T0 + 100) })),
            up(mkSkill('c', { description: 'c1', updated_at: ISO(T0 + 100) })),
            // Same skill again: guarded by the item before it in the batch.
            up(mkSkill('c', { description: 'c0', updated_at: ISO(T0 + 50) })),
            up(mkSkill('c', { description: 'c2', updated_at: ISO(T0 + 200) })),
            up(mkSkill('c', { description: 'c2', updated_at: ISO(T0 + 200) })),
          ],
          { ...opts, now: T0 + 20 },
        );
        expect(outcomes).toEqual(['stale', 'duplicate', 'applied', 'stale', 'applied', 'duplicate']);
        expect((await store.getSkill('a', T0))!.base.description).toBe('description of a');
        expect((await store.getSkill('b', T0))!.fetchedAt).toBe(T0 + 20);
        const c = (await store.getSkill('c', T0))!;
        expect(c.base.description).toBe('c2');
        expect(c.source).toBe('websocket');
        // The search index holds the last applied version only.
        const hits = async (text: string): Promise<number> =>
          (await store.searchSkills({ text, page: 1, pageSize: 5, now: T0 })).total;
        expect([await hits('c2'), await hits('c1'), await hits('c0')]).toEqual([1, 0, 0]);
        expect(await store.getCheckpoint()).toBeNull();
        expect(await store.applySkillEvents([], opts)).toEqual([]);
      });

      it('records conflicts and keeps overrides like applySkillEvent', async () => {
        const base = mkSkill('k', { updated_at: ISO(T0) });
        await store.applySkillEvent(up(base), opts);
        await store.setLocalOverrides('k', { name: 'mine' }, T0 + 1);
        const remote = mkSkill('k', { name: 'theirs', updated_at: ISO(T0 + 5) });
        const [outcome] = await store.applySkillEvents(
          [up(remote, { conflict: conflict(base, remote) })],
          opts,
        );
        expect(outcome).toBe('applied');
        const rec = (await store.getSkill('k', T0))!;
        expect(rec.base.name).toBe('theirs');
        expect(rec.effective.name).toBe('mine');
        expect(rec.hasOpenConflict).toBe(true);
      });
    });

    // ---- applySkillEvent ----------------------------------------------------------------
    describe('applySkillEvent', () => {
      const opts = { now: T0 + 10, ttlMs: TTL, epoch: 'e1', source: 'websocket' as const };

      it('applies new and newer, refuses older, reports duplicates', async () => {
        const v1 = mkSkill('a', { updated_at: ISO(T0 + 100) });
        expect(await store.applySkillEvent(up(v1), opts)).toBe('applied');
        expect(await store.applySkillEvent(up(v1), { ...opts, now: T0 + 20 })).toBe('duplicate');
        expect((await store.getSkill('a', T0))!.fetchedAt).toBe(T0 + 20);
        const older = mkSkill('a', { description: 'old', updated_at: ISO(T0 + 99) });
        expect(await store.applySkillEvent(up(older), opts)).toBe('stale');
        const tie = mkSkill('a', { description: 'tie', updated_at: ISO(T0 + 100) });
        expect(await store.applySkillEvent(up(tie), opts)).toBe('applied');
        const newer = mkSkill('a', { description: 'newer', updated_at: ISO(T0 + 101) });
        expect(await store.applySkillEvent(up(newer), opts)).toBe('applied');
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.base.description).toBe('newer');
        expect(rec.source).toBe('websocket');
      });

      it('applies when either side has no updated_at', async () => {
        const v1 = mkSkill('a');
        delete v1.updated_at;
        expect(await store.applySkillEvent(up(v1), opts)).toBe('applied');
        const v2 = mkSkill('a', { description: 'v2', updated_at: ISO(T0 - 1000) });
        expect(await store.applySkillEvent(up(v2), opts)).toBe('applied');
        const v3 = mkSkill('a', { description: 'v3' });
        delete v3.updated_at;
        expect(await store.applySkillEvent(up(v3), opts)).toBe('applied');
      });

      it('an event without updated_at keeps the stored time: an older event after it is still stale', async () => {
        const MAR = Date.UTC(2026, 2, 1);
        const FEB = Date.UTC(2026, 1, 1);
        const id = (write: string): string => `g-${write}`;
        const apply = async (write: string, skill: Skill): Promise<string> => {
          if (write === 'event') return store.applySkillEvent(up(skill), opts);
          if (write === 'events') return (await store.applySkillEvents([up(skill)], opts))[0]!;
          const res = await store.applySkillPage(page([up(skill)], { guard: 'version' }));
          return res.upserted > 0 ? 'applied' : res.unchanged > 0 ? 'duplicate' : 'stale';
        };
        for (const write of ['event', 'events', 'page']) {
          const v3 = mkSkill(id(write), { version: '3.0.0', updated_at: ISO(MAR) });
          const v3b = mkSkill(id(write), { version: '3.0.1', description: 'no time' });
          delete v3b.updated_at;
          const v2 = mkSkill(id(write), { version: '2.0.0', updated_at: ISO(FEB) });
          expect(await apply(write, v3)).toBe('applied');
          expect(await apply(write, v3b)).toBe('applied');
          expect((await store.getSkill(id(write), T0))!.remoteUpdatedAt).toBe(ISO(MAR));
          expect(await apply(write, v2)).toBe('stale');
          const rec = (await store.getSkill(id(write), T0))!;
          expect(rec.base.version).toBe('3.0.1');
          expect(rec.remoteUpdatedAt).toBe(ISO(MAR));
        }
        // Also in one batch.
        const v3 = mkSkill('g-batch', { version: '3.0.0', updated_at: ISO(MAR) });
        const v3b = mkSkill('g-batch', { version: '3.0.1' });
        delete v3b.updated_at;
        const v2 = mkSkill('g-batch', { version: '2.0.0', updated_at: ISO(FEB) });
        expect(await store.applySkillEvents([up(v3), up(v3b), up(v2)], opts)).toEqual([
          'applied',
          'applied',
          'stale',
        ]);
        expect((await store.getSkill('g-batch', T0))!.base.version).toBe('3.0.1');
      });
    });

    describe('deleteSkill, applyRatingAggregates, getLocalStates', () => {
      it('deleteSkill reports whether the skill existed', async () => {
        await seed([mkSkill('a')]);
        expect(await store.deleteSkill('a', { now: T0 })).toBe(true);
        expect(await store.deleteSkill('a', { now: T0 })).toBe(false);
        expect(await store.getSkill('a', T0)).toBeNull();
        expect(await store.searchSkills({ text: 'skill', page: 1, pageSize: 10, now: T0 })).toEqual({
          items: [],
          total: 0,
        });
      });

      it('applyRatingAggregates merges into the base, rehashes it, and is version-guarded', async () => {
        expect(await store.applyRatingAggregates('nope', { averageRating: 4 }, { now: T0 })).toBe('missing');
        await seed([mkSkill('a', { updated_at: ISO(T0 + 100) })]);
        expect(
          await store.applyRatingAggregates('a', { averageRating: 4.5, ratingCount: 2 }, { now: T0 }),
        ).toBe('applied');
        let rec = (await store.getSkill('a', T0))!;
        expect(rec.base.average_rating).toBe(4.5);
        expect(rec.base.rating_count).toBe(2);
        expect(rec.contentHash).toBe(skillContentHash(rec.base));
        expect(
          await store.applyRatingAggregates('a', { averageRating: 4.5, ratingCount: 2 }, { now: T0 }),
        ).toBe('duplicate');
        expect(
          await store.applyRatingAggregates('a', { averageRating: 1 }, { now: T0, remoteAt: ISO(T0 + 99) }),
        ).toBe('stale');
        expect(
          await store.applyRatingAggregates('a', { averageRating: 2 }, { now: T0, remoteAt: ISO(T0 + 200) }),
        ).toBe('applied');
        rec = (await store.getSkill('a', T0))!;
        expect(rec.base.average_rating).toBe(2);
        expect(rec.base.rating_count).toBe(2);
        expect(rec.remoteUpdatedAt).toBe(ISO(T0 + 200));
      });

      it('getLocalStates returns only skills with overrides', async () => {
        await seed([mkSkill('a'), mkSkill('b')]);
        await store.setLocalOverrides('a', { description: 'mine' }, T0);
        const states = await store.getLocalStates(['a', 'b', 'missing']);
        expect([...states.keys()]).toEqual(['a']);
        expect(states.get('a')).toEqual({
          skillId: 'a',
          base: mkSkill('a'),
          local: { description: 'mine' },
          contentHash: skillContentHash(mkSkill('a')),
        });
        expect((await store.getLocalStates([])).size).toBe(0);
      });
    });

    // ---- deletions ----------------------------------------------------------------------
    describe('remembered deletions (the version guard after a delete)', () => {
      const ev = { now: T0, ttlMs: TTL, epoch: 'e1', source: 'websocket' as const };
      const at = (ms: number, extra: Partial<Skill> = {}): Skill =>
        mkSkill('a', { updated_at: ISO(ms), description: `v at ${ms}`, ...extra });

      it('a replayed older or equal update after deleteSkill is stale and the skill stays deleted', async () => {
        await store.applySkillEvent(up(at(T0 + 1000)), ev);
        expect(await store.deleteSkill('a', { now: T0, ttlMs: TTL, remoteAt: ISO(T0 + 2000) })).toBe(true);
        expect(await store.applySkillEvent(up(at(T0 + 1000)), ev)).toBe('stale');
        expect(await store.applySkillEvent(up(at(T0 + 2000)), ev)).toBe('stale');
        const noTime = at(T0);
        delete noTime.updated_at;
        expect(await store.applySkillEvent(up(noTime), ev)).toBe('stale');
        expect(await store.applySkillEvents([up(at(T0 + 1500)), up(at(T0 + 500))], ev)).toEqual([
          'stale',
          'stale',
        ]);
        const res = await store.applySkillPage(
          page([up(at(T0 + 1999))], { guard: 'version', source: 'incremental' }),
        );
        expect(res).toMatchObject({ upserted: 0, unchanged: 0, stale: 1 });
        expect(await store.getSkill('a', T0)).toBeNull();
        expect((await store.getDeletion('a'))?.deletedAt).toBe(ISO(T0 + 2000));
      });

      it('a newer update re-creates the skill and clears the record', async () => {
        await store.applySkillEvent(up(at(T0 + 1000)), ev);
        await store.deleteSkill('a', { now: T0, ttlMs: TTL, remoteAt: ISO(T0 + 2000) });
        expect(
          await store.applySkillEvents([up(at(T0 + 1000)), up(at(T0 + 2001)), up(at(T0 + 1000))], ev),
        ).toEqual(['stale', 'applied', 'stale']);
        expect((await store.getSkill('a', T0))!.base.updated_at).toBe(ISO(T0 + 2001));
        expect(await store.getDeletion('a')).toBeNull();
      });

      it("without a remote time the deleted version's time is remembered; absent skills are remembered too", async () => {
        await store.applySkillEvent(up(at(T0 + 1000)), ev);
        await store.deleteSkill('a', { now: T0 });
        expect(await store.applySkillEvent(up(at(T0 + 1000)), ev)).toBe('stale');
        expect(await store.applySkillEvent(up(at(T0 + 1001)), ev)).toBe('applied');
        // A delete that overtook the update it follows.
        expect(await store.deleteSkill('b', { now: T0, remoteAt: ISO(T0 + 50) })).toBe(false);
        expect(await store.applySkillEvent(up(mkSkill('b', { updated_at: ISO(T0 + 40) })), ev)).toBe('stale');
        expect(await store.getSkill('b', T0)).toBeNull();
        // Nothing known about the time: nothing to remember.
        expect(await store.deleteSkill('c', { now: T0 })).toBe(false);
        expect(await store.getDeletion('c')).toBeNull();
      });

      it('tombstones of a page are remembered with their time', async () => {
        await seed([at(T0 + 1000)]);
        await store.applySkillPage(
          page([], { tombstones: [{ skillId: 'a', deletedAt: ISO(T0 + 3000) }], source: 'incremental' }),
        );
        expect(await store.applySkillEvent(up(at(T0 + 2000)), ev)).toBe('stale');
        expect(await store.getSkill('a', T0)).toBeNull();
        expect(await store.applySkillEvent(up(at(T0 + 3001)), ev)).toBe('applied');
      });

      it('a full listing that lists the skill brings it back and clears the record', async () => {
        await store.applySkillEvent(up(at(T0 + 1000)), ev);
        await store.deleteSkill('a', { now: T0, remoteAt: ISO(T0 + 2000) });
        const res = await store.applySkillPage(page([up(at(T0 + 1000))], { guard: 'listing' }));
        expect(res).toMatchObject({ upserted: 1, stale: 0 });
        expect((await store.getSkill('a', T0))!.base.updated_at).toBe(ISO(T0 + 1000));
        expect(await store.getDeletion('a')).toBeNull();
      });

      it('the TTL sweep forgets records at their expiry (even with no complete listing)', async () => {
        await store.deleteSkill('a', { now: T0, ttlMs: TTL, remoteAt: ISO(T0 + 2000) });
        await store.sweepExpired(T0 + TTL - 1);
        expect(await store.getDeletion('a')).toMatchObject({ recordedAt: T0, expiresAt: T0 + TTL });
        await store.sweepExpired(T0 + TTL);
        expect(await store.getDeletion('a')).toBeNull();
        expect(await store.applySkillEvent(up(at(T0 + 1000)), ev)).toBe('applied');
      });
    });

    describe('deletion of unseen skills', () => {
      it('counts and deletes skills not seen since the listing started (boundary: fetchedAt == start is seen)', async () => {
        await seed([mkSkill('old')], T0);
        await seed([mkSkill('seen')], T0 + 1000);
        expect(await store.countUnseenSkills(T0 + 1000)).toBe(1);
        expect(await store.countUnseenSkills(T0)).toBe(0);
        expect(await store.deleteUnseenSkills(T0 + 1000, T0 + 2000)).toBe(1);
        expect(await store.getSkill('old', T0)).toBeNull();
        expect(await store.getSkill('seen', T0)).not.toBeNull();
        expect((await store.getSyncState()).lastCompleteListingAt).toBe(T0 + 1000);
      });

      it('an empty complete listing deletes everything', async () => {
        await seed([mkSkill('a'), mkSkill('b')], T0);
        expect(await store.countUnseenSkills(T0 + 1)).toBe(2);
        expect(await store.deleteUnseenSkills(T0 + 1, T0 + 2)).toBe(2);
        expect((await store.stats(T0)).skills).toBe(0);
        expect(await store.deleteUnseenSkills(T0 + 3, T0 + 4)).toBe(0);
      });

      it('held deletions are remembered and confirmed by an operator', async () => {
        await expectCode(store.confirmHeldDeletions(T0), 'SKILLSYNC_ERR_SYNC_NOTHING_HELD');
        await seed([mkSkill('a'), mkSkill('b')], T0);
        await seed([mkSkill('c')], T0 + 1000);
        await store.holdDeletions(T0 + 1000, 2, T0 + 1500);
        let state = await store.getSyncState();
        expect(state.heldDeletions).toBe(2);
        expect(state.heldDeletionsAt).toBe(T0 + 1500);
        // 'a' is seen again before the confirmation: it survives.
        await seed([mkSkill('a')], T0 + 1600);
        expect(await store.confirmHeldDeletions(T0 + 2000)).toBe(1);
        expect(await store.getSkill('a', T0)).not.toBeNull();
        expect(await store.getSkill('b', T0)).toBeNull();
        state = await store.getSyncState();
        expect(state.heldDeletions).toBe(0);
        expect(state.heldDeletionsAt).toBeNull();
        expect(state.lastCompleteListingAt).toBe(T0 + 1000);
        await expectCode(store.confirmHeldDeletions(T0 + 3000), 'SKILLSYNC_ERR_SYNC_NOTHING_HELD');
      });

      it('deleteUnseenSkills clears held deletions', async () => {
        await seed([mkSkill('a')], T0);
        await store.holdDeletions(T0 + 10, 1, T0 + 20);
        await store.deleteUnseenSkills(T0 + 30, T0 + 40);
        expect((await store.getSyncState()).heldDeletions).toBe(0);
        await expectCode(store.confirmHeldDeletions(T0 + 50), 'SKILLSYNC_ERR_SYNC_NOTHING_HELD');
      });
    });

    // ---- TTL sweep ----------------------------------------------------------------------
    describe('sweepExpired', () => {
      const cat = (name: string): Category => ({ name, display_name: name.toUpperCase() });

      it('removes nothing while no complete listing exists, however late', async () => {
        await seed([mkSkill('a')], T0);
        await store.replaceCategories([cat('c1')], {
          now: T0,
          ttlMs: TTL,
          epoch: null,
          source: 'full',
          deleteMissing: true,
        });
        expect(await store.sweepExpired(T0 + 100 * TTL)).toEqual({ skills: 0, categories: 0 });
        expect((await store.getSkill('a', T0 + 100 * TTL))!.stale).toBe(true);
      });

      it('at the boundary: expiresAt == now is expired, one ms earlier is not', async () => {
        await seed([mkSkill('a')], T0);
        await store.replaceCategories([cat('c1')], {
          now: T0,
          ttlMs: TTL,
          epoch: null,
          source: 'full',
          deleteMissing: true,
        });
        const expiry = T0 + TTL;
        await store.updateSyncState({ lastCompleteListingAt: expiry });
        expect(await store.sweepExpired(expiry - 1)).toEqual({ skills: 0, categories: 0 });
        // The skill goes; the category was seen by the last accepted categories answer and stays.
        expect(await store.sweepExpired(expiry)).toEqual({ skills: 1, categories: 0 });
        expect(await store.getSkill('a', expiry)).toBeNull();
        expect((await store.listCategories(expiry)).map((c) => c.name)).toEqual(['c1']);
      });

      it('never removes categories a complete skills listing follows: only an accepted categories answer drops them', async () => {
        const o = { ttlMs: TTL, epoch: null, source: 'full' as const };
        await store.replaceCategories([cat('c1'), cat('c2')], { ...o, now: T0, deleteMissing: true });
        // Past the TTL, an empty answer held by the guard (nothing refreshed), then a complete
        // skills listing: the categories stay, stale.
        await store.replaceCategories([], { ...o, now: T0 + 2 * TTL, deleteMissing: false });
        await seed([mkSkill('a')], T0 + 2 * TTL);
        expect(await store.deleteUnseenSkills(T0 + 2 * TTL, T0 + 2 * TTL)).toBe(0);
        expect(await store.sweepExpired(T0 + 3 * TTL)).toEqual({ skills: 0, categories: 0 });
        const kept = await store.listCategories(T0 + 3 * TTL);
        expect(kept.map((c) => [c.name, c.stale])).toEqual([
          ['c1', true],
          ['c2', true],
        ]);
        // An accepted answer without c2 removes it at once.
        await store.replaceCategories([cat('c1')], { ...o, now: T0 + 3 * TTL, deleteMissing: true });
        expect((await store.listCategories(T0 + 3 * TTL)).map((c) => c.name)).toEqual(['c1']);
      });

      it('keeps entries the complete listing saw, or that expired after it started', async () => {
        await seed([mkSkill('early')], T0);
        await seed([mkSkill('late')], T0 + 10_000);
        // A listing that started before 'early' expired.
        await store.updateSyncState({ lastCompleteListingAt: T0 + TTL - 1 });
        expect(await store.sweepExpired(T0 + 10 * TTL)).toEqual({ skills: 0, categories: 0 });
        // A listing that started after 'early' expired but saw 'late' (fetched after it started? no: before).
        await store.updateSyncState({ lastCompleteListingAt: T0 + TTL + 5_000 });
        expect(await store.sweepExpired(T0 + 10 * TTL)).toEqual({ skills: 1, categories: 0 });
        expect(await store.getSkill('early', T0)).toBeNull();
        expect(await store.getSkill('late', T0)).not.toBeNull();
        // 'late' is seen by a listing (fetchedAt >= its start) and is kept.
        await seed([mkSkill('late')], T0 + 2 * TTL);
        await store.updateSyncState({ lastCompleteListingAt: T0 + 2 * TTL });
        expect(await store.sweepExpired(T0 + 10 * TTL)).toEqual({ skills: 0, categories: 0 });
      });
    });

    // ---- categories ---------------------------------------------------------------------
    describe('categories', () => {
      const o = { now: T0, ttlMs: TTL, epoch: 'e1', source: 'full' as const, deleteMissing: true };
      const c1: Category = { name: 'data', display_name: 'Data', x_extra: 1 };
      const c2: Category = { name: 'web', display_name: 'Web' };

      it('replaceCategories upserts, keeps unchanged, deletes missing unless held', async () => {
        expect(await store.replaceCategories([c1, c2], o)).toEqual({ upserted: 2, unchanged: 0, deleted: 0 });
        const c2b = { ...c2, display_name: 'The Web' };
        expect(await store.replaceCategories([c1, c2b], { ...o, now: T0 + 5 })).toEqual({
          upserted: 1,
          unchanged: 1,
          deleted: 0,
        });
        expect(await store.replaceCategories([c1], { ...o, deleteMissing: false })).toEqual({
          upserted: 0,
          unchanged: 1,
          deleted: 0,
        });
        expect((await store.listCategories(T0)).map((c) => c.name)).toEqual(['data', 'web']);
        expect(await store.replaceCategories([c1], o)).toMatchObject({ deleted: 1 });
        expect((await store.listCategories(T0)).map((c) => c.name)).toEqual(['data']);
      });

      it('listCategories carries data, hash, freshness and skill counts', async () => {
        await store.replaceCategories([c2, c1], o);
        await seed([mkSkill('a', { category: 'data' }), mkSkill('b', { category: 'data' }), mkSkill('c')]);
        const list = await store.listCategories(T0 + TTL);
        expect(list.map((c) => [c.name, c.skillCount])).toEqual([
          ['data', 2],
          ['web', 0],
        ]);
        expect(list[0]).toMatchObject({
          data: c1,
          contentHash: categoryContentHash(c1),
          fetchedAt: T0,
          expiresAt: T0 + TTL,
          stale: true,
          source: 'full',
          epoch: 'e1',
        });
      });

      it('upsertCategory is version-guarded; deleteCategory reports existence', async () => {
        const ev = { now: T0, ttlMs: TTL, epoch: null, source: 'websocket' as const };
        const v1 = { name: 'data', display_name: 'v1', updated_at: ISO(T0 + 100) };
        expect(await store.upsertCategory(v1, ev)).toBe('applied');
        expect(await store.upsertCategory(v1, ev)).toBe('duplicate');
        expect(await store.upsertCategory({ ...v1, display_name: 'old', updated_at: ISO(T0) }, ev)).toBe(
          'stale',
        );
        expect(await store.upsertCategory({ ...v1, display_name: 'v2' }, ev)).toBe('applied');
        expect((await store.listCategories(T0))[0]!.data.display_name).toBe('v2');
        expect(await store.deleteCategory('data')).toBe(true);
        expect(await store.deleteCategory('data')).toBe(false);
      });

      it('a category without updated_at keeps the stored remote time: an older event after it is still stale', async () => {
        const ev = { now: T0, ttlMs: TTL, epoch: null, source: 'websocket' as const };
        const MAR = Date.UTC(2026, 2, 1);
        const FEB = Date.UTC(2026, 1, 1);
        // Through upsertCategory and through replaceCategories (a full answer without times).
        for (const write of ['event', 'answer']) {
          const name = `g-${write}`;
          const v3: Category = { name, display_name: 'v3', updated_at: ISO(MAR) };
          const v3b: Category = { name, display_name: 'v3b, no time' };
          const v2: Category = { name, display_name: 'v2', updated_at: ISO(FEB) };
          expect(await store.upsertCategory(v3, ev)).toBe('applied');
          if (write === 'event') expect(await store.upsertCategory(v3b, ev)).toBe('applied');
          else {
            const others = (await store.listCategories(T0)).map((c) => c.data);
            expect(
              await store.replaceCategories([...others.filter((c) => c.name !== name), v3b], {
                ...ev,
                source: 'full',
                deleteMissing: true,
              }),
            ).toMatchObject({ upserted: 1, deleted: 0 });
          }
          expect(await store.upsertCategory(v2, ev)).toBe('stale');
          const rec = (await store.listCategories(T0)).find((c) => c.name === name)!;
          expect(rec.data).toEqual(v3b);
          // A newer one still goes through.
          const v4: Category = { name, display_name: 'v4', updated_at: ISO(MAR + 1) };
          expect(await store.upsertCategory(v4, ev)).toBe('applied');
        }
      });
    });

    // ---- search -------------------------------------------------------------------------
    describe('searchSkills', () => {
      beforeEach(async () => {
        await seed([
          mkSkill('s1', {
            name: 'pandas helper',
            description: 'dataframe tooling for analysts',
            category: 'data',
            skill_type: 'tool',
            tags: ['python', 'Machine-Learning'],
            average_rating: 4.5,
            rating_count: 10,
            install_count: 100,
            updated_at: ISO(T0 + 3),
          }),
          mkSkill('s2', {
            name: 'csv cleaner',
            description: 'cleans csv files',
            category: 'data',
            skill_type: 'workflow',
            tags: ['python'],
            average_rating: 3.9,
            rating_count: 5,
            install_count: 500,
            updated_at: ISO(T0 + 1),
          }),
          mkSkill('s3', {
            name: 'http fetcher',
            description: 'fetches pages; no dataframe here',
            category: 'web',
            skill_type: 'tool',
            tags: ['network', 'machine'],
            average_rating: null,
            rating_count: 0,
            install_count: 50,
            updated_at: ISO(T0 + 2),
          }),
          mkSkill('s4', {
            name: 'learning notes',
            description: 'notes about machine things',
            category: 'docs',
            skill_type: 'tool',
            tags: ['learning'],
            average_rating: 4.5,
            rating_count: 20,
            install_count: 5,
            updated_at: ISO(T0),
          }),
        ]);
      });
      const q = { page: 1, pageSize: 10, now: T0 };
      const ids = async (extra: Record<string, unknown>): Promise<string[]> =>
        (await store.searchSkills({ ...q, ...extra })).items.map((s) => s.skillId);

      it('text matches words and word prefixes in name, description and tags; every word required', async () => {
        expect((await ids({ text: 'dataframe', sort: 'name' })).sort()).toEqual(['s1', 's3']);
        expect(await ids({ text: 'csv', sort: 'name' })).toEqual(['s2']);
        expect(await ids({ text: 'pand', sort: 'name' })).toEqual(['s1']);
        expect(await ids({ text: 'network' })).toEqual(['s3']);
        expect(await ids({ text: 'dataframe analysts' })).toEqual(['s1']);
        expect(await ids({ text: 'nothingmatches' })).toEqual([]);
        expect((await store.searchSkills({ ...q, text: 'nothingmatches' })).total).toBe(0);
      });

      it('a word prefix matches every word it starts, however many there are', async () => {
        // 20 distinct words starting with "zorb" (more than a search expands to whole terms).
        await store.applySkillPage(
          page(
            Array.from({ length: 20 }, (_, i) =>
              up(mkSkill(`z${i}`, { name: `zorb${String.fromCharCode(97 + i)}x tool`, category: 'zz' })),
            ),
            { now: T0 + 5 },
          ),
        );
        expect((await store.searchSkills({ ...q, text: 'zorb' })).total).toBe(20);
        expect((await store.searchSkills({ ...q, text: 'zorbc' })).total).toBe(1);
        expect((await store.searchSkills({ ...q, text: 'zorb tool', category: 'zz' })).total).toBe(20);
        expect((await store.searchSkills({ ...q, text: 'zorbz' })).total).toBe(0);
        expect(await ids({ text: 'dataf', sort: 'name' })).toEqual(['s3', 's1']);
        expect(await ids({ text: 'dat', category: 'data', sort: 'name' })).toEqual(['s1']);
      });

      it('a word prefix searched before finds the words written after it, and loses deleted ones', async () => {
        const total = async (text: string): Promise<number> =>
          (await store.searchSkills({ ...q, text })).total;
        await seed([mkSkill('q1', { name: 'quuxalpha tool' })], T0 + 5);
        expect(await total('quux')).toBe(1);
        await seed([mkSkill('q2', { name: 'quuxbeta tool', category: 'data' })], T0 + 6);
        expect(await total('quux')).toBe(2);
        expect((await store.searchSkills({ ...q, text: 'quux', category: 'data' })).total).toBe(1);
        await store.deleteSkill('q1', { now: T0 + 7 });
        expect(await total('quux')).toBe(1);
        expect(await total('quuxalpha')).toBe(0);
      });

      it('filters by category, type and exact tag (case-insensitive), combined with text', async () => {
        expect(await ids({ category: 'data', sort: 'name' })).toEqual(['s2', 's1']);
        expect(await ids({ skillType: 'tool', sort: 'name' })).toEqual(['s3', 's4', 's1']);
        expect(await ids({ tag: 'python', sort: 'name' })).toEqual(['s2', 's1']);
        expect(await ids({ tag: 'machine-learning' })).toEqual(['s1']);
        // 'machine' is a tag of s3 only; s1's tag 'Machine-Learning' is not the tag 'machine'.
        expect(await ids({ tag: 'machine' })).toEqual(['s3']);
        expect(await ids({ text: 'dataframe', category: 'data' })).toEqual(['s1']);
        expect(await ids({ text: 'dataframe', category: 'web', skillType: 'tool' })).toEqual(['s3']);
        expect(await ids({ category: 'data', skillType: 'workflow', tag: 'python' })).toEqual(['s2']);
        expect(await ids({ category: 'nope' })).toEqual([]);
      });

      it('sorts by rating, installs, name and updated (ties by skill_id, missing values last)', async () => {
        expect(await ids({ sort: 'rating' })).toEqual(['s4', 's1', 's2', 's3']);
        expect(await ids({ sort: 'installs' })).toEqual(['s2', 's1', 's3', 's4']);
        expect(await ids({ sort: 'name' })).toEqual(['s2', 's3', 's4', 's1']);
        expect(await ids({ sort: 'updated' })).toEqual(['s1', 's3', 's2', 's4']);
      });

      it('pages with a total', async () => {
        const p1 = await store.searchSkills({ ...q, sort: 'name', pageSize: 3 });
        expect(p1.total).toBe(4);
        expect(p1.items.map((s) => s.skillId)).toEqual(['s2', 's3', 's4']);
        const p2 = await store.searchSkills({ ...q, sort: 'name', pageSize: 3, page: 2 });
        expect(p2).toMatchObject({ total: 4 });
        expect(p2.items.map((s) => s.skillId)).toEqual(['s1']);
        const p9 = await store.searchSkills({ ...q, sort: 'name', pageSize: 3, page: 9 });
        expect(p9).toEqual({ items: [], total: 4 });
        // The same with a text or tag filter.
        const t2 = await store.searchSkills({ ...q, tag: 'python', sort: 'name', pageSize: 1, page: 2 });
        expect(t2.total).toBe(2);
        expect(t2.items.map((s) => s.skillId)).toEqual(['s1']);
        expect(await store.searchSkills({ ...q, text: 'python', pageSize: 1, page: 5 })).toEqual({
          items: [],
          total: 2,
        });
      });

      it('returns full records with freshness and searches the effective skill', async () => {
        await store.setLocalOverrides(
          's3',
          { name: 'zebra crawler', category: 'data', tags: ['custom'] },
          T0,
        );
        expect(await ids({ text: 'zebra' })).toEqual(['s3']);
        expect(await ids({ text: 'fetcher' })).toEqual([]);
        expect(await ids({ category: 'data', sort: 'name' })).toEqual(['s2', 's1', 's3']);
        expect(await ids({ tag: 'custom' })).toEqual(['s3']);
        expect(await ids({ tag: 'network' })).toEqual([]);
        const [rec] = (await store.searchSkills({ ...q, text: 'zebra', now: T0 + TTL })).items;
        expect(rec).toMatchObject({ skillId: 's3', stale: true, local: { name: 'zebra crawler' } });
        expect(rec!.effective.name).toBe('zebra crawler');
        expect(rec!.base.name).toBe('http fetcher');
        await store.clearLocalOverrides('s3', T0);
        expect(await ids({ text: 'fetcher' })).toEqual(['s3']);
        expect(await ids({ text: 'zebra' })).toEqual([]);
      });
    });

    // ---- overrides, stats, digest ------------------------------------------------------
    describe('local overrides, stats and digest', () => {
      it('sets and clears overrides; unknown skills answer false', async () => {
        await seed([mkSkill('a')]);
        expect(await store.setLocalOverrides('nope', { name: 'x' }, T0)).toBe(false);
        expect(await store.clearLocalOverrides('nope', T0)).toBe(false);
        expect(await store.setLocalOverrides('a', { name: 'mine', x_local: [1] }, T0 + 1)).toBe(true);
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.effective).toEqual({ ...mkSkill('a'), name: 'mine', x_local: [1] });
        expect(rec.base).toEqual(mkSkill('a'));
        expect((await store.stats(T0)).localOverrides).toBe(1);
        // The digest covers bases only.
        expect(await store.digest()).toBe(catalogDigest([['a', skillContentHash(mkSkill('a'))]], []));
        expect(await store.clearLocalOverrides('a', T0 + 2)).toBe(true);
        expect((await store.getSkill('a', T0))!.effective).toEqual(mkSkill('a'));
        expect((await store.stats(T0)).localOverrides).toBe(0);
      });

      it('stats counts what the store holds', async () => {
        await seed([mkSkill('a')], T0);
        await seed([mkSkill('b')], T0 + TTL);
        await store.quarantine([
          { kind: 'skill', key: 'x', reason: 'bad', payload: {}, runId: null, at: T0 },
        ]);
        await store.enqueue({ ...ratingOutbox('k1', 'c1'), kind: 'install' });
        expect(await store.stats(T0 + TTL)).toEqual({
          skills: 2,
          staleSkills: 1,
          categories: 0,
          localOverrides: 0,
          openConflicts: 0,
          outbox: { pending: 1, in_flight: 0, done: 0, dead: 0 },
          quarantined: 1,
          oldestFetchedAt: T0,
        });
        const empty = await openFresh();
        try {
          expect((await empty.stats(T0)).oldestFetchedAt).toBeNull();
        } finally {
          await empty.close();
        }
      });

      it('digest equals catalogDigest over stored bases and categories', async () => {
        expect(await store.digest()).toBe(catalogDigest([], []));
        const skills = [mkSkill('b'), mkSkill('a', { tags: ['x'] }), mkSkill('c')];
        await seed(skills);
        const cats: Category[] = [{ name: 'web' }, { name: 'data', display_name: 'Data' }];
        await store.replaceCategories(cats, {
          now: T0,
          ttlMs: TTL,
          epoch: null,
          source: 'full',
          deleteMissing: true,
        });
        await store.setLocalOverrides('a', { name: 'local only' }, T0);
        expect(await store.digest()).toBe(
          catalogDigest(
            skills.map((s) => [s.skill_id, skillContentHash(s)] as const),
            cats.map((c) => [c.name, categoryContentHash(c)] as const),
          ),
        );
      });
    });

    // ---- conflicts ----------------------------------------------------------------------
    describe('conflicts', () => {
      const base = mkSkill('a');
      const remote = mkSkill('a', { description: 'theirs', updated_at: ISO(T0 + 1) });
      const openConflictFor = async (id: string, extra: Partial<ConflictUpsert> = {}): Promise<number> => {
        const b = mkSkill(id);
        const r = mkSkill(id, { description: 'theirs', updated_at: ISO(T0 + 1) });
        await store.applySkillPage(page([up(b, { local: { description: 'mine' } })]));
        await store.applySkillPage(page([up(r, { conflict: conflict(b, r, extra) })]));
        const list = await store.listConflicts({ status: 'open', limit: 100, offset: 0 });
        return list.items.find((c) => c.skillId === id)!.id;
      };

      it('keeps one open conflict per skill, updated in place', async () => {
        const id = await openConflictFor('a');
        const first = (await store.getConflict(id))!;
        expect(first).toMatchObject({
          skillId: 'a',
          type: 'CONTENT_MISMATCH',
          severity: 'MEDIUM',
          base,
          local: { description: 'mine' },
          remote,
          strategy: 'manual',
          fields: ['description'],
          status: 'open',
          resolution: null,
          resolvedBy: null,
          resolvedAt: null,
          detectedAt: T0,
          updatedAt: T0,
        });
        const remote2 = mkSkill('a', { description: 'theirs 2', updated_at: ISO(T0 + 2) });
        await store.applySkillPage(
          page([up(remote2, { conflict: conflict(base, remote2, { severity: 'HIGH' }) })], { now: T0 + 50 }),
        );
        const list = await store.listConflicts({ limit: 10, offset: 0 });
        expect(list.total).toBe(1);
        expect(list.items[0]).toMatchObject({
          id,
          severity: 'HIGH',
          remote: remote2,
          detectedAt: T0,
          updatedAt: T0 + 50,
        });
        expect((await store.getSyncState()).conflictsDetectedTotal).toBe(1);
        expect((await store.stats(T0)).openConflicts).toBe(1);
      });

      it('lists with filters, newest first, with a total', async () => {
        await openConflictFor('a', { severity: 'LOW' });
        await openConflictFor('b', { severity: 'CRITICAL', type: 'VERSION_MISMATCH' });
        await openConflictFor('c', { severity: 'LOW' });
        const all = await store.listConflicts({ limit: 2, offset: 0 });
        expect(all.total).toBe(3);
        expect(all.items.map((c) => c.skillId)).toEqual(['c', 'b']);
        expect((await store.listConflicts({ limit: 10, offset: 2 })).items.map((c) => c.skillId)).toEqual([
          'a',
        ]);
        const low = await store.listConflicts({ severity: 'LOW', limit: 10, offset: 0 });
        expect(low.items.map((c) => c.skillId)).toEqual(['c', 'a']);
        const ver = await store.listConflicts({
          type: 'VERSION_MISMATCH',
          status: 'open',
          limit: 10,
          offset: 0,
        });
        expect(ver.items.map((c) => c.skillId)).toEqual(['b']);
        expect((await store.listConflicts({ status: 'resolved', limit: 10, offset: 0 })).total).toBe(0);
        expect(await store.getConflict(999_999)).toBeNull();
      });

      it("lists one skill's conflicts with skillId", async () => {
        await openConflictFor('a', { severity: 'LOW' });
        await openConflictFor('b', { severity: 'CRITICAL' });
        const a = await store.listConflicts({ skillId: 'a', limit: 10, offset: 0 });
        expect([a.total, a.items.map((c) => c.skillId)]).toEqual([1, ['a']]);
        const bOpen = await store.listConflicts({ skillId: 'b', status: 'open', limit: 10, offset: 0 });
        expect(bOpen.items.map((c) => c.skillId)).toEqual(['b']);
        expect(
          (await store.listConflicts({ skillId: 'b', status: 'resolved', limit: 10, offset: 0 })).total,
        ).toBe(0);
        expect((await store.listConflicts({ skillId: 'zz', limit: 10, offset: 0 })).items).toEqual([]);
      });

      it('resolveConflict sets the overrides and closes the conflict atomically', async () => {
        const id = await openConflictFor('a');
        const done = await store.resolveConflict(id, {
          local: { description: 'merged' },
          resolution: 'explicit',
          resolvedBy: 'admin',
          now: T0 + 100,
        });
        expect(done).toMatchObject({
          id,
          status: 'resolved',
          resolution: 'explicit',
          resolvedBy: 'admin',
          resolvedAt: T0 + 100,
        });
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.local).toEqual({ description: 'merged' });
        expect(rec.effective.description).toBe('merged');
        expect(rec.hasOpenConflict).toBe(false);
        expect((await store.getSyncState()).conflictsResolvedTotal).toBe(1);
        await expectCode(
          store.resolveConflict(id, { local: null, resolution: 'remote_wins', resolvedBy: 'x', now: T0 }),
          'SKILLSYNC_ERR_CONFLICT_RESOLVED',
        );
        await expectCode(
          store.resolveConflict(424242, { local: null, resolution: 'remote_wins', resolvedBy: 'x', now: T0 }),
          'SKILLSYNC_ERR_CONFLICT_NOT_FOUND',
        );
        // A new conflict can open again for the same skill once the old one is closed.
        const r3 = mkSkill('a', { description: 'theirs 3', updated_at: ISO(T0 + 3) });
        await store.applySkillPage(page([up(r3, { conflict: conflict(base, r3) })]));
        expect((await store.listConflicts({ status: 'open', limit: 10, offset: 0 })).total).toBe(1);
      });

      it('resolveConflicts is all or nothing', async () => {
        const a = await openConflictFor('a');
        const b = await openConflictFor('b');
        await store.resolveConflict(b, { local: null, resolution: 'remote_wins', resolvedBy: 'x', now: T0 });
        await expectCode(
          store.resolveConflicts(
            [
              { id: a, local: null, resolution: 'remote_wins' },
              { id: b, local: null, resolution: 'remote_wins' },
            ],
            { resolvedBy: 'admin', now: T0 + 1 },
          ),
          'SKILLSYNC_ERR_CONFLICT_RESOLVED',
        );
        expect((await store.getConflict(a))!.status).toBe('open');
        expect((await store.getSkill('a', T0))!.local).toEqual({ description: 'mine' });
        await expectCode(
          store.resolveConflicts(
            [
              { id: a, local: null, resolution: 'remote_wins' },
              { id: 31337, local: null, resolution: 'remote_wins' },
            ],
            {
              resolvedBy: 'admin',
              now: T0 + 1,
            },
          ),
          'SKILLSYNC_ERR_CONFLICT_NOT_FOUND',
        );
        expect((await store.getConflict(a))!.status).toBe('open');
        const c = await openConflictFor('c');
        const out = await store.resolveConflicts(
          [
            { id: a, local: null, resolution: 'remote_wins' },
            { id: c, local: { description: 'kept' }, resolution: 'local_wins' },
          ],
          { resolvedBy: 'admin', now: T0 + 2 },
        );
        expect(out.map((r) => [r.id, r.status, r.resolution])).toEqual([
          [a, 'resolved', 'remote_wins'],
          [c, 'resolved', 'local_wins'],
        ]);
        expect((await store.getSkill('a', T0))!.local).toBeNull();
        expect((await store.getSkill('c', T0))!.local).toEqual({ description: 'kept' });
      });
    });

    // ---- ratings and outbox -------------------------------------------------------------
    describe('ratings and the outbox', () => {
      beforeEach(async () => {
        await seed([mkSkill('a'), mkSkill('b')]);
      });
      const claim = (now: number, limit = 10) =>
        store.claimDueOutbox({ now, limit, leaseUntil: now + 30_000 });

      it('listOutbox filters by skillId (with or without status), oldest first, with a total', async () => {
        for (let i = 0; i < 5; i++)
          await store.enqueue({ ...ratingOutbox(`ob${i}`, `rating:b:u${i}`, T0, 'b'), skillId: 'b' });
        const a1 = await store.enqueue({ ...ratingOutbox('oa1', 'rating:a:u1'), skillId: 'a' });
        const a2 = await store.enqueue({ ...ratingOutbox('oa2', 'rating:a:u2'), skillId: 'a' });
        const [claimed] = await store.claimDueOutbox({ now: T0, limit: 1, leaseUntil: T0 + 30_000 });
        await store.completeOutbox(claimed!.id, {}, T0);
        const a = await store.listOutbox({ skillId: 'a', limit: 10, offset: 0 });
        expect([a.total, a.items.map((o) => o.id)]).toEqual([2, [a1.id, a2.id]]);
        const aPage2 = await store.listOutbox({ skillId: 'a', limit: 1, offset: 1 });
        expect([aPage2.total, aPage2.items.map((o) => o.id)]).toEqual([2, [a2.id]]);
        const aPending = await store.listOutbox({ skillId: 'a', status: 'pending', limit: 10, offset: 0 });
        expect(aPending.items.map((o) => o.id)).toEqual([a1.id, a2.id]);
        expect((await store.listOutbox({ skillId: 'b', status: 'done', limit: 10, offset: 0 })).total).toBe(
          1,
        );
        expect((await store.listOutbox({ skillId: 'b', limit: 10, offset: 0 })).total).toBe(5);
        expect((await store.listOutbox({ skillId: 'zz', limit: 10, offset: 0 })).total).toBe(0);
      });

      it('recordRating writes the rating and its outbox item together; edits keep one row', async () => {
        const r1 = await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 4, comment: 'good' },
          ratingOutbox('k1', 'rating:a:u1'),
        );
        expect(r1.rating).toMatchObject({
          skillId: 'a',
          userId: 'u1',
          rating: 4,
          comment: 'good',
          createdAt: T0,
          updatedAt: T0,
          uploadStatus: 'pending',
          remoteRatingId: null,
        });
        expect(r1.outbox).toMatchObject({
          kind: 'rating',
          chainKey: 'rating:a:u1',
          idempotencyKey: 'k1',
          status: 'pending',
          attempts: 0,
          nextAttemptAt: T0,
          lastError: null,
          result: null,
          createdAt: T0,
          payload: { skill_id: 'a', user_id: 'u1', rating: 4 },
        });
        const r2 = await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 2, comment: null },
          ratingOutbox('k2', 'rating:a:u1', T0 + 5),
        );
        expect(r2.rating.id).toBe(r1.rating.id);
        expect(r2.rating).toMatchObject({ rating: 2, comment: null, createdAt: T0, updatedAt: T0 + 5 });
        expect(r2.outbox.id).toBeGreaterThan(r1.outbox.id);
        expect(await store.getRating('a', 'u1')).toEqual(r2.rating);
        expect(await store.getRating('a', 'u2')).toBeNull();
        await store.recordRating(
          { skillId: 'a', userId: 'u2', rating: 5, comment: null },
          ratingOutbox('k3', 'rating:a:u2'),
        );
        expect((await store.listRatings('a')).map((r) => r.userId)).toEqual(['u1', 'u2']);
        expect((await store.getSyncState()).pendingActions).toBe(3);
      });

      it('recordRating refuses an unknown skill and leaves nothing behind', async () => {
        await expectCode(
          store.recordRating(
            { skillId: 'nope', userId: 'u1', rating: 4, comment: null },
            ratingOutbox('k1', 'c'),
          ),
          'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
        );
        await expectCode(
          store.enqueue({ ...ratingOutbox('k2', 'c'), kind: 'install', skillId: 'nope' }),
          'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
        );
        expect((await store.listOutbox({ limit: 10, offset: 0 })).total).toBe(0);
        expect(await store.listRatings('nope')).toEqual([]);
      });

      it('enqueue with a known idempotency key returns the queued item', async () => {
        const first = await store.enqueue({ ...ratingOutbox('same', 'c1'), kind: 'install', skillId: 'a' });
        const again = await store.enqueue({
          ...ratingOutbox('same', 'c1', T0 + 9),
          kind: 'install',
          skillId: 'a',
        });
        expect(again.id).toBe(first.id);
        expect((await store.listOutbox({ limit: 10, offset: 0 })).total).toBe(1);
      });

      it('claims only due chain heads, one per chain, oldest first, counting the attempt', async () => {
        const a1 = await store.enqueue({ ...ratingOutbox('a1', 'A'), kind: 'install' });
        const a2 = await store.enqueue({ ...ratingOutbox('a2', 'A'), kind: 'install' });
        const b1 = await store.enqueue({ ...ratingOutbox('b1', 'B', T0 + 1000), kind: 'install' });
        const c1 = await store.enqueue({ ...ratingOutbox('c1', 'C', T0 + 1), kind: 'install' });
        let got = await claim(T0 + 1);
        expect(got.map((i) => i.id)).toEqual([a1.id, c1.id]);
        expect(got.every((i) => i.status === 'in_flight' && i.attempts === 1)).toBe(true);
        // A head in flight holds its chain; b1 is not due yet.
        expect(await claim(T0 + 2)).toEqual([]);
        expect((await store.getSyncState()).pendingActions).toBe(4);
        await store.completeOutbox(a1.id, { install_id: 'i1' }, T0 + 3);
        got = await claim(T0 + 1000);
        expect(got.map((i) => i.id)).toEqual([a2.id, b1.id]);
        expect((await store.getOutboxItem(a1.id))!).toMatchObject({
          status: 'done',
          result: { install_id: 'i1' },
        });
        expect((await store.getSyncState()).pendingActions).toBe(3);
        // limit
        await store.enqueue({ ...ratingOutbox('d1', 'D'), kind: 'install' });
        await store.enqueue({ ...ratingOutbox('e1', 'E'), kind: 'install' });
        expect((await claim(T0 + 2000, 1)).length).toBe(1);
      });

      it('a dead head blocks its own chain only; retry and discard unblock it', async () => {
        const a1 = await store.enqueue({ ...ratingOutbox('a1', 'A'), kind: 'install' });
        const a2 = await store.enqueue({ ...ratingOutbox('a2', 'A'), kind: 'install' });
        const b1 = await store.enqueue({ ...ratingOutbox('b1', 'B'), kind: 'install' });
        await claim(T0);
        await store.deadLetterOutbox(a1.id, { error: 'HTTP 400', now: T0 + 1 });
        await store.completeOutbox(b1.id, {}, T0 + 1);
        const b2 = await store.enqueue({ ...ratingOutbox('b2', 'B', T0 + 2), kind: 'install' });
        expect((await claim(T0 + 10)).map((i) => i.id)).toEqual([b2.id]);
        expect(await store.nextOutboxDueAt()).toBeNull();
        expect((await store.getOutboxItem(a1.id))!).toMatchObject({
          status: 'dead',
          lastError: 'HTTP 400',
          attempts: 1,
        });
        await expectCode(store.retryOutbox(a2.id, T0), 'SKILLSYNC_ERR_OUTBOX_STATE');
        await expectCode(store.retryOutbox(987654, T0), 'SKILLSYNC_ERR_OUTBOX_NOT_FOUND');
        const retried = await store.retryOutbox(a1.id, T0 + 20);
        expect(retried).toMatchObject({
          id: a1.id,
          status: 'pending',
          attempts: 0,
          nextAttemptAt: T0 + 20,
          idempotencyKey: 'a1',
        });
        expect(await store.nextOutboxDueAt()).toBe(T0 + 20);
        let got = await claim(T0 + 20);
        expect(got.map((i) => i.id)).toEqual([a1.id]);
        await store.deadLetterOutbox(a1.id, { error: 'again', now: T0 + 21 });
        await store.discardOutbox(a1.id, T0 + 22);
        got = await claim(T0 + 22);
        expect(got.map((i) => i.id)).toEqual([a2.id]);
        await expectCode(store.discardOutbox(a2.id, T0), 'SKILLSYNC_ERR_OUTBOX_STATE');
      });

      it('failOutbox puts the item back with its next attempt; recoverOutbox frees expired leases', async () => {
        const a1 = await store.enqueue({ ...ratingOutbox('a1', 'A'), kind: 'install' });
        const b1 = await store.enqueue({ ...ratingOutbox('b1', 'B'), kind: 'install' });
        await store.claimDueOutbox({ now: T0, limit: 10, leaseUntil: T0 + 100 });
        await store.failOutbox(a1.id, { error: 'timeout', nextAttemptAt: T0 + 500, now: T0 + 1 });
        expect(await store.getOutboxItem(a1.id)).toMatchObject({
          status: 'pending',
          lastError: 'timeout',
          nextAttemptAt: T0 + 500,
          attempts: 1,
        });
        expect(await store.nextOutboxDueAt()).toBe(T0 + 500);
        expect(await claim(T0 + 499)).toEqual([]);
        expect(await store.recoverOutbox(T0 + 99)).toBe(0);
        expect(await store.recoverOutbox(T0 + 100)).toBe(1);
        expect(await store.getOutboxItem(b1.id)).toMatchObject({ status: 'pending', attempts: 1 });
        const got = await claim(T0 + 500);
        expect(got.map((i) => [i.id, i.attempts])).toEqual([
          [b1.id, 2],
          [a1.id, 2],
        ]);
        await expectCode(
          store.failOutbox(424242, { error: 'x', nextAttemptAt: 0, now: 0 }),
          'SKILLSYNC_ERR_OUTBOX_NOT_FOUND',
        );
      });

      it('rescheduleOutbox makes later pending items due now', async () => {
        const a1 = await store.enqueue({ ...ratingOutbox('a1', 'A'), kind: 'install' });
        await store.claimDueOutbox({ now: T0, limit: 10, leaseUntil: T0 + 100 });
        await store.failOutbox(a1.id, { error: 'down', nextAttemptAt: T0 + 60_000, now: T0 });
        expect(await store.rescheduleOutbox(T0 + 10)).toBe(1);
        expect(await store.getOutboxItem(a1.id)).toMatchObject({ nextAttemptAt: T0 + 10, attempts: 1 });
        expect(await store.rescheduleOutbox(T0 + 10)).toBe(0);
      });

      it('completeOutbox marks the rating uploaded and merges the aggregates into the skill', async () => {
        const { outbox } = await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 5, comment: null },
          ratingOutbox('k1', 'rating:a:u1'),
        );
        await claim(T0);
        await store.completeOutbox(
          outbox.id,
          {
            success: true,
            rating_id: 'r-77',
            skill_id: 'a',
            rating: 5,
            average_rating: 4.25,
            rating_count: 8,
          },
          T0 + 1,
        );
        expect(await store.getRating('a', 'u1')).toMatchObject({
          uploadStatus: 'uploaded',
          remoteRatingId: 'r-77',
        });
        const rec = (await store.getSkill('a', T0))!;
        expect(rec.base.average_rating).toBe(4.25);
        expect(rec.base.rating_count).toBe(8);
        expect(rec.contentHash).toBe(skillContentHash(rec.base));
        expect((await store.getSyncState()).pendingActions).toBe(0);
      });

      it('a rating stays pending while a newer edit of it is queued', async () => {
        const first = await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 5, comment: null },
          ratingOutbox('k1', 'rating:a:u1'),
        );
        await claim(T0);
        await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 1, comment: null },
          ratingOutbox('k2', 'rating:a:u1', T0 + 1),
        );
        await store.completeOutbox(
          first.outbox.id,
          { success: true, rating_id: 'r-1', average_rating: 5, rating_count: 1 },
          T0 + 2,
        );
        expect(await store.getRating('a', 'u1')).toMatchObject({ uploadStatus: 'pending', rating: 1 });
      });

      it('dead-lettering a rating marks it failed; listOutbox filters by status', async () => {
        const { outbox } = await store.recordRating(
          { skillId: 'a', userId: 'u1', rating: 3, comment: null },
          ratingOutbox('k1', 'rating:a:u1'),
        );
        await store.enqueue({ ...ratingOutbox('k2', 'other'), kind: 'install' });
        await claim(T0);
        await store.deadLetterOutbox(outbox.id, { error: 'refused', now: T0 + 1 });
        expect((await store.getRating('a', 'u1'))!.uploadStatus).toBe('failed');
        const dead = await store.listOutbox({ status: 'dead', limit: 10, offset: 0 });
        expect(dead.total).toBe(1);
        expect(dead.items[0]!.id).toBe(outbox.id);
        const all = await store.listOutbox({ limit: 1, offset: 1 });
        expect(all.total).toBe(2);
        expect(all.items[0]!.idempotencyKey).toBe('k2');
        expect((await store.stats(T0)).outbox).toEqual({ pending: 0, in_flight: 1, done: 0, dead: 1 });
        expect((await store.getSyncState()).pendingActions).toBe(1);
      });

      it('listOutbox with a status pages oldest first, whatever the due times', async () => {
        // Later items are due earlier, so due order and id order disagree.
        const ids: number[] = [];
        for (let i = 0; i < 5; i++) {
          const item = await store.enqueue({
            ...ratingOutbox(`k${i}`, `c${i}`, T0 + 10 - i),
            kind: 'install',
          });
          ids.push(item.id);
        }
        await store.deadLetterOutbox(ids[2]!, { error: 'refused', now: T0 + 20 });
        const page = await store.listOutbox({ status: 'pending', limit: 2, offset: 1 });
        expect(page.total).toBe(4);
        expect(page.items.map((i) => i.id)).toEqual([ids[1], ids[3]]);
        expect(page.items.map((i) => i.idempotencyKey)).toEqual(['k1', 'k3']);
        const rest = await store.listOutbox({ status: 'pending', limit: 10, offset: 3 });
        expect(rest.items.map((i) => i.id)).toEqual([ids[4]]);
      });
    });

    // ---- state, runs, ws, quarantine, config --------------------------------------------
    describe('state, runs, websocket state, quarantine and config', () => {
      it('sync state starts empty and round-trips every stored field; counts are computed', async () => {
        const s0 = await store.getSyncState();
        expect(s0).toMatchObject({
          status: 'idle',
          lastSyncAt: null,
          lastSuccessAt: null,
          lastError: null,
          consecutiveErrors: 0,
          totalSyncs: 0,
          pendingActions: 0,
          autoSyncEnabled: true,
          skillsCached: 0,
          categoriesCached: 0,
          watermark: null,
          epoch: null,
          nextRunAt: null,
          lastCompleteListingAt: null,
          heldDeletions: 0,
          heldDeletionsAt: null,
        });
        const patch = {
          status: 'partial' as const,
          lastSyncAt: T0 + 1,
          lastSuccessAt: T0 + 2,
          lastError: 'boom',
          consecutiveErrors: 3,
          totalSyncs: 10,
          successfulSyncs: 7,
          failedSyncs: 3,
          autoSyncEnabled: false,
          watermark: ISO(T0),
          epoch: 'e9',
          nextRunAt: T0 + 3,
          lastCompleteListingAt: T0 + 4,
          heldDeletions: 5,
          heldDeletionsAt: T0 + 5,
          conflictsDetectedTotal: 6,
          conflictsResolvedTotal: 4,
        };
        const s1 = await store.updateSyncState({ ...patch, pendingActions: 99, skillsCached: 99 });
        expect(s1).toEqual({ ...patch, pendingActions: 0, skillsCached: 0, categoriesCached: 0 });
        await seed([mkSkill('a')]);
        await store.enqueue({ ...ratingOutbox('k', 'c'), kind: 'install' });
        expect(await store.getSyncState()).toMatchObject({
          pendingActions: 1,
          skillsCached: 1,
          lastError: 'boom',
        });
        expect(await store.updateSyncState({ lastError: null })).toMatchObject({
          lastError: null,
          totalSyncs: 10,
        });
      });

      it('sync lease: one holder until it expires or is released; renewals name the run', async () => {
        const a = await store.acquireSyncLease('host:1:a', T0, 60_000);
        expect(a).toEqual({
          acquired: true,
          lease: { owner: 'host:1:a', runId: null, expiresAt: T0 + 60_000 },
        });
        expect(await store.renewSyncLease('host:1:a', T0 + 10, 60_000, 7)).toBe(true);
        // Another process is refused and told which run holds it, up to the last millisecond.
        const b = await store.acquireSyncLease('host:2:b', T0 + 60_009, 60_000);
        expect(b).toEqual({
          acquired: false,
          lease: { owner: 'host:1:a', runId: 7, expiresAt: T0 + 60_010 },
        });
        // Renewing without a run id keeps the one recorded; the holder may take it again.
        expect(await store.renewSyncLease('host:1:a', T0 + 20, 60_000, null)).toBe(true);
        expect((await store.acquireSyncLease('host:2:b', T0 + 30, 60_000)).lease.runId).toBe(7);
        // Expired: anyone takes it, and the old holder's renewal and release no longer count.
        const c = await store.acquireSyncLease('host:2:b', T0 + 60_020, 60_000);
        expect(c.acquired).toBe(true);
        expect(await store.renewSyncLease('host:1:a', T0 + 60_021, 60_000, 7)).toBe(false);
        await store.releaseSyncLease('host:1:a');
        expect((await store.acquireSyncLease('host:3:c', T0 + 60_022, 60_000)).acquired).toBe(false);
        // A holder known to be dead is replaced at once; a released lease is free.
        const d = await store.acquireSyncLease('host:3:c', T0 + 60_023, 60_000, 'host:2:b');
        expect(d.acquired).toBe(true);
        await store.releaseSyncLease('host:3:c');
        expect((await store.acquireSyncLease('host:4:d', T0 + 60_024, 60_000)).acquired).toBe(true);
      });

      it('runs: start, update, get, list newest first', async () => {
        const r1 = await store.startRun({ trigger: 'schedule', mode: 'full', startedAt: T0 });
        expect(r1).toEqual({
          id: r1.id,
          trigger: 'schedule',
          mode: 'full',
          status: 'running',
          startedAt: T0,
          finishedAt: null,
          pages: 0,
          upserted: 0,
          unchanged: 0,
          deleted: 0,
          quarantined: 0,
          conflictsDetected: 0,
          conflictsResolved: 0,
          conflictsManual: 0,
          deletionsHeld: 0,
          resumedFromCheckpoint: false,
          error: null,
        });
        const patch = {
          status: 'partial' as const,
          finishedAt: T0 + 9,
          pages: 3,
          upserted: 250,
          unchanged: 40,
          deleted: 2,
          quarantined: 1,
          conflictsDetected: 4,
          conflictsResolved: 3,
          conflictsManual: 1,
          deletionsHeld: 7,
          resumedFromCheckpoint: true,
          error: 'one page failed',
        };
        expect(await store.updateRun(r1.id, patch)).toEqual({ ...r1, ...patch });
        const r2 = await store.startRun({ trigger: 'manual', mode: 'incremental', startedAt: T0 + 10 });
        expect(await store.getRun(r1.id)).toEqual({ ...r1, ...patch });
        expect(await store.getRun(123456)).toBeNull();
        const list = await store.listRuns({ limit: 1, offset: 0 });
        expect(list.total).toBe(2);
        expect(list.items.map((r) => r.id)).toEqual([r2.id]);
        expect((await store.listRuns({ limit: 10, offset: 1 })).items.map((r) => r.id)).toEqual([r1.id]);
      });

      it('websocket state round-trips and counts add up', async () => {
        const w0 = await store.getWsState();
        expect(w0).toMatchObject({ connected: false, url: null, lastSeq: null, reconnectAttempts: 0 });
        expect(w0.counts).toEqual({
          applied: 0,
          duplicate: 0,
          stale: 0,
          invalid: 0,
          rate_limited: 0,
          unknown: 0,
        });
        const patch = {
          connected: true,
          url: 'ws://127.0.0.1:1/ws',
          state: 'open',
          lastConnectedAt: T0,
          lastMessageAt: T0 + 1,
          disconnectReason: 'pong timeout',
          reconnectAttempts: 2,
          consecutiveFailures: 1,
          fallbackSince: T0 + 2,
          nextAttemptAt: T0 + 3,
          enabled: false,
          lastSeq: 42,
        };
        expect(await store.updateWsState(patch)).toEqual({ ...patch, counts: w0.counts });
        await store.incrementWsCounts({ applied: 3, stale: 1 });
        await store.incrementWsCounts({ applied: 2, unknown: 1, rate_limited: 0 });
        expect((await store.getWsState()).counts).toEqual({
          applied: 5,
          duplicate: 0,
          stale: 1,
          invalid: 0,
          rate_limited: 0,
          unknown: 1,
        });
        expect(await store.updateWsState({ connected: false, lastSeq: null })).toMatchObject({
          connected: false,
          lastSeq: null,
          url: patch.url,
        });
      });

      it('quarantine keeps records newest first and truncates huge payloads to 64 KiB of JSON', async () => {
        await store.quarantine([
          {
            kind: 'skill',
            key: 's1',
            reason: 'name missing',
            payload: { skill_id: 's1', n: [1, 2] },
            runId: 7,
            at: T0,
          },
          { kind: 'ws_message', key: null, reason: 'not JSON', payload: 'garbage{', runId: null, at: T0 + 1 },
        ]);
        await store.quarantine([
          {
            kind: 'page',
            key: null,
            reason: 'huge',
            payload: { blob: 'x'.repeat(100_000) },
            runId: null,
            at: T0 + 2,
          },
        ]);
        await store.quarantine([]);
        const list = await store.listQuarantine({ limit: 10, offset: 0 });
        expect(list.total).toBe(3);
        expect(list.items.map((q) => q.reason)).toEqual(['huge', 'not JSON', 'name missing']);
        expect(list.items[2]).toEqual({
          id: list.items[2]!.id,
          kind: 'skill',
          key: 's1',
          reason: 'name missing',
          payload: { skill_id: 's1', n: [1, 2] },
          runId: 7,
          at: T0,
        });
        expect(list.items[1]!.payload).toBe('garbage{');
        const huge = list.items[0]!.payload;
        expect(typeof huge).toBe('string');
        expect((huge as string).length).toBe(64 * 1024);
        expect((await store.listQuarantine({ limit: 1, offset: 2 })).items[0]!.reason).toBe('name missing');
      });

      it('config overrides merge, and null removes a key', async () => {
        expect(await store.getConfigOverrides()).toEqual({});
        expect(
          await store.setConfigOverrides({ syncIntervalMs: 60000, wsEnabled: false, tags: ['a'] }),
        ).toEqual({
          syncIntervalMs: 60000,
          wsEnabled: false,
          tags: ['a'],
        });
        expect(await store.setConfigOverrides({ wsEnabled: null, ttlMs: 5 })).toEqual({
          syncIntervalMs: 60000,
          tags: ['a'],
          ttlMs: 5,
        });
        expect(await store.getConfigOverrides()).toEqual({ syncIntervalMs: 60000, tags: ['a'], ttlMs: 5 });
      });

      it('checkpoint set, read and cleared outside a page', async () => {
        expect(await store.getCheckpoint()).toBeNull();
        const cp = checkpoint({ cursor: 'abc', mode: 'incremental', updatedSince: ISO(T0) });
        await store.setCheckpoint(cp);
        expect(await store.getCheckpoint()).toEqual(cp);
        await store.setCheckpoint(null);
        expect(await store.getCheckpoint()).toBeNull();
      });

      it('ping and integrityCheck answer on a healthy store', async () => {
        await seed([mkSkill('a'), mkSkill('b')]);
        await store.deleteSkill('a', { now: T0 });
        expect(await store.ping()).toBe(true);
        expect(await store.integrityCheck()).toEqual([]);
      });
    });
  });
}
