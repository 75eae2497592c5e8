/**
 * Backoff maths, pure: no clock, no global randomness. Callers pass the attempt number and a
 * random source, and get the delay to ask their clock for.
 *
 * Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): the delay is uniform in
 * [0, min(cap, base * 2^attempt)]. It spreads reconnecting clients far better than "equal
 * jitter" and never exceeds the cap. `jitter: 'none'` gives the plain exponential ladder that
 * the tests and the schedule's failed-run retry (1, 2, 4, 8, 16 s) use.
 */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
  readonly jitter: 'full' | 'none';
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({
  baseMs: 1_000,
  capMs: 16_000,
  jitter: 'full',
});

export type RandomSource = () => number;

/** The ceiling for attempt n (0-based): min(cap, base * 2^n). */
export function backoffCeilingMs(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2 ** 1100 is Infinity; min() keeps the cap, so there is no overflow to guard beyond that.
  return Math.min(options.capMs, options.baseMs * 2 ** n);
}

/** The delay to wait before retry number `attempt` (0-based). */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: RandomSource = Math.random,
): number {
  const ceiling = backoffCeilingMs(attempt, options);
  if (options.jitter === 'none') return ceiling;
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(unit * ceiling);
}

/**
 * Parse a Retry-After header value: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Returns milliseconds to wait (never negative), capped at `capMs`, or undefined when absent
 * or unparseable.
 */
export function parseRetryAfterMs(
  value: string | number | undefined | null,
  nowMs: number,
  capMs: number,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.min(value * 1000, capMs) : undefined;
  }
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, capMs);
  // An HTTP date names its day and month; Date.parse alone would read "-5" or "1 2" as dates.
  if (!/[a-z]{3}/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), capMs);
}
