/**
 * The simulator's catalog without sockets: determinism from the seed, realistic sizes, the
 * direct canonical builder against the contract's skillContentHash, the logical clock, the
 * orders listings rely on, and a digest that changes exactly when the catalog does.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Catalog, CATALOG_BASE_TIME_MS, skillIdOf } from '../simulator/catalog.js';
import { Fenwick } from '../simulator/fenwick.js';
import { isoTime } from '../simulator/iso-time.js';
import { readSkill, skillContentHash } from '../src/remote/contract.js';
import { FakeClock } from './helpers/fake-clock.js';

const make = (seed = 7, skills = 500, clock = new FakeClock()): Catalog =>
  new Catalog({ seed, skills, categories: 30, clock });

describe('simulator catalog', () => {
  it('is deterministic from the seed', () => {
    const a = make(7);
    const b = make(7);
    const c = make(8);
    for (let i = 0; i < 500; i += 37) expect(a.skillJson(i)).toBe(b.skillJson(i));
    expect(a.digest()).toBe(b.digest());
    expect(a.digest()).not.toBe(c.digest());
  });

  it('builds realistic skills of about 0.5-2 KB that the contract reader accepts', () => {
    const cat = make(3, 2000);
    let total = 0;
    let min = Infinity;
    let max = 0;
    for (let i = 0; i < 2000; i++) {
      const json = cat.skillJson(i);
      const bytes = Buffer.byteLength(json);
      min = Math.min(min, bytes);
      max = Math.max(max, bytes);
      expect(bytes).toBeGreaterThanOrEqual(500);
      expect(bytes).toBeLessThanOrEqual(2048);
      total += bytes;
      const r = readSkill(JSON.parse(json));
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.skill_id).toBe(skillIdOf(i));
        expect(r.value['x_origin']).toBeTypeOf('object');
        expect(Date.parse(r.value.created_at ?? '')).toBeLessThanOrEqual(CATALOG_BASE_TIME_MS);
      }
    }
    expect(total / 2000).toBeGreaterThan(1000);
    expect(total / 2000).toBeLessThan(1500);
    expect(min).toBeLessThan(800);
    expect(max).toBeGreaterThan(1600);
  });

  it('the canonical builder hashes exactly like skillContentHash over the parsed listing JSON', () => {
    const cat = make(11, 300);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 299 }),
        fc.array(fc.constantFrom('update', 'rate', 'install'), { maxLength: 6 }),
        fc.integer({ min: 1, max: 5 }),
        (i, ops, rating) => {
          for (const op of ops) {
            if (op === 'update') cat.updateSkill(i);
            else if (op === 'rate') cat.rateByUser(i, `u${rating}`, rating);
            else cat.addInstall(i);
          }
          const parsed = readSkill(JSON.parse(cat.skillJson(i, 'id', true)));
          expect(parsed.ok).toBe(true);
          if (parsed.ok) expect(cat.skillHash(i)).toBe(skillContentHash(parsed.value));
        },
      ),
      { seed: 20261129, numRuns: 200 },
    );
  });

  it('hands out strictly increasing updated_at, also faster than the wall clock', () => {
    const clock = new FakeClock();
    const cat = make(1, 100, clock);
    const seen: number[] = [];
    for (let k = 0; k < 50; k++) {
      seen.push(cat.updateSkill(k % 10));
      seen.push(cat.addRating(k % 7, 4));
    }
    for (let k = 1; k < seen.length; k++) expect(seen[k]).toBeGreaterThan(seen[k - 1] as number);
    expect(seen[0]).toBe(clock.now());
    clock.advance(10_000);
    expect(cat.updateSkill(1)).toBe(clock.now());
  });

  it('keeps tombstones and lists changes in (updated_at, skill_id) order', () => {
    const clock = new FakeClock();
    const cat = make(1, 100, clock);
    const since = clock.now();
    cat.updateSkill(50);
    cat.deleteSkill(10);
    cat.updateSkill(5);
    const i = cat.createSkill();
    cat.updateSkill(50);
    const live: number[] = [];
    cat.scanSince(since, false, null, 0, 100, (k) => live.push(k));
    expect(live).toEqual([5, i, 50]);
    const all: number[] = [];
    cat.scanSince(since, true, null, 0, 100, (k) => all.push(k));
    expect(all).toEqual([10, 5, i, 50]);
    expect(JSON.parse(cat.skillJson(10, 'skill_id', true)).deleted_at).toBe(
      isoTime(cat.deletedAt[10] as number),
    );
    expect(cat.isLive(10)).toBe(false);
    expect(cat.liveCount).toBe(100);
    expect(cat.countSince(0, true)).toBe(101);
  });

  it('changes the digest exactly when the catalog changes', () => {
    const cat = make(2, 200);
    const d0 = cat.digest();
    expect(cat.digest()).toBe(d0);
    cat.updateSkill(3);
    const d1 = cat.digest();
    expect(d1).not.toBe(d0);
    cat.addInstall(4);
    const d2 = cat.digest();
    expect(d2).not.toBe(d1);
    cat.deleteSkill(4);
    const d3 = cat.digest();
    expect(d3).not.toBe(d2);
    const c = cat.addCategory();
    const d4 = cat.digest();
    expect(d4).not.toBe(d3);
    expect(cat.categories().some((x) => x.name === c.name)).toBe(true);
    cat.deleteCategory(cat.categorySlots - 1);
    expect(cat.digest()).toBe(d3);
    expect(cat.streamingDigestForTest()).toBe(d3);
  });

  it('the streaming digest (large catalogs) equals catalogDigest', () => {
    const cat = make(5, 300);
    cat.deleteSkill(0);
    cat.deleteSkill(17);
    cat.addCategory();
    expect(cat.streamingDigestForTest()).toBe(cat.digest());
    const empty = make(5, 0);
    expect(empty.streamingDigestForTest()).toBe(empty.digest());
  });

  it('finds the k-th live skill through the Fenwick tree', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 300 }), (flags) => {
        const f = Fenwick.from(flags.length, (i) => flags[i] === true);
        const set = flags.flatMap((b, i) => (b ? [i] : []));
        set.forEach((idx, k) => expect(f.kth(k)).toBe(idx));
        expect(f.kth(set.length)).toBe(-1);
        expect(f.prefix(flags.length)).toBe(set.length);
      }),
      { seed: 20261129, numRuns: 100 },
    );
  });

  it('formats ISO times exactly like Date#toISOString', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { seed: 20261129, numRuns: 500 },
    );
  });
});
