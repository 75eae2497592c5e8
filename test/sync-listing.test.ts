import { describe, expect, it } from 'vitest';
import {
  judgePage,
  listingIsGapless,
  planListing,
  sinceWithOverlap,
  type ListingPosition,
  type PlanInput,
} from '../src/sync/listing.js';
import { deleteDecision, runStatus, stateAfterRun, DEFAULT_DELETE_GUARD } from '../src/sync/run-outcome.js';
import type { SkillPage } from '../src/remote/contract.js';
import type { ListingCheckpoint } from '../src/store/types.js';
import { isSkillsyncError } from '../src/core/errors.js';

function page(ids: string[], extra: Partial<SkillPage> = {}): SkillPage {
  return {
    skills: ids.map((id) => ({ skill_id: id, name: id, version: '1.0.0' })),
    invalid: [],
    received: ids.length,
    page: undefined,
    page_size: undefined,
    total: undefined,
    total_pages: undefined,
    has_more: undefined,
    next_cursor: undefined,
    server_time: undefined,
    ...extra,
  };
}

const P = (page: number, pageSize = 3): ListingPosition => ({ page, cursor: null, pageSize });
const C = (cursor: string, pageSize = 3): ListingPosition => ({ page: 1, cursor, pageSize });

function expectPaginationError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(isSkillsyncError(err) && err.code).toBe('SKILLSYNC_ERR_REMOTE_PAGINATION');
    return;
  }
  throw new Error('expected SKILLSYNC_ERR_REMOTE_PAGINATION');
}

describe('judgePage: end conditions exactly as CONTRACT.md', () => {
  it('ends at an empty page', () => {
    expect(judgePage('page', P(2), page([]), 'a').done).toBe(true);
  });
  it('ends at a page shorter than the page size the server used', () => {
    expect(judgePage('page', P(1), page(['a', 'b']), null).done).toBe(true);
    // The server capped at 2: a full page of 2 is not the end, and the next request follows the cap.
    const v = judgePage('page', P(1, 5), page(['a', 'b'], { page_size: 2 }), null);
    expect(v.done).toBe(false);
    expect(v.next).toEqual({ page: 2, cursor: null, pageSize: 2 });
  });
  it('ends at page >= total_pages', () => {
    expect(judgePage('page', P(2), page(['d', 'e', 'f'], { total_pages: 2 }), 'a').done).toBe(true);
    expect(judgePage('page', P(1), page(['a', 'b', 'c'], { total_pages: 2 }), null).done).toBe(false);
  });
  it('ends at has_more: false', () => {
    expect(judgePage('page', P(1), page(['a', 'b', 'c'], { has_more: false }), null).done).toBe(true);
  });
  it('continues on a full page without end markers', () => {
    const v = judgePage('page', P(1), page(['a', 'b', 'c']), null);
    expect(v).toEqual({ done: false, next: { page: 2, cursor: null, pageSize: 3 }, firstKey: 'a' });
  });
  it('a server ignoring page is a clear error, not a loop', () => {
    expectPaginationError(() => judgePage('page', P(2), page(['a', 'b', 'c']), 'a'));
    expectPaginationError(() => judgePage('page', P(2), page(['x', 'y', 'z'], { page: 1 }), 'a'));
  });
  it('cursor listings end without a next cursor and refuse a cursor that does not advance', () => {
    expect(judgePage('cursor', C(''), page(['a', 'b', 'c'], { next_cursor: null }), null).done).toBe(true);
    expect(judgePage('cursor', C(''), page(['a', 'b', 'c'], { next_cursor: 'c' }), null).next).toEqual({
      page: 2,
      cursor: 'c',
      pageSize: 3,
    });
    expectPaginationError(() => judgePage('cursor', C('c'), page(['d'], { next_cursor: 'c' }), 'a'));
    expectPaginationError(() => judgePage('cursor', C('c'), page(['a'], { next_cursor: 'x' }), 'a'));
    expectPaginationError(() => judgePage('cursor', C(''), page(['a'], { has_more: true }), null));
  });
  it('the first key of a page counts invalid records too', () => {
    const p = page(['b'], {
      invalid: [{ index: 0, key: 'a', error: { path: '$', message: 'bad' }, raw: {} }],
      received: 2,
    });
    expect(judgePage('page', P(1, 2), p, null).firstKey).toBe('a');
  });
});

describe('gapless listings', () => {
  it('trusts keyset listings and page listings whose total held and adds up', () => {
    expect(listingIsGapless('cursor', { first: 10, last: 12 }, 5)).toBe(true);
    expect(listingIsGapless('page', { first: 10, last: 10 }, 10)).toBe(true);
    expect(listingIsGapless('page', { first: 10, last: 11 }, 11)).toBe(false);
    expect(listingIsGapless('page', { first: 10, last: 10 }, 9)).toBe(false);
    expect(listingIsGapless('page', { first: undefined, last: undefined }, 9)).toBe(true);
  });
});

const STATE = { watermark: '2026-01-01T00:00:10.000Z', epoch: 'e1', lastCompleteListingAt: 1 };
const base: PlanInput = {
  requested: 'auto',
  features: ['cursor', 'updated_since'],
  epoch: 'e1',
  state: STATE,
  checkpoint: null,
  pageSize: 100,
  overlapMs: 2000,
  now: 1000,
  fullListingMaxAgeMs: 12 * 3600_000,
};
const checkpoint: ListingCheckpoint = {
  runId: 7,
  mode: 'full',
  startedAt: 5,
  nextPage: 4,
  cursor: null,
  pageSize: 50,
  updatedSince: null,
  epoch: 'e1',
  pagesApplied: 3,
  skillsApplied: 150,
};

