/**
 * The clock port. Every timer and every reading of "now" in skillsync goes through a Clock,
 * so tests can drive time (test/helpers/fake-clock.ts) and assert the delays that were asked
 * for instead of waiting for them. vitest's fake timers do not cover node:timers/promises,
 * which is one more reason for the port.
 */
export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout;

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, delayMs: number): TimerHandle => {
    const t = setTimeout(fn, delayMs);
    // Timers must never keep a finished process alive; the owner keeps its own handles.
    t.unref();
    return t;
  },
  clearTimeout: (handle: TimerHandle) => clearTimeout(handle as NodeJS.Timeout),
});

/**
 * Sleep on the given clock. An abort cancels the pending sleep at once and rejects with the
 * signal's reason, so a shutdown never waits out a backoff.
 */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
