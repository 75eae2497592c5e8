/**
 * PostgresStore: the Store on PostgreSQL, for shared deployments (postgres.js pool).
 *
 * - It owns its pool. Every operation that must be atomic is one transaction (inTransaction); a
 *   connection that drops mid-transaction leaves nothing behind (the server rolls back) and
 *   surfaces as SKILLSYNC_ERR_STORE_UNAVAILABLE, which is retryable.
 * - Its tables live in one schema (default `public`), created at open if missing; every pooled
 *   connection gets `search_path` set to it at connect, so statements use unqualified names.
 * - Migrations (./migrations.ts) run at open in one transaction under a per-schema advisory
 *   lock; a schema written by a newer skillsync is refused.
 * - Time is always passed in as epoch ms and stored as bigint; SQL never calls now().
 * - A record PostgreSQL cannot store (U+0000 in a string or key: text and jsonb refuse it) is
 *   quarantined by the write that meets it, in the same transaction, and the rest is applied
 *   (pg-skill-writes.ts). A page reports it as `quarantined`; an event holding one is answered
 *   'stale' (not applied).
 */
import type { Category, Skill } from '../../remote/contract.js';
import { catalogDigest, categoryContentHash } from '../../remote/contract.js';
import { PermanentError, SkillsyncError } from '../../core/errors.js';
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
  WsOutcome,
  WsState,
} from '../types.js';
import { DELETION_MEMORY_MS, OUTBOX_STATUSES, WS_OUTCOMES } from '../types.js';
import { migrate, quoteIdent } from './migrations.js';
import { toStoreError } from './pg-errors.js';
import {
  RUN_COLUMNS,
  SKILL_COLUMNS,
  SKILL_FROM,
  SYNC_STATE_COLUMNS,
  WS_STATE_COLUMNS,
  isoToMs,
  patchColumns,
  quarantineRow,
  toCategoryRecord,
  toConflictRecord,
  toOutboxItem,
  toQuarantineRecord,
  toRatingRecord,
  toRunRecord,
  toSkillRecord,
  toSyncState,
  toWsState,
  type Row,
} from './pg-rows.js';
import {
  deleteSkillsById,
  deleteSkillsBySync,
  mergeAggregates,
  rememberDeletions,
  rewriteColumns,
  writeSkills,
} from './pg-skill-writes.js';
import { acquireLease, releaseLease, renewLease } from './pg-lease.js';
import { searchSkills } from './pg-search.js';
import { PendingListMerger } from './pg-pending-merge.js';
import {
  createSql,
  describeUrl,
  jsonb,
  stripOwnParams,
  urlPassword,
  inTransaction,
  type Db,
  type Q,
  type Tx,
} from './pg-sql.js';

export interface PostgresStoreOptions {
  /** postgres://user:pass@host:port/db (skillsync's own `schema` / `pool` parameters are ignored here). */
  url: string;
  /** Schema holding the tables; created if missing. Default `public`. */
  schema?: string;
  /** Pool size. Default 10. */
  poolSize?: number;
  /** application_name of the pool's connections (tests use it to find their backends). */
  applicationName?: string;
  /** Connect timeout in seconds. Default 10. */
  connectTimeoutS?: number;
}

export const DEFAULT_POSTGRES_STORE = Object.freeze({ schema: 'public', poolSize: 10 });

function validateSchemaName(schema: string): void {
  if (schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes('\0')) {
    throw new PermanentError(
      'SKILLSYNC_ERR_CONFIG_INVALID',
      `PostgreSQL schema name must be 1 to 63 bytes without NUL, got ${JSON.stringify(schema.slice(0, 80))}`,
    );
  }
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const schema = options.schema ?? DEFAULT_POSTGRES_STORE.schema;
  validateSchemaName(schema);
  const poolSize = options.poolSize ?? DEFAULT_POSTGRES_STORE.poolSize;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000) {
    throw new PermanentError(
      'SKILLSYNC_ERR_CONFIG_INVALID',
      `PostgreSQL pool size must be 1..1000, got ${poolSize}`,
    );
  }
  const url = stripOwnParams(options.url);
  const password = urlPassword(url);
  const sql = createSql({
    url,
    max: poolSize,
    searchPath: quoteIdent(schema),
    ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
    ...(options.connectTimeoutS === undefined ? {} : { connectTimeoutS: options.connectTimeoutS }),
  });
  try {
    const outcome = await inTransaction(sql, (tx) => migrate(tx, schema));
    if (!outcome.ok) {
      throw new PermanentError(
        'SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW',
        `PostgreSQL schema ${JSON.stringify(schema)} at ${describeUrl(url)} has version ${outcome.found}, ` +
          `newer than the ${outcome.known} this skillsync knows: upgrade skillsync`,
        { details: { found: outcome.found, known: outcome.known } },
      );
    }
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    const e = toStoreError(err, `open (${describeUrl(url)})`, password);
    throw e;
  }
  return new PostgresStore(sql, password);
}

