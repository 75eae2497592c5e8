/**
 * Versioned schema of the PostgreSQL store. Each migration runs once, in order, inside the one
 * transaction that openPostgresStore takes under an advisory lock, so several instances that
 * start together apply it exactly once and none of them ever sees half a schema. A database
 * whose recorded version is higher than the last one here was written by a newer skillsync and
 * is refused (SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW) rather than misread.
 *
 * Design notes:
 * - Every timestamp is epoch milliseconds in a bigint, passed in by the caller: SQL never calls
 *   now(), so TTLs behave the same here, on SQLite and under a fake clock.
 * - `skills.base` is the remote payload as JSONB (unknown fields kept). JSONB reorders keys;
 *   that is harmless because content hashes and digests are canonical.
 * - The indexed read columns (name, category, type, ratings...) and the search vector describe the EFFECTIVE skill (base with
 *   local overrides on top: what readers search and sort), as in the SQLite store;
 *   remote_updated_at and content_hash always describe the base.
 * - sync_state keeps no counters that can be derived (skills/categories cached, pending
 *   actions): reads count them, so they are never out of step with the data.
 * - content_hash, fetched_at, expires_at and epoch live in skill_sync, a narrow table with only
 *   its primary key: re-applying an unchanged page (the common case of a full listing) writes
 *   only those small rows. In the wide row an UPDATE that does not fit on its page (rows are
 *   ~2 KB) is not HOT and rewrites every index entry, GIN included: measured, that made a
 *   re-apply barely cheaper than the first load. The unseen count, TTL sweep and digest scan
 *   the narrow table, once per listing or sweep, so fetched_at/expires_at need no index.
 * - Full-text search: a tsvector column (name weight A, tags B, description C) with a GIN
 *   index. The vector is built in JS (searchVector in pg-rows.ts) with the same tokenizer as the
 *   query side and as the SQLite store (letters and digits, lower-cased), and sent as a
 *   tsvector literal: to_tsvector() in SQL was measured at about ten times the cost of the
 *   whole rest of a page insert, and its parser splits words differently from the query side.
 */

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Statements run in order (simple protocol, no parameters). */
  readonly statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE skills (
        skill_id text PRIMARY KEY,
        base jsonb NOT NULL,
        local jsonb,
        local_updated_at bigint,
        name text NOT NULL,
        category text,
        skill_type text,
        version text,
        average_rating double precision,
        rating_count bigint,
        install_count bigint,
        remote_updated_at text,
        remote_updated_ms bigint,
        source text NOT NULL,
        search tsvector NOT NULL
      ) WITH (fillfactor = 80)`,
      // Every search scans the GIN pending list (fast-update buffer) linearly. The default 4 MB
      // list cost ~30% of a search right after a load; at 256 kB the penalty was gone and the
      // load ~5-10% slower (30,000 skills, measured here).
      `CREATE INDEX skills_search_idx ON skills USING gin (search) WITH (gin_pending_list_limit = 256)`,
      // Hash, not btree: category is only compared for equality, and a hash index has no entry
      // size limit (a btree refuses values over ~2.7 KB, so one absurd record would fail its page).
      `CREATE INDEX skills_category_idx ON skills USING hash (category)`,
      // The sort orders of searchSkills, ties by skill_id in code-unit (C) order.
      `CREATE INDEX skills_name_idx ON skills (name COLLATE "C", skill_id COLLATE "C")`,
      `CREATE INDEX skills_rating_idx ON skills
        (average_rating DESC NULLS LAST, rating_count DESC NULLS LAST, skill_id COLLATE "C")`,
      `CREATE INDEX skills_installs_idx ON skills (install_count DESC NULLS LAST, skill_id COLLATE "C")`,
      `CREATE INDEX skills_updated_idx ON skills (remote_updated_ms DESC NULLS LAST, skill_id COLLATE "C")`,
      `CREATE INDEX skills_local_idx ON skills (skill_id) WHERE local IS NOT NULL`,
      // What every sync touches, kept apart from the wide row: re-applying an unchanged page
      // rewrites only these narrow rows (one small btree), never the wide row with its GIN
      // and sort indexes; the digest and the unseen/expired scans read only this table.
      `CREATE TABLE skill_sync (
        skill_id text PRIMARY KEY REFERENCES skills (skill_id) ON DELETE CASCADE,
        content_hash text NOT NULL,
        fetched_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        epoch text
      ) WITH (fillfactor = 70)`,

      `CREATE TABLE categories (
        name text PRIMARY KEY,
        data jsonb NOT NULL,
        content_hash text NOT NULL,
        remote_updated_ms bigint,
        fetched_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        source text NOT NULL,
        epoch text
      )`,

      `CREATE TABLE conflicts (
        id bigserial PRIMARY KEY,
        skill_id text NOT NULL REFERENCES skills (skill_id) ON DELETE CASCADE,
        type text NOT NULL,
        severity text NOT NULL,
        base jsonb NOT NULL,
        local jsonb NOT NULL,
        remote jsonb NOT NULL,
        strategy text NOT NULL,
        fields jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('open', 'resolved')),
        resolution text,
        resolved_by text,
        resolved_at bigint,
        detected_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )`,
      `CREATE UNIQUE INDEX conflicts_one_open_idx ON conflicts (skill_id) WHERE status = 'open'`,
      `CREATE INDEX conflicts_status_idx ON conflicts (status, id)`,
      `CREATE INDEX conflicts_skill_idx ON conflicts (skill_id)`,

      `CREATE TABLE ratings (
        id bigserial PRIMARY KEY,
        skill_id text NOT NULL,
        user_id text NOT NULL,
        rating integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
        comment text,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        upload_status text NOT NULL,
        remote_rating_id text,
        UNIQUE (skill_id, user_id)
      )`,

      `CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        chain_key text NOT NULL,
        skill_id text,
        rating_id bigint REFERENCES ratings (id) ON DELETE SET NULL,
        payload jsonb NOT NULL,
        idempotency_key text NOT NULL UNIQUE,
        status text NOT NULL CHECK (status IN ('pending', 'in_flight', 'done', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at bigint NOT NULL,
        lease_until bigint,
        last_error text,
        result jsonb,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )`,
      `CREATE INDEX outbox_chain_idx ON outbox (chain_key, id) WHERE status <> 'done'`,
      `CREATE INDEX outbox_status_idx ON outbox (status, id)`,
      `CREATE INDEX outbox_rating_idx ON outbox (rating_id)`,

      `CREATE TABLE sync_state (
        id integer PRIMARY KEY CHECK (id = 1),
        status text NOT NULL DEFAULT 'idle',
        last_sync_at bigint,
        last_success_at bigint,
        last_error text,
        consecutive_errors integer NOT NULL DEFAULT 0,
        total_syncs integer NOT NULL DEFAULT 0,
        successful_syncs integer NOT NULL DEFAULT 0,
        failed_syncs integer NOT NULL DEFAULT 0,
        auto_sync_enabled boolean NOT NULL DEFAULT true,
        watermark text,
        epoch text,
        next_run_at bigint,
        last_complete_listing_at bigint,
        held_deletions integer NOT NULL DEFAULT 0,
        held_deletions_at bigint,
        held_listing_started_at bigint,
        conflicts_detected_total integer NOT NULL DEFAULT 0,
        conflicts_resolved_total integer NOT NULL DEFAULT 0
      )`,
      `INSERT INTO sync_state (id) VALUES (1)`,

      `CREATE TABLE checkpoint (
        id integer PRIMARY KEY CHECK (id = 1),
        data jsonb NOT NULL
      )`,

      `CREATE TABLE sync_runs (
        id bigserial PRIMARY KEY,
        trigger text NOT NULL,
        mode text NOT NULL,
        status text NOT NULL,
        started_at bigint NOT NULL,
        finished_at bigint,
        pages integer NOT NULL DEFAULT 0,
        upserted integer NOT NULL DEFAULT 0,
        unchanged integer NOT NULL DEFAULT 0,
        deleted integer NOT NULL DEFAULT 0,
        quarantined integer NOT NULL DEFAULT 0,
        conflicts_detected integer NOT NULL DEFAULT 0,
        conflicts_resolved integer NOT NULL DEFAULT 0,
        conflicts_manual integer NOT NULL DEFAULT 0,
        deletions_held integer NOT NULL DEFAULT 0,
        resumed_from_checkpoint boolean NOT NULL DEFAULT false,
        error text
      )`,

      `CREATE TABLE ws_state (
        id integer PRIMARY KEY CHECK (id = 1),
        connected boolean NOT NULL DEFAULT false,
        url text,
        state text NOT NULL DEFAULT 'idle',
        last_connected_at bigint,
        last_message_at bigint,
        disconnect_reason text,
        reconnect_attempts integer NOT NULL DEFAULT 0,
        consecutive_failures integer NOT NULL DEFAULT 0,
        fallback_since bigint,
        next_attempt_at bigint,
        enabled boolean NOT NULL DEFAULT true,
        last_seq bigint,
        count_applied bigint NOT NULL DEFAULT 0,
        count_duplicate bigint NOT NULL DEFAULT 0,
        count_stale bigint NOT NULL DEFAULT 0,
        count_invalid bigint NOT NULL DEFAULT 0,
        count_rate_limited bigint NOT NULL DEFAULT 0,
        count_unknown bigint NOT NULL DEFAULT 0
      )`,
      `INSERT INTO ws_state (id) VALUES (1)`,

      `CREATE TABLE quarantine (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        key text,
        reason text NOT NULL,
        payload text NOT NULL,
        truncated boolean NOT NULL DEFAULT false,
        run_id bigint,
        at bigint NOT NULL
      )`,

      `CREATE TABLE config_overrides (
        key text PRIMARY KEY,
        value jsonb NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    name: 'cheaper page writes, category facet in the search vector',
    statements: [
      // The foreign key fired one trigger per written sync row (a lookup and a row lock on the
      // skill just written: ~5% of a page's server time). Both rows are written by the same
      // statement and deleted together by the store (deleteSkillsWhere), so it guarded nothing
      // the store does not already guarantee; integrityCheck reports orphans either way.
      `ALTER TABLE skill_sync DROP CONSTRAINT skill_sync_skill_id_fkey`,
      // The category filter is now a lexeme of the search vector (categoryLexeme in pg-rows.ts):
      // a text search in a category is one GIN scan, and the hash index, with a few dozen
      // values in long overflow chains, is no longer maintained on every write.
      `DROP INDEX skills_category_idx`,
      `UPDATE skills SET search = search || array_to_tsvector(ARRAY['#c' || md5(convert_to(category, 'UTF8'))])
        WHERE category IS NOT NULL`,
      // The free space kept for HOT updates served almost nothing: a content change normally
      // moves the remote time (an indexed column) and an override change the `local` of a
      // partial index, and neither can be HOT. Rows are ~1.8 kB: 4 per page instead of 3, a
      // quarter less heap for searches and loads to go through.
      `ALTER TABLE skills SET (fillfactor = 100)`,
    ],
  },
  {
    version: 3,
    name: 'search index pending list merged in the background',
    statements: [
      // The store merges the pending list itself, off the write path, after every few hundred
      // rows written (PendingListMerger in pg-pending-merge.ts): the limit is only the backstop
      // for a merge that falls behind. At 256 kB every page of 1,000 skills (~1 MB of entries)
      // merged the list inside its own transaction.
      `ALTER INDEX skills_search_idx SET (gin_pending_list_limit = 4096)`,
    ],
  },
  {
    version: 4,
    name: 'sync lease: one sync run at a time across instances',
    statements: [
      // Several instances share the schema: the lease says which one runs a sync, until when
      // (see src/store/sync-lease.ts).
      `CREATE TABLE sync_lease (
        id integer PRIMARY KEY CHECK (id = 1),
        owner text NOT NULL,
        run_id bigint,
        expires_at bigint NOT NULL
      )`,
    ],
  },
  {
    version: 5,
    name: 'remembered deletions for the version guard',
    statements: [
      // A deleted skill has no row for the version guard to compare against: a late or replayed
      // older update would insert it again. The deletion's remote time is remembered here until
      // expires_at (the cache TTL after it was recorded; the TTL sweep forgets it).
      `CREATE TABLE skill_deletions (
        skill_id text PRIMARY KEY,
        deleted_at text NOT NULL,
        deleted_ms bigint NOT NULL,
        recorded_at bigint NOT NULL,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX skill_deletions_expiry_idx ON skill_deletions (expires_at)`,
    ],
  },
  {
    version: 6,
    name: 'outbox by skill',
    statements: [
      // listOutbox({skillId}) (the explain route): done items are never purged, so without it
      // the query scans the whole outbox. (skill_id, id) does not change with the status.
      `CREATE INDEX outbox_skill_idx ON outbox (skill_id, id)`,
    ],
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** Advisory lock class for skillsync migrations; the object id is a hash of the schema name. */
const MIGRATION_LOCK_CLASS = 0x5c11_5c;

/** 32-bit FNV-1a of the schema name: one lock per schema, so two schemas migrate in parallel. */
export function schemaLockId(schema: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < schema.length; i++) {
    h ^= schema.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Quotes an identifier for SQL text: "a""b". */
export function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

/** The subset of postgres.js a migration needs (a transaction). */
export interface MigrationSql {
  unsafe(query: string, params?: never[]): PromiseLike<readonly Record<string, unknown>[]>;
}

export type MigrationOutcome =
  { ok: true; from: number; to: number } | { ok: false; found: number; known: number };

/**
 * Runs inside the caller's transaction: takes the schema's advisory lock (released at commit),
 * creates the schema, then applies every migration newer than the recorded version. Returns
 * the refusal instead of throwing so the caller can roll back and raise its own error.
 */
export async function migrate(tx: MigrationSql, schema: string): Promise<MigrationOutcome> {
  await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, ${schemaLockId(schema)})`);
  const q = quoteIdent(schema);
  // CREATE ... IF NOT EXISTS checks the CREATE privilege before it looks: a role that was
  // granted use of a schema someone else created and migrated (a shared deployment's usual
  // setup) would be refused. So DDL runs only for what is missing.
  const [found] = await tx.unsafe(
    `SELECT to_regnamespace('${q.replaceAll("'", "''")}') IS NOT NULL AS schema,
       to_regclass('${`${q}.schema_migrations`.replaceAll("'", "''")}') IS NOT NULL AS migrations`,
  );
  if (found?.['schema'] !== true) await tx.unsafe(`CREATE SCHEMA ${q}`);
  if (found?.['migrations'] !== true) {
    await tx.unsafe(`CREATE TABLE ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL)`);
  }
  const rows = await tx.unsafe(`SELECT coalesce(max(version), 0)::int AS v FROM ${q}.schema_migrations`);
  const from = Number(rows[0]?.['v'] ?? 0);
  if (from > LATEST_SCHEMA_VERSION) return { ok: false, found: from, known: LATEST_SCHEMA_VERSION };
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    // Unqualified names in the statements resolve through search_path, which is the schema.
    await tx.unsafe(`SET LOCAL search_path TO ${q}`);
    for (const statement of m.statements) await tx.unsafe(statement);
    await tx.unsafe(
      `INSERT INTO ${q}.schema_migrations (version, name) VALUES (${m.version}, '${m.name.replaceAll("'", "''")}')`,
    );
  }
  return { ok: true, from, to: Math.max(from, LATEST_SCHEMA_VERSION) };
}
