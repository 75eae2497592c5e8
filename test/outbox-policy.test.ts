/**
 * The outbox's pure parts: input validation, chain keys, error classification, the retry
 * delay (full jitter, Retry-After floor, cap) and option validation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, PermanentError, RemoteHttpError, SkillsyncError } from '../src/core/errors.js';
import {
  installChainKey,
  MAX_COMMENT_CHARS,
  ratingChainKey,
  validateInstallInput,
  validateRateInput,
  type RateInput,
} from '../src/sync/local-actions.js';
import {
  classifyUploadError,
  DEFAULT_OUTBOX_UPLOADER,
  describeUploadError,
  resolveOutboxUploaderOptions,
  retryDelayMs,
} from '../src/sync/outbox-uploader.js';

function refusal(fn: () => unknown): SkillsyncError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SkillsyncError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('validateRateInput', () => {
  const ok: RateInput = { skillId: 's1', userId: 'u1', rating: 4 };

  it('accepts ratings 1..5 and normalises an empty comment to null', () => {
    for (const rating of [1, 2, 3, 4, 5]) expect(validateRateInput({ ...ok, rating }).rating).toBe(rating);
    expect(validateRateInput({ ...ok, comment: '' }).comment).toBeNull();
    expect(validateRateInput({ ...ok, comment: 'nice' }).comment).toBe('nice');
    expect(validateRateInput({ ...ok, comment: 'x'.repeat(MAX_COMMENT_CHARS) }).comment).toHaveLength(1000);
    // 1,000 emoji are 2,000 UTF-16 units but 1,000 characters.
    expect(validateRateInput({ ...ok, comment: '👍'.repeat(1000) }).comment).toHaveLength(2000);
  });

  it.each([
    [{ ...ok, rating: 0 }, 'rating'],
    [{ ...ok, rating: 6 }, 'rating'],
    [{ ...ok, rating: 3.5 }, 'rating'],
    [{ ...ok, rating: Number.NaN }, 'rating'],
    [{ ...ok, rating: '4' as unknown as number }, 'rating'],
    [{ ...ok, userId: '' }, 'user_id'],
    [{ ...ok, userId: '   ' }, 'user_id'],
    [{ ...ok, userId: undefined as unknown as string }, 'user_id'],
    [{ ...ok, skillId: '' }, 'skill_id'],
    [{ ...ok, userId: 'u'.repeat(257) }, 'user_id'],
    [{ ...ok, comment: 'x'.repeat(1001) }, 'comment'],
    [{ ...ok, comment: '👍'.repeat(1001) }, 'comment'],
    [{ ...ok, comment: 42 as unknown as string }, 'comment'],
  ])('refuses %j naming %s', (input, field) => {
    const err = refusal(() => validateRateInput(input));
    expect(err.code).toBe('SKILLSYNC_ERR_ACTION_INVALID');
    expect(err.status).toBe(400);
    expect(err.details).toEqual({ field });
    expect(err.message).toContain(field);
  });

  it('validates installs', () => {
    expect(validateInstallInput({ skillId: 's', agentId: 'a' })).toEqual({ skillId: 's', agentId: 'a' });
    expect(refusal(() => validateInstallInput({ skillId: 's', agentId: '' })).details).toEqual({
      field: 'agent_id',
    });
  });
});

describe('chain keys', () => {
  it('are injective over (user, skill) even with separators in the ids', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (u1, s1, u2, s2) => {
        fc.pre(u1 !== u2 || s1 !== s2);
        expect(ratingChainKey(u1, s1)).not.toBe(ratingChainKey(u2, s2));
      }),
      { seed: 6, numRuns: 500 },
    );
    expect(ratingChainKey('a:b', 'c')).not.toBe(ratingChainKey('a', 'b:c'));
    expect(installChainKey('a', 'b')).not.toBe(ratingChainKey('a', 'b'));
  });
});

describe('classifyUploadError', () => {
  const http = (code: ConstructorParameters<typeof RemoteHttpError>[0], status: number): RemoteHttpError =>
    new RemoteHttpError(code, `HTTP ${status}`, status);

  it.each([
    [http('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 503), 'transient'],
    [http('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', 429), 'transient'],
    [new SkillsyncError('SKILLSYNC_ERR_REMOTE_TIMEOUT', 'timeout'), 'transient'],
    [new SkillsyncError('SKILLSYNC_ERR_REMOTE_NETWORK', 'reset'), 'transient'],
    [new SkillsyncError('SKILLSYNC_ERR_REMOTE_MALFORMED', 'not json'), 'transient'],
    [new Error('ECONNRESET'), 'transient'],
    [http('SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 400), 'permanent'],
    [http('SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 422), 'permanent'],
    [http('SKILLSYNC_ERR_REMOTE_NOT_FOUND', 404), 'permanent'],
    [http('SKILLSYNC_ERR_REMOTE_CONFLICT', 409), 'permanent'],
    [new PermanentError('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 'told to stop'), 'permanent'],
    [http('SKILLSYNC_ERR_REMOTE_AUTH', 401), 'auth'],
  ])('%s -> %s', (err, expected) => {
    expect(classifyUploadError(err)).toBe(expected);
  });

  it('describes errors with code and status, without secrets added', () => {
    expect(describeUploadError(http('SKILLSYNC_ERR_REMOTE_BAD_REQUEST', 422))).toBe(
      'SKILLSYNC_ERR_REMOTE_BAD_REQUEST (HTTP 422): HTTP 422',
    );
  });
});

describe('retryDelayMs', () => {
  const opts = { backoffBaseMs: 1_000, backoffCapMs: 3_600_000 };

  it('doubles from the base up to the cap (upper edge of the jitter)', () => {
    const top = (): number => 1;
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, undefined, opts, top))).toEqual([
      1000, 2000, 4000, 8000, 16000,
    ]);
    expect(retryDelayMs(13, undefined, opts, top)).toBe(3_600_000);
    expect(retryDelayMs(500, undefined, opts, top)).toBe(3_600_000);
  });

  it('is full jitter: uniform in [0, ceiling]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
        const d = retryDelayMs(n, undefined, opts, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(opts.backoffCapMs, 1000 * 2 ** (n - 1)));
      }),
      { seed: 7, numRuns: 300 },
    );
    expect(retryDelayMs(3, undefined, opts, () => 0)).toBe(0);
  });

  it('never goes below a 429 Retry-After, itself capped', () => {
    const limited = new RemoteHttpError('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', '429', 429, {
      retryAfterMs: 30_000,
    });
    expect(retryDelayMs(1, limited, opts, () => 0.5)).toBe(30_000);
    expect(retryDelayMs(20, limited, opts, () => 1)).toBe(3_600_000);
    const huge = new RemoteHttpError('SKILLSYNC_ERR_REMOTE_RATE_LIMITED', '429', 429, { retryAfterMs: 9e9 });
    expect(retryDelayMs(1, huge, opts, () => 0)).toBe(3_600_000);
  });
});

describe('resolveOutboxUploaderOptions', () => {
  it('defaults are frozen and valid', () => {
    expect(Object.isFrozen(DEFAULT_OUTBOX_UPLOADER)).toBe(true);
    const resolved = resolveOutboxUploaderOptions();
    expect(resolved).toEqual(DEFAULT_OUTBOX_UPLOADER);
    expect(resolved.concurrency).toBe(10);
    expect(resolved.maxAttempts).toBe(10);
    expect(resolved.backoffCapMs).toBe(3_600_000);
    expect(resolved.intervalMinutes).toBe(30);
    expect(Object.isFrozen(resolved)).toBe(true);
  });

  it.each([
    [{ intervalMinutes: 9 }, 'outbox.intervalMinutes'],
    [{ intervalMinutes: 121 }, 'outbox.intervalMinutes'],
    [{ intervalMinutes: 30.5 }, 'outbox.intervalMinutes'],
    [{ concurrency: 0 }, 'outbox.concurrency'],
    [{ maxAttempts: 0 }, 'outbox.maxAttempts'],
    [{ backoffBaseMs: 2000, backoffCapMs: 1000 }, 'outbox.backoffCapMs'],
  ])('refuses %j naming %s', (options, variable) => {
    let caught: unknown;
    try {
      resolveOutboxUploaderOptions(options);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(variable);
  });

  it('accepts the range edges', () => {
    expect(resolveOutboxUploaderOptions({ intervalMinutes: 10 }).intervalMinutes).toBe(10);
    expect(resolveOutboxUploaderOptions({ intervalMinutes: 120 }).intervalMinutes).toBe(120);
  });
});
