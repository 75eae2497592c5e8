/**
 * SqliteStore: the embedded Store on better-sqlite3 (synchronous driver; every method runs to
 * completion before its promise settles, so methods never interleave on this connection).
 *
 * Durability: WAL with synchronous=NORMAL. A killed process (SIGKILL, crash) never loses a
 * committed transaction nor sees a half one: the WAL is replayed on the next open. Only an OS
 * crash or power loss may roll back the last transactions, and then to a consistent state
 * (checkpoint and data always commit together). `synchronous: 'full'` trades speed for that.
 *
 * Every write that must be atomic is one IMMEDIATE transaction (taking the write lock up
 * front, so a deferred read->write upgrade cannot fail with SQLITE_BUSY mid-way).
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { SkillsyncError } from '../../core/errors.js';
import { catalogDigest, categoryContentHash, skillContentHash } from '../../remote/contract.js';
import type { Category, Skill } from '../../remote/contract.js';
import type { Store } from '../store.js';
import type { LeaseAttempt } from '../sync-lease.js';
import type {
  ApplyPageInput,
  ApplyResult,
  CategoryRecord,
  ChangeSource,
  ConflictRecord,
  ConflictStrategy,
  ConflictType,
  ConflictUpsert,
  EnqueueInput,
  EventOutcome,
  ListingCheckpoint,
  LocalSkillState,
  OutboxItem,
  OutboxStatus,
  QuarantineInput,
  QuarantineRecord,
  RatingRecord,
  RunMode,
  RunPatch,
  RunRecord,
  RunTrigger,
  Severity,
  SkillOverrides,
  SkillPageResult,
  SkillQuery,
  SkillRecord,
  SkillUpsert,
  StoreStats,
  SyncState,
  Tombstone,
  WsOutcome,
  WsState,
} from '../types.js';
import { DELETION_MEMORY_MS, OUTBOX_STATUSES, WS_OUTCOMES } from '../types.js';
import { buildIndexesInWorker, IndexBuildError, type IndexBuildOptions } from './index-builder.js';
import { DEFERRED_LOAD_INDEXES, migrate, readSchemaVersion, SCHEMA_VERSION } from './migrations.js';
import {
  effectiveSkill,
  ftsQuery,
  isOlderRemote,
  remoteTimeMs,
  skillColumns,
  textTokens,
} from './skill-columns.js';
import { acquireLease, releaseLease, renewLease } from './sqlite-lease.js';
import { toStoreError } from './sqlite-errors.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** How long a statement waits for another connection's lock before STORE_LOCKED. Default 5000. */
  busyTimeoutMs?: number;
  /** Open read-only: every write fails with SKILLSYNC_ERR_STORE_READONLY. */
  readonly?: boolean;
  /** 'normal' (default, WAL-safe against process crashes) or 'full' (also against power loss). */
  synchronous?: 'normal' | 'full';
  /**
   * Caps the database size in pages (PRAGMA max_page_count): writes past it fail as if the
   * disk were full. For tests and for operators who want a hard size limit.
   */
  maxPageCount?: number;
  /**
   * SQLite's page cache per connection, in KiB (PRAGMA cache_size). It is resident memory:
   * 128 MiB put a 1M-skill sync at ~314 MB RSS; the OS page cache still keeps the file hot.
   */
  cacheSizeKiB?: number;
  /**
   * Page size of a NEW database file, in bytes (PRAGMA page_size; a power of two, 512–65536).
   * An existing file keeps the size it was created with. Default 4096: 16 KiB loaded a
   * 100k catalog ~5% faster but made the commit of 1,000 scattered updates ~6x slower (every
   * touched page goes to the WAL whole), and updates are the steady state (incremental syncs,
   * WebSocket events).
   */
  pageSize?: number;
  /**
   * WAL size in bytes after which a commit checkpoints it into the database file (PRAGMA
   * wal_autocheckpoint, converted to pages). A larger WAL writes hot index and FTS pages to
   * the file once instead of at every checkpoint; the WAL file is truncated back to this
   * size after a checkpoint (journal_size_limit), so it is also the WAL's disk footprint.
   */
  walCheckpointBytes?: number;
}

export const DEFAULT_SQLITE_OPTIONS = Object.freeze({
  busyTimeoutMs: 5000,
  synchronous: 'normal' as const,
  cacheSizeKiB: 32 * 1024,
  pageSize: 4096,
  walCheckpointBytes: 64 * 1024 * 1024,
});

/** A typed word expands to at most this many whole terms; more keep the prefix query. */
const MAX_PREFIX_TERMS = 16;

/** Words whose prefix expansion is kept per index state (see SqliteStore.#prefixTermsNow). */
const PREFIX_MEMO_MAX = 10_000;

/** FTS5's structure record (segments, levels, write counter): rewritten by every index write. */
/**
 * Page cache of the worker that builds the deferred indexes, KiB. It is memory on top of the
 * store's own cache (32 MiB), at the end of a first load, when a 1M-skill sync is at its peak.
 */
const INDEX_BUILD_CACHE_KIB = 8 * 1024;

const FTS_STRUCTURE_SQL = 'SELECT block FROM skills_fts_data WHERE id = 10';

/** Quarantined payloads are kept up to this many characters of JSON. */
const QUARANTINE_MAX_CHARS = 64 * 1024;

export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  return Promise.resolve(SqliteStore.open(options));
}

// ---- row shapes ----------------------------------------------------------------------------

interface ExistingRow {
  id: number;
  skill_id: string;
  content_hash: string;
  remote_updated_at: string | null;
  local: string | null;
}

interface SkillRow {
  id: number;
  skill_id: string;
  base: string;
  local: string | null;
  content_hash: string;
  remote_updated_at: string | null;
  fetched_at: number;
  expires_at: number;
  source: ChangeSource;
  epoch: string | null;
  has_conflict: number;
}

interface CategoryRow {
  name: string;
  data: string;
  content_hash: string;
  remote_updated_at: string | null;
  fetched_at: number;
  expires_at: number;
  source: ChangeSource;
  epoch: string | null;
  skill_count: number;
}

interface ConflictRow {
  id: number;
  skill_id: string;
  type: ConflictType;
  severity: Severity;
  base: string;
  local: string;
  remote: string;
  strategy: ConflictStrategy;
  fields: string;
  status: 'open' | 'resolved';
  resolution: string | null;
  resolved_by: string | null;
  resolved_at: number | null;
  detected_at: number;
  updated_at: number;
}

interface OutboxRow {
  id: number;
  kind: OutboxItem['kind'];
  chain_key: string;
  skill_id: string | null;
  rating_id: number | null;
  payload: string;
  idempotency_key: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  lease_until: number | null;
  last_error: string | null;
  result: string | null;
  created_at: number;
  updated_at: number;
}

interface RatingRow {
  id: number;
  skill_id: string;
  user_id: string;
  rating: number;
  comment: string | null;
  created_at: number;
  updated_at: number;
  upload_status: RatingRecord['uploadStatus'];
  remote_rating_id: string | null;
}

type Row = Record<string, unknown>;

const SKILL_COLS = `s.id, s.skill_id, s.base, s.local, s.content_hash, s.remote_updated_at, s.fetched_at,
  s.expires_at, s.source, s.epoch,
  EXISTS (SELECT 1 FROM conflicts c WHERE c.skill_id = s.skill_id AND c.status = 'open') AS has_conflict`;

// Column maps for the patch-style updates: domain field -> [column, kind].
type ColKind = 'value' | 'bool';
const SYNC_STATE_COLUMNS: Partial<Record<keyof SyncState, [string, ColKind]>> = {
  status: ['status', 'value'],
  lastSyncAt: ['last_sync_at', 'value'],
  lastSuccessAt: ['last_success_at', 'value'],
  lastError: ['last_error', 'value'],
  consecutiveErrors: ['consecutive_errors', 'value'],
  totalSyncs: ['total_syncs', 'value'],
  successfulSyncs: ['successful_syncs', 'value'],
  failedSyncs: ['failed_syncs', 'value'],
  autoSyncEnabled: ['auto_sync_enabled', 'bool'],
  watermark: ['watermark', 'value'],
  epoch: ['epoch', 'value'],
  nextRunAt: ['next_run_at', 'value'],
  lastCompleteListingAt: ['last_complete_listing_at', 'value'],
  heldDeletions: ['held_deletions', 'value'],
  heldDeletionsAt: ['held_deletions_at', 'value'],
  conflictsDetectedTotal: ['conflicts_detected_total', 'value'],
  conflictsResolvedTotal: ['conflicts_resolved_total', 'value'],
  // pendingActions, skillsCached, categoriesCached are computed on read.
};
const RUN_COLUMNS: Record<keyof RunPatch, [string, ColKind]> = {
  mode: ['mode', 'value'],
  status: ['status', 'value'],
  finishedAt: ['finished_at', 'value'],
  pages: ['pages', 'value'],
  upserted: ['upserted', 'value'],
  unchanged: ['unchanged', 'value'],
  deleted: ['deleted', 'value'],
  quarantined: ['quarantined', 'value'],
  conflictsDetected: ['conflicts_detected', 'value'],
  conflictsResolved: ['conflicts_resolved', 'value'],
  conflictsManual: ['conflicts_manual', 'value'],
  deletionsHeld: ['deletions_held', 'value'],
  resumedFromCheckpoint: ['resumed_from_checkpoint', 'bool'],
  error: ['error', 'value'],
};
const WS_COLUMNS: Record<keyof Omit<WsState, 'counts'>, [string, ColKind]> = {
  connected: ['connected', 'bool'],
  url: ['url', 'value'],
  state: ['state', 'value'],
  lastConnectedAt: ['last_connected_at', 'value'],
  lastMessageAt: ['last_message_at', 'value'],
  disconnectReason: ['disconnect_reason', 'value'],
  reconnectAttempts: ['reconnect_attempts', 'value'],
  consecutiveFailures: ['consecutive_failures', 'value'],
  fallbackSince: ['fallback_since', 'value'],
  nextAttemptAt: ['next_attempt_at', 'value'],
  enabled: ['enabled', 'bool'],
  lastSeq: ['last_seq', 'value'],
};

function buildSet(
  patch: Record<string, unknown>,
  columns: Partial<Record<string, [string, ColKind]>>,
): { sql: string; values: unknown[] } {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const [key, value] of Object.entries(patch)) {
    const col = columns[key];
    if (col === undefined || value === undefined) continue;
    sets.push(`${col[0]} = ?`);
    values.push(col[1] === 'bool' ? (value ? 1 : 0) : value);
  }
  return { sql: sets.join(', '), values };
}

const parseJson = <T>(text: string): T => JSON.parse(text) as T;
const parseJsonOrNull = <T>(text: string | null): T | null => (text === null ? null : parseJson<T>(text));

