import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RemoteHttpError, SkillsyncError, type ErrorCode } from '../src/core/errors.js';
import { DEFAULT_RETRY_POLICY, classify, withRetry, type RetryPolicy } from '../src/remote/retry.js';
import { FakeClock } from './helpers/fake-clock.js';

const http = (code: ErrorCode, status: number, retryAfterMs?: number): RemoteHttpError =>
  new RemoteHttpError(code, `GET /skills answered ${status}`, status, { retryAfterMs });
const plain = (code: ErrorCode): SkillsyncError => new SkillsyncError(code, code);
const one = (): number => 1;

describe('classify (pure retry decision)', () => {
  const first = { failures: 1, rateLimited: 0 };
  it.each<[string, unknown, { failures: number; rateLimited: number }, unknown]>([
    [
      '503 first failure',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      first,
      { retry: true, delayMs: 1_000, kind: 'transient' },
    ],
    [
      '500 second failure',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 500),
      { failures: 2, rateLimited: 0 },
      { retry: true, delayMs: 2_000, kind: 'transient' },
    ],
    [
      '502 fourth failure',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 502),
      { failures: 4, rateLimited: 0 },
      { retry: true, delayMs: 8_000, kind: 'transient' },
    ],
    [
      '503 fifth failure: exhausted',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      { failures: 5, rateLimited: 0 },
      { retry: false, delayMs: 0, kind: 'exhausted' },
    ],
    [
      '503 with a longer Retry-After waits for it',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503, 7_000),
      first,
      { retry: true, delayMs: 7_000, kind: 'transient' },
    ],
    [
      '503 with a shorter Retry-After keeps the backoff',
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503, 10),
      first,
      { retry: true, delayMs: 1_000, kind: 'transient' },
    ],
    [
      'timeout',
      plain('SKILLSYNC_ERR_REMOTE_TIMEOUT'),
      first,
      { retry: true, delayMs: 1_000, kind: 'transient' },
    ],
    [
      'reset',
      plain('SKILLSYNC_ERR_REMOTE_NETWORK'),
      { failures: 3, rateLimited: 2 },
      { retry: true, delayMs: 4_000, kind: 'transient' },
    ],
    [
      'malformed body',
      http('SKILLSYNC_ERR_REMOTE_MALFORMED', 200),
      first,
      { retry: true, delayMs: 1_000, kind: 'transient' },
    ],
    [
      '429 with Retry-After 30 s',
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 30_000),
      { failures: 0, rateLimited: 1 },
      { retry: true, delayMs: 30_000, kind: 'rate_limited' },
    ],
    [
      '429 does not use up the failure budget',
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 2_000),
      { failures: 5, rateLimited: 1 },
      { retry: true, delayMs: 2_000, kind: 'rate_limited' },
    ],
    [
      '429 without Retry-After waits the un-jittered ceiling',
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429),
      { failures: 0, rateLimited: 3 },
      { retry: true, delayMs: 4_000, kind: 'rate_limited' },
    ],
    [
      '429 beyond its own bound: exhausted',
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 1_000),
      { failures: 0, rateLimited: 11 },
      { retry: false, delayMs: 0, kind: 'exhausted' },
    ],
    [
      '401 auth',
      http('SKILLSYNC_ERR_REMOTE_AUTH', 401),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '403 auth',
      http('SKILLSYNC_ERR_REMOTE_AUTH', 403),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '400 bad request',
      http('SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 400),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '422 bad request',
      http('SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 422),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '404',
      http('SKILLSYNC_ERR_REMOTE_NOT_FOUND', 404),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '409',
      http('SKILLSYNC_ERR_REMOTE_CONFLICT', 409),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      '410 gone: the engine restarts the listing',
      http('SKILLSYNC_ERR_REMOTE_GONE', 410),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      'aborted',
      plain('SKILLSYNC_ERR_REMOTE_ABORTED'),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      'a retryable code made permanent',
      new RemoteHttpError('SKILLSYNC_ERR_REMOTE_MALFORMED', 'too big', 200, { retryable: false }),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    [
      'an unknown error is not retried',
      new Error('boom'),
      first,
      { retry: false, delayMs: 0, kind: 'permanent' },
    ],
    ['a thrown string is not retried', 'boom', first, { retry: false, delayMs: 0, kind: 'permanent' }],
  ])('%s', (_name, error, state, expected) => {
    expect(classify(error, state, DEFAULT_RETRY_POLICY, one)).toEqual(expected);
  });

  it('uses full jitter from the random source', () => {
    const err = http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503);
    expect(classify(err, { failures: 3, rateLimited: 0 }, DEFAULT_RETRY_POLICY, () => 0.25)).toMatchObject({
      delayMs: 1_000,
    });
    expect(classify(err, { failures: 3, rateLimited: 0 }, DEFAULT_RETRY_POLICY, () => 0)).toMatchObject({
      retry: true,
      delayMs: 0,
    });
  });
});

