/**
 * Listing maths, pure: which listing a run does (full or incremental, pages or cursor, resume
 * or fresh), when a listing ends, and what the watermark is. The engine does the I/O; every
 * decision it takes about pagination comes from here and is tested on its own.
 */
import type { SkillPage } from '../remote/contract.js';
import type { ListingCheckpoint, RunMode, SyncState } from '../store/types.js';
import { PermanentError } from '../core/errors.js';

export type RequestedMode = RunMode | 'auto';
export type ListingStyle = 'cursor' | 'page';

export interface ListingPlan {
  mode: RunMode;
  style: ListingStyle;
  pageSize: number;
  /** Incremental: the updated_since sent (watermark minus the overlap margin). */
  updatedSince: string | null;
  /** The checkpoint this listing resumes from, or null for a fresh listing. */
  resume: ListingCheckpoint | null;
  /** Why this plan (for logs and the run record). */
  reason: string;
}

export interface PlanInput {
  requested: RequestedMode;
  features: readonly string[];
  /** Epoch announced by /health now (undefined when the server has none). */
  epoch: string | undefined;
  state: Pick<SyncState, 'watermark' | 'epoch' | 'lastCompleteListingAt'>;
  checkpoint: ListingCheckpoint | null;
  pageSize: number;
  overlapMs: number;
  now: number;
  /**
   * An automatic run does a full listing when the last complete one is older than this:
   * incremental runs never re-see unchanged skills, so only a full listing renews their TTL
   * (and catches a deletion a lossy server failed to report).
   */
  fullListingMaxAgeMs: number;
}

/** ISO watermark minus the overlap margin: repeats are cheap (the version guard absorbs them), gaps are data loss. */
export function sinceWithOverlap(watermark: string, overlapMs: number): string {
  const t = Date.parse(watermark);
  if (Number.isNaN(t)) return watermark;
  return new Date(t - overlapMs).toISOString();
}

export function epochChanged(announced: string | undefined, stored: string | null): boolean {
  return announced !== undefined && stored !== null && announced !== stored;
}

export function planListing(input: PlanInput): ListingPlan {
  const { features, state, checkpoint } = input;
  const style: ListingStyle = features.includes('cursor') ? 'cursor' : 'page';
  const epoch = input.epoch ?? null;
  const reset = epochChanged(input.epoch, state.epoch);
  const fullDue =
    state.lastCompleteListingAt !== null &&
    input.now - state.lastCompleteListingAt > input.fullListingMaxAgeMs;
  const canIncremental =
    features.includes('updated_since') &&
    state.watermark !== null &&
    state.lastCompleteListingAt !== null &&
    !reset &&
    (input.requested === 'incremental' || !fullDue);

  // A saved checkpoint is resumed when it still describes a listing this server can continue:
  // same dataset epoch (a listing started after an epoch change carries the new one).
  if (checkpoint !== null && (checkpoint.epoch ?? null) === epoch) {
    const checkpointStyle: ListingStyle = checkpoint.cursor !== null ? 'cursor' : 'page';
    const styleOk = checkpointStyle === 'page' ? checkpoint.nextPage >= 1 : style === 'cursor';
    const modeOk =
      checkpoint.mode === 'full'
        ? true // a full listing subsumes an incremental one: finish it whatever was asked
        : input.requested !== 'full' && features.includes('updated_since');
    if (styleOk && modeOk) {
      return {
        mode: checkpoint.mode,
        style: checkpointStyle,
        pageSize: checkpoint.pageSize,
        updatedSince: checkpoint.mode === 'incremental' ? checkpoint.updatedSince : null,
        resume: checkpoint,
        reason: `resume ${checkpoint.mode} listing of run ${checkpoint.runId}`,
      };
    }
  }

  const pageSize = input.pageSize;
  if (input.requested !== 'full' && canIncremental && state.watermark !== null) {
    return {
      mode: 'incremental',
      style,
      pageSize,
      updatedSince: sinceWithOverlap(state.watermark, input.overlapMs),
      resume: null,
      reason: 'incremental from the watermark',
    };
  }
  let reason = 'full listing requested';
  if (input.requested !== 'full') {
    if (reset) reason = 'the dataset epoch changed';
    else if (!features.includes('updated_since')) reason = 'the server offers no updated_since';
    else if (fullDue) reason = 'the last complete listing is older than the full-listing interval';
    else reason = 'no complete listing yet';
  }
  return { mode: 'full', style, pageSize, updatedSince: null, resume: null, reason };
}

