import type { Clock, TimerHandle } from '../../src/core/clock.js';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A manual clock: time moves only when a test says so, and every delay that was asked for is
 * recorded, so tests assert the requested backoff ladder without waiting.
 */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #pending: Pending[] = [];
  /** Every delay passed to setTimeout, in order. */
  readonly requestedDelays: number[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.#nextId++;
    this.requestedDelays.push(delayMs);
    this.#pending.push({ id, at: this.#now + Math.max(0, delayMs), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    const id = handle as unknown as number;
    this.#pending = this.#pending.filter((p) => p.id !== id);
  }

  /** Number of timers waiting to fire. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /** Moves time forward, firing due timers in order (timers scheduled while firing included). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#pending.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#pending[0];
      if (!next || next.at > target) break;
      this.#pending.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }

  /** advance() then let promise continuations run, repeatedly, so async code reacts. */
  async advanceAsync(ms: number, step = ms): Promise<void> {
    let left = ms;
    while (left > 0) {
      const d = Math.min(step, left);
      this.advance(d);
      left -= d;
      for (let i = 0; i < 10; i++) await Promise.resolve();
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Fires the next timer whatever its delay; returns false when none is pending. */
  runNext(): boolean {
    this.#pending.sort((a, b) => a.at - b.at || a.id - b.id);
    const next = this.#pending.shift();
    if (!next) return false;
    this.#now = Math.max(this.#now, next.at);
    next.fn();
    return true;
  }
}