/** Runs a retry loop to completion on a FakeClock, firing each backoff timer as it appears. */
async function drive<T>(clock: FakeClock, run: Promise<T>): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  run.then(
    (value) => (outcome = { ok: true, value }),
    (error: unknown) => (outcome = { ok: false, error }),
  );
  while (outcome === undefined) {
    await new Promise((r) => setImmediate(r));
    if (outcome === undefined) clock.runNext();
  }
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}

describe('withRetry', () => {
  it('5xx four times then success: the ladder is [1000, 2000, 4000, 8000] with random=1', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const result = await drive(
      clock,
      withRetry(
        async (n) => {
          calls++;
          expect(n).toBe(calls);
          if (n < 5) throw http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503);
          return 'ok';
        },
        { clock, random: one },
      ),
    );
    expect(result).toBe('ok');
    expect(calls).toBe(5);
    expect(clock.requestedDelays).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('gives up after 5 attempts in all and throws the last error', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 500 + calls);
      },
      { clock, random: one },
    );
    await expect(drive(clock, run)).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE',
      httpStatus: 505,
    });
    expect(calls).toBe(5);
    expect(clock.requestedDelays).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('caps the ladder at 16 s with a larger attempt budget', async () => {
    const clock = new FakeClock();
    const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 8 };
    const run = withRetry(
      async () => {
        throw plain('SKILLSYNC_ERR_REMOTE_TIMEOUT');
      },
      { clock, random: one, policy },
    );
    await expect(drive(clock, run)).rejects.toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_TIMEOUT' });
    expect(clock.requestedDelays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000]);
  });

  it('429s wait their Retry-After and do not count against the 5 attempts', async () => {
    const clock = new FakeClock();
    const script: (RemoteHttpError | 'ok')[] = [
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 30_000),
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 5_000),
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503),
      'ok',
    ];
    const retries: string[] = [];
    const result = await drive(
      clock,
      withRetry(
        async (n) => {
          const step = script[n - 1];
          if (step === 'ok') return n;
          throw step;
        },
        { clock, random: one, onRetry: (i) => retries.push(`${i.attempt}:${i.kind}`) },
      ),
    );
    expect(result).toBe(7);
    expect(clock.requestedDelays).toEqual([1_000, 30_000, 2_000, 5_000, 4_000, 8_000]);
    expect(retries).toEqual([
      '1:transient',
      '2:rate_limited',
      '3:transient',
      '4:rate_limited',
      '5:transient',
      '6:transient',
    ]);
  });

  it('a server answering 429 for ever still ends the loop (bounded)', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429, 1_000);
      },
      { clock, random: one },
    );
    await expect(drive(clock, run)).rejects.toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_RATE_LIMITED' });
    expect(calls).toBe(DEFAULT_RETRY_POLICY.maxRateLimitedRetries + 1);
    expect(clock.requestedDelays.every((d) => d === 1_000)).toBe(true);
  });

  it.each<[ErrorCode, number]>([
    ['SKILLSYNC_ERR_REMOTE_AUTH', 401],
    ['SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 422],
    ['SKILLSYNC_ERR_REMOTE_GONE', 410],
    ['SKILLSYNC_ERR_REMOTE_CONFLICT', 409],
  ])('%s stops after one attempt without sleeping', async (code, status) => {
    const clock = new FakeClock();
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw http(code, status);
      },
      { clock, random: one },
    );
    await expect(run).rejects.toMatchObject({ code, httpStatus: status });
    expect(calls).toBe(1);
    expect(clock.requestedDelays).toEqual([]);
  });

  it('retry: false makes one attempt only', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503);
      },
      { clock, random: one, retry: false },
    );
    await expect(run).rejects.toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE' });
    expect(calls).toBe(1);
    expect(clock.requestedDelays).toEqual([]);
  });

  it('an abort cancels the pending backoff sleep at once', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503);
      },
      {
        clock,
        random: one,
        signal: ac.signal,
        abortError: () => plain('SKILLSYNC_ERR_REMOTE_ABORTED'),
      },
    );
    const caught = run.catch((e: unknown) => e);
    while (clock.pendingCount === 0) await new Promise((r) => setImmediate(r));
    expect(clock.requestedDelays).toEqual([1_000]);
    ac.abort();
    expect(await caught).toMatchObject({ code: 'SKILLSYNC_ERR_REMOTE_ABORTED' });
    expect(clock.pendingCount).toBe(0);
    expect(calls).toBe(1);
  });
});

