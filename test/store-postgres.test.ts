/**
 * PostgreSQL store against the real server (SKILLSYNC_TEST_POSTGRES_URL, default
 * postgres://postgres@127.0.0.1:5432/test). Every store gets its own schema, dropped at the end.
 * No server: the suite is skipped with a visible notice, unless SKILLSYNC_REQUIRE_POSTGRES=1.
 */
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { skillContentHash, type Skill } from '../src/remote/contract.js';
import { SkillsyncError } from '../src/core/errors.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../src/store/postgres/migrations.js';
import { searchVector, skillColumns } from '../src/store/postgres/pg-rows.js';
import type { Store } from '../src/store/store.js';
import type { ApplyPageInput, ListingCheckpoint, SkillUpsert } from '../src/store/types.js';
import {
  adminSql,
  dropSchemas,
  freshSchemaName,
  PG_REQUIRED,
  PG_TEST_URL,
  pgTarget,
  probePostgres,
} from './helpers/pg-test-env.js';
import { runStoreContract } from './helpers/store-contract.js';
import { runCrashScenario } from './helpers/store-crash.js';

const unreachable = await probePostgres();
const schemas: string[] = [];
const stores: Store[] = [];

async function freshStore(options: { schema?: string; applicationName?: string } = {}): Promise<Store> {
  const schema = options.schema ?? freshSchemaName('sk_pgtest');
  schemas.push(schema);
  const store = await openPostgresStore({ url: PG_TEST_URL, schema, poolSize: 4, ...options });
  stores.push(store);
  return store;
}

afterAll(async () => {
  for (const s of stores) await s.close();
  if (unreachable === null) await dropSchemas(schemas);
}, 120_000);

function skill(i: number, over: Partial<Skill> = {}): Skill {
  return {
    skill_id: `skill-${String(i).padStart(5, '0')}`,
    name: `Skill ${i}`,
    version: '1.0.0',
    description: `Does thing number ${i} with data`,
    category: i % 2 === 0 ? 'even' : 'odd',
    tags: ['demo', `t${i % 3}`],
    updated_at: '2026-01-01T00:00:00.000Z',
    unknown_field: { nested: [i, 'x'], b: 1, a: 2 },
    ...over,
  };
}

const upsert = (s: Skill): SkillUpsert => ({ skill: s, contentHash: skillContentHash(s) });

function checkpoint(page: number, skillsApplied: number): ListingCheckpoint {
  return {
    runId: 1,
    mode: 'full',
    startedAt: 1000,
    nextPage: page + 1,
    cursor: null,
    pageSize: 100,
    updatedSince: null,
    epoch: 'e1',
    pagesApplied: page,
    skillsApplied,
  };
}

function page(items: Skill[], over: Partial<ApplyPageInput> = {}): ApplyPageInput {
  return {
    items: items.map(upsert),
    tombstones: [],
    source: 'full',
    now: 10_000,
    ttlMs: 60_000,
    epoch: 'e1',
    guard: 'listing',
    checkpoint: null,
    ...over,
  };
}

const range = (from: number, n: number): Skill[] => Array.from({ length: n }, (_, k) => skill(from + k));

async function rejection(p: Promise<unknown>): Promise<SkillsyncError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SkillsyncError);
    return err as SkillsyncError;
  }
  throw new Error('expected a rejection');
}

