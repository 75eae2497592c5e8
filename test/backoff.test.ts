import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF,
  backoffCeilingMs,
  backoffDelayMs,
  parseRetryAfterMs,
  type BackoffOptions,
} from '../src/core/backoff.js';

const SEED = 20261129;
const NONE: BackoffOptions = { ...DEFAULT_BACKOFF, jitter: 'none' };

describe('backoffCeilingMs', () => {
  it.each([
    [0, 1_000],
    [1, 2_000],
    [2, 4_000],
    [3, 8_000],
    [4, 16_000],
    [5, 16_000],
    [60, 16_000],
    [2_000, 16_000],
    [-3, 1_000],
    [1.9, 2_000],
  ])('attempt %s -> %s ms', (attempt, expected) => {
    expect(backoffCeilingMs(attempt)).toBe(expected);
  });

  it('follows its options', () => {
    const opts: BackoffOptions = { baseMs: 250, capMs: 30_000, jitter: 'full' };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeilingMs(n, opts))).toEqual([
      250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000,
    ]);
  });
});

describe('backoffDelayMs', () => {
  it('without jitter is the ladder 1, 2, 4, 8, 16, 16 s', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, NONE))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 16_000,
    ]);
  });

  it.each([
    ['random 1 gives the ceiling', () => 1, [1_000, 2_000, 4_000, 8_000, 16_000]],
    ['random 0 gives 0', () => 0, [0, 0, 0, 0, 0]],
    ['random 0.5 gives half', () => 0.5, [500, 1_000, 2_000, 4_000, 8_000]],
    ['random out of range is clamped (above)', () => 7, [1_000, 2_000, 4_000, 8_000, 16_000]],
    ['random out of range is clamped (below)', () => -1, [0, 0, 0, 0, 0]],
    ['random NaN counts as 0', () => NaN, [0, 0, 0, 0, 0]],
  ])('full jitter: %s', (_name, random, expected) => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelayMs(n, DEFAULT_BACKOFF, random))).toEqual(expected);
  });

  it('full jitter stays within [0, ceiling] and is an integer (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (attempt, r, baseMs, capMs) => {
          const opts: BackoffOptions = { baseMs, capMs, jitter: 'full' };
          const d = backoffDelayMs(attempt, opts, () => r);
          const ceiling = backoffCeilingMs(attempt, opts);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(ceiling);
          expect(ceiling).toBeLessThanOrEqual(capMs);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('the ceiling never decreases with the attempt number (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 1, max: 5_000 }), (n, baseMs) => {
        const opts: BackoffOptions = { baseMs, capMs: 60_000, jitter: 'none' };
        expect(backoffCeilingMs(n + 1, opts)).toBeGreaterThanOrEqual(backoffCeilingMs(n, opts));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.UTC(2026, 10, 29, 6, 0, 0);
  const cap = 60_000;
  it.each<[string, string | number | undefined | null, number | undefined]>([
    ['absent', undefined, undefined],
    ['null', null, undefined],
    ['empty', '', undefined],
    ['blank', '   ', undefined],
    ['delta seconds', '5', 5_000],
    ['zero', '0', 0],
    ['fractional seconds', '1.5', 1_500],
    ['surrounding spaces', ' 7 ', 7_000],
    ['capped seconds', '3600', 60_000],
    ['number seconds (body retry_after)', 3, 3_000],
    ['number capped', 1e9, 60_000],
    ['negative number', -1, undefined],
    ['NaN number', NaN, undefined],
    ['HTTP date 10 s ahead', new Date(now + 10_000).toUTCString(), 10_000],
    ['HTTP date in the past', new Date(now - 10_000).toUTCString(), 0],
    ['HTTP date far ahead is capped', new Date(now + 3_600_000).toUTCString(), 60_000],
    ['garbage', 'soon', undefined],
    ['negative seconds', '-5', undefined],
    ['numeric junk', '1 2', undefined],
  ])('%s', (_name, value, expected) => {
    expect(parseRetryAfterMs(value, now, cap)).toBe(expected);
  });

  it('delta seconds are never negative and never above the cap (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 600_000 }), (secs, capMs) => {
        const ms = parseRetryAfterMs(String(secs), now, capMs);
        expect(ms).toBe(Math.min(secs * 1000, capMs));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('an HTTP date round-trips to its distance from now, at second precision (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), (secs) => {
        const ms = parseRetryAfterMs(new Date(now + secs * 1000).toUTCString(), now, 600_000);
        expect(ms).toBe(secs * 1000);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
