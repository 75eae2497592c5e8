import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/core/errors.js';
import { skillContentHash } from '../src/remote/contract.js';
import { openStore, parseDatabaseUrl, redactDatabaseUrl } from '../src/store/open-store.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { ApplyPageInput } from '../src/store/types.js';
import { primarySqliteCode, storeErrorCodeFor } from '../src/store/sqlite/sqlite-errors.js';
import { mkSkill } from './helpers/store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'skillsync-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 0, 1);

describe('parseDatabaseUrl', () => {
  it.each([
    ['sqlite:./data/skillsync.db', { kind: 'sqlite', path: './data/skillsync.db' }],
    ['sqlite::memory:', { kind: 'sqlite', path: ':memory:' }],
    ['sqlite:/var/lib/skillsync/s.db', { kind: 'sqlite', path: '/var/lib/skillsync/s.db' }],
    ['sqlite:///var/lib/s.db', { kind: 'sqlite', path: '/var/lib/s.db' }],
    [
      'postgres://postgres@127.0.0.1:5432/test',
      { kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test' },
    ],
    [
      'postgresql://u:p@db.internal/app?schema=skillsync&pool=4&sslmode=disable',
      {
        kind: 'postgres',
        url: 'postgresql://u:p@db.internal/app?sslmode=disable',
        schema: 'skillsync',
        poolSize: 4,
      },
    ],
  ])('%s', (url, expected) => {
    expect(parseDatabaseUrl(url)).toEqual(expected);
  });

  it.each([
    [''],
    ['mysql://x@y/z'],
    ['sqlite:'],
    ['sqlite:./x.db?mode=ro'],
    ['postgres://u:secret@h/db?schema=bad-name'],
    ['postgres://u:secret@h/db?pool=0'],
    ['postgres://u:secret@h/db?pool=abc'],
    ['postgres://u:secret@'],
    ['./relative.db'],
  ])('refuses %j with a ConfigError naming the variable and no password', (url) => {
    let caught: unknown;
    try {
      parseDatabaseUrl(url);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const e = caught as ConfigError;
    expect(e.code).toBe('SKILLSYNC_ERR_CONFIG_INVALID');
    expect(e.variable).toBe('SKILLSYNC_DATABASE_URL');
    expect(e.message).toContain('SKILLSYNC_DATABASE_URL');
    expect(e.message).not.toContain('secret');
  });

  it('names another variable when asked, and redacts passwords', () => {
    expect(() => parseDatabaseUrl('nope', 'SKILLSYNC_TEST_POSTGRES_URL')).toThrow(
      /SKILLSYNC_TEST_POSTGRES_URL/,
    );
    expect(redactDatabaseUrl('postgres://u:pw@h:1/d')).toBe('postgres://u:***@h:1/d');
    expect(redactDatabaseUrl('postgres://u@h/d')).toBe('postgres://u@h/d');
  });
});

describe('openStore (sqlite)', () => {
  it('creates the directory of a file database and persists across reopen', async () => {
    const path = join(dir, 'nested', 'deeper', 'skillsync.db');
    const s1 = await openStore(`sqlite:${path}`);
    expect(s1.kind).toBe('sqlite');
    expect(existsSync(path)).toBe(true);
    const skill = mkSkill('a');
    await s1.applySkillPage({
      items: [{ skill, contentHash: skillContentHash(skill) }],
      tombstones: [],
      source: 'full',
      now: T0,
      ttlMs: 1000,
      epoch: null,
      guard: 'listing',
      checkpoint: null,
    });
    await s1.close();
    const s2 = await openStore(`sqlite:${path}`);
    expect((await s2.getSkill('a', T0))?.base).toEqual(skill);
    await s2.close();
    const raw = new Database(path);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    raw.close();
  });

  it('opens an in-memory store', async () => {
    const s = await openStore('sqlite::memory:');
    expect(await s.ping()).toBe(true);
    await s.close();
  });

  it('creates new files with the configured page size; existing files keep theirs', async () => {
    const fresh = join(dir, 'pages-new.db');
    await (await openSqliteStore({ path: fresh, pageSize: 16384, walCheckpointBytes: 8 << 20 })).close();
    const a = new Database(fresh);
    expect(a.pragma('page_size', { simple: true })).toBe(16384);
    expect(a.pragma('journal_mode', { simple: true })).toBe('wal');
    a.close();

    // A file created with other pages keeps them, and its data, under the default.
    const old = join(dir, 'pages-old.db');
    const s4 = await openSqliteStore({ path: old, pageSize: 8192 });
    const skill = mkSkill('s-pages');
    await s4.applySkillEvent(
      { skill, contentHash: skillContentHash(skill) },
      { now: T0, ttlMs: 60_000, epoch: null, source: 'websocket' },
    );
    await s4.close();
    const s = await openSqliteStore({ path: old });
    expect((await s.getSkill('s-pages', T0))?.skillId).toBe('s-pages');
    await s.close();
    const b = new Database(old);
    expect(b.pragma('page_size', { simple: true })).toBe(8192);
    b.close();
  });

  it('refuses a database written by a newer skillsync, without touching it', async () => {
    const path = join(dir, 'newer.db');
    await (await openSqliteStore({ path })).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    await expect(openSqliteStore({ path })).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW',
    });
    const again = new Database(path);
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    again.close();
  });

  it('migrates a version-1 database with data: the search index is rebuilt', async () => {
    const path = join(dir, 'v1.db');
    const raw = new Database(path);
    raw.exec(MIGRATIONS[0]!.sql);
    raw.pragma('user_version = 1');
    const skill = mkSkill('old', { name: 'ancient scroll', category: 'lore', tags: ['Papyrus'] });
    const id = raw
      .prepare(
        `INSERT INTO skills (skill_id, base, local, name, category, content_hash, fetched_at, expires_at, source, written_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'full', ?)`,
      )
      .run(
        'old',
        JSON.stringify(skill),
        JSON.stringify({ description: 'kept locally' }),
        skill.name,
        'lore',
        'h',
        T0,
        T0 + 1,
        T0,
      ).lastInsertRowid;
    raw
      .prepare('INSERT INTO skills_fts (rowid, name, description, tags) VALUES (?, ?, ?, ?)')
      .run(id, skill.name, '', 'Papyrus');
    raw.close();
    const store = await openSqliteStore({ path });
    const q = { page: 1, pageSize: 10, now: T0 };
    expect((await store.searchSkills({ ...q, text: 'scroll', category: 'lore' })).total).toBe(1);
    expect((await store.searchSkills({ ...q, text: 'locally' })).total).toBe(1);
    expect((await store.searchSkills({ ...q, tag: 'papyrus' })).total).toBe(1);
    expect(await store.integrityCheck()).toEqual([]);
    await store.close();
    const again = new Database(path);
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    again.close();
  });

  it('reports a file that is not a database as corrupt', async () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, Buffer.alloc(8192, 'not a database at all '));
    await expect(openSqliteStore({ path })).rejects.toMatchObject({ code: 'SKILLSYNC_ERR_STORE_CORRUPT' });
  });

  it('reports a missing directory as unavailable and a closed store as unavailable', async () => {
    await expect(openSqliteStore({ path: join(dir, 'no', 'such', 'dir', 'x.db') })).rejects.toMatchObject({
      code: 'SKILLSYNC_ERR_STORE_UNAVAILABLE',
    });
    const s = await openSqliteStore({ path: ':memory:' });
    await s.close();
    await expect(s.getSyncState()).rejects.toMatchObject({ code: 'SKILLSYNC_ERR_STORE_UNAVAILABLE' });
    expect(await s.ping()).toBe(false);
    await s.close();
  });
});

