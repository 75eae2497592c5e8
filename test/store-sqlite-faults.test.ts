/**
 * Faults on the embedded store: a read-only database, a database locked by another
 * connection, and a full disk. Each ends in a clear error code, with the committed data intact
 * and no partial page.
 *
 * The full disk is simulated with SQLite's own size cap (`PRAGMA max_page_count`, the
 * store's `maxPageCount` option): writes past it fail exactly as on a full disk (SQLITE_FULL).
 * A real tiny tmpfs needs mount privileges that CI may not have. Read-only is the driver's
 * read-only open: these tests run as root, for whom file permissions do not stop writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { skillContentHash } from '../src/remote/contract.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { ApplyPageInput } from '../src/store/types.js';
import { mkSkill } from './helpers/store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'skillsync-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 0, 1);
let n = 0;
const fresh = (): string => join(dir, `f-${n++}.db`);

function pageOf(p: number, size: number, bytes = 1000): ApplyPageInput {
  const items = Array.from({ length: size }, (_, i) => {
    const skill = mkSkill(`p${p}-${i}`, { description: `page ${p} `.padEnd(bytes, 'x') });
    return { skill, contentHash: skillContentHash(skill) };
  });
  return {
    items,
    tombstones: [],
    source: 'full',
    now: T0 + p,
    ttlMs: 60_000,
    epoch: null,
    guard: 'listing',
    checkpoint: {
      runId: 1,
      mode: 'full',
      startedAt: T0,
      nextPage: p + 1,
      cursor: null,
      pageSize: size,
      updatedSince: null,
      epoch: null,
      pagesApplied: p,
      skillsApplied: p * size,
    },
  };
}

async function expectIntact(store: Store, pages: number, size: number): Promise<void> {
  expect(await store.integrityCheck()).toEqual([]);
  expect((await store.getCheckpoint())?.pagesApplied ?? 0).toBe(pages);
  expect((await store.stats(T0)).skills).toBe(pages * size);
}

describe('sqlite faults', () => {
  it('read-only: reads work, writes fail with STORE_READONLY and change nothing', async () => {
    const path = fresh();
    const rw = await openSqliteStore({ path });
    await rw.applySkillPage(pageOf(1, 10));
    await rw.close();
    const ro = await openSqliteStore({ path, readonly: true });
    expect((await ro.getSkill('p1-0', T0))?.skillId).toBe('p1-0');
    await expect(ro.applySkillPage(pageOf(2, 10))).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_STORE_READONLY',
      retryable: false,
    });
    await expect(ro.setConfigOverrides({ a: 1 })).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_STORE_READONLY',
    });
    await expectIntact(ro, 1, 10);
    await ro.close();
  });

  it('read-only open of a database that needs migrations is refused as read-only', async () => {
    const path = fresh();
    new Database(path).close();
    await expect(openSqliteStore({ path, readonly: true })).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_STORE_READONLY',
    });
  });

  it('locked: another connection holding the write lock -> STORE_LOCKED (retryable); data intact; works after release', async () => {
    const path = fresh();
    const store = await openSqliteStore({ path, busyTimeoutMs: 0 });
    await store.applySkillPage(pageOf(1, 10));
    const other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    try {
      await expect(store.applySkillPage(pageOf(2, 10))).rejects.toMatchObject({
        code: 'SKILLSYNC_ERR_STORE_LOCKED',
        retryable: true,
      });
      // WAL: readers are not blocked by a writer.
      expect((await store.getSkill('p1-3', T0))?.skillId).toBe('p1-3');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await expectIntact(store, 1, 10);
    await store.applySkillPage(pageOf(2, 10));
    await expectIntact(store, 2, 10);
    await store.close();
  });

  it('locked: a rollback-journal database under an exclusive lock refuses reads and writes', async () => {
    const path = fresh();
    const setup = new Database(path);
    setup.close();
    const store = await openSqliteStore({ path, busyTimeoutMs: 0 });
    await store.applySkillPage(pageOf(1, 5));
    await store.close();
    const raw = new Database(path);
    raw.pragma('journal_mode = DELETE');
    raw.pragma('locking_mode = EXCLUSIVE');
    raw.exec('BEGIN EXCLUSIVE');
    try {
      await expect(openSqliteStore({ path, busyTimeoutMs: 0 })).rejects.toMatchObject({
        code: 'SKILLSYNC_ERR_STORE_LOCKED',
      });
    } finally {
      raw.exec('ROLLBACK');
      raw.close();
    }
    const again = await openSqliteStore({ path, busyTimeoutMs: 0 });
    await expectIntact(again, 1, 5);
    await again.close();
  });

  it('full disk (max_page_count): STORE_FULL, no partial page, committed pages intact, writable again with room', async () => {
    const path = fresh();
    const store = await openSqliteStore({ path, maxPageCount: 200 });
    let applied = 0;
    let failure: unknown;
    for (let p = 1; p <= 100; p++) {
      try {
        await store.applySkillPage(pageOf(p, 50));
        applied = p;
      } catch (err) {
        failure = err;
        break;
      }
    }
    expect(applied).toBeGreaterThan(0);
    expect(failure).toMatchObject({ code: 'SKILLSYNC_ERR_STORE_FULL', retryable: false });
    await expectIntact(store, applied, 50);
    await store.close();
    const roomy = await openSqliteStore({ path });
    await expectIntact(roomy, applied, 50);
    await roomy.applySkillPage(pageOf(applied + 1, 50));
    await expectIntact(roomy, applied + 1, 50);
    await roomy.close();
  });
});
