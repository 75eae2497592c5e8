/**
 * The request budget: at most `requestsPerMinute` requests to the marketplace in any window of
 * one minute, shared by every caller of a client (and by several clients when they are given
 * the same instance), as the real service publishes 100 requests/min per instance.
 *
 * It is a token bucket whose tokens come back one window after they were spent (a sliding
 * window log), not one that refills continuously: a bucket of N refilling N/min lets 2N
 * requests through in a minute that starts with a full bucket, which a server counting per
 * minute answers with 429s. Here every grant is remembered until it leaves the window, so no
 * window of `windowMs` ever holds more than N grants, whatever the arrival pattern, and a
 * quiet client can still burst N at once.
 *
 * A 429 pauses every caller until Retry-After has passed (`pauseFor`), so one rate-limited
 * request does not leave the others to hammer the server. Waiters are served first come,
 * first served; an abort removes a waiter at once. All time comes from the injected Clock.
 */
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';

export interface RequestBudgetOptions {
  /** Requests allowed per window; 0 means unlimited (429 pauses still apply). */
  readonly requestsPerMinute: number;
  /** The window length; one minute unless a test or a server says otherwise. */
  readonly windowMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class RequestBudget {
  readonly limit: number;
  readonly windowMs: number;
  readonly #clock: Clock;
  /** Grant times still inside the window, oldest first (a queue: `#head` is its start). */
  #grants: number[] = [];
  #head = 0;
  #pausedUntil = 0;
  #waiters: Waiter[] = [];
  #timer: TimerHandle | undefined;
  #timerAt = 0;
  #granted = 0;

  constructor(options: RequestBudgetOptions, clock: Clock = systemClock) {
    const { requestsPerMinute, windowMs = 60_000 } = options;
    if (!Number.isSafeInteger(requestsPerMinute) || requestsPerMinute < 0) {
      throw new RangeError(`requestsPerMinute must be an integer >= 0, got ${requestsPerMinute}`);
    }
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    this.limit = requestsPerMinute;
    this.windowMs = windowMs;
    this.#clock = clock;
  }

  /** Total grants so far. */
  get granted(): number {
    return this.#granted;
  }

  /** Callers currently waiting for a token. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Until when (epoch ms) a 429 pauses every caller; 0 or a past time when not paused. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Tokens available right now (Infinity when unlimited), ignoring a pause. */
  get available(): number {
    if (this.limit === 0) return Infinity;
    this.#expire(this.#clock.now());
    return this.limit - (this.#grants.length - this.#head);
  }

  /**
   * Waits for a token. Resolves at once when one is free and nobody waits before this caller.
   * Rejects with the signal's reason when aborted (the waiter leaves the queue).
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#waiters.length === 0 && this.#tryGrant(this.#clock.now())) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason as Error);
          this.#schedule();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#schedule();
    });
  }

  /** Pauses every caller for at least `delayMs` from now (a 429's Retry-After). */
  pauseFor(delayMs: number): void {
    if (!(delayMs > 0)) return;
    const until = this.#clock.now() + delayMs;
    if (until > this.#pausedUntil) this.#pausedUntil = until;
    this.#schedule();
  }

  #expire(now: number): void {
    const cutoff = now - this.windowMs;
    while (this.#head < this.#grants.length && (this.#grants[this.#head] as number) <= cutoff) this.#head++;
    // Compact now and then so the queue's storage stays about `limit` long.
    if (this.#head > 1024 && this.#head * 2 > this.#grants.length) {
      this.#grants = this.#grants.slice(this.#head);
      this.#head = 0;
    }
  }

  #tryGrant(now: number): boolean {
    if (now < this.#pausedUntil) return false;
    if (this.limit !== 0) {
      this.#expire(now);
      if (this.#grants.length - this.#head >= this.limit) return false;
      this.#grants.push(now);
    }
    this.#granted++;
    return true;
  }

  /** When the next token can be granted (epoch ms). */
  #nextAt(now: number): number {
    let at = Math.max(now, this.#pausedUntil);
    if (this.limit !== 0) {
      this.#expire(now);
      if (this.#grants.length - this.#head >= this.limit) {
        // The oldest grant inside the window leaves it at (its time + windowMs).
        at = Math.max(at, (this.#grants[this.#head] as number) + this.windowMs);
      }
    }
    return at;
  }

  #drain(): void {
    const now = this.#clock.now();
    while (this.#waiters.length > 0 && this.#tryGrant(now)) {
      const w = this.#waiters.shift() as Waiter;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#waiters.length === 0) {
      if (this.#timer !== undefined) {
        this.#clock.clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      return;
    }
    const now = this.#clock.now();
    const at = this.#nextAt(now);
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at) return;
      this.#clock.clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, at - now);
  }
}