describe('sqlite error mapping', () => {
  it.each([
    ['SQLITE_READONLY', 'SKILLSYNC_ERR_STORE_READONLY'],
    ['SQLITE_READONLY_DBMOVED', 'SKILLSYNC_ERR_STORE_READONLY'],
    ['SQLITE_BUSY', 'SKILLSYNC_ERR_STORE_LOCKED'],
    ['SQLITE_BUSY_SNAPSHOT', 'SKILLSYNC_ERR_STORE_LOCKED'],
    ['SQLITE_LOCKED', 'SKILLSYNC_ERR_STORE_LOCKED'],
    ['SQLITE_FULL', 'SKILLSYNC_ERR_STORE_FULL'],
    ['SQLITE_CORRUPT', 'SKILLSYNC_ERR_STORE_CORRUPT'],
    ['SQLITE_CORRUPT_INDEX', 'SKILLSYNC_ERR_STORE_CORRUPT'],
    ['SQLITE_NOTADB', 'SKILLSYNC_ERR_STORE_CORRUPT'],
    ['SQLITE_CONSTRAINT_UNIQUE', 'SKILLSYNC_ERR_STORE_QUERY'],
    ['SQLITE_ERROR', 'SKILLSYNC_ERR_STORE_QUERY'],
  ])('%s -> %s', (driverCode, code) => {
    expect(storeErrorCodeFor(Object.assign(new Error('x'), { code: driverCode }))).toBe(code);
  });
  it('primary code of an extended code', () => {
    expect(primarySqliteCode('SQLITE_IOERR_WRITE')).toBe('SQLITE_IOERR');
  });
});

