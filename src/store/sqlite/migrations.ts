/**
 * Versioned SQLite schema. The version lives in `PRAGMA user_version` (it is part of the
 * database header and changes inside the migration's transaction, so a crash mid-migration
 * leaves the previous version and none of the new tables). Append migrations; never edit one
 * that has shipped.
 *
 * Design notes:
 * - skills keeps the last remote payload (`base`, full JSON text, unknown fields kept) and the
 *   local overrides (`local`, JSON text or NULL). The indexed read columns (name, category...)
 *   describe the EFFECTIVE skill (base with overrides on top), because that is what readers
 *   search and sort; `remote_updated_at` and `content_hash` always describe the base.
 * - skills_fts is a contentless FTS5 table keyed by skills.id (contentless_delete=1 so rows
 *   can be replaced and deleted by rowid alone): it keeps only the index, the store writes it
 *   for changed rows only, and a trigger removes entries when a skill row goes, so every
 *   delete path (tombstone, unseen, sweep) stays in sync. One column, detail=none: the
 *   smallest index and the cheapest writes (tokenizing is most of a page's cost). Its `body`
 *   is the name, description and tags, plus one exact token per category, skill type and tag
 *   (see facetToken), so "text + category" or "tag" is a posting-list intersection inside
 *   FTS5 rather than thousands of row lookups.
 * - All times are epoch ms passed in by the caller; nothing here reads the clock.
 */
import type Database from 'better-sqlite3';
import type { Skill } from '../../remote/contract.js';
import type { SkillOverrides } from '../types.js';
import { effectiveSkill, skillColumns } from './skill-columns.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Data work that needs code (runs after `sql`, in the same transaction). */
  readonly up?: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE skills (
  id                INTEGER PRIMARY KEY,
  skill_id          TEXT NOT NULL UNIQUE,
  base              TEXT NOT NULL,
  local             TEXT,
  name              TEXT NOT NULL,
  category          TEXT,
  skill_type        TEXT,
  version           TEXT,
  average_rating    REAL,
  rating_count      INTEGER,
  install_count     INTEGER,
  remote_updated_at TEXT,
  remote_updated_ms INTEGER,
  content_hash      TEXT NOT NULL,
  fetched_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  source            TEXT NOT NULL,
  epoch             TEXT,
  written_at        INTEGER NOT NULL
);
CREATE INDEX skills_category ON skills (category);
CREATE INDEX skills_name ON skills (name, skill_id);
CREATE INDEX skills_fetched ON skills (fetched_at);
CREATE INDEX skills_expires ON skills (expires_at);
CREATE INDEX skills_with_local ON skills (skill_id) WHERE local IS NOT NULL;