if (unreachable !== null && PG_REQUIRED) {
  describe('PostgreSQL store', () => {
    it(`needs a reachable server at ${pgTarget()} (SKILLSYNC_REQUIRE_POSTGRES=1)`, () => {
      throw new Error(`PostgreSQL at ${pgTarget()} is unreachable: ${unreachable}`);
    });
  });
} else if (unreachable !== null) {
  console.warn(
    `\n[store-postgres] SKIPPED: no PostgreSQL at ${pgTarget()} (${unreachable}). ` +
      'Set SKILLSYNC_TEST_POSTGRES_URL, or SKILLSYNC_REQUIRE_POSTGRES=1 to make this a failure.\n',
  );
  describe.skip(`PostgreSQL store: SKIPPED, no server reachable at ${pgTarget()}`, () => {
    it('is skipped', () => undefined);
  });
} else {
  // Each test of the contract gets an empty schema of its own; all are dropped at the end.
  runStoreContract('postgres', () => freshStore());

  describe('PostgreSQL store: crash safety', () => {
    it('survives 20 SIGKILLs of a child applying pages, the checkpoint matching the data', async () => {
      const schema = freshSchemaName('sk_crash');
      schemas.push(schema);
      const sep = PG_TEST_URL.includes('?') ? '&' : '?';
      const result = await runCrashScenario({
        url: `${PG_TEST_URL}${sep}schema=${schema}&pool=2`,
        kills: 20,
        seed: 20261129,
        // A child needs a connection and a few prepared statements before its first page
        // lands (~0.3 s on a busy 2-core machine), so kills wait a little longer than SQLite's.
        maxDelayMs: 700,
      });
      expect(result.kills).toBe(20);
      expect(result.pagesApplied).toBeGreaterThan(20);
      expect(result.killsWithProgress).toBeGreaterThanOrEqual(10);
    }, 120_000);
  });

  describe('PostgreSQL store: schema and migrations', () => {
    it('creates a schema with a quote and a space in its name and keeps its tables there', async () => {
      const name = freshSchemaName('sk "odd" name');
      const store = await freshStore({ schema: name });
      await store.applySkillPage(page(range(1, 3)));
      const sql = adminSql();
      try {
        const tables = await sql`SELECT table_name FROM information_schema.tables
          WHERE table_schema = ${name} ORDER BY table_name`;
        expect(tables.map((t) => t['table_name'])).toContain('skills');
        const [n] = await sql`SELECT count(*)::int AS n FROM ${sql(name)}.skills`;
        expect(n?.['n']).toBe(3);
      } finally {
        await sql.end();
      }
    });

    it('lets several instances open a new schema at the same time and migrates it once', async () => {
      const schema = freshSchemaName('sk_race');
      const opened = await Promise.all(Array.from({ length: 5 }, () => freshStore({ schema })));
      expect(opened).toHaveLength(5);
      const sql = adminSql();
      try {
        const rows = await sql`SELECT version FROM ${sql(schema)}.schema_migrations ORDER BY version`;
        expect(rows.map((r) => r['version'])).toEqual(
          Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
        );
      } finally {
        await sql.end();
      }
      // Reopening an up-to-date schema changes nothing and works.
      const again = await freshStore({ schema });
      expect(await again.ping()).toBe(true);
    });

    it('refuses a schema written by a newer skillsync', async () => {
      const schema = freshSchemaName('sk_new');
      const first = await freshStore({ schema });
      await first.close();
      const sql = adminSql();
      try {
        await sql`INSERT INTO ${sql(schema)}.schema_migrations (version, name) VALUES (${LATEST_SCHEMA_VERSION + 1}, 'future')`;
      } finally {
        await sql.end();
      }
      const err = await rejection(openPostgresStore({ url: PG_TEST_URL, schema }));
      expect(err.code).toBe('SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW');
      expect(err.retryable).toBe(false);
    });

    it('upgrades a version 1 schema with data: category search, deletes and integrity work after it', async () => {
      const schema = freshSchemaName('sk_v1');
      schemas.push(schema);
      const sql = adminSql();
      const s = skill(3, { category: 'Données & co' });
      try {
        // The schema as the first release left it, with one skill written as it wrote them.
        await sql.begin(async (tx) => {
          await tx.unsafe(`CREATE SCHEMA "${schema}"`);
          await tx.unsafe(`SET LOCAL search_path TO "${schema}"`);
          await tx.unsafe('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL)');
          for (const st of MIGRATIONS[0]!.statements) await tx.unsafe(st);
          await tx.unsafe(`INSERT INTO schema_migrations VALUES (1, 'initial schema')`);
          const c = skillColumns(s, skillContentHash(s));
          // Version 1 built the vector without the category facet.
          const v1Search = searchVector(s.name, s.tags as string[], s.description as string);
          await tx`INSERT INTO skills (skill_id, base, name, category, search, source)
            VALUES (${c.skill_id}, ${tx.json(s as never)}, ${c.name}, ${c.category}, ${v1Search}::tsvector, 'full')`;
          await tx`INSERT INTO skill_sync (skill_id, content_hash, fetched_at, expires_at)
            VALUES (${c.skill_id}, ${c.content_hash}, 1, 2)`;
        });
      } finally {
        await sql.end();
      }
      const store = await freshStore({ schema });
      const found = await store.searchSkills({ category: 'Données & co', page: 1, pageSize: 5, now: 0 });
      expect(found.items.map((i) => i.skillId)).toEqual([s.skill_id]);
      const withText = await store.searchSkills({
        text: 'thing',
        category: 'Données & co',
        page: 1,
        pageSize: 5,
        now: 0,
      });
      expect(withText.total).toBe(1);
      expect(await store.integrityCheck()).toEqual([]);
      expect(await store.deleteSkill(s.skill_id, { now: 0 })).toBe(true);
      expect(await store.integrityCheck()).toEqual([]);
      expect(await store.digest()).toBe(await (await freshStore()).digest());
    });

    it('ignores its own ?schema= and ?pool= parameters if they are left in the URL', async () => {
      const schema = freshSchemaName('sk_url');
      schemas.push(schema);
      const store = await openPostgresStore({ url: `${PG_TEST_URL}?schema=${schema}&pool=2`, schema });
      stores.push(store);
      expect(await store.ping()).toBe(true);
    });
  });

  describe('PostgreSQL store: page writes', () => {
    it('keeps unknown fields of the base as the same JSON value', async () => {
      const store = await freshStore();
      const s = skill(7, { extra: { z: [1, { y: null }], a: 'ü' } });
      await store.applySkillPage(page([s]));
      const got = await store.getSkill(s.skill_id, 10_000);
      expect(got?.base).toEqual(s);
      expect(got?.contentHash).toBe(skillContentHash(s));
      expect(skillContentHash(got!.base)).toBe(skillContentHash(s));
    });

    it('rewrites nothing for an unchanged page: only fetchedAt/expiresAt move', async () => {
      const store = await freshStore();
      const items = range(1, 50);
      expect(await store.applySkillPage(page(items))).toMatchObject({ upserted: 50, unchanged: 0 });
      const before = await store.digest();
      const again = await store.applySkillPage(page(items, { now: 20_000 }));
      expect(again).toMatchObject({ upserted: 0, unchanged: 50, stale: 0 });
      expect(await store.digest()).toBe(before);
      const got = await store.getSkill(items[0]!.skill_id, 20_000);
      expect(got).toMatchObject({ fetchedAt: 20_000, expiresAt: 80_000 });
    });

    it('accepts a record with a huge name and category (no index entry limit fails its page)', async () => {
      const store = await freshStore();
      // Incompressible text: PostgreSQL compresses index entries, so a repeated letter would fit.
      const noise = (seed: number): string => {
        let x = seed;
        let out = '';
        for (let i = 0; i < 10_000; i++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          out += String.fromCharCode(97 + ((x >>> 16) % 26));
        }
        return out;
      };
      const big = skill(9, { name: noise(1), category: noise(2) });
      const r = await store.applySkillPage(page([skill(1), big]));
      expect(r.upserted).toBe(2);
      const found = await store.searchSkills({ category: big.category!, page: 1, pageSize: 5, now: 0 });
      expect(found.items.map((i) => i.base.name)).toEqual([big.name]);
      expect(await store.integrityCheck()).toEqual([]);
    });

    it('merges the search index pending list off the write path: nothing pending once idle', async () => {
      const schema = freshSchemaName('sk_merge');
      schemas.push(schema);
      const store = await openPostgresStore({ url: PG_TEST_URL, schema, poolSize: 2 });
      // One page of more rows than a merge waits for, in chunks of the upsert.
      await store.applySkillPage(page(range(1, 600)));
      await store.close(); // waits for the merge in progress
      const sql = adminSql();
      try {
        const [r] =
          await sql`SELECT gin_clean_pending_list(${`"${schema}".skills_search_idx`}::regclass)::int AS pages`;
        expect(r?.['pages']).toBe(0);
        const [n] = await sql`SELECT count(*)::int AS n FROM ${sql(schema)}.skills
          WHERE search @@ ${"'thing' & 'data'"}::tsquery`;
        expect(n?.['n']).toBe(600);
      } finally {
        await sql.end();
      }
    });

    it('opens and writes with a role granted only use of a migrated schema (not its owner, no CREATE)', async () => {
      const schema = freshSchemaName('sk_role');
      const owner = await freshStore({ schema });
      await owner.close();
      const role = `sk_writer_${process.pid}_${Date.now().toString(36)}`;
      const sql = adminSql();
      try {
        await sql.unsafe(`CREATE ROLE "${role}" LOGIN`);
        // What a DBA grants an application on a schema it created and migrated: use and data
        // rights, no CREATE on the database or the schema.
        await sql.unsafe(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
        await sql.unsafe(
          `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`,
        );
        await sql.unsafe(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "${schema}" TO "${role}"`);
        const url = new URL(PG_TEST_URL);
        url.username = role;
        const store = await openPostgresStore({ url: url.toString(), schema, poolSize: 2 });
        try {
          for (let p = 0; p < 3; p++) {
            const r = await store.applySkillPage(page(range(1 + p * 300, 300)));
            expect(r.upserted).toBe(300);
          }
          const found = await store.searchSkills({ text: 'thing', page: 1, pageSize: 5, now: 0 });
          expect(found.total).toBe(900);
        } finally {
          await store.close();
        }
        // Its merges were refused: the entries wait in the pending list, where searches find them.
        const [r] =
          await sql`SELECT gin_clean_pending_list(${`"${schema}".skills_search_idx`}::regclass)::int AS pages`;
        expect(r?.['pages']).toBeGreaterThan(0);
      } finally {
        await sql.unsafe(`DROP OWNED BY "${role}"`);
        await sql.unsafe(`DROP ROLE "${role}"`);
        await sql.end();
      }
    });

    it('quarantines a record holding U+0000 (PostgreSQL cannot store it) and applies the rest of its page', async () => {
      const store = await freshStore();
      const stored = skill(2);
      await store.applySkillPage(page([stored]));
      const withNul = [
        skill(1, { description: 'nul \u0000 inside' }),
        skill(2, { tags: ['ok', 'bad\u0000tag'], updated_at: '2026-02-01T00:00:00.000Z' }),
        skill(4, { metadata: { 'k\u0000ey': 1 } }),
        skill(5, { skill_id: 'skill-\u00005' }),
      ];
      const r = await store.applySkillPage(
        page([skill(3), ...withNul, skill(6)], {
          now: 20_000,
          checkpoint: checkpoint(2, 7),
          runId: 42,
        }),
      );
      expect(r).toMatchObject({ upserted: 2, unchanged: 0, stale: 0, quarantined: 4 });
      expect((await store.getSkill('skill-00003', 20_000))?.base).toEqual(skill(3));
      expect((await store.getSkill('skill-00006', 20_000))?.base).toEqual(skill(6));
      expect(await store.getCheckpoint()).toEqual(checkpoint(2, 7));
      // A full listing saw the refused record: the stored version stays, seen (not deleted as unseen).
      expect(await store.getSkill('skill-00002', 20_000)).toMatchObject({ base: stored, fetchedAt: 20_000 });
      expect(await store.getSkill('skill-00001', 20_000)).toBeNull();
      const q = await store.listQuarantine({ limit: 10, offset: 0 });
      expect(q.total).toBe(4);
      const byKey = new Map(q.items.map((i) => [i.key, i]));
      expect(byKey.get('skill-00001')).toMatchObject({
        kind: 'skill',
        reason: '/description: contains U+0000, which PostgreSQL cannot store',
        payload: withNul[0],
        runId: 42,
        at: 20_000,
      });
      expect(byKey.get('skill-00002')?.reason).toBe(
        '/tags/1: contains U+0000, which PostgreSQL cannot store',
      );
      expect(byKey.get('skill-00004')?.reason).toBe(
        '/metadata/k\\u0000ey: contains U+0000, which PostgreSQL cannot store',
      );
      expect(byKey.get('skill-\uFFFD5')).toMatchObject({ payload: withNul[3] });
      expect((await store.stats(20_000)).quarantined).toBe(4);
      // Events: the refused one is reported as not applied, the others apply in the same batch.
      const events = await store.applySkillEvents([upsert(skill(7)), upsert(skill(8, { name: 'x\u0000' }))], {
        now: 30_000,
        ttlMs: 60_000,
        epoch: 'e1',
        source: 'websocket',
      });
      expect(events).toEqual(['applied', 'stale']);
      expect(
        await store.applySkillEvent(upsert(skill(9, { version: '\u0000' })), {
          now: 30_000,
          ttlMs: 60_000,
          epoch: 'e1',
          source: 'websocket',
        }),
      ).toBe('stale');
      expect((await store.stats(30_000)).quarantined).toBe(6);
      expect(await store.integrityCheck()).toEqual([]);
    });

    it('quarantine() stores a key or reason holding U+0000 instead of failing', async () => {
      const store = await freshStore();
      await store.quarantine([
        {
          kind: 'skill',
          key: 'a\u0000b',
          reason: 'bad \u0000 reason',
          payload: { x: '\u0000' },
          runId: null,
          at: 1,
        },
      ]);
      const q = await store.listQuarantine({ limit: 10, offset: 0 });
      expect(q.items[0]).toMatchObject({
        key: 'a\uFFFDb',
        reason: 'bad \uFFFD reason',
        payload: { x: '\u0000' },
      });
    });

    it('counts a duplicated id within one page once (the last occurrence wins)', async () => {
      const store = await freshStore();
      const a = skill(1, { name: 'first' });
      const b = skill(1, { name: 'second' });
      const r = await store.applySkillPage({ ...page([]), items: [upsert(a), upsert(b)] });
      expect(r.upserted).toBe(1);
      expect((await store.getSkill(a.skill_id, 0))?.base.name).toBe('second');
    });

    it('version guard: older is stale, equal time with new content applies', async () => {
      const store = await freshStore();
      await store.applySkillPage(page([skill(1, { updated_at: '2026-01-02T00:00:00Z' })]));
      const older = skill(1, { name: 'older', updated_at: '2026-01-01T23:59:59.999Z' });
      const tie = skill(1, { name: 'tie', updated_at: '2026-01-02T00:00:00Z' });
      const r = await store.applySkillPage(page([older], { guard: 'version' }));
      expect(r).toMatchObject({ upserted: 0, unchanged: 0, stale: 1 });
      const r2 = await store.applySkillPage(page([tie], { guard: 'version' }));
      expect(r2).toMatchObject({ upserted: 1, stale: 0 });
      expect((await store.getSkill(tie.skill_id, 0))?.base.name).toBe('tie');
    });

    it('search: words as prefixes, category filter, exact tag, total past the last page', async () => {
      const store = await freshStore();
      await store.applySkillPage(
        page([
          skill(1, { name: 'Python linter', category: 'dev', tags: ['Lint'] }),
          skill(2, { name: 'Python formatter', category: 'dev', tags: ['format'] }),
          skill(3, { name: 'Python plotter', category: 'data', tags: ['lint'] }),
          skill(4, { name: 'Rust linter', category: 'dev', tags: ['lint'] }),
        ]),
      );
      const r = await store.searchSkills({
        text: 'pyth lint',
        category: 'dev',
        page: 1,
        pageSize: 10,
        now: 0,
      });
      expect(r.items.map((i) => i.skillId)).toEqual(['skill-00001']);
      const byTag = await store.searchSkills({ tag: 'LINT', sort: 'name', page: 1, pageSize: 10, now: 0 });
      expect(byTag.items.map((i) => i.base.name)).toEqual(['Python linter', 'Python plotter', 'Rust linter']);
      // An empty tag is no tag filter (as on SQLite), not "has an empty tag".
      const emptyTag = await store.searchSkills({ tag: '', page: 1, pageSize: 10, now: 0 });
      expect(emptyTag.total).toBe(4);
      const past = await store.searchSkills({ text: 'python', page: 5, pageSize: 2, now: 0 });
      expect(past).toEqual({ items: [], total: 3 });
      const none = await store.searchSkills({ text: 'zzz', page: 1, pageSize: 2, now: 0 });
      expect(none).toEqual({ items: [], total: 0 });
    });
  });

  describe('PostgreSQL store: faults', () => {
    it('an unreachable server is SKILLSYNC_ERR_STORE_UNAVAILABLE and never shows the password', async () => {
      // A port that was just free: nothing listens there.
      const port = await new Promise<number>((resolve) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => {
          const addr = srv.address();
          srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 1));
        });
      });
      const secret = 'pw-S3cr3t-do-not-leak';
      const err = await rejection(
        openPostgresStore({
          url: `postgres://skillsync:${secret}@127.0.0.1:${port}/test`,
          connectTimeoutS: 3,
        }),
      );
      expect(err.code).toBe('SKILLSYNC_ERR_STORE_UNAVAILABLE');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      const everything = `${err.message} ${err.stack ?? ''} ${JSON.stringify(err.details)} ${String(err.cause)}`;
      expect(everything).not.toContain(secret);
    });

    it('a connection dropped mid-transaction: clear retryable error, committed data intact, no partial page', async () => {
      const app = `skillsync-drop-${process.pid}-${Date.now()}`;
      const store = await freshStore({ applicationName: app });
      const first = range(1, 100);
      await store.applySkillPage(page(first, { checkpoint: checkpoint(1, 100) }));
      const digestBefore = await store.digest();

      // A second session holds the checkpoint row, so the next page blocks on its checkpoint
      // write after writing its skills, inside its transaction; then its backend is killed.
      const admin = adminSql();
      const schema = schemas[schemas.length - 1]!;
      const holder = await admin.reserve();
      try {
        await holder`BEGIN`;
        await holder`SELECT * FROM ${holder(schema)}.checkpoint WHERE id = 1 FOR UPDATE`;
        const applying = store
          .applySkillPage(page(range(101, 500), { checkpoint: checkpoint(2, 600), watermark: 'w2' }))
          .then(
            () => null,
            (err: unknown) => err,
          );
        let killed = false;
        for (let i = 0; i < 1000 && !killed; i++) {
          const [victim] = await admin`SELECT pid FROM pg_stat_activity
            WHERE application_name = ${app} AND wait_event_type = 'Lock' AND xact_start IS NOT NULL`;
          if (victim) {
            await admin`SELECT pg_terminate_backend(${victim['pid'] as number})`;
            killed = true;
          } else await delay(5);
        }
        expect(killed).toBe(true);
        const err = await applying;
        expect(err).toBeInstanceOf(SkillsyncError);
        expect((err as SkillsyncError).code).toBe('SKILLSYNC_ERR_STORE_UNAVAILABLE');
        expect((err as SkillsyncError).retryable).toBe(true);
      } finally {
        await holder`ROLLBACK`.catch(() => undefined);
        holder.release();
        await admin.end();
      }
      // Nothing of the killed page is visible; the pool recovers with a new connection.
      expect(await store.digest()).toBe(digestBefore);
      expect(await store.getCheckpoint()).toEqual(checkpoint(1, 100));
      expect(await store.getSkill('skill-00101', 0)).toBeNull();
      expect((await store.getSyncState()).watermark).toBeNull();
      const retried = await store.applySkillPage(page(range(101, 500), { checkpoint: checkpoint(2, 600) }));
      expect(retried.upserted).toBe(500);
      expect(await store.integrityCheck()).toEqual([]);
    });
  });
}
