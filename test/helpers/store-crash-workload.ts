/**
 * The deterministic workload of the crash test, shared by the child that applies it and the
 * parent that checks what survived: page k writes the skills of slots [(k-1)*N, k*N) modulo
 * the pool, each stamped with k, together with a checkpoint saying "k pages applied". From
 * the checkpoint alone the parent can rebuild the exact catalog the store must hold, and
 * compares digests: a half-applied page or a checkpoint ahead of (or behind) its data shows.
 */
import { catalogDigest, skillContentHash } from '../../src/remote/contract.js';
import type { Skill } from '../../src/remote/contract.js';
import type { ApplyPageInput, ListingCheckpoint } from '../../src/store/types.js';

export interface CrashWorkload {
  /** Skills per page. */
  pageSize: number;
  /** Distinct skill slots; pages wrap around and overwrite older ones. */
  pool: number;
}

export const DEFAULT_CRASH_WORKLOAD: CrashWorkload = Object.freeze({ pageSize: 100, pool: 1500 });
const T0 = Date.UTC(2026, 0, 1);

export function slotSkill(slot: number, page: number): Skill {
  return {
    skill_id: `crash-${String(slot).padStart(6, '0')}`,
    name: `crash skill ${slot}`,
    version: `${page}.0.0`,
    description: `written by page ${page}: `.padEnd(400, 'lorem ipsum dolor sit amet '),
    category: `cat-${slot % 7}`,
    tags: ['crash', `p${page % 10}`],
    page,
    updated_at: new Date(T0 + page * 1000).toISOString(),
  };
}

export function crashCheckpoint(page: number, w: CrashWorkload): ListingCheckpoint {
  return {
    runId: 1,
    mode: 'full',
    startedAt: T0,
    nextPage: page + 1,
    cursor: `after-${page}`,
    pageSize: w.pageSize,
    updatedSince: null,
    epoch: 'crash',
    pagesApplied: page,
    skillsApplied: page * w.pageSize,
  };
}

export function crashPage(page: number, w: CrashWorkload): ApplyPageInput {
  const items = [];
  for (let i = 0; i < w.pageSize; i++) {
    const skill = slotSkill(((page - 1) * w.pageSize + i) % w.pool, page);
    items.push({ skill, contentHash: skillContentHash(skill) });
  }
  return {
    items,
    tombstones: [],
    source: 'full',
    now: T0 + page * 1000,
    ttlMs: 86_400_000,
    epoch: 'crash',
    guard: 'version',
    checkpoint: crashCheckpoint(page, w),
  };
}

/** The page that last wrote `slot` once `pages` pages are applied, or 0 when none did. */
export function lastPageOf(slot: number, pages: number, w: CrashWorkload): number {
  const last = pages * w.pageSize - 1;
  if (last < slot) return 0;
  const g = last - ((((last - slot) % w.pool) + w.pool) % w.pool);
  return Math.floor(g / w.pageSize) + 1;
}

/** The digest the store must have after exactly `pages` pages. */
export function expectedCrashDigest(pages: number, w: CrashWorkload): string {
  const skills: [string, string][] = [];
  for (let slot = 0; slot < w.pool; slot++) {
    const p = lastPageOf(slot, pages, w);
    if (p > 0) {
      const s = slotSkill(slot, p);
      skills.push([s.skill_id, skillContentHash(s)]);
    }
  }
  return catalogDigest(skills, []);
}
