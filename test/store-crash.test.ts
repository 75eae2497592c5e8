/**
 * Crash safety of the embedded store: 20 seeded SIGKILLs of a child applying pages; after each
 * one the database opens, passes PRAGMA integrity_check, and holds exactly what its
 * checkpoint covers. (PostgreSQL reuses runCrashScenario with its own URL.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CRASH_WORKLOAD, expectedCrashDigest, lastPageOf } from './helpers/store-crash-workload.js';
import { runCrashScenario } from './helpers/store-crash.js';

const dir = mkdtempSync(join(tmpdir(), 'skillsync-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('crash workload maths', () => {
  it('lastPageOf matches a brute-force replay', () => {
    const w = { pageSize: 7, pool: 30 };
    const last = new Map<number, number>();
    for (let page = 1; page <= 25; page++) {
      for (let i = 0; i < w.pageSize; i++) last.set(((page - 1) * w.pageSize + i) % w.pool, page);
      for (let slot = 0; slot < w.pool; slot++) expect(lastPageOf(slot, page, w)).toBe(last.get(slot) ?? 0);
    }
    expect(expectedCrashDigest(3, DEFAULT_CRASH_WORKLOAD)).not.toBe(
      expectedCrashDigest(4, DEFAULT_CRASH_WORKLOAD),
    );
  });
});

describe('sqlite crash safety', () => {
  it('survives 20 SIGKILLs mid-apply with the checkpoint matching the data', async () => {
    const url = `sqlite:${join(dir, 'crash.db')}`;
    const result = await runCrashScenario({ url, kills: 20, seed: 20261129 });
    expect(result.kills).toBe(20);
    expect(result.pagesApplied).toBeGreaterThan(20);
    // Most kills land after some progress, i.e. while pages are being written (a kill during
    // the first page of a run counts too, but shows no progress).
    expect(result.killsWithProgress).toBeGreaterThanOrEqual(10);
  }, 60_000);
});