type OutboxFailure = { error: string; nextAttemptAt: number; now: number };

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #sql: Db;
  readonly #password: string | null;
  readonly #merger: PendingListMerger;
  #closed = false;

  constructor(sql: Db, password: string | null) {
    this.#sql = sql;
    this.#password = password;
    this.#merger = new PendingListMerger(sql);
  }

  /** Runs one statement group outside a transaction, mapping errors. */
  async #run<T>(operation: string, fn: (q: Q) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#sql);
    } catch (err) {
      throw toStoreError(err, operation, this.#password);
    }
  }

  /** Runs fn in one transaction, mapping errors (a thrown error rolls everything back). */
  async #tx<T>(operation: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.#sql, fn);
    } catch (err) {
      throw toStoreError(err, operation, this.#password);
    }
  }

  // ---- skills: sync writes -------------------------------------------------------------

  async applySkillPage(input: ApplyPageInput): Promise<ApplyResult> {
    const result = await this.#tx('applySkillPage', async (tx) => {
      let deleted = 0;
      const w = await writeSkills(
        tx,
        input.items,
        {
          now: input.now,
          ttlMs: input.ttlMs,
          epoch: input.epoch,
          source: input.source,
          guard: input.guard,
          runId: input.runId ?? input.checkpoint?.runId ?? null,
        },
        () => [
          rememberDeletions(tx, input.tombstones, input.now, input.ttlMs),
          deleteSkillsById(
            tx,
            input.tombstones.map((t) => t.skillId),
          ).then((n) => {
            deleted = n;
          }),
          writeCheckpoint(tx, input.checkpoint),
          input.watermark !== undefined
            ? tx`UPDATE sync_state SET watermark = ${input.watermark} WHERE id = 1`
            : Promise.resolve(),
        ],
      );
      await this.#bumpConflictTotals(
        tx,
        w.conflictsOpened + w.conflictsSettled,
        w.conflictsClosed + w.conflictsSettled,
      );
      return {
        upserted: w.upserted,
        unchanged: w.unchanged,
        stale: w.stale,
        deleted,
        conflictsRecorded: w.conflictsRecorded,
        ...(w.quarantined > 0 ? { quarantined: w.quarantined } : {}),
      };
    });
    this.#merger.written(result.upserted);
    return result;
  }

  async applySkillEvent(
    item: SkillUpsert,
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome> {
    const outcome = await this.#tx('applySkillEvent', async (tx) => {
      const w = await writeSkills(tx, [item], { ...options, guard: 'version' });
      await this.#bumpConflictTotals(
        tx,
        w.conflictsOpened + w.conflictsSettled,
        w.conflictsClosed + w.conflictsSettled,
      );
      return w.upserted > 0 ? 'applied' : w.unchanged > 0 ? 'duplicate' : 'stale';
    });
    if (outcome === 'applied') this.#merger.written(1);
    return outcome;
  }

  async applySkillEvents(
    items: readonly SkillUpsert[],
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome[]> {
    if (items.length === 0) return [];
    const result = await this.#tx('applySkillEvents', async (tx) => {
      // writeSkills keeps one item per skill id: a batch is written in runs of distinct ids,
      // in order, so a later event for the same skill is guarded by the earlier one.
      const outcomes: EventOutcome[] = [];
      let opened = 0;
      let closed = 0;
      for (let start = 0; start < items.length;) {
        const seen = new Set<string>();
        let end = start;
        while (end < items.length && !seen.has(items[end]!.skill.skill_id)) {
          seen.add(items[end]!.skill.skill_id);
          end++;
        }
        const run = items.slice(start, end);
        const w = await writeSkills(tx, run, { ...options, guard: 'version' });
        opened += w.conflictsOpened + w.conflictsSettled;
        closed += w.conflictsClosed + w.conflictsSettled;
        for (const item of run) {
          const id = item.skill.skill_id;
          outcomes.push(w.applied.has(id) ? 'applied' : w.unchangedIds.has(id) ? 'duplicate' : 'stale');
        }
        start = end;
      }
      await this.#bumpConflictTotals(tx, opened, closed);
      return outcomes;
    });
    this.#merger.written(result.filter((o) => o === 'applied').length);
    return result;
  }

  /**
   * The cumulative conflict totals, counted here only, in the transaction that records the
   * conflicts: detected = conflicts opened + settled at once by a strategy; resolved = open
   * conflicts closed (by a strategy or an operator) + settled at once.
   */
  async #bumpConflictTotals(tx: Q, detected: number, resolved: number): Promise<void> {
    if (detected === 0 && resolved === 0) return;
    await tx`UPDATE sync_state SET conflicts_detected_total = conflicts_detected_total + ${detected},
      conflicts_resolved_total = conflicts_resolved_total + ${resolved} WHERE id = 1`;
  }

  async deleteSkill(
    skillId: string,
    options: { now: number; remoteAt?: string; ttlMs?: number },
  ): Promise<boolean> {
    return this.#tx('deleteSkill', async (tx) => {
      await rememberDeletions(
        tx,
        [{ skillId, deletedAt: options.remoteAt ?? null }],
        options.now,
        options.ttlMs ?? DELETION_MEMORY_MS,
      );
      return (await deleteSkillsById(tx, [skillId])) > 0;
    });
  }

  async getDeletion(
    skillId: string,
  ): Promise<{ deletedAt: string; recordedAt: number; expiresAt: number } | null> {
    const [r] = await this.#run(
      'getDeletion',
      (q) => q`SELECT deleted_at, recorded_at, expires_at FROM skill_deletions WHERE skill_id = ${skillId}`,
    );
    if (!r) return null;
    return {
      deletedAt: r['deleted_at'] as string,
      recordedAt: Number(r['recorded_at']),
      expiresAt: Number(r['expires_at']),
    };
  }

  async applyRatingAggregates(
    skillId: string,
    aggregates: { averageRating?: number; ratingCount?: number },
    options: { now: number; remoteAt?: string },
  ): Promise<EventOutcome | 'missing'> {
    return this.#tx('applyRatingAggregates', (tx) =>
      mergeAggregates(tx, skillId, aggregates, options.remoteAt ?? null),
    );
  }

  async getLocalStates(skillIds: readonly string[]): Promise<Map<string, LocalSkillState>> {
    const out = new Map<string, LocalSkillState>();
    if (skillIds.length === 0) return out;
    const rows = await this.#run(
      'getLocalStates',
      (q) => q`SELECT s.skill_id, s.base, s.local, f.content_hash FROM ${q.unsafe(SKILL_FROM)}
        WHERE s.skill_id = ANY(${[...skillIds]}::text[]) AND s.local IS NOT NULL`,
    );
    for (const r of rows) {
      out.set(r['skill_id'] as string, {
        skillId: r['skill_id'] as string,
        base: r['base'] as Skill,
        local: r['local'] as SkillOverrides,
        contentHash: r['content_hash'] as string,
      });
    }
    return out;
  }

  // ---- deletions after a complete listing ----------------------------------------------

  async countUnseenSkills(listingStartedAt: number): Promise<number> {
    const [r] = await this.#run(
      'countUnseenSkills',
      (q) => q`SELECT count(*) AS n FROM skill_sync WHERE fetched_at < ${listingStartedAt}`,
    );
    return Number(r?.['n'] ?? 0);
  }

  async deleteUnseenSkills(listingStartedAt: number, _now: number): Promise<number> {
    return this.#tx('deleteUnseenSkills', async (tx) => {
      const gone = await deleteSkillsBySync(tx, tx`fetched_at < ${listingStartedAt}`);
      await markListingComplete(tx, listingStartedAt);
      return gone;
    });
  }

  async holdDeletions(listingStartedAt: number, count: number, now: number): Promise<void> {
    await this.#run(
      'holdDeletions',
      (q) => q`UPDATE sync_state SET held_deletions = ${count}, held_deletions_at = ${now},
        held_listing_started_at = ${listingStartedAt} WHERE id = 1`,
    );
  }

  async confirmHeldDeletions(_now: number): Promise<number> {
    return this.#tx('confirmHeldDeletions', async (tx) => {
      const [s] = await tx`SELECT held_listing_started_at FROM sync_state WHERE id = 1 FOR UPDATE`;
      const startedAt = (s?.['held_listing_started_at'] ?? null) as number | null;
      if (startedAt === null) {
        throw new SkillsyncError(
          'SKILLSYNC_ERR_SYNC_NOTHING_HELD',
          'There are no held deletions to confirm.',
        );
      }
      const gone = await deleteSkillsBySync(tx, tx`fetched_at < ${startedAt}`);
      await markListingComplete(tx, startedAt);
      return gone;
    });
  }

  async sweepExpired(now: number): Promise<{ skills: number; categories: number }> {
    return this.#tx('sweepExpired', async (tx) => {
      // Remembered deletions are forgotten after their time, whatever the remote's state.
      await tx`DELETE FROM skill_deletions WHERE expires_at <= ${now}`;
      const [s] = await tx`SELECT last_complete_listing_at FROM sync_state WHERE id = 1`;
      const listedAt = (s?.['last_complete_listing_at'] ?? null) as number | null;
      if (listedAt === null) return { skills: 0, categories: 0 };
      // Expired, and a complete listing that started at or after the expiry did not see it.
      const skills = await deleteSkillsBySync(
        tx,
        tx`expires_at <= ${now} AND expires_at <= ${listedAt} AND fetched_at < ${listedAt}`,
      );
      // Categories are never swept: see Store.sweepExpired.
      return { skills, categories: 0 };
    });
  }

  // ---- categories ------------------------------------------------------------------------

  async replaceCategories(
    categories: Category[],
    options: {
      now: number;
      ttlMs: number;
      epoch: string | null;
      source: ChangeSource;
      deleteMissing: boolean;
    },
  ): Promise<{ upserted: number; unchanged: number; deleted: number }> {
    return this.#tx('replaceCategories', async (tx) => {
      let upserted = 0;
      let unchanged = 0;
      const byName = new Map<string, Category>();
      for (const c of categories) byName.set(c.name, c);
      for (const c of [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const outcome = await upsertCategoryRow(tx, c, options, false);
        if (outcome === 'applied') upserted++;
        else unchanged++;
      }
      let deleted = 0;
      if (options.deleteMissing) {
        const gone = await tx`DELETE FROM categories WHERE NOT (name = ANY(${[...byName.keys()]}::text[]))`;
        deleted = gone.count;
      }
      return { upserted, unchanged, deleted };
    });
  }

  async upsertCategory(
    category: Category,
    options: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  ): Promise<EventOutcome> {
    return this.#tx('upsertCategory', (tx) => upsertCategoryRow(tx, category, options, true));
  }

  async deleteCategory(name: string): Promise<boolean> {
    return this.#run(
      'deleteCategory',
      async (q) => (await q`DELETE FROM categories WHERE name = ${name}`).count > 0,
    );
  }

  async listCategories(now: number): Promise<CategoryRecord[]> {
    const rows = await this.#run(
      'listCategories',
      (q) => q`SELECT c.*, coalesce(n.count, 0) AS skill_count FROM categories c
        LEFT JOIN (SELECT category, count(*) AS count FROM skills WHERE category IS NOT NULL GROUP BY category) n
          ON n.category = c.name
        ORDER BY c.name COLLATE "C"`,
    );
    return rows.map((r) => toCategoryRecord(r, now));
  }

  // ---- reads -----------------------------------------------------------------------------

  async getSkill(skillId: string, now: number): Promise<SkillRecord | null> {
    const [r] = await this.#run(
      'getSkill',
      (q) => q`SELECT ${q.unsafe(SKILL_COLUMNS)} FROM ${q.unsafe(SKILL_FROM)} WHERE s.skill_id = ${skillId}`,
    );
    return r ? toSkillRecord(r, now) : null;
  }

  async searchSkills(query: SkillQuery): Promise<SkillPageResult> {
    return this.#run('searchSkills', (q) => searchSkills(q, query));
  }

  async digest(): Promise<string> {
    return this.#tx('digest', async (tx) => {
      // One snapshot for both tables.
      await tx`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`;
      const skills = await tx`SELECT skill_id, content_hash FROM skill_sync`.values();
      const cats = await tx`SELECT name, content_hash FROM categories`.values();
      return catalogDigest(
        skills.map((r) => [r[0] as string, r[1] as string] as const),
        cats.map((r) => [r[0] as string, r[1] as string] as const),
      );
    });
  }

  async stats(now: number): Promise<StoreStats> {
    return this.#run('stats', async (q) => {
      const [s] = await q`SELECT
          (SELECT count(*) FROM skills) AS skills,
          (SELECT count(*) FROM skill_sync WHERE expires_at <= ${now}) AS stale,
          (SELECT count(*) FROM categories) AS categories,
          (SELECT count(*) FROM skills WHERE local IS NOT NULL) AS local,
          (SELECT count(*) FROM conflicts WHERE status = 'open') AS open_conflicts,
          (SELECT count(*) FROM quarantine) AS quarantined,
          (SELECT min(fetched_at) FROM skill_sync) AS oldest`;
      const byStatus = await q`SELECT status, count(*) AS n FROM outbox GROUP BY status`;
      const outbox = Object.fromEntries(OUTBOX_STATUSES.map((st) => [st, 0])) as Record<OutboxStatus, number>;
      for (const r of byStatus) outbox[r['status'] as OutboxStatus] = Number(r['n']);
      return {
        skills: Number(s?.['skills'] ?? 0),
        staleSkills: Number(s?.['stale'] ?? 0),
        categories: Number(s?.['categories'] ?? 0),
        localOverrides: Number(s?.['local'] ?? 0),
        openConflicts: Number(s?.['open_conflicts'] ?? 0),
        outbox,
        quarantined: Number(s?.['quarantined'] ?? 0),
        oldestFetchedAt: (s?.['oldest'] ?? null) as number | null,
      };
    });
  }

  // ---- local overrides -------------------------------------------------------------------

  async setLocalOverrides(skillId: string, overrides: SkillOverrides, now: number): Promise<boolean> {
    return this.#tx('setLocalOverrides', async (tx) => {
      const r = await tx`UPDATE skills SET local = ${jsonb(tx, overrides)}, local_updated_at = ${now},
        source = 'local' WHERE skill_id = ${skillId}`;
      if (r.count === 0) return false;
      await rewriteColumns(tx, [skillId]);
      return true;
    });
  }

  async clearLocalOverrides(skillId: string, now: number): Promise<boolean> {
    return this.#tx('clearLocalOverrides', async (tx) => {
      const r =
        await tx`UPDATE skills SET local = NULL, local_updated_at = ${now} WHERE skill_id = ${skillId}`;
      if (r.count === 0) return false;
      await rewriteColumns(tx, [skillId]);
      return true;
    });
  }

  // ---- conflicts -------------------------------------------------------------------------

  async listConflicts(filter: {
    skillId?: string;
    status?: 'open' | 'resolved';
    severity?: Severity;
    type?: ConflictType;
    limit: number;
    offset: number;
  }): Promise<{ items: ConflictRecord[]; total: number }> {
    return this.#run('listConflicts', async (q) => {
      const where = q`WHERE true
        ${filter.skillId !== undefined ? q`AND skill_id = ${filter.skillId}` : q``}
        ${filter.status ? q`AND status = ${filter.status}` : q``}
        ${filter.severity ? q`AND severity = ${filter.severity}` : q``}
        ${filter.type ? q`AND type = ${filter.type}` : q``}`;
      const [t] = await q`SELECT count(*) AS n FROM conflicts ${where}`;
      const rows = await q`SELECT * FROM conflicts ${where} ORDER BY id DESC
        LIMIT ${filter.limit} OFFSET ${filter.offset}`;
      return { items: rows.map(toConflictRecord), total: Number(t?.['n'] ?? 0) };
    });
  }

  async getConflict(id: number): Promise<ConflictRecord | null> {
    const [r] = await this.#run('getConflict', (q) => q`SELECT * FROM conflicts WHERE id = ${id}`);
    return r ? toConflictRecord(r) : null;
  }

  async resolveConflict(
    id: number,
    resolution: {
      local: SkillOverrides | null;
      resolution: ConflictStrategy | 'explicit';
      resolvedBy: string;
      now: number;
    },
  ): Promise<ConflictRecord> {
    return this.#tx('resolveConflict', async (tx) => {
      const [r] = await this.#resolveOne(
        tx,
        [{ id, local: resolution.local, resolution: resolution.resolution }],
        {
          resolvedBy: resolution.resolvedBy,
          now: resolution.now,
        },
      );
      return r as ConflictRecord;
    });
  }

  async resolveConflicts(
    items: { id: number; local: SkillOverrides | null; resolution: ConflictStrategy | 'explicit' }[],
    meta: { resolvedBy: string; now: number },
  ): Promise<ConflictRecord[]> {
    if (items.length === 0) return [];
    return this.#tx('resolveConflicts', (tx) => this.#resolveOne(tx, items, meta));
  }

  /** Resolves every item or throws (rolling the transaction back). */
  async #resolveOne(
    tx: Tx,
    items: { id: number; local: SkillOverrides | null; resolution: ConflictStrategy | 'explicit' }[],
    meta: { resolvedBy: string; now: number },
  ): Promise<ConflictRecord[]> {
    const ids = items.map((i) => i.id);
    const rows = await tx`SELECT id, skill_id, status FROM conflicts WHERE id = ANY(${ids}::bigint[])
      ORDER BY id FOR UPDATE`;
    const found = new Map(rows.map((r) => [Number(r['id']), r]));
    for (const item of items) {
      const r = found.get(item.id);
      if (!r) {
        throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_NOT_FOUND', `No conflict has id ${item.id}.`, {
          details: { id: item.id },
        });
      }
      if (r['status'] !== 'open') {
        throw new SkillsyncError(
          'SKILLSYNC_ERR_CONFLICT_RESOLVED',
          `Conflict ${item.id} is already resolved.`,
          {
            details: { id: item.id },
          },
        );
      }
    }
    const out: ConflictRecord[] = [];
    const seen = new Set<number>();
    for (const item of items) {
      if (seen.has(item.id)) {
        throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_RESOLVED', `Conflict ${item.id} is listed twice.`, {
          details: { id: item.id },
        });
      }
      seen.add(item.id);
      const skillId = found.get(item.id)?.['skill_id'] as string;
      await tx`UPDATE skills SET local = ${item.local === null ? null : jsonb(tx, item.local)},
        local_updated_at = ${meta.now}, source = 'resolve' WHERE skill_id = ${skillId}`;
      await rewriteColumns(tx, [skillId]);
      const [c] = await tx`UPDATE conflicts SET status = 'resolved', resolution = ${item.resolution},
          resolved_by = ${meta.resolvedBy}, resolved_at = ${meta.now}, updated_at = ${meta.now}
        WHERE id = ${item.id} RETURNING *`;
      out.push(toConflictRecord(c as Row));
    }
    await this.#bumpConflictTotals(tx, 0, out.length);
    return out;
  }

  // ---- ratings, installs and the outbox --------------------------------------------------

  async recordRating(
    input: { skillId: string; userId: string; rating: number; comment: string | null },
    outbox: EnqueueInput,
  ): Promise<{ rating: RatingRecord; outbox: OutboxItem }> {
    if (!Number.isInteger(input.rating) || input.rating < 1 || input.rating > 5) {
      throw new SkillsyncError('SKILLSYNC_ERR_ACTION_INVALID', 'A rating is an integer from 1 to 5.', {
        details: { rating: input.rating },
      });
    }
    return this.#tx('recordRating', async (tx) => {
      await requireSkill(tx, input.skillId);
      const [r] = await tx`
        INSERT INTO ratings (skill_id, user_id, rating, comment, created_at, updated_at, upload_status)
        VALUES (${input.skillId}, ${input.userId}, ${input.rating}, ${input.comment}, ${outbox.now}, ${outbox.now},
          'pending')
        ON CONFLICT (skill_id, user_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,
          updated_at = excluded.updated_at, upload_status = 'pending'
        RETURNING *`;
      const rating = toRatingRecord(r as Row);
      const item = await insertOutbox(tx, outbox, input.skillId, rating.id);
      return { rating, outbox: item };
    });
  }

  async getRating(skillId: string, userId: string): Promise<RatingRecord | null> {
    const [r] = await this.#run(
      'getRating',
      (q) => q`SELECT * FROM ratings WHERE skill_id = ${skillId} AND user_id = ${userId}`,
    );
    return r ? toRatingRecord(r) : null;
  }

  async listRatings(skillId: string): Promise<RatingRecord[]> {
    const rows = await this.#run(
      'listRatings',
      (q) => q`SELECT * FROM ratings WHERE skill_id = ${skillId} ORDER BY id`,
    );
    return rows.map(toRatingRecord);
  }

  async enqueue(input: EnqueueInput & { skillId?: string }): Promise<OutboxItem> {
    return this.#tx('enqueue', async (tx) => {
      if (input.skillId !== undefined) await requireSkill(tx, input.skillId);
      const payloadSkill = input.payload['skill_id'];
      const skillId = input.skillId ?? (typeof payloadSkill === 'string' ? payloadSkill : null);
      return insertOutbox(tx, input, skillId, null);
    });
  }

  async claimDueOutbox(options: { now: number; limit: number; leaseUntil: number }): Promise<OutboxItem[]> {
    if (options.limit <= 0) return [];
    return this.#tx('claimDueOutbox', async (tx) => {
      // The head of each chain is its oldest unfinished item; only pending, due heads are claimed.
      const rows = await tx`
        WITH heads AS (
          SELECT DISTINCT ON (chain_key) id, status, next_attempt_at FROM outbox
          WHERE status <> 'done' ORDER BY chain_key, id
        ), due AS (
          SELECT o.id FROM outbox o JOIN heads h ON h.id = o.id
          WHERE h.status = 'pending' AND h.next_attempt_at <= ${options.now}
          ORDER BY o.next_attempt_at, o.id
          LIMIT ${options.limit}
          FOR UPDATE OF o SKIP LOCKED
        )
        UPDATE outbox SET status = 'in_flight', lease_until = ${options.leaseUntil}, attempts = attempts + 1,
          updated_at = ${options.now}
        FROM due WHERE outbox.id = due.id AND outbox.status = 'pending'
        RETURNING outbox.*`;
      return rows.map(toOutboxItem).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
    });
  }

  async completeOutbox(id: number, result: Record<string, unknown>, now: number): Promise<void> {
    await this.#tx('completeOutbox', async (tx) => {
      const row = await lockOutboxRow(tx, id);
      if (row['status'] === 'done') return; // completing twice is harmless
      requireStatus(row, ['in_flight', 'pending'], 'complete');
      await tx`UPDATE outbox SET status = 'done', result = ${jsonb(tx, result)}, lease_until = NULL,
        updated_at = ${now} WHERE id = ${id}`;
      const ratingId = (row['rating_id'] ?? null) as number | null;
      if (ratingId !== null) {
        const [newer] = await tx`SELECT 1 AS x FROM outbox WHERE chain_key = ${row['chain_key'] as string}
          AND id > ${id} AND status <> 'done' LIMIT 1`;
        const remoteId = result['rating_id'];
        await tx`UPDATE ratings SET
            remote_rating_id = coalesce(${typeof remoteId === 'string' || typeof remoteId === 'number' ? String(remoteId) : null}::text, remote_rating_id),
            upload_status = CASE WHEN ${newer !== undefined} THEN upload_status ELSE 'uploaded' END
          WHERE id = ${ratingId}`;
      }
      const skillId = (row['skill_id'] ?? null) as string | null;
      const avg = result['average_rating'];
      const count = result['rating_count'];
      if (skillId !== null && (typeof avg === 'number' || typeof count === 'number')) {
        await mergeAggregates(
          tx,
          skillId,
          {
            averageRating: typeof avg === 'number' ? avg : undefined,
            ratingCount: typeof count === 'number' ? count : undefined,
          },
          null,
        );
      }
    });
  }

  async failOutbox(id: number, failure: OutboxFailure): Promise<void> {
    await this.#tx('failOutbox', async (tx) => {
      requireStatus(await lockOutboxRow(tx, id), ['in_flight', 'pending'], 'fail');
      await tx`UPDATE outbox SET status = 'pending', next_attempt_at = ${failure.nextAttemptAt},
          last_error = ${failure.error}, lease_until = NULL, updated_at = ${failure.now}
        WHERE id = ${id}`;
    });
  }

  async deadLetterOutbox(id: number, failure: { error: string; now: number }): Promise<void> {
    await this.#tx('deadLetterOutbox', async (tx) => {
      const row = await lockOutboxRow(tx, id);
      requireStatus(row, ['in_flight', 'pending'], 'dead-letter');
      await tx`UPDATE outbox SET status = 'dead', last_error = ${failure.error}, lease_until = NULL,
        updated_at = ${failure.now} WHERE id = ${id}`;
      const ratingId = (row['rating_id'] ?? null) as number | null;
      if (ratingId !== null) await tx`UPDATE ratings SET upload_status = 'failed' WHERE id = ${ratingId}`;
    });
  }

  async retryOutbox(id: number, now: number): Promise<OutboxItem> {
    return this.#tx('retryOutbox', async (tx) => {
      const row = await lockOutboxRow(tx, id);
      requireStatus(row, ['dead'], 'retry');
      const ratingId = (row['rating_id'] ?? null) as number | null;
      if (ratingId !== null) await tx`UPDATE ratings SET upload_status = 'pending' WHERE id = ${ratingId}`;
      const [r] = await tx`UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ${now},
          lease_until = NULL, updated_at = ${now}
        WHERE id = ${id} RETURNING *`;
      return toOutboxItem(r as Row);
    });
  }

  async discardOutbox(id: number, _now: number): Promise<void> {
    await this.#tx('discardOutbox', async (tx) => {
      const row = await lockOutboxRow(tx, id);
      requireStatus(row, ['dead', 'pending'], 'discard');
      // The row goes: the chain behind it is unblocked and the key may be used again.
      await tx`DELETE FROM outbox WHERE id = ${id}`;
      const ratingId = (row['rating_id'] ?? null) as number | null;
      if (ratingId !== null) await tx`UPDATE ratings SET upload_status = 'failed' WHERE id = ${ratingId}`;
    });
  }

  async rescheduleOutbox(now: number): Promise<number> {
    return this.#run('rescheduleOutbox', async (q) => {
      const r = await q`UPDATE outbox SET next_attempt_at = ${now}, updated_at = ${now}
        WHERE status = 'pending' AND next_attempt_at > ${now}`;
      return r.count;
    });
  }

  async recoverOutbox(now: number): Promise<number> {
    return this.#run('recoverOutbox', async (q) => {
      const r = await q`UPDATE outbox SET status = 'pending', lease_until = NULL, updated_at = ${now}
        WHERE status = 'in_flight' AND (lease_until IS NULL OR lease_until <= ${now})`;
      return r.count;
    });
  }

  async getOutboxItem(id: number): Promise<OutboxItem | null> {
    const [r] = await this.#run('getOutboxItem', (q) => q`SELECT * FROM outbox WHERE id = ${id}`);
    return r ? toOutboxItem(r) : null;
  }

  async listOutbox(filter: {
    skillId?: string;
    status?: OutboxStatus;
    limit: number;
    offset: number;
  }): Promise<{ items: OutboxItem[]; total: number }> {
    return this.#run('listOutbox', async (q) => {
      const where = q`WHERE true
        ${filter.skillId !== undefined ? q`AND skill_id = ${filter.skillId}` : q``}
        ${filter.status ? q`AND status = ${filter.status}` : q``}`;
      const [t] = await q`SELECT count(*) AS n FROM outbox ${where}`;
      const rows =
        await q`SELECT * FROM outbox ${where} ORDER BY id LIMIT ${filter.limit} OFFSET ${filter.offset}`;
      return { items: rows.map(toOutboxItem), total: Number(t?.['n'] ?? 0) };
    });
  }

  async nextOutboxDueAt(): Promise<number | null> {
    const [r] = await this.#run(
      'nextOutboxDueAt',
      (q) => q`
        WITH heads AS (
          SELECT DISTINCT ON (chain_key) status, next_attempt_at FROM outbox
          WHERE status <> 'done' ORDER BY chain_key, id
        )
        SELECT min(next_attempt_at) AS at FROM heads WHERE status = 'pending'`,
    );
    return (r?.['at'] ?? null) as number | null;
  }

  // ---- sync state, runs, checkpoints -----------------------------------------------------

  async getSyncState(): Promise<SyncState> {
    return this.#run('getSyncState', (q) => readSyncState(q));
  }

  async updateSyncState(patch: Partial<SyncState>): Promise<SyncState> {
    return this.#tx('updateSyncState', async (tx) => {
      // Derived counters (skillsCached, categoriesCached, pendingActions) are counted, not stored.
      const cols = patchColumns(patch, SYNC_STATE_COLUMNS);
      if (Object.keys(cols).length > 0) await tx`UPDATE sync_state SET ${tx(cols)} WHERE id = 1`;
      return readSyncState(tx);
    });
  }

  async getCheckpoint(): Promise<ListingCheckpoint | null> {
    const [r] = await this.#run('getCheckpoint', (q) => q`SELECT data FROM checkpoint WHERE id = 1`);
    return r ? (r['data'] as ListingCheckpoint) : null;
  }

  async setCheckpoint(checkpoint: ListingCheckpoint | null): Promise<void> {
    await this.#run('setCheckpoint', (q) => writeCheckpoint(q, checkpoint));
  }

  async startRun(input: { trigger: RunTrigger; mode: RunMode; startedAt: number }): Promise<RunRecord> {
    const [r] = await this.#run(
      'startRun',
      (q) => q`INSERT INTO sync_runs (trigger, mode, status, started_at)
        VALUES (${input.trigger}, ${input.mode}, 'running', ${input.startedAt}) RETURNING *`,
    );
    return toRunRecord(r as Row);
  }

  async updateRun(id: number, patch: RunPatch): Promise<RunRecord> {
    return this.#run('updateRun', async (q) => {
      const cols = patchColumns(patch, RUN_COLUMNS);
      const [r] =
        Object.keys(cols).length > 0
          ? await q`UPDATE sync_runs SET ${q(cols)} WHERE id = ${id} RETURNING *`
          : await q`SELECT * FROM sync_runs WHERE id = ${id}`;
      if (!r)
        throw new SkillsyncError('SKILLSYNC_ERR_STORE_QUERY', `No sync run has id ${id}.`, {
          details: { id },
        });
      return toRunRecord(r);
    });
  }

  async getRun(id: number): Promise<RunRecord | null> {
    const [r] = await this.#run('getRun', (q) => q`SELECT * FROM sync_runs WHERE id = ${id}`);
    return r ? toRunRecord(r) : null;
  }

  async listRuns(options: { limit: number; offset: number }): Promise<{ items: RunRecord[]; total: number }> {
    return this.#run('listRuns', async (q) => {
      const [t] = await q`SELECT count(*) AS n FROM sync_runs`;
      const rows =
        await q`SELECT * FROM sync_runs ORDER BY id DESC LIMIT ${options.limit} OFFSET ${options.offset}`;
      return { items: rows.map(toRunRecord), total: Number(t?.['n'] ?? 0) };
    });
  }

  acquireSyncLease(owner: string, now: number, ttlMs: number, staleOwner?: string): Promise<LeaseAttempt> {
    return this.#run('acquireSyncLease', (q) => acquireLease(q, owner, now, ttlMs, staleOwner));
  }

  renewSyncLease(owner: string, now: number, ttlMs: number, runId: number | null): Promise<boolean> {
    return this.#run('renewSyncLease', (q) => renewLease(q, owner, now, ttlMs, runId));
  }

  releaseSyncLease(owner: string): Promise<void> {
    return this.#run('releaseSyncLease', (q) => releaseLease(q, owner));
  }

  // ---- websocket state -------------------------------------------------------------------

  async getWsState(): Promise<WsState> {
    const [r] = await this.#run('getWsState', (q) => q`SELECT * FROM ws_state WHERE id = 1`);
    return toWsState(r as Row);
  }

  async updateWsState(patch: Partial<Omit<WsState, 'counts'>>): Promise<WsState> {
    return this.#run('updateWsState', async (q) => {
      const cols = patchColumns(patch, WS_STATE_COLUMNS);
      const [r] =
        Object.keys(cols).length > 0
          ? await q`UPDATE ws_state SET ${q(cols)} WHERE id = 1 RETURNING *`
          : await q`SELECT * FROM ws_state WHERE id = 1`;
      return toWsState(r as Row);
    });
  }

  async incrementWsCounts(deltas: Partial<Record<WsOutcome, number>>): Promise<void> {
    const d = (k: WsOutcome): number => deltas[k] ?? 0;
    if (WS_OUTCOMES.every((k) => d(k) === 0)) return;
    await this.#run(
      'incrementWsCounts',
      (q) => q`UPDATE ws_state SET count_applied = count_applied + ${d('applied')},
        count_duplicate = count_duplicate + ${d('duplicate')}, count_stale = count_stale + ${d('stale')},
        count_invalid = count_invalid + ${d('invalid')}, count_rate_limited = count_rate_limited + ${d('rate_limited')},
        count_unknown = count_unknown + ${d('unknown')} WHERE id = 1`,
    );
  }

  // ---- quarantine, config ----------------------------------------------------------------

  async quarantine(items: QuarantineInput[]): Promise<void> {
    if (items.length === 0) return;
    const rows = items.map(quarantineRow);
    await this.#run('quarantine', (q) => q`INSERT INTO quarantine ${q(rows)}`);
  }

  async listQuarantine(options: {
    limit: number;
    offset: number;
  }): Promise<{ items: QuarantineRecord[]; total: number }> {
    return this.#run('listQuarantine', async (q) => {
      const [t] = await q`SELECT count(*) AS n FROM quarantine`;
      const rows =
        await q`SELECT * FROM quarantine ORDER BY id DESC LIMIT ${options.limit} OFFSET ${options.offset}`;
      return { items: rows.map(toQuarantineRecord), total: Number(t?.['n'] ?? 0) };
    });
  }

  async getConfigOverrides(): Promise<Record<string, unknown>> {
    return this.#run('getConfigOverrides', (q) => readConfig(q));
  }

  async setConfigOverrides(patch: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#tx('setConfigOverrides', async (tx) => {
      for (const [key, value] of Object.entries(patch).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (value === undefined) continue;
        if (value === null) await tx`DELETE FROM config_overrides WHERE key = ${key}`;
        else {
          await tx`INSERT INTO config_overrides (key, value) VALUES (${key}, ${jsonb(tx, value)})
            ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
        }
      }
      return readConfig(tx);
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async ping(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#sql`SELECT 1`;
      return true;
    } catch {
      return false;
    }
  }

  async integrityCheck(): Promise<string[]> {
    return this.#run('integrityCheck', async (q) => {
      const problems: string[] = [];
      const [r] = await q`SELECT
          (SELECT count(*) FROM skills WHERE base->>'skill_id' IS DISTINCT FROM skill_id) AS id_mismatch,
          (SELECT count(*) FROM skill_sync WHERE fetched_at > expires_at) AS bad_ttl,
          (SELECT count(*) FROM skills s WHERE NOT EXISTS (SELECT 1 FROM skill_sync f WHERE f.skill_id = s.skill_id))
            AS no_sync_row,
          (SELECT count(*) FROM skill_sync f WHERE NOT EXISTS (SELECT 1 FROM skills s WHERE s.skill_id = f.skill_id))
            AS orphan_sync_rows,
          (SELECT count(*) FROM skills WHERE local IS NULL AND NOT starts_with(base->>'name', name)) AS bad_name,
          (SELECT count(*) FROM (SELECT skill_id FROM conflicts WHERE status = 'open'
              GROUP BY skill_id HAVING count(*) > 1) x) AS open_dupes,
          (SELECT count(*) FROM outbox WHERE status = 'in_flight' AND lease_until IS NULL) AS lease_missing,
          (SELECT count(*) FROM sync_state) AS state_rows,
          (SELECT count(*) FROM ws_state) AS ws_rows`;
      const n = (k: string): number => Number(r?.[k] ?? 0);
      if (n('id_mismatch') > 0)
        problems.push(`${n('id_mismatch')} skills whose base skill_id differs from the key`);
      if (n('bad_ttl') > 0) problems.push(`${n('bad_ttl')} skills with fetched_at after expires_at`);
      if (n('no_sync_row') > 0) problems.push(`${n('no_sync_row')} skills without their sync row`);
      if (n('orphan_sync_rows') > 0) problems.push(`${n('orphan_sync_rows')} sync rows without their skill`);
      if (n('bad_name') > 0) problems.push(`${n('bad_name')} skills whose name column differs from the base`);
      if (n('open_dupes') > 0) problems.push(`${n('open_dupes')} skills with more than one open conflict`);
      if (n('lease_missing') > 0)
        problems.push(`${n('lease_missing')} in-flight outbox items without a lease`);
      if (n('state_rows') !== 1) problems.push(`sync_state has ${n('state_rows')} rows, expected 1`);
      if (n('ws_rows') !== 1) problems.push(`ws_state has ${n('ws_rows')} rows, expected 1`);
      return problems;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#merger.close();
    await this.#sql.end({ timeout: 5 });
  }
}

// ---- statement helpers shared by several methods ---------------------------------------------

async function writeCheckpoint(q: Q, checkpoint: ListingCheckpoint | null): Promise<void> {
  if (checkpoint === null) await q`DELETE FROM checkpoint WHERE id = 1`;
  else {
    await q`INSERT INTO checkpoint (id, data) VALUES (1, ${jsonb(q, checkpoint)})
      ON CONFLICT (id) DO UPDATE SET data = excluded.data`;
  }
}

/** A listing completed: remember its start (never moving backwards) and drop held deletions. */
async function markListingComplete(q: Q, listingStartedAt: number): Promise<void> {
  await q`UPDATE sync_state SET
      last_complete_listing_at = greatest(coalesce(last_complete_listing_at, ${listingStartedAt}), ${listingStartedAt}),
      held_deletions = 0, held_deletions_at = NULL, held_listing_started_at = NULL
    WHERE id = 1`;
}

async function readSyncState(q: Q): Promise<SyncState> {
  const [r] = await q`SELECT s.*,
      (SELECT count(*) FROM skills) AS skills_cached,
      (SELECT count(*) FROM categories) AS categories_cached,
      (SELECT count(*) FROM outbox WHERE status IN ('pending', 'in_flight')) AS pending_actions
    FROM sync_state s WHERE s.id = 1`;
  const row = r as Row;
  return {
    ...toSyncState(row),
    skillsCached: Number(row['skills_cached']),
    categoriesCached: Number(row['categories_cached']),
    pendingActions: Number(row['pending_actions']),
  };
}

async function readConfig(q: Q): Promise<Record<string, unknown>> {
  const rows = await q`SELECT key, value FROM config_overrides ORDER BY key`;
  const out: Record<string, unknown> = {};
  for (const r of rows) out[r['key'] as string] = r['value'];
  return out;
}

async function requireSkill(q: Q, skillId: string): Promise<void> {
  const [r] = await q`SELECT 1 FROM skills WHERE skill_id = ${skillId}`;
  if (!r) {
    throw new SkillsyncError(
      'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
      `Skill ${JSON.stringify(skillId)} is not in the catalog.`,
      {
        details: { skillId },
      },
    );
  }
}

async function insertOutbox(
  q: Q,
  input: EnqueueInput,
  skillId: string | null,
  ratingId: number | null,
): Promise<OutboxItem> {
  // The idempotency key is unique: enqueueing the same action twice returns the first item.
  const [r] = await q`
    INSERT INTO outbox (kind, chain_key, skill_id, rating_id, payload, idempotency_key, status, attempts,
      next_attempt_at, created_at, updated_at)
    VALUES (${input.kind}, ${input.chainKey}, ${skillId}, ${ratingId}, ${jsonb(q, input.payload)},
      ${input.idempotencyKey}, 'pending', 0, ${input.now}, ${input.now}, ${input.now})
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING *`;
  if (r) return toOutboxItem(r);
  const [existing] = await q`SELECT * FROM outbox WHERE idempotency_key = ${input.idempotencyKey}`;
  return toOutboxItem(existing as Row);
}

async function upsertCategoryRow(
  q: Q,
  category: Category,
  o: { now: number; ttlMs: number; epoch: string | null; source: ChangeSource },
  versionGuard: boolean,
): Promise<EventOutcome> {
  const hash = categoryContentHash(category);
  const ms = isoToMs(typeof category.updated_at === 'string' ? category.updated_at : null);
  const expiresAt = o.now + o.ttlMs;
  const [cur] =
    await q`SELECT content_hash, remote_updated_ms FROM categories WHERE name = ${category.name} FOR UPDATE`;
  const storedMs = (cur?.['remote_updated_ms'] ?? null) as number | null;
  if (versionGuard && cur && ms !== null && storedMs !== null && ms < storedMs) return 'stale';
  if (cur && cur['content_hash'] === hash) {
    await q`UPDATE categories SET fetched_at = ${o.now}, expires_at = ${expiresAt}, epoch = ${o.epoch},
        remote_updated_ms = coalesce(${ms}::bigint, remote_updated_ms)
      WHERE name = ${category.name}`;
    return 'duplicate';
  }
  // A category without updated_at keeps the stored time, so the version guard goes on refusing
  // what is older than the newest version seen (null would switch it off).
  await q`INSERT INTO categories (name, data, content_hash, remote_updated_ms, fetched_at, expires_at, source, epoch)
    VALUES (${category.name}, ${jsonb(q, category)}, ${hash}, ${ms}, ${o.now}, ${expiresAt}, ${o.source}, ${o.epoch})
    ON CONFLICT (name) DO UPDATE SET data = excluded.data, content_hash = excluded.content_hash,
      remote_updated_ms = coalesce(excluded.remote_updated_ms, categories.remote_updated_ms),
      fetched_at = excluded.fetched_at,
      expires_at = excluded.expires_at, source = excluded.source, epoch = excluded.epoch`;
  return 'applied';
}

async function lockOutboxRow(q: Q, id: number): Promise<Row> {
  const [row] = await q`SELECT * FROM outbox WHERE id = ${id} FOR UPDATE`;
  if (!row) {
    throw new SkillsyncError('SKILLSYNC_ERR_OUTBOX_NOT_FOUND', `No outbox item has id ${id}.`, {
      details: { id },
    });
  }
  return row;
}

function requireStatus(row: Row, allowed: readonly OutboxStatus[], operation: string): void {
  const status = row['status'] as OutboxStatus;
  if (!allowed.includes(status)) {
    throw new SkillsyncError(
      'SKILLSYNC_ERR_OUTBOX_STATE',
      `Outbox item ${String(row['id'])} is ${status}; ${operation} needs ${allowed.join(' or ')}.`,
      { details: { id: Number(row['id']), status } },
    );
  }
}
