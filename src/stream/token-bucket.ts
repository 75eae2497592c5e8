/**
 * A token bucket on the injected clock: `capacity` tokens, refilled continuously at
 * `ratePerSec`. A rate of 0 means unlimited. Pure arithmetic on `now`, no timers.
 */
export class TokenBucket {
  readonly #ratePerSec: number;
  readonly #capacity: number;
  #tokens: number;
  #updatedAt: number;

  constructor(ratePerSec: number, capacity: number, now: number) {
    this.#ratePerSec = ratePerSec;
    this.#capacity = Math.max(1, capacity);
    this.#tokens = this.#capacity;
    this.#updatedAt = now;
  }

  get unlimited(): boolean {
    return this.#ratePerSec <= 0;
  }

  /** Takes one token; false when the bucket is empty (the caller is over the limit). */
  take(now: number): boolean {
    if (this.#ratePerSec <= 0) return true;
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#updatedAt = Math.max(this.#updatedAt, now);
    this.#tokens = Math.min(this.#capacity, this.#tokens + (elapsed * this.#ratePerSec) / 1000);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
