/**
 * The retry loop for marketplace requests, kept small and pure at its core:
 * `classify(error, state, policy, random)` decides whether to retry and how long to wait, and
 * `withRetry` runs attempts, sleeping on the injected Clock so tests assert the requested
 * delays instead of waiting for them.
 *
 * Two budgets, as undici's RetryHandler and client-go keep them apart:
 * - transient failures (5xx, timeouts, resets, malformed bodies) count towards `maxAttempts`
 *   (5 in all by default) with full-jitter backoff from 1 s doubling to 16 s; a Retry-After on
 *   such an answer (a 503 often has one) raises the wait, never lowers it;
 * - 429s do not count as failures (the server is healthy, only busy): each waits at least its
 *   Retry-After (capped), and they are bounded separately by `maxRateLimitedRetries`, so a
 *   server that answers 429 for ever still ends the loop.
 * Everything else (auth, bad request, not found, conflict, gone, aborted) stops at once: the
 * error's `retryable` flag decides, never its message.
 */
import { backoffCeilingMs, backoffDelayMs, type BackoffOptions, type RandomSource } from '../core/backoff.js';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { RemoteHttpError, SkillsyncError, isRetryable } from '../core/errors.js';

export interface RetryPolicy {
  /** Attempts in all, counting the first, for transient failures. */
  readonly maxAttempts: number;
  readonly backoff: BackoffOptions;
  /** 429 answers retried on top of maxAttempts before giving up. */
  readonly maxRateLimitedRetries: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  backoff: Object.freeze({ baseMs: 1_000, capMs: 16_000, jitter: 'full' as const }),
  maxRateLimitedRetries: 10,
});

export interface RetryState {
  /** Transient failures so far, this one included. */
  readonly failures: number;
  /** 429 answers so far, this one included. */
  readonly rateLimited: number;
}

export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number; readonly kind: 'transient' | 'rate_limited' }
  | { readonly retry: false; readonly delayMs: 0; readonly kind: 'permanent' | 'exhausted' };

const STOP_PERMANENT: RetryDecision = Object.freeze({ retry: false, delayMs: 0, kind: 'permanent' });
const STOP_EXHAUSTED: RetryDecision = Object.freeze({ retry: false, delayMs: 0, kind: 'exhausted' });

export function isRateLimited(error: unknown): boolean {
  return error instanceof SkillsyncError && error.code === 'SKILLSYNC_ERR_REMOTE_RATE_LIMITED';
}

function retryAfterOf(error: unknown): number | undefined {
  return error instanceof RemoteHttpError ? error.retryAfterMs : undefined;
}

/**
 * Pure retry decision for the error of the latest attempt. `state` counts that error already
 * (the first failure has `failures: 1`).
 */
export function classify(
  error: unknown,
  state: RetryState,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random: RandomSource = Math.random,
): RetryDecision {
  if (!isRetryable(error)) return STOP_PERMANENT;
  const retryAfterMs = retryAfterOf(error);
  if (isRateLimited(error)) {
    if (state.rateLimited > policy.maxRateLimitedRetries) return STOP_EXHAUSTED;
    // Without a Retry-After, wait the un-jittered ceiling: full jitter could retry a busy
    // server at once.
    const delayMs = retryAfterMs ?? backoffCeilingMs(state.rateLimited - 1, policy.backoff);
    return { retry: true, delayMs, kind: 'rate_limited' };
  }
  if (state.failures >= policy.maxAttempts) return STOP_EXHAUSTED;
  const delayMs = Math.max(backoffDelayMs(state.failures - 1, policy.backoff, random), retryAfterMs ?? 0);
  return { retry: true, delayMs, kind: 'transient' };
}

export interface RetryInfo {
  /** 1-based number of the attempt that failed. */
  readonly attempt: number;
  readonly error: unknown;
  readonly delayMs: number;
  readonly kind: 'transient' | 'rate_limited';
}

export interface WithRetryOptions {
  readonly policy?: RetryPolicy;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly signal?: AbortSignal | undefined;
  /** false: one attempt only (the caller retries with its own, durable backoff). */
  readonly retry?: boolean | undefined;
  /** Called before each backoff sleep. Must not throw. */
  readonly onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Turns an abort (the signal's reason) into the error to throw. */
  readonly abortError?: (() => unknown) | undefined;
}

/**
 * Runs `attempt(n)` (n from 1) until it succeeds or `classify` says stop; throws the last
 * error. An abort during a backoff sleep cancels the sleep and throws `abortError()`.
 */
export async function withRetry<T>(
  attempt: (n: number) => Promise<T>,
  options: WithRetryOptions = {},
): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  let failures = 0;
  let rateLimited = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (options.retry === false) throw error;
      if (isRateLimited(error)) rateLimited++;
      else failures++;
      const decision = classify(error, { failures, rateLimited }, policy, random);
      if (!decision.retry) throw error;
      options.onRetry?.({ attempt: n, error, delayMs: decision.delayMs, kind: decision.kind });
      try {
        await sleep(clock, decision.delayMs, options.signal);
      } catch (abortReason) {
        throw options.abortError ? options.abortError() : abortReason;
      }
    }
  }
}