describe('planListing', () => {
  it('incremental from the watermark minus the overlap when the server offers updated_since', () => {
    const p = planListing(base);
    expect(p.mode).toBe('incremental');
    expect(p.style).toBe('cursor');
    expect(p.updatedSince).toBe('2026-01-01T00:00:08.000Z');
    expect(sinceWithOverlap('2026-01-01T00:00:00Z', 1500)).toBe('2025-12-31T23:59:58.500Z');
  });
  it('full listing when asked, without the extension, without a watermark or after an epoch change', () => {
    expect(planListing({ ...base, requested: 'full' }).mode).toBe('full');
    expect(planListing({ ...base, features: ['cursor'] }).mode).toBe('full');
    expect(planListing({ ...base, features: [] }).style).toBe('page');
    expect(planListing({ ...base, state: { ...STATE, watermark: null } }).mode).toBe('full');
    const reset = planListing({ ...base, epoch: 'e2' });
    expect(reset.mode).toBe('full');
    expect(reset.reason).toMatch(/epoch/);
  });
  it('a full listing when the last complete one is older than the interval (renews TTLs), unless incremental is asked', () => {
    const old = { ...base, now: 1 + 12 * 3600_000 + 1 };
    const p = planListing(old);
    expect(p.mode).toBe('full');
    expect(p.reason).toMatch(/older/);
    expect(planListing({ ...old, requested: 'incremental' }).mode).toBe('incremental');
  });
  it('resumes a checkpoint of the same epoch, keeping its page size', () => {
    const p = planListing({ ...base, checkpoint, features: [] });
    expect(p.resume).toBe(checkpoint);
    expect(p.mode).toBe('full');
    expect(p.style).toBe('page');
    expect(p.pageSize).toBe(50);
    // A full listing is finished even when an incremental run was asked for.
    expect(planListing({ ...base, requested: 'incremental', checkpoint }).resume).toBe(checkpoint);
  });
  it('drops a checkpoint of another epoch, and an incremental one when a full listing is asked', () => {
    expect(planListing({ ...base, checkpoint: { ...checkpoint, epoch: 'e0' } }).resume).toBeNull();
    const inc = { ...checkpoint, mode: 'incremental' as const, updatedSince: '2026-01-01T00:00:00Z' };
    expect(planListing({ ...base, requested: 'full', checkpoint: inc }).resume).toBeNull();
    expect(planListing({ ...base, checkpoint: inc }).resume).toBe(inc);
    // A cursor checkpoint needs a server that still offers cursors.
    const cur = { ...checkpoint, cursor: 'abc' };
    expect(planListing({ ...base, features: [], checkpoint: cur }).resume).toBeNull();
  });
});

describe('run status, state and the delete guard', () => {
  it('never success on a partial run, never anything but failed on an outage', () => {
    expect(runStatus(['ok', 'ok'])).toBe('success');
    expect(runStatus(['failed', 'ok'])).toBe('partial');
    expect(runStatus(['ok', 'partial'])).toBe('partial');
    expect(runStatus(['failed', 'partial'])).toBe('partial');
    expect(runStatus(['failed', 'failed'])).toBe('failed');
  });

  it('holds deletions above 25% of the catalog or above 1,000 skills', () => {
    expect(deleteDecision(0, 100, DEFAULT_DELETE_GUARD)).toBe('none');
    expect(deleteDecision(25, 100, DEFAULT_DELETE_GUARD)).toBe('delete');
    expect(deleteDecision(26, 100, DEFAULT_DELETE_GUARD)).toBe('hold');
    expect(deleteDecision(1000, 100_000, DEFAULT_DELETE_GUARD)).toBe('delete');
    expect(deleteDecision(1001, 100_000, DEFAULT_DELETE_GUARD)).toBe('hold');
    // An empty answer makes every skill unseen: the guard holds, the cache is not wiped.
    expect(deleteDecision(40, 40, DEFAULT_DELETE_GUARD)).toBe('hold');
  });

  it('keeps every state field truthful', () => {
    const before = {
      consecutiveErrors: 2,
      totalSyncs: 10,
      successfulSyncs: 7,
      failedSyncs: 3,
      lastSuccessAt: 100,
    };
    const run = { finishedAt: 500 };
    expect(stateAfterRun(before, { ...run, status: 'success', authFailed: false, error: null })).toEqual({
      status: 'success',
      lastSyncAt: 500,
      lastSuccessAt: 500,
      lastError: null,
      consecutiveErrors: 0,
      totalSyncs: 11,
      successfulSyncs: 8,
      failedSyncs: 3,
    });
    const partial = stateAfterRun(before, { ...run, status: 'partial', authFailed: false, error: 'x' });
    expect(partial).toMatchObject({
      status: 'partial',
      lastSuccessAt: 100,
      consecutiveErrors: 3,
      failedSyncs: 4,
    });
    const auth = stateAfterRun(before, { ...run, status: 'failed', authFailed: true, error: 'auth' });
    expect(auth).toMatchObject({ status: 'auth_failed', lastError: 'auth', successfulSyncs: 7 });
  });
});