describe('withRetry (properties)', () => {
  const outcome = fc.oneof(
    fc.constant<'ok'>('ok'),
    fc.constantFrom<ErrorCode>(
      'SKILLSYNC_ERR_REMOTE_UNAVAILABLE',
      'SKILLSYNC_ERR_REMOTE_TIMEOUT',
      'SKILLSYNC_ERR_REMOTE_NETWORK',
      'SKILLSYNC_ERR_REMOTE_MALFORMED',
      'SKILLSYNC_ERR_REMOTE_AUTH',
      'SKILLSYNC_ERR_REMOTE_GONE',
    ),
    fc.integer({ min: 0, max: 120 }).map((secs) => ({ rateLimitedSecs: secs })),
  );

  it('bounded attempts; 429 waits at least Retry-After; transient waits within the ladder; stops on permanent', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(outcome, { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (script, r) => {
          const clock = new FakeClock();
          const retryAfterCapMs = 60_000;
          let calls = 0;
          const run = withRetry(
            async (n) => {
              calls++;
              const step = script[n - 1] ?? 'ok';
              if (step === 'ok') return n;
              if (typeof step === 'string') throw http(step, 500);
              throw http(
                'SKILLSYNC_ERR_REMOTE_RATE_LIMITED',
                429,
                Math.min(step.rateLimitedSecs * 1000, retryAfterCapMs),
              );
            },
            { clock, random: () => r },
          );
          let failedWith: unknown;
          await drive(clock, run).catch((e: unknown) => (failedWith = e));
          // A model of the policy, step by step.
          let failures = 0;
          let limited = 0;
          const expectedDelays: [number, number][] = [];
          let expectedCalls = 0;
          for (let i = 0; ; i++) {
            expectedCalls++;
            const step = script[i] ?? 'ok';
            if (step === 'ok') break;
            if (typeof step === 'object') {
              limited++;
              if (limited > DEFAULT_RETRY_POLICY.maxRateLimitedRetries) break;
              const ms = Math.min(step.rateLimitedSecs * 1000, retryAfterCapMs);
              expectedDelays.push([ms, ms]);
              continue;
            }
            if (step === 'SKILLSYNC_ERR_REMOTE_AUTH' || step === 'SKILLSYNC_ERR_REMOTE_GONE') break;
            failures++;
            if (failures >= DEFAULT_RETRY_POLICY.maxAttempts) break;
            expectedDelays.push([0, Math.min(16_000, 1_000 * 2 ** (failures - 1))]);
          }
          expect(calls).toBe(expectedCalls);
          expect(calls).toBeLessThanOrEqual(
            DEFAULT_RETRY_POLICY.maxAttempts + DEFAULT_RETRY_POLICY.maxRateLimitedRetries + 1,
          );
          expect(clock.requestedDelays).toHaveLength(expectedDelays.length);
          clock.requestedDelays.forEach((d, i) => {
            const [lo, hi] = expectedDelays[i] as [number, number];
            expect(d).toBeGreaterThanOrEqual(lo);
            expect(d).toBeLessThanOrEqual(hi);
          });
          const last = script[calls - 1];
          if (last === undefined || last === 'ok') expect(failedWith).toBeUndefined();
          else expect(failedWith).toBeInstanceOf(RemoteHttpError);
        },
      ),
      { seed: 20261129, numRuns: 150 },
    );
  });
});