interface ItemContext {
  now: number;
  expiresAt: number;
  epoch: string | null;
  source: ChangeSource;
  guard: 'listing' | 'version';
  /**
   * Under the version guard: remembered deletions (remote ms) of the batch's skills that have
   * no row (see Store.deleteSkill). An entry is removed when a newer version re-creates the skill.
   */
  deletions: Map<string, number>;
  /**
   * FTS entries to write at the end of the transaction, by skills.id (see #writeFts). `replace`
   * says whether the entry may exist already; the last body written for an id wins.
   */
  fts: Map<number, { body: string; replace: boolean }>;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  /** The write path's statements, called with positional arguments (no lookup, no spread). */
  readonly #hot: {
    insertSkill: Database.Statement;
    updateSkill: Database.Statement;
    ftsInsert: Database.Statement;
    ftsReplace: Database.Statement;
    prefixTerms: Database.Statement;
    schemaVersion: Database.Statement;
  };

  /** One transaction wrapper for every write (created once: it calls the function it is given). */
  readonly #inTx: Database.Transaction<(fn: () => unknown) => unknown>;

  /**
   * True while a first load of an empty store runs without DEFERRED_LOAD_INDEXES (they are
   * built when its listing ends: the page without a checkpoint, or the checkpoint cleared).
   */
  #bulkLoad = false;
  /** Where and how a worker builds those indexes; null (in-memory file): built inline. */
  readonly #builder: Omit<IndexBuildOptions, 'statements'> | null;
  /** Set by a transaction that ended a first load: the build starts once it has committed. */
  #buildQueued = false;
  /** The build in progress (never rejects); writes wait for it, reads go on. */
  #indexBuild: Promise<void> | null = null;

  private constructor(db: Database.Database, builder: Omit<IndexBuildOptions, 'statements'> | null) {
    this.#db = db;
    this.#builder = builder;
    this.#inTx = db.transaction((fn: () => unknown) => fn());
    this.#hot = {
      insertSkill: db.prepare(
        `INSERT INTO skills (skill_id, base, local, name, category, skill_type, version,
                 average_rating, rating_count, install_count, remote_updated_at, remote_updated_ms,
                 content_hash, fetched_at, expires_at, source, epoch, written_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateSkill: db.prepare(
        `UPDATE skills SET base = ?, local = ?, name = ?, category = ?, skill_type = ?, version = ?,
               average_rating = ?, rating_count = ?, install_count = ?, remote_updated_at = ?,
               remote_updated_ms = ?, content_hash = ?, fetched_at = ?, expires_at = ?, source = ?,
               epoch = ?, written_at = ?
             WHERE id = ?`,
      ),
      ftsInsert: db.prepare('INSERT INTO skills_fts (rowid, body) VALUES (?, ?)'),
      ftsReplace: db.prepare('INSERT OR REPLACE INTO skills_fts (rowid, body) VALUES (?, ?)'),
      prefixTerms: db
        .prepare('SELECT term FROM skills_fts_vocab WHERE term >= ? AND term < ? LIMIT ?')
        .pluck(),
      schemaVersion: db.prepare('PRAGMA schema_version').pluck(),
    };
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    let db: Database.Database | undefined;
    try {
      const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_SQLITE_OPTIONS.busyTimeoutMs;
      db = new Database(options.path, {
        readonly: options.readonly ?? false,
        timeout: busyTimeoutMs,
      });
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      // Reading the header first: a file that is not a database fails here (SQLITE_NOTADB).
      const version = readSchemaVersion(db);
      if (version > SCHEMA_VERSION) {
        throw new SkillsyncError(
          'SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW',
          `the database at ${options.path} has schema version ${version}; this skillsync knows up to ${SCHEMA_VERSION}: upgrade skillsync or use another database`,
          { details: { version, known: SCHEMA_VERSION } },
        );
      }
      if (!options.readonly) {
        // page_size only takes effect on a file that has no pages yet, and before WAL mode.
        if ((db.pragma('page_count', { simple: true }) as number) === 0) {
          db.pragma(`page_size = ${options.pageSize ?? DEFAULT_SQLITE_OPTIONS.pageSize}`);
        }
        db.pragma('journal_mode = WAL');
        const pageBytes = db.pragma('page_size', { simple: true }) as number;
        const walBytes = options.walCheckpointBytes ?? DEFAULT_SQLITE_OPTIONS.walCheckpointBytes;
        db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.floor(walBytes / pageBytes))}`);
        db.pragma(`journal_size_limit = ${Math.max(0, Math.floor(walBytes))}`);
      }
      db.pragma(`synchronous = ${(options.synchronous ?? DEFAULT_SQLITE_OPTIONS.synchronous).toUpperCase()}`);
      db.pragma('foreign_keys = ON');
      // Temporary storage in files (the default): a sort larger than the page cache (building
      // the deferred indexes after a first load of 1M skills) spills to disk instead of
      // growing the heap (+115 MB peak RSS in memory, +28 MB with files).
      db.pragma('temp_store = FILE');
      const cacheKiB = Math.max(
        1024,
        Math.floor(options.cacheSizeKiB ?? DEFAULT_SQLITE_OPTIONS.cacheSizeKiB),
      );
      db.pragma(`cache_size = -${cacheKiB}`);
      if (options.maxPageCount !== undefined)
        db.pragma(`max_page_count = ${Math.floor(options.maxPageCount)}`);
      if (version < SCHEMA_VERSION) {
        if (options.readonly) {
          throw new SkillsyncError(
            'SKILLSYNC_ERR_STORE_READONLY',
            `the database at ${options.path} needs migrations but was opened read-only`,
          );
        }
        migrate(db);
      }
      const builder =
        options.readonly || db.memory
          ? null
          : {
              path: resolve(db.name),
              busyTimeoutMs: Math.max(0, Math.floor(busyTimeoutMs)),
              cacheSizeKiB: Math.min(cacheKiB, INDEX_BUILD_CACHE_KIB),
              walAutocheckpointPages: db.pragma('wal_autocheckpoint', { simple: true }) as number,
              journalSizeLimitBytes: db.pragma('journal_size_limit', { simple: true }) as number,
            };
      const store = new SqliteStore(db, builder);
      if (!options.readonly) store.#resumeOrEndBulkLoad();
      return store;
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already failing; the original error matters
      }
      throw toStoreError(err, 'open');
    }
  }

  // ---- plumbing ------------------------------------------------------------------------

  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #get<T>(sql: string, ...params: unknown[]): T | undefined {
    return this.#stmt(sql).get(...params) as T | undefined;
  }

  #all<T>(sql: string, ...params: unknown[]): T[] {
    return this.#stmt(sql).all(...params) as T[];
  }

  #run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.#stmt(sql).run(...params);
  }

  /** Runs `fn` and maps driver failures to store error codes. */
  #do<T>(operation: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(toStoreError(err, operation));
    }
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (rolled back when it throws). While a worker builds
   * the deferred indexes, writes wait for it in call order (a write now would wait on its lock
   * with the thread blocked).
   */
  #tx<T>(operation: string, fn: () => T): Promise<T> {
    if (this.#indexBuild !== null) return this.#indexBuild.then(() => this.#tx(operation, fn));
    return this.#do(operation, () => this.#inTx.immediate(fn) as T);
  }

  /** `write`'s result, once the index build its transaction queued (if any) has finished. */
  #afterBuild<T>(write: Promise<T>): Promise<T> {
    return write.then((value) => (this.#buildQueued ? this.#startBuild().then(() => value) : value));
  }

  /**
   * Builds the deferred indexes in a worker (see index-builder.ts). A failed build is not the
   * page's failure (the page is committed and reads work without them): the first load stays
   * open, so the next end of a listing, or the next open, builds them.
   */
  #startBuild(): Promise<void> {
    this.#buildQueued = false;
    if (this.#indexBuild !== null) return this.#indexBuild;
    const statements = DEFERRED_LOAD_INDEXES.map((i) => i.sql);
    const build = buildIndexesInWorker({ ...this.#builder!, statements })
      .catch((err: unknown) => {
        // SQLite refused it (the file busy past the timeout, a full disk): it would refuse the
        // same here, with the thread blocked. Only a worker that could not run builds here.
        if (err instanceof IndexBuildError) throw err;
        this.#inTx.immediate(() => {
          for (const sql of statements) this.#db.exec(sql);
        });
      })
      .then(
        () => {
          this.#bulkLoad = false;
        },
        () => undefined,
      )
      .finally(() => {
        this.#indexBuild = null;
      });
    this.#indexBuild = build;
    return build;
  }

  // ---- skills: sync writes -------------------------------------------------------------

  applySkillPage(input: ApplyPageInput): Promise<ApplyResult> {
    return this.#afterBuild(this.#applySkillPage(input));
  }

  #applySkillPage(input: ApplyPageInput): Promise<ApplyResult> {
    return this.#tx('applySkillPage', () => {
      if (
        !this.#bulkLoad &&
        input.guard === 'listing' &&
        input.checkpoint !== null &&
        input.items.length > 0 &&
        this.#get('SELECT 1 AS x FROM skills LIMIT 1') === undefined
      ) {
        for (const index of DEFERRED_LOAD_INDEXES) this.#db.exec(`DROP INDEX IF EXISTS ${index.name}`);
        this.#bulkLoad = true;
      }
      const result: ApplyResult = { upserted: 0, unchanged: 0, stale: 0, deleted: 0, conflictsRecorded: 0 };
      const ctx: ItemContext = {
        now: input.now,
        expiresAt: input.now + input.ttlMs,
        epoch: input.epoch,
        source: input.source,
        guard: input.guard,
        deletions: new Map(),
        fts: new Map(),
      };
      const existing = new Map<string, ExistingRow>();
      if (input.items.length > 0) {
        const ids = JSON.stringify(input.items.map((i) => i.skill.skill_id));
        const rows = this.#all<ExistingRow>(
          `SELECT id, skill_id, content_hash, remote_updated_at, local FROM skills
           WHERE skill_id IN (SELECT value FROM json_each(?))`,
          ids,
        );
        for (const r of rows) existing.set(r.skill_id, r);
        if (this.#get('SELECT 1 AS x FROM skill_deletions LIMIT 1') !== undefined) {
          if (input.guard === 'listing') {
            // A full listing is authoritative: a skill it lists exists.
            this.#run('DELETE FROM skill_deletions WHERE skill_id IN (SELECT value FROM json_each(?))', ids);
          } else {
            this.#loadDeletions(ids, ctx.deletions);
          }
        }
      }
      const touch: number[] = [];
      for (const item of input.items) {
        const outcome = this.#applyItem(item, existing, ctx, touch, result);
        if (outcome === 'applied') result.upserted++;
        else if (outcome === 'duplicate') result.unchanged++;
        else result.stale++;
      }
      this.#writeFts(ctx);
      if (touch.length > 0) {
        this.#run(
          `UPDATE skills SET fetched_at = ?, expires_at = ?, epoch = ?
           WHERE id IN (SELECT value FROM json_each(?))`,
          ctx.now,
          ctx.expiresAt,
          ctx.epoch,
          JSON.stringify(touch),
        );
      }
      if (input.tombstones.length > 0) {
        this.#rememberDeletions(input.tombstones, ctx.now, input.ttlMs);
        result.deleted = this.#run(
          // By id through an ordered subquery: the FTS trigger then deletes in ascending rowid order.
          `DELETE FROM skills WHERE id IN (
             SELECT id FROM skills WHERE skill_id IN (SELECT value FROM json_each(?)) ORDER BY id)`,
          JSON.stringify(input.tombstones.map((t) => t.skillId)),
        ).changes;
      }
      this.#saveCheckpoint(input.checkpoint);
      if (input.watermark !== undefined) {
        this.#run('UPDATE sync_state SET watermark = ? WHERE id = 1', input.watermark);
      }
      return result;
    });
  }

  applySkillEvents(
    items: readonly SkillUpsert[],
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.#tx('applySkillEvents', () => {
      const existing = new Map<string, ExistingRow>();
      const rows =
        items.length === 1
          ? [this.#existingOne(items[0]!.skill.skill_id)].filter((r) => r !== undefined)
          : this.#all<ExistingRow>(
              `SELECT id, skill_id, content_hash, remote_updated_at, local FROM skills
               WHERE skill_id IN (SELECT value FROM json_each(?))`,
              JSON.stringify(items.map((i) => i.skill.skill_id)),
            );
      for (const r of rows) existing.set(r.skill_id, r);
      const ctx: ItemContext = {
        now: options.now,
        expiresAt: options.now + options.ttlMs,
        epoch: options.epoch,
        source: options.source,
        guard: 'version',
        deletions: new Map(),
        fts: new Map(),
      };
      if (rows.length < items.length) {
        if (items.length === 1) {
          const d = this.#get<{ ms: number }>(
            'SELECT deleted_ms AS ms FROM skill_deletions WHERE skill_id = ?',
            items[0]!.skill.skill_id,
          );
          if (d !== undefined) ctx.deletions.set(items[0]!.skill.skill_id, d.ms);
        } else {
          this.#loadDeletions(JSON.stringify(items.map((i) => i.skill.skill_id)), ctx.deletions);
        }
      }
      const counters = { conflictsRecorded: 0 };
      // #applyItem updates `existing`, so a later event for the same skill is guarded by the earlier one.
      const outcomes = items.map((item) => this.#applyItem(item, existing, ctx, null, counters));
      this.#writeFts(ctx);
      return outcomes;
    });
  }

  #existingOne(skillId: string): ExistingRow | undefined {
    return this.#get<ExistingRow>(
      'SELECT id, skill_id, content_hash, remote_updated_at, local FROM skills WHERE skill_id = ?',
      skillId,
    );
  }

  applySkillEvent(
    item: SkillUpsert,
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome> {
    // One event is a batch of one (one existing-row lookup, one transaction).
    return this.applySkillEvents([item], options).then((outcomes) => outcomes[0]!);
  }

  /**
   * One skill of a page or an event. `touch` collects unchanged rows whose only change is
   * freshness, for one batched UPDATE; null touches them one by one.
   */
  #applyItem(
    item: SkillUpsert,
    existing: Map<string, ExistingRow>,
    ctx: ItemContext,
    touch: number[] | null,
    counters: { conflictsRecorded: number },
  ): EventOutcome {
    const skill = item.skill;
    const skillId = skill.skill_id;
    const ex = existing.get(skillId);
    const incomingAt = typeof skill.updated_at === 'string' ? skill.updated_at : null;
    if (ex !== undefined && ctx.guard === 'version' && isOlderRemote(incomingAt, ex.remote_updated_at)) {
      return 'stale';
    }
    if (ex === undefined && ctx.deletions.size > 0) {
      // A remembered deletion: only a version newer than it re-creates the skill.
      const deletedMs = ctx.deletions.get(skillId);
      if (deletedMs !== undefined) {
        const incomingMs = remoteTimeMs(incomingAt);
        if (incomingMs === null || incomingMs <= deletedMs) return 'stale';
        ctx.deletions.delete(skillId);
        this.#run('DELETE FROM skill_deletions WHERE skill_id = ?', skillId);
      }
    }
    const newLocalText =
      item.local === undefined
        ? (ex?.local ?? null)
        : item.local === null
          ? null
          : JSON.stringify(item.local);
    let outcome: EventOutcome;
    if (ex !== undefined && ex.content_hash === item.contentHash) {
      outcome = 'duplicate';
      const atChanged = incomingAt !== null && incomingAt !== ex.remote_updated_at;
      if (newLocalText !== ex.local) {
        const base = this.#get<{ base: string }>('SELECT base FROM skills WHERE id = ?', ex.id)!.base;
        this.#writeEffective(ex.id, parseJson<Skill>(base), newLocalText, ctx.now, ctx.source, ctx.fts);
      }
      if (touch !== null && !atChanged) {
        touch.push(ex.id);
      } else {
        this.#run(
          `UPDATE skills SET fetched_at = ?, expires_at = ?, epoch = ?,
             remote_updated_at = coalesce(?, remote_updated_at),
             remote_updated_ms = coalesce(?, remote_updated_ms),
             base = CASE WHEN ? IS NULL THEN base ELSE json_set(base, '$.updated_at', ?) END
           WHERE id = ?`,
          ctx.now,
          ctx.expiresAt,
          ctx.epoch,
          incomingAt,
          remoteTimeMs(incomingAt),
          incomingAt,
          incomingAt,
          ex.id,
        );
      }
      existing.set(skillId, {
        ...ex,
        remote_updated_at: incomingAt ?? ex.remote_updated_at,
        local: newLocalText,
      });
    } else {
      outcome = 'applied';
      const local =
        item.local !== undefined
          ? item.local
          : newLocalText === null
            ? null
            : parseJson<SkillOverrides>(newLocalText);
      const cols = skillColumns(effectiveSkill(skill, local));
      const baseText = JSON.stringify(skill);
      // A payload without updated_at keeps the stored time, so the version guard goes on
      // refusing what is older than the newest version seen (null would switch it off).
      const remoteAt = incomingAt ?? ex?.remote_updated_at ?? null;
      const remoteMs = remoteTimeMs(remoteAt);
      // The written columns, in the order both updateSkill and insertSkill take them.
      const written = [
        baseText,
        newLocalText,
        cols.name,
        cols.category,
        cols.skillType,
        cols.version,
        cols.averageRating,
        cols.ratingCount,
        cols.installCount,
        remoteAt,
        remoteMs,
        item.contentHash,
        ctx.now,
        ctx.expiresAt,
        ctx.source,
        ctx.epoch,
        ctx.now,
      ];
      let rowId: number;
      if (ex !== undefined) {
        rowId = ex.id;
        this.#hot.updateSkill.run(...written, rowId);
      } else {
        rowId = Number(this.#hot.insertSkill.run(skillId, ...written).lastInsertRowid);
      }
      const pending = ctx.fts.get(rowId);
      ctx.fts.set(rowId, { body: cols.ftsBody, replace: pending?.replace ?? ex !== undefined });
      existing.set(skillId, {
        id: rowId,
        skill_id: skillId,
        content_hash: item.contentHash,
        remote_updated_at: remoteAt,
        local: newLocalText,
      });
    }
    if (item.resolveOpenConflict !== undefined) {
      this.#closeOpenConflict(
        skillId,
        item.resolveOpenConflict.resolution,
        item.resolveOpenConflict.resolvedBy,
        ctx.now,
      );
    }
    if (item.conflict !== undefined) {
      this.#recordConflict(skillId, item.conflict, ctx.now);
      counters.conflictsRecorded++;
    }
    return outcome;
  }

  /**
   * Writes the collected FTS entries in ascending rowid order. FTS5 keeps a transaction's new
   * entries in memory only while rowids ascend: a smaller rowid flushes them to a new segment
   * first, so updates written in listing order (random rowids) made one tiny segment per skill
   * and merge work to match (~0.4 ms per updated skill at 100k; bench/sync-incremental).
   */
  #writeFts(ctx: ItemContext): void {
    if (ctx.fts.size === 0) return;
    const ids = [...ctx.fts.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const e = ctx.fts.get(id)!;
      (e.replace ? this.#hot.ftsReplace : this.#hot.ftsInsert).run(id, e.body);
    }
    ctx.fts.clear();
  }

  /** Rewrites a skill's local overrides and the effective read columns + FTS entry. */
  #writeEffective(
    rowId: number,
    base: Skill,
    localText: string | null,
    now: number,
    source: ChangeSource,
    /** The transaction's FTS collector (see #writeFts), or null to write the entry now. */
    fts: ItemContext['fts'] | null = null,
  ): void {
    const cols = skillColumns(effectiveSkill(base, parseJsonOrNull<SkillOverrides>(localText)));
    this.#run(
      `UPDATE skills SET local = ?, name = ?, category = ?, skill_type = ?, version = ?,
         average_rating = ?, rating_count = ?, install_count = ?, source = ?, written_at = ?
       WHERE id = ?`,
      localText,
      cols.name,
      cols.category,
      cols.skillType,
      cols.version,
      cols.averageRating,
      cols.ratingCount,
      cols.installCount,
      source,
      now,
      rowId,
    );
    if (fts === null) this.#hot.ftsReplace.run(rowId, cols.ftsBody);
    else fts.set(rowId, { body: cols.ftsBody, replace: fts.get(rowId)?.replace ?? true });
  }

  /** Opens the skill's conflict or updates the open one in place. */
  #recordConflict(skillId: string, c: ConflictUpsert, now: number): void {
    const open = this.#get<{ id: number }>(
      "SELECT id FROM conflicts WHERE skill_id = ? AND status = 'open'",
      skillId,
    );
    const values = [
      c.type,
      c.severity,
      JSON.stringify(c.base),
      JSON.stringify(c.local),
      JSON.stringify(c.remote),
      c.strategy,
      JSON.stringify(c.fields),
    ];
    if (open !== undefined) {
      this.#run(
        `UPDATE conflicts SET type = ?, severity = ?, base = ?, local = ?, remote = ?, strategy = ?,
           fields = ?, updated_at = ? WHERE id = ?`,
        ...values,
        now,
        open.id,
      );
    } else {
      this.#run(
        `INSERT INTO conflicts (skill_id, type, severity, base, local, remote, strategy, fields,
           status, detected_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)`,
        skillId,
        ...values,
        now,
        now,
      );
      this.#run('UPDATE sync_state SET conflicts_detected_total = conflicts_detected_total + 1 WHERE id = 1');
    }
  }

  #closeOpenConflict(skillId: string, resolution: string, resolvedBy: string, now: number): void {
    const changes = this.#run(
      `UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_by = ?, resolved_at = ?,
         updated_at = ? WHERE skill_id = ? AND status = 'open'`,
      resolution,
      resolvedBy,
      now,
      now,
      skillId,
    ).changes;
    if (changes > 0) {
      this.#run(
        'UPDATE sync_state SET conflicts_resolved_total = conflicts_resolved_total + ? WHERE id = 1',
        changes,
      );
    } else {
      // A conflict the strategy settled before any was open: detected and resolved at once.
      this.#run(
        `UPDATE sync_state SET conflicts_detected_total = conflicts_detected_total + 1,
           conflicts_resolved_total = conflicts_resolved_total + 1 WHERE id = 1`,
      );
    }
  }

  deleteSkill(
    skillId: string,
    options: { now: number; remoteAt?: string; ttlMs?: number },
  ): Promise<boolean> {
    return this.#tx('deleteSkill', () => {
      this.#rememberDeletions(
        [{ skillId, deletedAt: options.remoteAt ?? null }],
        options.now,
        options.ttlMs ?? DELETION_MEMORY_MS,
      );
      return this.#run('DELETE FROM skills WHERE skill_id = ?', skillId).changes > 0;
    });
  }

  /** Remembered deletions of the given skills (ids as a JSON array) into `into`. */
  #loadDeletions(idsJson: string, into: Map<string, number>): void {
    for (const d of this.#all<{ skill_id: string; ms: number }>(
      `SELECT skill_id, deleted_ms AS ms FROM skill_deletions
       WHERE skill_id IN (SELECT value FROM json_each(?))`,
      idsJson,
    )) {
      into.set(d.skill_id, d.ms);
    }
  }

  /**
   * Remembers deletions (before the rows go: a stored version's time counts when later than
   * the deletion's or when that is unknown). A later record of the same skill keeps the later time.
   */
  #rememberDeletions(tombstones: readonly Tombstone[], now: number, ttlMs: number): void {
    for (const t of tombstones) {
      const stored = this.#get<{ at: string | null; ms: number | null }>(
        'SELECT remote_updated_at AS at, remote_updated_ms AS ms FROM skills WHERE skill_id = ?',
        t.skillId,
      );
      let at = t.deletedAt;
      let ms = remoteTimeMs(at);
      if (stored?.ms != null && (ms === null || stored.ms > ms)) {
        at = stored.at;
        ms = stored.ms;
      }
      if (at === null || ms === null) continue;
      this.#run(
        `INSERT INTO skill_deletions (skill_id, deleted_at, deleted_ms, recorded_at, expires_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (skill_id) DO UPDATE SET
           deleted_at = CASE WHEN excluded.deleted_ms > deleted_ms THEN excluded.deleted_at ELSE deleted_at END,
           deleted_ms = max(deleted_ms, excluded.deleted_ms),
           recorded_at = excluded.recorded_at, expires_at = excluded.expires_at`,
        t.skillId,
        at,
        ms,
        now,
        now + ttlMs,
      );
    }
  }

  getDeletion(skillId: string): Promise<{ deletedAt: string; recordedAt: number; expiresAt: number } | null> {
    return this.#do('getDeletion', () => {
      const r = this.#get<{ deletedAt: string; recordedAt: number; expiresAt: number }>(
        `SELECT deleted_at AS deletedAt, recorded_at AS recordedAt, expires_at AS expiresAt
         FROM skill_deletions WHERE skill_id = ?`,
        skillId,
      );
      return r ?? null;
    });
  }

  applyRatingAggregates(
    skillId: string,
    aggregates: { averageRating?: number; ratingCount?: number },
    options: { now: number; remoteAt?: string },
  ): Promise<EventOutcome | 'missing'> {
    return this.#tx('applyRatingAggregates', () => this.#mergeAggregates(skillId, aggregates, options));
  }

  #mergeAggregates(
    skillId: string,
    aggregates: { averageRating?: number | undefined; ratingCount?: number | undefined },
    options: { now: number; remoteAt?: string | undefined },
  ): EventOutcome | 'missing' {
    const row = this.#get<{
      id: number;
      base: string;
      local: string | null;
      remote_updated_at: string | null;
    }>('SELECT id, base, local, remote_updated_at FROM skills WHERE skill_id = ?', skillId);
    if (row === undefined) return 'missing';
    if (options.remoteAt !== undefined && isOlderRemote(options.remoteAt, row.remote_updated_at))
      return 'stale';
    const base = parseJson<Skill>(row.base);
    const next: Skill = { ...base };
    if (aggregates.averageRating !== undefined) next.average_rating = aggregates.averageRating;
    if (aggregates.ratingCount !== undefined) next.rating_count = aggregates.ratingCount;
    const sameValues = next.average_rating === base.average_rating && next.rating_count === base.rating_count;
    const remoteAt = options.remoteAt ?? null;
    if (remoteAt !== null) next.updated_at = remoteAt;
    if (sameValues) {
      if (remoteAt !== null && remoteAt !== row.remote_updated_at) {
        this.#run(
          'UPDATE skills SET base = ?, remote_updated_at = ?, remote_updated_ms = ? WHERE id = ?',
          JSON.stringify(next),
          remoteAt,
          remoteTimeMs(remoteAt),
          row.id,
        );
      }
      return 'duplicate';
    }
    // Only the two aggregate read columns change (no FTS entry, no other column).
    const effective = effectiveSkill(next, parseJsonOrNull<SkillOverrides>(row.local));
    const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    this.#run(
      `UPDATE skills SET base = ?, content_hash = ?, average_rating = ?, rating_count = ?,
         remote_updated_at = coalesce(?, remote_updated_at), remote_updated_ms = coalesce(?, remote_updated_ms),
         written_at = ?
       WHERE id = ?`,
      JSON.stringify(next),
      skillContentHash(next),
      finite(effective.average_rating),
      finite(effective.rating_count),
      remoteAt,
      remoteTimeMs(remoteAt),
      options.now,
      row.id,
    );
    return 'applied';
  }

  getLocalStates(skillIds: readonly string[]): Promise<Map<string, LocalSkillState>> {
    return this.#do('getLocalStates', () => {
      const out = new Map<string, LocalSkillState>();
      if (skillIds.length === 0) return out;
      const rows = this.#all<{ skill_id: string; base: string; local: string; content_hash: string }>(
        `SELECT skill_id, base, local, content_hash FROM skills
         WHERE local IS NOT NULL AND skill_id IN (SELECT value FROM json_each(?))`,
        JSON.stringify(skillIds),
      );
      for (const r of rows) {
        out.set(r.skill_id, {
          skillId: r.skill_id,
          base: parseJson<Skill>(r.base),
          local: parseJson<SkillOverrides>(r.local),
          contentHash: r.content_hash,
        });
      }
      return out;
    });
  }

  // ---- deletions after a complete listing ----------------------------------------------

  countUnseenSkills(listingStartedAt: number): Promise<number> {
    return this.#do(
      'countUnseenSkills',
      () =>
        this.#get<{ n: number }>('SELECT count(*) AS n FROM skills WHERE fetched_at < ?', listingStartedAt)!
          .n,
    );
  }

  deleteUnseenSkills(listingStartedAt: number, _now: number): Promise<number> {
    return this.#tx('deleteUnseenSkills', () => {
      const deleted = this.#run('DELETE FROM skills WHERE fetched_at < ?', listingStartedAt).changes;
      this.#markListingComplete(listingStartedAt);
      return deleted;
    });
  }

  #markListingComplete(listingStartedAt: number): void {
    this.#run(
      `UPDATE sync_state SET
         last_complete_listing_at = max(coalesce(last_complete_listing_at, ?), ?),
         held_deletions = 0, held_deletions_at = NULL, held_listing_started_at = NULL
       WHERE id = 1`,
      listingStartedAt,
      listingStartedAt,
    );
  }

  holdDeletions(listingStartedAt: number, count: number, now: number): Promise<void> {
    return this.#tx('holdDeletions', () => {
      this.#run(
        `UPDATE sync_state SET held_deletions = ?, held_deletions_at = ?, held_listing_started_at = ?
         WHERE id = 1`,
        count,
        now,
        listingStartedAt,
      );
    });
  }

  confirmHeldDeletions(_now: number): Promise<number> {
    return this.#tx('confirmHeldDeletions', () => {
      const held = this.#get<{ at: number | null }>(
        'SELECT held_listing_started_at AS at FROM sync_state WHERE id = 1',
      )!.at;
      if (held === null) {
        throw new SkillsyncError('SKILLSYNC_ERR_SYNC_NOTHING_HELD', 'there are no held deletions to confirm');
      }
      const deleted = this.#run('DELETE FROM skills WHERE fetched_at < ?', held).changes;
      this.#markListingComplete(held);
      return deleted;
    });
  }

  sweepExpired(now: number): Promise<{ skills: number; categories: number }> {
    return this.#tx('sweepExpired', () => {
      // Remembered deletions are forgotten after their time, whatever the remote's state.
      this.#run('DELETE FROM skill_deletions WHERE expires_at <= ?', now);
      const listing = this.#get<{ at: number | null }>(
        'SELECT last_complete_listing_at AS at FROM sync_state WHERE id = 1',
      )!.at;
      if (listing === null) return { skills: 0, categories: 0 };
      // Expired at `now`, already expired when that listing started, and not seen by it.
      const skills = this.#run(
        'DELETE FROM skills WHERE expires_at <= ? AND expires_at <= ? AND fetched_at < ?',
        now,
        listing,
        listing,
      ).changes;
      // Categories are never swept: see Store.sweepExpired.
      return { skills, categories: 0 };
    });
  }

  // ---- categories ----------------------------------------------------------------------

  replaceCategories(
    categories: Category[],
    options: {
      now: number;
      ttlMs: number;
      epoch: string | null;
      source: ChangeSource;
      deleteMissing: boolean;
    },
  ): Promise<{ upserted: number; unchanged: number; deleted: number }> {
    return this.#tx('replaceCategories', () => {
      const known = new Map(
        this.#all<{ name: string; content_hash: string }>('SELECT name, content_hash FROM categories').map(
          (r) => [r.name, r.content_hash],
        ),
      );
      let upserted = 0;
      let unchanged = 0;
      for (const c of categories) {
        const hash = categoryContentHash(c);
        if (known.get(c.name) === hash) {
          this.#touchCategory(c, options);
          unchanged++;
        } else {
          this.#writeCategory(c, hash, options);
          upserted++;
        }
        known.set(c.name, hash);
      }
      let deleted = 0;
      if (options.deleteMissing) {
        deleted = this.#run(
          'DELETE FROM categories WHERE name NOT IN (SELECT value FROM json_each(?))',
          JSON.stringify(categories.map((c) => c.name)),
        ).changes;
      }
      return { upserted, unchanged, deleted };
    });
  }

  #touchCategory(c: Category, o: { now: number; ttlMs: number; epoch: string | null }): void {
    const at = typeof c.updated_at === 'string' ? c.updated_at : null;
    this.#run(
      `UPDATE categories SET fetched_at = ?, expires_at = ?, epoch = ?,
         remote_updated_at = coalesce(?, remote_updated_at) WHERE name = ?`,
      o.now,
      o.now + o.ttlMs,
      o.epoch,
      at,
      c.name,
    );
  }

  #writeCategory(
    c: Category,
    hash: string,
    o: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): void {
    // A category without updated_at keeps the stored time, so the version guard goes on
    // refusing what is older than the newest version seen (null would switch it off).
    this.#run(
      `INSERT INTO categories (name, data, content_hash, remote_updated_at, fetched_at, expires_at, source, epoch)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET data = excluded.data, content_hash = excluded.content_hash,
         remote_updated_at = coalesce(excluded.remote_updated_at, categories.remote_updated_at),
         fetched_at = excluded.fetched_at,
         expires_at = excluded.expires_at, source = excluded.source, epoch = excluded.epoch`,
      c.name,
      JSON.stringify(c),
      hash,
      typeof c.updated_at === 'string' ? c.updated_at : null,
      o.now,
      o.now + o.ttlMs,
      o.source,
      o.epoch,
    );
  }

  upsertCategory(
    category: Category,
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome> {
    return this.#tx('upsertCategory', () => {
      const row = this.#get<{ content_hash: string; remote_updated_at: string | null }>(
        'SELECT content_hash, remote_updated_at FROM categories WHERE name = ?',
        category.name,
      );
      if (row !== undefined && isOlderRemote(category.updated_at, row.remote_updated_at)) return 'stale';
      const hash = categoryContentHash(category);
      if (row !== undefined && row.content_hash === hash) {
        this.#touchCategory(category, options);
        return 'duplicate';
      }
      this.#writeCategory(category, hash, options);
      return 'applied';
    });
  }

  deleteCategory(name: string): Promise<boolean> {
    return this.#tx(
      'deleteCategory',
      () => this.#run('DELETE FROM categories WHERE name = ?', name).changes > 0,
    );
  }

  listCategories(now: number): Promise<CategoryRecord[]> {
    return this.#do('listCategories', () =>
      this.#all<CategoryRow>(
        `SELECT c.*, (SELECT count(*) FROM skills s WHERE s.category = c.name) AS skill_count
         FROM categories c ORDER BY c.name`,
      ).map((r) => ({
        name: r.name,
        data: parseJson<Category>(r.data),
        contentHash: r.content_hash,
        skillCount: r.skill_count,
        fetchedAt: r.fetched_at,
        expiresAt: r.expires_at,
        stale: r.expires_at <= now,
        source: r.source,
        epoch: r.epoch,
      })),
    );
  }

  // ---- reads ---------------------------------------------------------------------------

  #toSkillRecord(r: SkillRow, now: number): SkillRecord {
    // The payload is parsed on first use: the API answers a skill without local overrides with
    // its stored JSON text (effectiveJson), so most reads never need the object.
    let base: Skill | undefined;
    let effective: Skill | undefined;
    const local = parseJsonOrNull<SkillOverrides>(r.local);
    const record: SkillRecord = {
      skillId: r.skill_id,
      get base(): Skill {
        return (base ??= parseJson<Skill>(r.base));
      },
      set base(value: Skill) {
        base = value;
      },
      local,
      get effective(): Skill {
        return (effective ??= effectiveSkill(this.base, local));
      },
      set effective(value: Skill) {
        effective = value;
      },
      contentHash: r.content_hash,
      remoteUpdatedAt: r.remote_updated_at,
      hasOpenConflict: r.has_conflict === 1,
      fetchedAt: r.fetched_at,
      expiresAt: r.expires_at,
      stale: r.expires_at <= now,
      source: r.source,
      epoch: r.epoch,
    };
    if (local === null) record.effectiveJson = r.base;
    return record;
  }

  getSkill(skillId: string, now: number): Promise<SkillRecord | null> {
    return this.#do('getSkill', () => {
      const r = this.#get<SkillRow>(`SELECT ${SKILL_COLS} FROM skills s WHERE s.skill_id = ?`, skillId);
      return r === undefined ? null : this.#toSkillRecord(r, now);
    });
  }

  searchSkills(query: SkillQuery): Promise<SkillPageResult> {
    return this.#do('searchSkills', () => {
      const match = ftsQuery(query, this.#prefixTermsNow());
      const where: string[] = [];
      const params: unknown[] = [];
      const orderParams: unknown[] = [];
      let from = 'skills s';
      if (match !== null) {
        // Each match needs its filter and sort columns: read from skills_search_keys (a few
        // MB, stays in the page cache) rather than the skill rows (the JSON payloads: most of
        // the file, so mostly page-cache misses).
        // A first load drops that index for its length (see DEFERRED_LOAD_INDEXES), maybe in
        // another process: without it the join goes through the table.
        from = `skills_fts JOIN skills s ${this.#hasSearchKeys() ? 'INDEXED BY skills_search_keys' : ''} ON s.id = skills_fts.rowid`;
        where.push('skills_fts MATCH ?');
        params.push(match);
      }
      if (query.category !== undefined) {
        where.push('s.category = ?');
        params.push(query.category);
      }
      if (query.skillType !== undefined) {
        where.push('s.skill_type = ?');
        params.push(query.skillType);
      }
      // A tag alone is a facet token, so it always goes through FTS (exact, case-insensitive).
      const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
      let order: string;
      switch (query.sort) {
        case 'rating':
          order = 's.average_rating DESC NULLS LAST, s.rating_count DESC NULLS LAST, s.skill_id';
          break;
        case 'installs':
          order = 's.install_count DESC NULLS LAST, s.skill_id';
          break;
        case 'updated':
          order = 's.remote_updated_ms DESC NULLS LAST, s.skill_id';
          break;
        case 'name':
          order = 's.name, s.skill_id';
          break;
        default: {
          // Relevance without bm25 (a detail=none index has no term frequencies): skills whose
          // name contains the first word first, then the best rated.
          const first = textTokens(query.text ?? '')[0];
          if (match !== null && first !== undefined) {
            order = 'instr(lower(s.name), ?) > 0 DESC, s.average_rating DESC NULLS LAST, s.skill_id';
            orderParams.push(first);
          } else {
            order = 's.name, s.skill_id';
          }
        }
      }
      const pageSize = Math.max(1, Math.floor(query.pageSize));
      const offset = Math.max(0, Math.floor(query.page) - 1) * pageSize;
      let total: number;
      let ids: number[];
      if (match !== null) {
        // One pass over the matches gives both the page (ids only) and the total.
        const rows = this.#all<{ id: number; total: number }>(
          `SELECT s.id, count(*) OVER () AS total FROM ${from} ${whereSql} ORDER BY ${order} LIMIT ? OFFSET ?`,
          ...params,
          ...orderParams,
          pageSize,
          offset,
        );
        ids = rows.map((r) => r.id);
        total =
          rows[0]?.total ??
          (offset === 0
            ? 0
            : this.#get<{ n: number }>(`SELECT count(*) AS n FROM ${from} ${whereSql}`, ...params)!.n);
      } else {
        total = this.#get<{ n: number }>(`SELECT count(*) AS n FROM ${from} ${whereSql}`, ...params)!.n;
        ids =
          total <= offset
            ? []
            : this.#all<{ id: number }>(
                `SELECT s.id FROM ${from} ${whereSql} ORDER BY ${order} LIMIT ? OFFSET ?`,
                ...params,
                ...orderParams,
                pageSize,
                offset,
              ).map((r) => r.id);
      }
      if (ids.length === 0) return { items: [], total };
      const byId = new Map(
        this.#all<SkillRow>(
          `SELECT ${SKILL_COLS} FROM skills s WHERE s.id IN (SELECT value FROM json_each(?))`,
          JSON.stringify(ids),
        ).map((r) => [r.id, r]),
      );
      const items = ids.flatMap((id) => {
        const r = byId.get(id);
        return r === undefined ? [] : [this.#toSkillRecord(r, query.now)];
      });
      return { items, total };
    });
  }

  /** Whether skills_search_keys exists, looked up again whenever the schema changed. */
  #hasSearchKeys(): boolean {
    const version = this.#hot.schemaVersion.get() as number;
    if (version !== this.#searchKeys.version) {
      const found = this.#get(
        "SELECT 1 AS x FROM sqlite_master WHERE type = 'index' AND name = 'skills_search_keys'",
      );
      this.#searchKeys = { version, present: found !== undefined };
    }
    return this.#searchKeys.present;
  }
  #searchKeys = { version: -1, present: false };

  /** Indexed terms starting with `word` (ASCII), or null when there are more than a few. */
  #prefixTerms(word: string): readonly string[] | null {
    // Terms are UTF-8 compared bytewise; none contains U+10FFFF (not a letter or digit), so
    // every term with this prefix sorts below word + U+10FFFF.
    const terms = this.#hot.prefixTerms.all(word, `${word}\u{10FFFF}`, MAX_PREFIX_TERMS + 1) as string[];
    return terms.length > MAX_PREFIX_TERMS ? null : terms;
  }

  /**
   * Prefix expansions (typed word -> whole terms) of the FTS index in the state whose structure
   * record is `#prefixMemoVersion`. A lookup in skills_fts_vocab counts the documents of every
   * term it passes (a walk of the term's whole posting list, as costly as matching it), and
   * the answer depends only on the index's vocabulary. Every write that can add a term commits
   * a new segment, which rewrites the structure record (rowid 10 of skills_fts_data), whichever
   * connection or process wrote; so expansions are reused while those bytes are unchanged and
   * dropped when they change. (A delete may leave a term listed that matches nothing any more:
   * harmless in an OR of whole terms.) At most PREFIX_MEMO_MAX words.
   */
  #prefixMemo = new Map<string, readonly string[] | null>();
  #prefixMemoVersion: Buffer | null = null;

  /**
   * The prefix-expansion lookup for one search. The index's state is read once, at the first
   * word (a search without words pays nothing).
   */
  #prefixTermsNow(): (word: string) => readonly string[] | null {
    let synced = false;
    return (word) => {
      if (!synced) {
        synced = true;
        const version = this.#get<{ block: Buffer }>(FTS_STRUCTURE_SQL)?.block ?? null;
        if (version === null || this.#prefixMemoVersion === null || !version.equals(this.#prefixMemoVersion))
          this.#prefixMemo.clear();
        this.#prefixMemoVersion = version;
      }
      if (this.#prefixMemoVersion === null) return this.#prefixTerms(word);
      let terms = this.#prefixMemo.get(word);
      if (terms === undefined) {
        terms = this.#prefixTerms(word);
        if (this.#prefixMemo.size >= PREFIX_MEMO_MAX) this.#prefixMemo.clear();
        this.#prefixMemo.set(word, terms);
      }
      return terms;
    };
  }

  digest(): Promise<string> {
    return this.#do('digest', () => {
      const skills = this.#stmt('SELECT skill_id, content_hash FROM skills').raw().all() as [
        string,
        string,
      ][];
      const categories = this.#stmt('SELECT name, content_hash FROM categories').raw().all() as [
        string,
        string,
      ][];
      return catalogDigest(skills, categories);
    });
  }

  stats(now: number): Promise<StoreStats> {
    return this.#do('stats', () => {
      const one = (sql: string, ...p: unknown[]): number => this.#get<{ n: number }>(sql, ...p)!.n;
      const outbox = Object.fromEntries(OUTBOX_STATUSES.map((s) => [s, 0])) as Record<OutboxStatus, number>;
      for (const r of this.#all<{ status: OutboxStatus; n: number }>(
        'SELECT status, count(*) AS n FROM outbox GROUP BY status',
      )) {
        outbox[r.status] = r.n;
      }
      return {
        skills: one('SELECT count(*) AS n FROM skills'),
        staleSkills: one('SELECT count(*) AS n FROM skills WHERE expires_at <= ?', now),
        categories: one('SELECT count(*) AS n FROM categories'),
        localOverrides: one('SELECT count(*) AS n FROM skills WHERE local IS NOT NULL'),
        openConflicts: one("SELECT count(*) AS n FROM conflicts WHERE status = 'open'"),
        outbox,
        quarantined: one('SELECT count(*) AS n FROM quarantine'),
        oldestFetchedAt: this.#get<{ n: number | null }>('SELECT min(fetched_at) AS n FROM skills')!.n,
      };
    });
  }

  // ---- local overrides -----------------------------------------------------------------

  setLocalOverrides(skillId: string, overrides: SkillOverrides, now: number): Promise<boolean> {
    return this.#tx('setLocalOverrides', () =>
      this.#setLocal(skillId, JSON.stringify(overrides), now, 'local'),
    );
  }

  clearLocalOverrides(skillId: string, now: number): Promise<boolean> {
    return this.#tx('clearLocalOverrides', () => this.#setLocal(skillId, null, now, 'local'));
  }

  #setLocal(skillId: string, localText: string | null, now: number, source: ChangeSource): boolean {
    const row = this.#get<{ id: number; base: string }>(
      'SELECT id, base FROM skills WHERE skill_id = ?',
      skillId,
    );
    if (row === undefined) return false;
    this.#writeEffective(row.id, parseJson<Skill>(row.base), localText, now, source);
    return true;
  }

  // ---- conflicts -----------------------------------------------------------------------

  #toConflict(r: ConflictRow): ConflictRecord {
    return {
      id: r.id,
      skillId: r.skill_id,
      type: r.type,
      severity: r.severity,
      base: parseJson<Skill>(r.base),
      local: parseJson<SkillOverrides>(r.local),
      remote: parseJson<Skill>(r.remote),
      strategy: r.strategy,
      fields: parseJson<string[]>(r.fields),
      status: r.status,
      resolution: r.resolution,
      resolvedBy: r.resolved_by,
      resolvedAt: r.resolved_at,
      detectedAt: r.detected_at,
      updatedAt: r.updated_at,
    };
  }

  listConflicts(filter: {
    skillId?: string;
    status?: 'open' | 'resolved';
    severity?: Severity;
    type?: ConflictType;
    limit: number;
    offset: number;
  }): Promise<{ items: ConflictRecord[]; total: number }> {
    return this.#do('listConflicts', () => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.skillId !== undefined) {
        where.push('skill_id = ?');
        params.push(filter.skillId);
      }
      if (filter.status !== undefined) {
        where.push('status = ?');
        params.push(filter.status);
      }
      if (filter.severity !== undefined) {
        where.push('severity = ?');
        params.push(filter.severity);
      }
      if (filter.type !== undefined) {
        where.push('type = ?');
        params.push(filter.type);
      }
      const w = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
      const total = this.#get<{ n: number }>(`SELECT count(*) AS n FROM conflicts ${w}`, ...params)!.n;
      const items = this.#all<ConflictRow>(
        `SELECT * FROM conflicts ${w} ORDER BY id DESC LIMIT ? OFFSET ?`,
        ...params,
        filter.limit,
        filter.offset,
      ).map((r) => this.#toConflict(r));
      return { items, total };
    });
  }

  getConflict(id: number): Promise<ConflictRecord | null> {
    return this.#do('getConflict', () => {
      const r = this.#get<ConflictRow>('SELECT * FROM conflicts WHERE id = ?', id);
      return r === undefined ? null : this.#toConflict(r);
    });
  }

  #resolveOne(
    id: number,
    local: SkillOverrides | null,
    resolution: string,
    meta: { resolvedBy: string; now: number },
  ): ConflictRecord {
    const row = this.#get<ConflictRow>('SELECT * FROM conflicts WHERE id = ?', id);
    if (row === undefined) {
      throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_NOT_FOUND', `no conflict has id ${id}`, {
        details: { id },
      });
    }
    if (row.status !== 'open') {
      throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_RESOLVED', `conflict ${id} is already resolved`, {
        details: { id },
      });
    }
    this.#setLocal(row.skill_id, local === null ? null : JSON.stringify(local), meta.now, 'resolve');
    this.#run(
      `UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_by = ?, resolved_at = ?, updated_at = ?
       WHERE id = ?`,
      resolution,
      meta.resolvedBy,
      meta.now,
      meta.now,
      id,
    );
    this.#run('UPDATE sync_state SET conflicts_resolved_total = conflicts_resolved_total + 1 WHERE id = 1');
    return this.#toConflict(this.#get<ConflictRow>('SELECT * FROM conflicts WHERE id = ?', id)!);
  }

  resolveConflict(
    id: number,
    resolution: {
      local: SkillOverrides | null;
      resolution: ConflictStrategy | 'explicit';
      resolvedBy: string;
      now: number;
    },
  ): Promise<ConflictRecord> {
    return this.#tx('resolveConflict', () =>
      this.#resolveOne(id, resolution.local, resolution.resolution, resolution),
    );
  }

  resolveConflicts(
    items: { id: number; local: SkillOverrides | null; resolution: ConflictStrategy | 'explicit' }[],
    meta: { resolvedBy: string; now: number },
  ): Promise<ConflictRecord[]> {
    return this.#tx('resolveConflicts', () =>
      items.map((i) => this.#resolveOne(i.id, i.local, i.resolution, meta)),
    );
  }

  // ---- ratings, installs and the outbox --------------------------------------------------

  #toRating(r: RatingRow): RatingRecord {
    return {
      id: r.id,
      skillId: r.skill_id,
      userId: r.user_id,
      rating: r.rating,
      comment: r.comment,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      uploadStatus: r.upload_status,
      remoteRatingId: r.remote_rating_id,
    };
  }

  #toOutbox(r: OutboxRow): OutboxItem {
    return {
      id: r.id,
      kind: r.kind,
      chainKey: r.chain_key,
      payload: parseJson<Record<string, unknown>>(r.payload),
      idempotencyKey: r.idempotency_key,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      lastError: r.last_error,
      result: parseJsonOrNull<Record<string, unknown>>(r.result),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  /**
   * The local-action write path (one rating or install per transaction), prepared on first use.
   * No statement here has RETURNING or DO UPDATE: either makes SQLite keep a statement journal
   * for the statement (a copy of every page it touches, for a rollback to the statement's
   * start), which cost more than the one extra indexed read it saves. A plain single-row
   * INSERT or UPDATE checks its constraints before writing and needs none. What RETURNING gave
   * back is known to the caller, except the new row id (lastInsertRowid).
   */
  #actionStmts: Record<
    'skillExists' | 'ratingFind' | 'ratingUpdate' | 'ratingInsert' | 'outboxInsert' | 'outboxByKey',
    Database.Statement
  > | null = null;

  #actionStatements() {
    this.#actionStmts ??= {
      skillExists: this.#db.prepare('SELECT 1 FROM skills WHERE skill_id = ?').pluck(),
      ratingFind: this.#db.prepare(
        'SELECT id, created_at, remote_rating_id FROM ratings WHERE skill_id = ? AND user_id = ?',
      ),
      ratingUpdate: this.#db.prepare(
        "UPDATE ratings SET rating = ?, comment = ?, updated_at = ?, upload_status = 'pending' WHERE id = ?",
      ),
      ratingInsert: this.#db.prepare(
        `INSERT INTO ratings (skill_id, user_id, rating, comment, created_at, updated_at, upload_status)
         VALUES (?, ?, ?, ?, ?, ?, 'pending')`,
      ),
      outboxInsert: this.#db.prepare(
        `INSERT INTO outbox (kind, chain_key, skill_id, rating_id, payload, idempotency_key, status, attempts,
           next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
         ON CONFLICT (idempotency_key) DO NOTHING`,
      ),
      outboxByKey: this.#db.prepare('SELECT * FROM outbox WHERE idempotency_key = ?'),
    };
    return this.#actionStmts;
  }

  #requireSkill(skillId: string): void {
    if (this.#actionStatements().skillExists.get(skillId) === undefined) {
      throw new SkillsyncError(
        'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
        `skill ${skillId} is not in the catalog`,
        {
          details: { skillId },
        },
      );
    }
  }

  /** Inserts an outbox item; an existing idempotency key returns the item already queued. */
  #enqueue(input: EnqueueInput, skillId: string | null, ratingId: number | null): OutboxItem {
    const s = this.#actionStatements();
    const payload = JSON.stringify(input.payload);
    const { now } = input;
    // One statement in the usual case (a new key); a known key returns the item it already has.
    const inserted = s.outboxInsert.run(
      input.kind,
      input.chainKey,
      skillId,
      ratingId,
      payload,
      input.idempotencyKey,
      now,
      now,
      now,
    );
    if (inserted.changes === 0) return this.#toOutbox(s.outboxByKey.get(input.idempotencyKey) as OutboxRow);
    return {
      id: Number(inserted.lastInsertRowid),
      kind: input.kind,
      chainKey: input.chainKey,
      payload: parseJson<Record<string, unknown>>(payload),
      idempotencyKey: input.idempotencyKey,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      lastError: null,
      result: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  /** The rating row as recordRating leaves it (what a RETURNING * would have read back). */
  #newRating(
    input: { skillId: string; userId: string; rating: number; comment: string | null },
    id: number,
    createdAt: number,
    now: number,
    remoteRatingId: string | null,
  ): RatingRecord {
    return {
      id,
      skillId: input.skillId,
      userId: input.userId,
      rating: input.rating,
      comment: input.comment,
      createdAt,
      updatedAt: now,
      uploadStatus: 'pending',
      remoteRatingId,
    };
  }

  /**
   * Group commit of local actions. A rating or an install is a small transaction whose cost is
   * its commit: WAL writes every page it touched whole (6-7 pages), with a checksum. Actions
   * that arrive in the same turn of the event loop (concurrent HTTP requests, a Promise.all)
   * therefore share one IMMEDIATE transaction: they are queued, and one setImmediate callback
   * runs them in arrival order, each in its own savepoint, and commits once. No caller's
   * promise settles before that commit, so an acknowledged action is as durable as before
   * (read-your-writes, nothing lost on a crash). An action that throws (unknown skill, bad
   * input) rolls back to its savepoint and only its caller gets the error; when the
   * transaction fails as a whole (BEGIN, COMMIT, or an error that ended it, like a full disk)
   * nothing of it is committed and every caller in it gets the error.
   *
   * Waiting for the end of the turn only pays when others arrive meanwhile. After two flushes
   * of a lone action (a sequential caller, an idle API) actions run at once in a transaction
   * of their own, as before, instead of costing a loop turn each (~15% of a lone action in
   * bench/outbox-upload); every DIRECT_PROBE-th one is queued again, and a flush that finds
   * several actions turns grouping back on.
   */
  #actionQueue: {
    run: () => unknown;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
  }[] = [];
  #grouping = true;
  #loneFlushes = 0;
  #directSinceProbe = 0;
  static readonly #DIRECT_PROBE = 32;

  #queueAction<T>(operation: string, run: () => T): Promise<T> {
    if (
      !this.#grouping &&
      this.#actionQueue.length === 0 &&
      ++this.#directSinceProbe < SqliteStore.#DIRECT_PROBE
    ) {
      return this.#tx(operation, run);
    }
    this.#directSinceProbe = 0;
    return new Promise<T>((resolve, reject) => {
      const queued = this.#actionQueue.push({
        run,
        resolve: (value) => resolve(value as T),
        reject: (error) => reject(toStoreError(error, operation)),
      });
      if (queued === 1) setImmediate(() => this.#flushActions());
    });
  }

  /** Commits the queued actions, after the deferred-index build if one runs (see #tx). */
  #flushActions(): void {
    if (this.#indexBuild !== null) void this.#indexBuild.then(() => this.#flushActions());
    else this.#commitActions();
  }

  #commitActions(): void {
    const batch = this.#actionQueue;
    this.#actionQueue = [];
    if (batch.length > 1) {
      this.#grouping = true;
      this.#loneFlushes = 0;
    } else if (++this.#loneFlushes >= 2) {
      this.#grouping = false;
    }
    if (batch.length === 1) {
      const action = batch[0]!;
      try {
        action.resolve(this.#inTx.immediate(action.run));
      } catch (error) {
        action.reject(error);
      }
      return;
    }
    let outcomes: { ok: boolean; value: unknown }[];
    try {
      outcomes = this.#inTx.immediate(() =>
        batch.map((action) => {
          try {
            // Called inside the transaction, the wrapper opens a savepoint.
            return { ok: true, value: this.#inTx(action.run) };
          } catch (error) {
            // Some failures (a full disk, I/O) end the transaction: nothing of it can commit.
            if (!this.#db.inTransaction) throw error;
            return { ok: false, value: error };
          }
        }),
      ) as { ok: boolean; value: unknown }[];
    } catch (error) {
      for (const action of batch) action.reject(error);
      return;
    }
    batch.forEach((action, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) action.resolve(outcome.value);
      else action.reject(outcome.value);
    });
  }

  recordRating(
    input: { skillId: string; userId: string; rating: number; comment: string | null },
    outbox: EnqueueInput,
  ): Promise<{ rating: RatingRecord; outbox: OutboxItem }> {
    return this.#queueAction('recordRating', () => {
      if (!Number.isInteger(input.rating) || input.rating < 1 || input.rating > 5) {
        throw new SkillsyncError('SKILLSYNC_ERR_ACTION_INVALID', 'a rating is an integer from 1 to 5', {
          details: { rating: input.rating },
        });
      }
      this.#requireSkill(input.skillId);
      const s = this.#actionStatements();
      const { now } = outbox;
      // Insert or edit (one rating per skill and user) as a read then a plain write: see
      // #actionStatements for why not an upsert. The IMMEDIATE transaction holds the write
      // lock, so nothing can insert the row between the read and the write.
      const found = s.ratingFind.get(input.skillId, input.userId) as
        Pick<RatingRow, 'id' | 'created_at' | 'remote_rating_id'> | undefined;
      let rating: RatingRecord;
      if (found !== undefined) {
        s.ratingUpdate.run(input.rating, input.comment, now, found.id);
        rating = this.#newRating(input, found.id, found.created_at, now, found.remote_rating_id);
      } else {
        const id = s.ratingInsert.run(
          input.skillId,
          input.userId,
          input.rating,
          input.comment,
          now,
          now,
        ).lastInsertRowid;
        rating = this.#newRating(input, Number(id), now, now, null);
      }
      return { rating, outbox: this.#enqueue(outbox, input.skillId, rating.id) };
    });
  }

  getRating(skillId: string, userId: string): Promise<RatingRecord | null> {
    return this.#do('getRating', () => {
      const r = this.#get<RatingRow>(
        'SELECT * FROM ratings WHERE skill_id = ? AND user_id = ?',
        skillId,
        userId,
      );
      return r === undefined ? null : this.#toRating(r);
    });
  }

  listRatings(skillId: string): Promise<RatingRecord[]> {
    return this.#do('listRatings', () =>
      this.#all<RatingRow>('SELECT * FROM ratings WHERE skill_id = ? ORDER BY id', skillId).map((r) =>
        this.#toRating(r),
      ),
    );
  }

  enqueue(input: EnqueueInput & { skillId?: string }): Promise<OutboxItem> {
    return this.#queueAction('enqueue', () => {
      if (input.skillId !== undefined) this.#requireSkill(input.skillId);
      const payloadSkill = input.payload['skill_id'];
      const skillId = input.skillId ?? (typeof payloadSkill === 'string' ? payloadSkill : null);
      return this.#enqueue(input, skillId, null);
    });
  }

  /** Pending chain heads: no older unfinished (pending, in flight or dead) item in their chain. */
  static readonly #HEAD = `o.status = 'pending' AND NOT EXISTS (
      SELECT 1 FROM outbox p WHERE p.chain_key = o.chain_key AND p.status <> 'done' AND p.id < o.id)`;

  claimDueOutbox(options: { now: number; limit: number; leaseUntil: number }): Promise<OutboxItem[]> {
    return this.#tx('claimDueOutbox', () => {
      const ids = this.#all<{ id: number }>(
        `SELECT o.id FROM outbox o WHERE ${SqliteStore.#HEAD} AND o.next_attempt_at <= ?
         ORDER BY o.next_attempt_at, o.id LIMIT ?`,
        options.now,
        Math.max(0, Math.floor(options.limit)),
      );
      return ids.map(({ id }) =>
        this.#toOutbox(
          this.#get<OutboxRow>(
            `UPDATE outbox SET status = 'in_flight', attempts = attempts + 1, lease_until = ?, updated_at = ?
             WHERE id = ? RETURNING *`,
            options.leaseUntil,
            options.now,
            id,
          )!,
        ),
      );
    });
  }

  #outboxRow(id: number): OutboxRow {
    const row = this.#get<OutboxRow>('SELECT * FROM outbox WHERE id = ?', id);
    if (row === undefined) {
      throw new SkillsyncError('SKILLSYNC_ERR_OUTBOX_NOT_FOUND', `no outbox item has id ${id}`, {
        details: { id },
      });
    }
    return row;
  }

  #requireStatus(row: OutboxRow, allowed: readonly OutboxStatus[], operation: string): void {
    if (!allowed.includes(row.status)) {
      throw new SkillsyncError(
        'SKILLSYNC_ERR_OUTBOX_STATE',
        `outbox item ${row.id} is ${row.status}; ${operation} needs ${allowed.join(' or ')}`,
        { details: { id: row.id, status: row.status } },
      );
    }
  }

  completeOutbox(id: number, result: Record<string, unknown>, now: number): Promise<void> {
    return this.#tx('completeOutbox', () => {
      const row = this.#outboxRow(id);
      if (row.status === 'done') return;
      this.#requireStatus(row, ['in_flight', 'pending'], 'complete');
      this.#run(
        `UPDATE outbox SET status = 'done', result = ?, lease_until = NULL, updated_at = ? WHERE id = ?`,
        JSON.stringify(result),
        now,
        id,
      );
      if (row.rating_id !== null) {
        const remoteId = result['rating_id'];
        const newer = this.#get(
          "SELECT 1 AS x FROM outbox WHERE chain_key = ? AND id > ? AND status <> 'done'",
          row.chain_key,
          id,
        );
        this.#run(
          `UPDATE ratings SET remote_rating_id = coalesce(?, remote_rating_id),
             upload_status = CASE WHEN ? THEN upload_status ELSE 'uploaded' END
           WHERE id = ?`,
          typeof remoteId === 'string' || typeof remoteId === 'number' ? String(remoteId) : null,
          newer === undefined ? 0 : 1,
          row.rating_id,
        );
      }
      const avg = result['average_rating'];
      const count = result['rating_count'];
      if (row.skill_id !== null && (typeof avg === 'number' || typeof count === 'number')) {
        this.#mergeAggregates(
          row.skill_id,
          {
            averageRating: typeof avg === 'number' ? avg : undefined,
            ratingCount: typeof count === 'number' ? count : undefined,
          },
          { now },
        );
      }
    });
  }

  failOutbox(id: number, failure: { error: string; nextAttemptAt: number; now: number }): Promise<void> {
    return this.#tx('failOutbox', () => {
      this.#requireStatus(this.#outboxRow(id), ['in_flight', 'pending'], 'fail');
      this.#run(
        `UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?, lease_until = NULL, updated_at = ?
         WHERE id = ?`,
        failure.nextAttemptAt,
        failure.error,
        failure.now,
        id,
      );
    });
  }

  deadLetterOutbox(id: number, failure: { error: string; now: number }): Promise<void> {
    return this.#tx('deadLetterOutbox', () => {
      const row = this.#outboxRow(id);
      this.#requireStatus(row, ['in_flight', 'pending'], 'dead-letter');
      this.#run(
        `UPDATE outbox SET status = 'dead', last_error = ?, lease_until = NULL, updated_at = ? WHERE id = ?`,
        failure.error,
        failure.now,
        id,
      );
      if (row.rating_id !== null) {
        this.#run("UPDATE ratings SET upload_status = 'failed' WHERE id = ?", row.rating_id);
      }
    });
  }

  retryOutbox(id: number, now: number): Promise<OutboxItem> {
    return this.#tx('retryOutbox', () => {
      const row = this.#outboxRow(id);
      this.#requireStatus(row, ['dead'], 'retry');
      if (row.rating_id !== null) {
        this.#run("UPDATE ratings SET upload_status = 'pending' WHERE id = ?", row.rating_id);
      }
      return this.#toOutbox(
        this.#get<OutboxRow>(
          `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL, updated_at = ?
           WHERE id = ? RETURNING *`,
          now,
          now,
          id,
        )!,
      );
    });
  }

  discardOutbox(id: number, _now: number): Promise<void> {
    return this.#tx('discardOutbox', () => {
      const row = this.#outboxRow(id);
      this.#requireStatus(row, ['dead', 'pending'], 'discard');
      // The row goes: the chain behind it is unblocked and the key may be used again.
      this.#run('DELETE FROM outbox WHERE id = ?', id);
      if (row.rating_id !== null) {
        this.#run("UPDATE ratings SET upload_status = 'failed' WHERE id = ?", row.rating_id);
      }
    });
  }

  rescheduleOutbox(now: number): Promise<number> {
    return this.#tx(
      'rescheduleOutbox',
      () =>
        this.#run(
          "UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE status = 'pending' AND next_attempt_at > ?",
          now,
          now,
          now,
        ).changes,
    );
  }

  recoverOutbox(now: number): Promise<number> {
    return this.#tx(
      'recoverOutbox',
      () =>
        this.#run(
          `UPDATE outbox SET status = 'pending', lease_until = NULL, updated_at = ?
           WHERE status = 'in_flight' AND lease_until <= ?`,
          now,
          now,
        ).changes,
    );
  }

  getOutboxItem(id: number): Promise<OutboxItem | null> {
    return this.#do('getOutboxItem', () => {
      const r = this.#get<OutboxRow>('SELECT * FROM outbox WHERE id = ?', id);
      return r === undefined ? null : this.#toOutbox(r);
    });
  }

  listOutbox(filter: {
    skillId?: string;
    status?: OutboxStatus;
    limit: number;
    offset: number;
  }): Promise<{ items: OutboxItem[]; total: number }> {
    return this.#do('listOutbox', () => {
      if (filter.skillId !== undefined) {
        // One skill's items, through outbox_skill (skill_id, id): a few rows, filtered by status.
        const ws = filter.status !== undefined ? 'WHERE skill_id = ? AND status = ?' : 'WHERE skill_id = ?';
        const ps = filter.status !== undefined ? [filter.skillId, filter.status] : [filter.skillId];
        const n = this.#get<{ n: number }>(`SELECT count(*) AS n FROM outbox ${ws}`, ...ps)!.n;
        const rows = this.#all<OutboxRow>(
          `SELECT * FROM outbox ${ws} ORDER BY id LIMIT ? OFFSET ?`,
          ...ps,
          filter.limit,
          filter.offset,
        ).map((r) => this.#toOutbox(r));
        return { items: rows, total: n };
      }
      const w = filter.status !== undefined ? 'WHERE status = ?' : '';
      const p = filter.status !== undefined ? [filter.status] : [];
      const total = this.#get<{ n: number }>(`SELECT count(*) AS n FROM outbox ${w}`, ...p)!.n;
      // With a status: the page's ids come sorted from the covering outbox_due index (no
      // table row is read for the rows before the page), then only the page's rows are read.
      const sql =
        filter.status !== undefined
          ? `SELECT * FROM outbox WHERE id IN (
               SELECT id FROM outbox WHERE status = ? ORDER BY id LIMIT ? OFFSET ?) ORDER BY id`
          : 'SELECT * FROM outbox ORDER BY id LIMIT ? OFFSET ?';
      const items = this.#all<OutboxRow>(sql, ...p, filter.limit, filter.offset).map((r) =>
        this.#toOutbox(r),
      );
      return { items, total };
    });
  }

  nextOutboxDueAt(): Promise<number | null> {
    return this.#do(
      'nextOutboxDueAt',
      () =>
        // Ordered scan on outbox_due that stops at the first claimable head.
        this.#get<{ at: number }>(
          `SELECT o.next_attempt_at AS at FROM outbox o WHERE ${SqliteStore.#HEAD}
           ORDER BY o.next_attempt_at, o.id LIMIT 1`,
        )?.at ?? null,
    );
  }

  // ---- sync state, runs, checkpoints -----------------------------------------------------

  #readSyncState(): SyncState {
    const r = this.#get<Row>('SELECT * FROM sync_state WHERE id = 1')!;
    const count = (sql: string): number => this.#get<{ n: number }>(sql)!.n;
    return {
      status: r['status'] as SyncState['status'],
      lastSyncAt: r['last_sync_at'] as number | null,
      lastSuccessAt: r['last_success_at'] as number | null,
      lastError: r['last_error'] as string | null,
      consecutiveErrors: r['consecutive_errors'] as number,
      totalSyncs: r['total_syncs'] as number,
      successfulSyncs: r['successful_syncs'] as number,
      failedSyncs: r['failed_syncs'] as number,
      pendingActions: count("SELECT count(*) AS n FROM outbox WHERE status IN ('pending', 'in_flight')"),
      autoSyncEnabled: r['auto_sync_enabled'] === 1,
      skillsCached: count('SELECT count(*) AS n FROM skills'),
      categoriesCached: count('SELECT count(*) AS n FROM categories'),
      watermark: r['watermark'] as string | null,
      epoch: r['epoch'] as string | null,
      nextRunAt: r['next_run_at'] as number | null,
      lastCompleteListingAt: r['last_complete_listing_at'] as number | null,
      heldDeletions: r['held_deletions'] as number,
      heldDeletionsAt: r['held_deletions_at'] as number | null,
      conflictsDetectedTotal: r['conflicts_detected_total'] as number,
      conflictsResolvedTotal: r['conflicts_resolved_total'] as number,
    };
  }

  getSyncState(): Promise<SyncState> {
    return this.#do('getSyncState', () => this.#readSyncState());
  }

  updateSyncState(patch: Partial<SyncState>): Promise<SyncState> {
    return this.#tx('updateSyncState', () => {
      const set = buildSet(patch, SYNC_STATE_COLUMNS);
      if (set.values.length > 0)
        this.#db.prepare(`UPDATE sync_state SET ${set.sql} WHERE id = 1`).run(...set.values);
      return this.#readSyncState();
    });
  }

  #saveCheckpoint(checkpoint: ListingCheckpoint | null): void {
    if (checkpoint === null) {
      this.#run('DELETE FROM checkpoint WHERE id = 1');
      this.#endBulkLoad();
    } else
      this.#run(
        'INSERT INTO checkpoint (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data',
        JSON.stringify(checkpoint),
      );
  }

  /**
   * Ends a first load that dropped the deferred indexes: queues their build in a worker once
   * the caller's transaction has committed (see #afterBuild), or, `inline` or without a file,
   * builds them in the caller's transaction.
   */
  #endBulkLoad(inline = false): void {
    if (!this.#bulkLoad) return;
    if (this.#builder !== null && !inline) {
      this.#buildQueued = true;
      return;
    }
    for (const index of DEFERRED_LOAD_INDEXES) this.#db.exec(index.sql);
    this.#bulkLoad = false;
  }

  /**
   * At open: a first load that a crash interrupted keeps going without the deferred indexes
   * while its checkpoint lets the next sync resume it; without a checkpoint they are built now.
   */
  #resumeOrEndBulkLoad(): void {
    const present = this.#db
      .prepare(
        `SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name IN (SELECT value FROM json_each(?))`,
      )
      .pluck()
      .get(JSON.stringify(DEFERRED_LOAD_INDEXES.map((i) => i.name))) as number;
    if (present === DEFERRED_LOAD_INDEXES.length) return;
    this.#bulkLoad = true;
    if (this.#get('SELECT 1 AS x FROM checkpoint WHERE id = 1') === undefined) {
      this.#inTx.immediate(() => this.#endBulkLoad(true));
    }
  }

  getCheckpoint(): Promise<ListingCheckpoint | null> {
    return this.#do('getCheckpoint', () => {
      const r = this.#get<{ data: string }>('SELECT data FROM checkpoint WHERE id = 1');
      return r === undefined ? null : parseJson<ListingCheckpoint>(r.data);
    });
  }

  setCheckpoint(checkpoint: ListingCheckpoint | null): Promise<void> {
    return this.#afterBuild(this.#tx('setCheckpoint', () => this.#saveCheckpoint(checkpoint)));
  }

  #toRun(r: Row): RunRecord {
    return {
      id: r['id'] as number,
      trigger: r['trigger'] as RunTrigger,
      mode: r['mode'] as RunMode,
      status: r['status'] as RunRecord['status'],
      startedAt: r['started_at'] as number,
      finishedAt: r['finished_at'] as number | null,
      pages: r['pages'] as number,
      upserted: r['upserted'] as number,
      unchanged: r['unchanged'] as number,
      deleted: r['deleted'] as number,
      quarantined: r['quarantined'] as number,
      conflictsDetected: r['conflicts_detected'] as number,
      conflictsResolved: r['conflicts_resolved'] as number,
      conflictsManual: r['conflicts_manual'] as number,
      deletionsHeld: r['deletions_held'] as number,
      resumedFromCheckpoint: r['resumed_from_checkpoint'] === 1,
      error: r['error'] as string | null,
    };
  }

  startRun(input: { trigger: RunTrigger; mode: RunMode; startedAt: number }): Promise<RunRecord> {
    return this.#tx('startRun', () =>
      this.#toRun(
        this.#get<Row>(
          "INSERT INTO sync_runs (trigger, mode, status, started_at) VALUES (?, ?, 'running', ?) RETURNING *",
          input.trigger,
          input.mode,
          input.startedAt,
        )!,
      ),
    );
  }

  updateRun(id: number, patch: RunPatch): Promise<RunRecord> {
    return this.#tx('updateRun', () => {
      const set = buildSet(patch, RUN_COLUMNS);
      if (set.values.length > 0)
        this.#db.prepare(`UPDATE sync_runs SET ${set.sql} WHERE id = ?`).run(...set.values, id);
      const r = this.#get<Row>('SELECT * FROM sync_runs WHERE id = ?', id);
      if (r === undefined) throw new SkillsyncError('SKILLSYNC_ERR_STORE_QUERY', `no sync run has id ${id}`);
      return this.#toRun(r);
    });
  }

  getRun(id: number): Promise<RunRecord | null> {
    return this.#do('getRun', () => {
      const r = this.#get<Row>('SELECT * FROM sync_runs WHERE id = ?', id);
      return r === undefined ? null : this.#toRun(r);
    });
  }

  listRuns(options: { limit: number; offset: number }): Promise<{ items: RunRecord[]; total: number }> {
    return this.#do('listRuns', () => ({
      items: this.#all<Row>(
        'SELECT * FROM sync_runs ORDER BY id DESC LIMIT ? OFFSET ?',
        options.limit,
        options.offset,
      ).map((r) => this.#toRun(r)),
      total: this.#get<{ n: number }>('SELECT count(*) AS n FROM sync_runs')!.n,
    }));
  }

  acquireSyncLease(owner: string, now: number, ttlMs: number, staleOwner?: string): Promise<LeaseAttempt> {
    return this.#tx('acquireSyncLease', () => acquireLease(this.#db, owner, now, ttlMs, staleOwner));
  }

  renewSyncLease(owner: string, now: number, ttlMs: number, runId: number | null): Promise<boolean> {
    return this.#tx('renewSyncLease', () => renewLease(this.#db, owner, now, ttlMs, runId));
  }

  releaseSyncLease(owner: string): Promise<void> {
    return this.#tx('releaseSyncLease', () => releaseLease(this.#db, owner));
  }

  // ---- websocket state -------------------------------------------------------------------

  #readWsState(): WsState {
    const r = this.#get<Row>('SELECT * FROM ws_state WHERE id = 1')!;
    const counts = Object.fromEntries(WS_OUTCOMES.map((o) => [o, r[`count_${o}`] as number])) as Record<
      WsOutcome,
      number
    >;
    return {
      connected: r['connected'] === 1,
      url: r['url'] as string | null,
      state: r['state'] as string,
      lastConnectedAt: r['last_connected_at'] as number | null,
      lastMessageAt: r['last_message_at'] as number | null,
      disconnectReason: r['disconnect_reason'] as string | null,
      reconnectAttempts: r['reconnect_attempts'] as number,
      consecutiveFailures: r['consecutive_failures'] as number,
      fallbackSince: r['fallback_since'] as number | null,
      nextAttemptAt: r['next_attempt_at'] as number | null,
      enabled: r['enabled'] === 1,
      lastSeq: r['last_seq'] as number | null,
      counts,
    };
  }

  getWsState(): Promise<WsState> {
    return this.#do('getWsState', () => this.#readWsState());
  }

  updateWsState(patch: Partial<Omit<WsState, 'counts'>>): Promise<WsState> {
    return this.#tx('updateWsState', () => {
      const set = buildSet(patch, WS_COLUMNS);
      if (set.values.length > 0)
        this.#db.prepare(`UPDATE ws_state SET ${set.sql} WHERE id = 1`).run(...set.values);
      return this.#readWsState();
    });
  }

  incrementWsCounts(deltas: Partial<Record<WsOutcome, number>>): Promise<void> {
    return this.#tx('incrementWsCounts', () => {
      const sets: string[] = [];
      const values: number[] = [];
      for (const o of WS_OUTCOMES) {
        const d = deltas[o];
        if (d === undefined || d === 0) continue;
        sets.push(`count_${o} = count_${o} + ?`);
        values.push(d);
      }
      if (sets.length > 0) this.#stmt(`UPDATE ws_state SET ${sets.join(', ')} WHERE id = 1`).run(...values);
    });
  }

  // ---- quarantine, config ----------------------------------------------------------------

  quarantine(items: QuarantineInput[]): Promise<void> {
    return this.#tx('quarantine', () => {
      for (const q of items) {
        let text = JSON.stringify(q.payload) ?? 'null';
        const truncated = text.length > QUARANTINE_MAX_CHARS;
        if (truncated) text = text.slice(0, QUARANTINE_MAX_CHARS);
        this.#run(
          'INSERT INTO quarantine (kind, key, reason, payload, truncated, run_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          q.kind,
          q.key,
          q.reason,
          text,
          truncated ? 1 : 0,
          q.runId,
          q.at,
        );
      }
    });
  }

  listQuarantine(options: {
    limit: number;
    offset: number;
  }): Promise<{ items: QuarantineRecord[]; total: number }> {
    return this.#do('listQuarantine', () => ({
      items: this.#all<Row>(
        'SELECT * FROM quarantine ORDER BY id DESC LIMIT ? OFFSET ?',
        options.limit,
        options.offset,
      ).map((r) => ({
        id: r['id'] as number,
        kind: r['kind'] as string,
        key: r['key'] as string | null,
        reason: r['reason'] as string,
        // A truncated payload is no longer JSON: it comes back as the kept text.
        payload: r['truncated'] === 1 ? (r['payload'] as string) : parseJson<unknown>(r['payload'] as string),
        runId: r['run_id'] as number | null,
        at: r['at'] as number,
      })),
      total: this.#get<{ n: number }>('SELECT count(*) AS n FROM quarantine')!.n,
    }));
  }

  #readConfigOverrides(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const r of this.#all<{ key: string; value: string }>(
      'SELECT key, value FROM config_overrides ORDER BY key',
    )) {
      out[r.key] = parseJson<unknown>(r.value);
    }
    return out;
  }

  getConfigOverrides(): Promise<Record<string, unknown>> {
    return this.#do('getConfigOverrides', () => this.#readConfigOverrides());
  }

  setConfigOverrides(patch: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#tx('setConfigOverrides', () => {
      for (const [key, value] of Object.entries(patch)) {
        if (value === undefined) continue;
        if (value === null) this.#run('DELETE FROM config_overrides WHERE key = ?', key);
        else
          this.#run(
            'INSERT INTO config_overrides (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
            key,
            JSON.stringify(value),
          );
      }
      return this.#readConfigOverrides();
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------

  ping(): Promise<boolean> {
    try {
      return Promise.resolve(this.#get<{ x: number }>('SELECT 1 AS x')?.x === 1);
    } catch {
      return Promise.resolve(false);
    }
  }

  integrityCheck(): Promise<string[]> {
    return this.#do('integrityCheck', () => {
      const problems: string[] = [];
      for (const r of this.#db.pragma('integrity_check') as { integrity_check: string }[]) {
        if (r.integrity_check !== 'ok') problems.push(r.integrity_check);
      }
      for (const r of this.#db.pragma('foreign_key_check') as {
        table: string;
        rowid: number;
        parent: string;
      }[]) {
        problems.push(`foreign key: ${r.table} row ${r.rowid} has no parent in ${r.parent}`);
      }
      // FTS5's own check is issued as an INSERT command, which a read-only handle refuses.
      if (!this.#db.readonly) {
        try {
          this.#db.exec("INSERT INTO skills_fts (skills_fts) VALUES ('integrity-check')");
        } catch (err) {
          problems.push(`skills_fts: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      const ftsRows = this.#get<{ n: number }>('SELECT count(*) AS n FROM skills_fts_docsize')!.n;
      const skillRows = this.#get<{ n: number }>('SELECT count(*) AS n FROM skills')!.n;
      if (ftsRows !== skillRows) problems.push(`skills_fts has ${ftsRows} entries for ${skillRows} skills`);
      return problems;
    });
  }

  close(): Promise<void> {
    if (!this.#db.open) return Promise.resolve();
    // An index build in progress finishes first (its worker has a connection to this file).
    if (this.#indexBuild !== null) return this.#indexBuild.then(() => this.close());
    return this.#do('close', () => {
      try {
        if (!this.#db.readonly) this.#db.pragma('optimize');
      } catch {
        // best effort
      }
      this.#statements.clear();
      this.#db.close();
    });
  }
}