CREATE VIRTUAL TABLE skills_fts USING fts5 (
  name, description, tags,
  content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
  DELETE FROM skills_fts WHERE rowid = old.id;
END;

CREATE TABLE categories (
  name              TEXT PRIMARY KEY,
  data              TEXT NOT NULL,
  content_hash      TEXT NOT NULL,
  remote_updated_at TEXT,
  fetched_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  source            TEXT NOT NULL,
  epoch             TEXT
);

CREATE TABLE ratings (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  skill_id         TEXT NOT NULL,
  user_id          TEXT NOT NULL,
  rating           INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment          TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  upload_status    TEXT NOT NULL CHECK (upload_status IN ('pending', 'uploaded', 'failed')),
  remote_rating_id TEXT,
  UNIQUE (skill_id, user_id)
);

-- AUTOINCREMENT: ids order a chain and are never reused (discard deletes rows).
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  kind            TEXT NOT NULL CHECK (kind IN ('rating', 'install')),
  chain_key       TEXT NOT NULL,
  skill_id        TEXT,
  rating_id       INTEGER REFERENCES ratings (id) ON DELETE SET NULL,
  payload         TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'done', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until     INTEGER,
  last_error      TEXT,
  result          TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_unfinished ON outbox (chain_key, id) WHERE status <> 'done';
CREATE INDEX outbox_status ON outbox (status, id);
CREATE INDEX outbox_rating ON outbox (rating_id);

CREATE TABLE conflicts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  skill_id    TEXT NOT NULL REFERENCES skills (skill_id) ON DELETE CASCADE,
  type        TEXT NOT NULL CHECK (type IN ('VERSION_MISMATCH', 'CONTENT_MISMATCH', 'DEPENDENCY_CONFLICT')),
  severity    TEXT NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
  base        TEXT NOT NULL,
  local       TEXT NOT NULL,
  remote      TEXT NOT NULL,
  strategy    TEXT NOT NULL,
  fields      TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
  resolution  TEXT,
  resolved_by TEXT,
  resolved_at INTEGER,
  detected_at INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
-- At most one open conflict per skill.
CREATE UNIQUE INDEX conflicts_one_open ON conflicts (skill_id) WHERE status = 'open';
CREATE INDEX conflicts_skill ON conflicts (skill_id);
CREATE INDEX conflicts_status ON conflicts (status, id);

CREATE TABLE sync_state (
  id                       INTEGER PRIMARY KEY CHECK (id = 1),
  status                   TEXT NOT NULL DEFAULT 'idle',
  last_sync_at             INTEGER,
  last_success_at          INTEGER,
  last_error               TEXT,
  consecutive_errors       INTEGER NOT NULL DEFAULT 0,
  total_syncs              INTEGER NOT NULL DEFAULT 0,
  successful_syncs         INTEGER NOT NULL DEFAULT 0,
  failed_syncs             INTEGER NOT NULL DEFAULT 0,
  auto_sync_enabled        INTEGER NOT NULL DEFAULT 1,
  watermark                TEXT,
  epoch                    TEXT,
  next_run_at              INTEGER,
  last_complete_listing_at INTEGER,
  held_deletions           INTEGER NOT NULL DEFAULT 0,
  held_deletions_at        INTEGER,
  held_listing_started_at  INTEGER,
  conflicts_detected_total INTEGER NOT NULL DEFAULT 0,
  conflicts_resolved_total INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sync_state (id) VALUES (1);

CREATE TABLE sync_runs (
  id                     INTEGER PRIMARY KEY AUTOINCREMENT,
  trigger                TEXT NOT NULL,
  mode                   TEXT NOT NULL,
  status                 TEXT NOT NULL,
  started_at             INTEGER NOT NULL,
  finished_at            INTEGER,
  pages                  INTEGER NOT NULL DEFAULT 0,
  upserted               INTEGER NOT NULL DEFAULT 0,
  unchanged              INTEGER NOT NULL DEFAULT 0,
  deleted                INTEGER NOT NULL DEFAULT 0,
  quarantined            INTEGER NOT NULL DEFAULT 0,
  conflicts_detected     INTEGER NOT NULL DEFAULT 0,
  conflicts_resolved     INTEGER NOT NULL DEFAULT 0,
  conflicts_manual       INTEGER NOT NULL DEFAULT 0,
  deletions_held         INTEGER NOT NULL DEFAULT 0,
  resumed_from_checkpoint INTEGER NOT NULL DEFAULT 0,
  error                  TEXT
);

CREATE TABLE ws_state (
  id                   INTEGER PRIMARY KEY CHECK (id = 1),
  connected            INTEGER NOT NULL DEFAULT 0,
  url                  TEXT,
  state                TEXT NOT NULL DEFAULT 'idle',
  last_connected_at    INTEGER,
  last_message_at      INTEGER,
  disconnect_reason    TEXT,
  reconnect_attempts   INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  fallback_since       INTEGER,
  next_attempt_at      INTEGER,
  enabled              INTEGER NOT NULL DEFAULT 1,
  last_seq             INTEGER,
  count_applied        INTEGER NOT NULL DEFAULT 0,
  count_duplicate      INTEGER NOT NULL DEFAULT 0,
  count_stale          INTEGER NOT NULL DEFAULT 0,
  count_invalid        INTEGER NOT NULL DEFAULT 0,
  count_rate_limited   INTEGER NOT NULL DEFAULT 0,
  count_unknown        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO ws_state (id) VALUES (1);

CREATE TABLE quarantine (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  kind      TEXT NOT NULL,
  key       TEXT,
  reason    TEXT NOT NULL,
  payload   TEXT NOT NULL,
  truncated INTEGER NOT NULL DEFAULT 0,
  run_id    INTEGER,
  at        INTEGER NOT NULL
);

CREATE TABLE config_overrides (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE checkpoint (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  data TEXT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'one-column FTS with facet tokens; outbox due index',
    sql: `
DROP TABLE IF EXISTS skills_fts;
CREATE VIRTUAL TABLE skills_fts USING fts5 (
  body,
  content = '', contentless_delete = 1, detail = none,
  tokenize = 'unicode61 remove_diacritics 2'
);
-- The uploader's claim scans pending items in due order and stops after \`limit\` heads.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
`,
    up: (db) => {
      // Refill the new index from the stored skills (base + overrides, as the store writes it).
      const insert = db.prepare('INSERT INTO skills_fts (rowid, body) VALUES (?, ?)');
      const chunk = db.prepare('SELECT id, base, local FROM skills WHERE id > ? ORDER BY id LIMIT 1000');
      for (let after = 0; ;) {
        const rows = chunk.all(after) as { id: number; base: string; local: string | null }[];
        if (rows.length === 0) break;
        for (const r of rows) {
          const local = r.local === null ? null : (JSON.parse(r.local) as SkillOverrides);
          insert.run(r.id, skillColumns(effectiveSkill(JSON.parse(r.base) as Skill, local)).ftsBody);
        }
        after = rows[rows.length - 1]!.id;
      }
    },
  },
  {
    version: 3,
    name: 'category listings ordered by name from the index',
    // A category filter without text used the category index and then sorted every member by
    // name (15 ms for 3,000 of 100,000); (category, name, skill_id) gives the page in order
    // and still serves category equality (counts), so it replaces the single-column index.
    sql: `
CREATE INDEX skills_category_name ON skills (category, name, skill_id);
DROP INDEX skills_category;
`,
  },
  {
    version: 4,
    name: 'no outbox index on rating_id',
    // It served only the ON DELETE SET NULL of a ratings row, and the store never deletes one;
    // every enqueue paid for it (an index page per commit, ~10% of a local action's cost).
    sql: `
DROP INDEX outbox_rating;
`,
  },
  {
    version: 5,
    name: 'FTS vocabulary view for prefix searches',
    // Terms of skills_fts (no data of its own): a search looks up the few terms a typed word
    // is a prefix of and matches them whole (see ftsQuery).
    sql: `
CREATE VIRTUAL TABLE skills_fts_vocab USING fts5vocab (skills_fts, row);
`,
  },
  {
    version: 6,
    name: 'FTS merges 16 segments at a time',
    // FTS5 writes a segment per page transaction and, by default, merges every 4 segments of a
    // level: a full listing rewrote each posting list many times. 16 does a third of that
    // merge work (bench/store-upsert) at the price of a few more segments per search.
    sql: `
INSERT INTO skills_fts (skills_fts, rank) VALUES ('automerge', 16);
`,
  },
  {
    version: 7,
    name: 'no outbox index on (status, id)',
    // outbox_due (status, next_attempt_at, id) answers every status equality and count as a
    // covering index; (status, id) only saved listOutbox's sort by id, which now sorts the ids
    // from outbox_due. Every local action wrote a page of it (one WAL frame in eight of a
    // rating), and so did every claim and completion.
    sql: `
DROP INDEX outbox_status;
`,
  },
  {
    version: 8,
    name: 'search keys of every skill in one small covering index',
    // A text search reads the filter and sort columns of every match (a few hundred rows for a
    // word and a category of 100,000 skills) to rank and count them. From the skill rows that
    // is a page of JSON payloads per match, mostly outside the page cache; this index holds
    // just those columns in id order (~90 bytes a skill), so it stays cached, and its keys
    // arrive in id order during a first load (appended, not scattered).
    sql: `
CREATE INDEX skills_search_keys ON skills (id, category, skill_type, average_rating, rating_count,
  install_count, remote_updated_ms, name, skill_id);
`,
  },
  {
    version: 9,
    name: 'sync lease: one sync run at a time across processes',
    // `skillsync serve` and a `skillsync sync` (or a second service) may share the file: the
    // lease says which of them runs a sync, until when (see src/store/sync-lease.ts).
    sql: `
CREATE TABLE sync_lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  owner TEXT NOT NULL,
  run_id INTEGER,
  expires_at INTEGER NOT NULL
);
`,
  },
  {
    version: 10,
    name: 'remembered deletions for the version guard',
    // A deleted skill has no row for the version guard to compare against: a late or replayed
    // older update would insert it again. The deletion's remote time is remembered here until
    // expires_at (the cache TTL after it was recorded; the TTL sweep forgets it).
    sql: `
CREATE TABLE skill_deletions (
  skill_id    TEXT PRIMARY KEY,
  deleted_at  TEXT NOT NULL,
  deleted_ms  INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX skill_deletions_expiry ON skill_deletions (expires_at);
`,
  },
  {
    version: 11,
    name: 'outbox by skill',
    // listOutbox({skillId}) (the explain route): done items are never purged, so without it the
    // query scans the whole outbox. (skill_id, id) does not change with the status, so claims and
    // completions do not write it; only an enqueue does.
    sql: `
CREATE INDEX outbox_skill ON outbox (skill_id, id);
`,
  },
];

/**
 * Read indexes, most with keys that arrive in random order during a listing (a skill's name).
 * Filling an EMPTY store, the store drops them for the length of the listing and builds them
 * once at its end (a sort), instead of touching most of their pages in every page transaction.
 * In a statement-by-statement timing of a 100k load the two name indexes took ~40% of the CPU,
 * and they are the part that grows faster than the catalog (bench/sync-full's 1M run went
 * from 14.2x to 10.9x the 100k time). While they are missing, reads still work (they sort).
 * A migration that touches one of them must use IF EXISTS / IF NOT EXISTS.
 */
export const DEFERRED_LOAD_INDEXES: readonly { name: string; sql: string }[] = [
  { name: 'skills_name', sql: 'CREATE INDEX IF NOT EXISTS skills_name ON skills (name, skill_id)' },
  {
    name: 'skills_category_name',
    sql: 'CREATE INDEX IF NOT EXISTS skills_category_name ON skills (category, name, skill_id)',
  },
  // Appended in id order, but built once from the finished table it costs a scan instead of
  // an entry per skill written (migration 8 defines it).
  {
    name: 'skills_search_keys',
    sql: `CREATE INDEX IF NOT EXISTS skills_search_keys ON skills (id, category, skill_type, average_rating,
      rating_count, install_count, remote_updated_ms, name, skill_id)`,
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

export function readSchemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies the missing migrations, all in one IMMEDIATE transaction (two processes opening the
 * same new file serialise here; the second one sees the new version and does nothing).
 * Returns the version before and after. The caller checks "too new" first.
 */
export function migrate(db: Database.Database): { from: number; to: number } {
  const run = db.transaction(() => {
    const from = readSchemaVersion(db);
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      db.exec(m.sql);
      m.up?.(db);
      db.pragma(`user_version = ${m.version}`);
    }
    return { from, to: readSchemaVersion(db) };
  });
  return run.immediate();
}
