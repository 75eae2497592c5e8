/**
 * When the next scheduled job runs: pure maths, no timers. The scheduler asks these functions
 * and arms one timer on its Clock, so tests drive it with a FakeClock and assert the times.
 *
 * Skill sync: every `intervalMs` from the start of the previous run. After a failed (or
 * partial) run it retries after 1, 2, 4, 8, 16 s, then falls back to the interval. Refused
 * credentials are never retried quickly: at most one attempt per interval.
 * Periodic jobs with a cron pattern (the hourly TTL sweep) take croner's next occurrence.
 */
import { Cron } from 'croner';

export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([1_000, 2_000, 4_000, 8_000, 16_000]);

export type LastOutcome = 'success' | 'partial' | 'failed' | 'auth_failed' | 'rejected';

export interface NextSyncInput {
  now: number;
  /** Start of the previous run (null: none yet, e.g. at start without a first sync). */
  lastStartedAt: number | null;
  /** End of the previous run (retries count from it). */
  lastFinishedAt: number | null;
  lastOutcome: LastOutcome | null;
  /** Failed runs in a row, the previous one included (retry n uses delay n-1). */
  failuresInRow: number;
  intervalMs: number;
  retryDelaysMs: readonly number[];
}

export interface NextSync {
  at: number;
  reason: 'interval' | 'retry';
}

export function nextSyncAt(input: NextSyncInput): NextSync {
  const { now, intervalMs } = input;
  const failed = input.lastOutcome === 'failed' || input.lastOutcome === 'partial';
  if (failed && input.failuresInRow >= 1 && input.failuresInRow <= input.retryDelaysMs.length) {
    const delay = input.retryDelaysMs[input.failuresInRow - 1] as number;
    return { at: Math.max(now, (input.lastFinishedAt ?? now) + delay), reason: 'retry' };
  }
  const anchor = input.lastStartedAt ?? now;
  // A run that overran the interval (or a changed interval) never schedules in the past.
  return { at: Math.max(now, anchor + intervalMs), reason: 'interval' };
}

/** Next occurrence of a cron pattern strictly after `now` (UTC), or null when there is none. */
export function nextCronAt(pattern: string, now: number): number | null {
  const next = new Cron(pattern, { timezone: 'UTC' }).nextRun(new Date(now));
  return next === null ? null : next.getTime();
}

/** Throws unless the pattern parses (croner's own validation). */
export function validateCron(pattern: string): void {
  new Cron(pattern, { timezone: 'UTC' });
}