describe('first load of an empty store (deferred name indexes)', () => {
  const indexes = (path: string): string[] => {
    const db = new Database(path, { readonly: true });
    const names = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('skills_name', 'skills_category_name') ORDER BY name",
      )
      .pluck()
      .all() as string[];
    db.close();
    return names;
  };
  const BOTH = ['skills_category_name', 'skills_name'];
  const listingPage = (ids: string[], last: boolean): ApplyPageInput => ({
    items: ids.map((id) => {
      const skill = mkSkill(id, { name: `n-${id.split('').reverse().join('')}`, category: 'c1' });
      return { skill, contentHash: skillContentHash(skill) };
    }),
    tombstones: [],
    source: 'full',
    now: T0,
    ttlMs: 60_000,
    epoch: null,
    guard: 'listing',
    checkpoint: last
      ? null
      : {
          runId: 1,
          mode: 'full',
          startedAt: T0,
          nextPage: 2,
          cursor: 'c',
          pageSize: ids.length,
          updatedSince: null,
          epoch: null,
          pagesApplied: 1,
          skillsApplied: ids.length,
        },
  });
  const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `s${from + i}`);

  it('drops them for the listing, reads stay right meanwhile, and builds them with the last page', async () => {
    const path = join(dir, 'bulk-ok.db');
    const s = await openSqliteStore({ path });
    expect(indexes(path)).toEqual(BOTH);
    await s.applySkillPage(listingPage(ids(0, 30), false));
    expect(indexes(path)).toEqual([]);
    const byName = await s.searchSkills({ category: 'c1', sort: 'name', page: 1, pageSize: 100, now: T0 });
    const names = byName.items.map((r) => r.effective.name);
    expect(names).toEqual([...names].sort());
    expect(byName.total).toBe(30);
    // Text searches too, in every order, here and through a second connection (another
    // process reading while this one loads), which never saw the index go.
    const reader = await openSqliteStore({ path });
    for (const store of [s, reader]) {
      for (const sort of [undefined, 'rating', 'installs', 'updated', 'name'] as const) {
        const found = await store.searchSkills({
          text: 'description',
          category: 'c1',
          page: 1,
          pageSize: 7,
          now: T0,
          ...(sort === undefined ? {} : { sort }),
        });
        expect(found.total).toBe(30);
        expect(found.items).toHaveLength(7);
      }
    }
    await s.applySkillPage(listingPage(ids(30, 30), true));
    expect((await reader.searchSkills({ text: 'description', page: 1, pageSize: 1, now: T0 })).total).toBe(
      60,
    );
    await reader.close();
    expect(indexes(path)).toEqual(BOTH);
    expect((await s.stats(T0)).skills).toBe(60);
    expect(await s.integrityCheck()).toEqual([]);
    // A listing over a store that is not empty keeps them.
    await s.applySkillPage(listingPage(ids(0, 10), false));
    expect(indexes(path)).toEqual(BOTH);
    await s.close();
  });

  it('builds them in a worker after the last page commits: reads are answered meanwhile, writes wait in order', async () => {
    const path = join(dir, 'bulk-worker.db');
    const s = await openSqliteStore({ path });
    await s.applySkillPage(listingPage(ids(0, 500), false));
    const last = s.applySkillPage(listingPage(ids(500, 10), true));
    // This thread answers a read while the worker builds: the last page is in, the indexes not yet.
    expect((await s.getSkill('s505', T0))?.skillId).toBe('s505');
    expect(indexes(path)).toEqual([]);
    const first = s.updateSyncState({ lastError: 'first' });
    // Local actions (committed in groups) wait too: committing one now would block this thread
    // on the worker's write lock.
    const action = s
      .enqueue({
        kind: 'install',
        chainKey: 'install:s1:a1',
        payload: { skill_id: 's1', agent_id: 'a1' },
        idempotencyKey: 'k-during-build',
        now: T0,
      })
      .then((item) => ({ item, indexesAtCommit: indexes(path) }));
    const second = s.updateSyncState({ lastError: 'second' });
    expect((await action).indexesAtCommit).toEqual(BOTH);
    expect((await last).upserted).toBe(10);
    expect(indexes(path)).toEqual(BOTH);
    expect((await first).lastError).toBe('first');
    expect((await second).lastError).toBe('second');
    expect((await s.getSyncState()).lastError).toBe('second');
    expect(await s.integrityCheck()).toEqual([]);
    await s.close();
  });

  it('a build the database refuses (file locked past the busy timeout) is not retried on the main thread', async () => {
    const path = join(dir, 'bulk-busy.db');
    const s = await openSqliteStore({ path, busyTimeoutMs: 800 });
    await s.applySkillPage(listingPage(ids(0, 50), false));
    const last = s.applySkillPage(listingPage(ids(50, 5), true));
    // Another process takes the write lock before the worker starts, and keeps it a while.
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    expect((await last).upserted).toBe(5);
    const took = performance.now() - started;
    other.exec('COMMIT');
    other.close();
    // The worker gave up after one busy timeout (800 ms); retrying inline would have waited a
    // second one, with this thread blocked. The first load stays open: the next end of a
    // listing builds them.
    expect(took).toBeGreaterThanOrEqual(750);
    expect(took).toBeLessThan(1_400);
    expect(indexes(path)).toEqual([]);
    await s.setCheckpoint(null);
    expect(indexes(path)).toEqual(BOTH);
    await s.close();
  });

  it('an interrupted first load resumes without them; a cleared checkpoint or a reopen without one builds them', async () => {
    const path = join(dir, 'bulk-crash.db');
    let s = await openSqliteStore({ path });
    await s.applySkillPage(listingPage(ids(0, 20), false));
    await s.close(); // the process stops mid-listing: the checkpoint stays
    s = await openSqliteStore({ path });
    expect(indexes(path)).toEqual([]);
    expect(await s.getCheckpoint()).not.toBeNull();
    await s.setCheckpoint(null); // the engine gives the listing up
    expect(indexes(path)).toEqual(BOTH);
    await s.close();

    // Indexes missing with no checkpoint (say, a checkpoint removed by hand): built at open.
    const raw = new Database(path);
    raw.exec('DROP INDEX skills_name');
    raw.close();
    s = await openSqliteStore({ path });
    expect(indexes(path)).toEqual(BOTH);
    await s.close();
  });
});