/** Where the next request of a listing starts. */
export interface ListingPosition {
  /** 1-based page for page-numbered listings. */
  page: number;
  /** Keyset cursor ('' asks for the first page); null for page-numbered listings. */
  cursor: string | null;
  pageSize: number;
}

export interface PageVerdict {
  /** True when this page was the last one. */
  done: boolean;
  /** The next request when not done. */
  next: ListingPosition | null;
  /** The first record's key (to detect a server that serves the same page again). */
  firstKey: string | null;
}

/** The key of the first record of a page, valid or not. */
export function firstKeyOf(page: SkillPage): string | null {
  const firstInvalid = page.invalid.find((r) => r.index === 0);
  if (firstInvalid !== undefined) return firstInvalid.key;
  return page.skills[0]?.skill_id ?? null;
}

function paginationError(message: string): PermanentError {
  return new PermanentError('SKILLSYNC_ERR_REMOTE_PAGINATION', message);
}

/**
 * Judges one answer against the request that produced it. Ends exactly as CONTRACT.md says:
 * an empty page, a page shorter than the page size the server used, `page >= total_pages`,
 * `has_more: false` (or no next cursor), whichever comes first. A server that serves the same
 * page again (it ignores `page`, or the cursor does not advance) throws
 * SKILLSYNC_ERR_REMOTE_PAGINATION instead of looping.
 */
export function judgePage(
  style: ListingStyle,
  requested: ListingPosition,
  answer: SkillPage,
  previousFirstKey: string | null,
): PageVerdict {
  const firstKey = firstKeyOf(answer);
  const received = answer.received;
  // Follow the server's page size (its cap) when it says which one it used.
  const used = answer.page_size !== undefined && answer.page_size > 0 ? answer.page_size : requested.pageSize;
  if (received === 0) return { done: true, next: null, firstKey };
  if (previousFirstKey !== null && firstKey !== null && firstKey === previousFirstKey) {
    throw paginationError(
      style === 'page'
        ? `page ${requested.page} starts with the same record as the page before (${JSON.stringify(firstKey.slice(0, 80))}): the server ignores 'page'`
        : 'the cursor did not advance: the server served the same page again',
    );
  }
  if (style === 'page') {
    if (answer.page !== undefined && answer.page !== requested.page) {
      throw paginationError(`asked for page ${requested.page}, the server answered page ${answer.page}`);
    }
    if (received < used) return { done: true, next: null, firstKey };
    if (answer.total_pages !== undefined && requested.page >= answer.total_pages)
      return { done: true, next: null, firstKey };
    if (answer.has_more === false) return { done: true, next: null, firstKey };
    return { done: false, next: { page: requested.page + 1, cursor: null, pageSize: used }, firstKey };
  }
  const next = answer.next_cursor;
  if (answer.has_more === false || next === null || next === undefined || next === '') {
    if (answer.has_more === true)
      throw paginationError('has_more is true but the answer carries no next_cursor');
    return { done: true, next: null, firstKey };
  }
  if (next === requested.cursor) throw paginationError('the server answered the cursor it was given');
  return { done: false, next: { page: requested.page + 1, cursor: next, pageSize: used }, firstKey };
}

/**
 * Whether a finished listing saw the catalog without gaps, so it may delete what it did not
 * see. A keyset listing is stable while the catalog changes. A page-numbered one is trusted
 * only when the catalog size stayed the same through the listing and the pages add up to it.
 *
 * A page-numbered listing resumed from a checkpoint is never trusted: its earlier pages were
 * read by another run, maybe long before, and a change in between shifts the offsets (a record
 * moves onto a page already read and is never listed) without showing in the totals it saw.
 */
export function listingIsGapless(
  style: ListingStyle,
  totals: { first: number | undefined; last: number | undefined },
  recordsListed: number,
  resumed = false,
): boolean {
  if (style === 'cursor') return true;
  if (resumed) return false;
  if (totals.first === undefined || totals.last === undefined) return true;
  return totals.first === totals.last && recordsListed === totals.last;
}
