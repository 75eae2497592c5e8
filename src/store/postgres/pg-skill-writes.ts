/**
 * The hot write path: applying a batch of skills inside the caller's transaction.
 *
 * Set-based statements, a handful per batch whatever its size:
 * 1. Touch: one statement joins the batch's (id, hash) pairs with the table and bumps
 *    fetched_at/expires_at of every skill whose content hash is unchanged, in the narrow
 *    skill_sync rows (the wide row only when the remote time moved). It carries no payloads,
 *    so re-applying an unchanged page costs one small statement.
 * 2. Upsert: the rest of the batch (new, or a different hash) goes in chunks of JSON documents
 *    through jsonb_to_recordset into INSERT ... ON CONFLICT DO UPDATE [WHERE, under the version
 *    guard, the incoming remote time is not older], its sync rows in the same statement. The
 *    chunks are pipelined: the server writes one while the next is serialized here. RETURNING
 *    tells which rows were written; the ones neither touched nor written were refused by the
 *    guard (stale).
 * Rows are sent sorted by skill_id so concurrent writers lock them in the same order.
 *
 * The rare per-item extras (local overrides, conflicts) run after, one statement each, only
 * for items the guard did not refuse.
 */
import type { Skill } from '../../remote/contract.js';
import { skillContentHash } from '../../remote/contract.js';
import type {
  ApplyResult,
  ChangeSource,
  ConflictUpsert,
  EventOutcome,
  SkillOverrides,
  SkillUpsert,
  Tombstone,
} from '../types.js';
import type postgres from 'postgres';
import { jsonb, type Q } from './pg-sql.js';
import { isoToMs, quarantineRow, skillColumns, unstorableReason, type Row } from './pg-rows.js';

export interface WriteOptions {
  now: number;
  ttlMs: number;
  epoch: string | null;
  source: ChangeSource;
  guard: 'listing' | 'version';
  /** The sync run writing, for the quarantine rows of refused records. */
  runId?: number | null;
}

export interface WriteOutcome extends Omit<ApplyResult, 'deleted' | 'quarantined'> {
  applied: Set<string>;
  unchanged: number;
  unchangedIds: Set<string>;
  /** Records PostgreSQL cannot store (U+0000), quarantined instead (see refuseUnstorable). */
  quarantined: number;
  /** New conflicts opened (not updates of an open one). */
  conflictsOpened: number;
  /** Open conflicts closed by a strategy. */
  conflictsClosed: number;
  /** Conflicts a strategy settled with none open: detected and resolved at once. */
  conflictsSettled: number;
}

/** Last occurrence of each skill id wins; sorted by id for a stable lock order. */
function dedupe(items: readonly SkillUpsert[]): SkillUpsert[] {
  const byId = new Map<string, SkillUpsert>();
  for (const item of items) byId.set(item.skill.skill_id, item);
  return [...byId.values()].sort((a, b) =>
    a.skill.skill_id < b.skill.skill_id ? -1 : a.skill.skill_id > b.skill.skill_id ? 1 : 0,
  );
}

export async function writeSkills(
  tx: Q,
  input: readonly SkillUpsert[],
  o: WriteOptions,
  /**
   * Statements of the same transaction that do not depend on this batch's outcome (a page's
   * tombstones, checkpoint, watermark): sent right behind the upsert in one pipeline, so the
   * page costs no extra round trips for them. They run after the upsert, in order.
   */
  alongside: () => PromiseLike<unknown>[] = () => [],
): Promise<WriteOutcome> {
  const out: WriteOutcome = {
    upserted: 0,
    unchanged: 0,
    stale: 0,
    conflictsRecorded: 0,
    applied: new Set(),
    unchangedIds: new Set(),
    quarantined: 0,
    conflictsOpened: 0,
    conflictsClosed: 0,
    conflictsSettled: 0,
  };
  let items = await refuseUnstorable(tx, dedupe(input), o, out);
  const refusedByDeletion = items.length > 0 ? await guardDeletions(tx, items, o) : new Set<string>();
  if (refusedByDeletion.size > 0) items = items.filter((i) => !refusedByDeletion.has(i.skill.skill_id));
  if (items.length === 0) {
    out.stale = refusedByDeletion.size;
    await Promise.all(alongside());
    return out;
  }
  const expiresAt = o.now + o.ttlMs;
  // The touch needs only ids, hashes and remote times; the full columns (tokenizing the text
  // for search) are computed only for the rows that are written.
  const remoteAt = items.map((i) => (typeof i.skill.updated_at === 'string' ? i.skill.updated_at : null));

  // Under the version guard an older remote time is stale even with the same content.
  const notOlder =
    o.guard === 'version'
      ? tx`AND NOT (x.ms IS NOT NULL AND s.remote_updated_ms IS NOT NULL AND x.ms < s.remote_updated_ms)`
      : tx``;
  // Both parts read the statement's snapshot: `t` bumps the narrow sync rows of unchanged
  // skills; `b` also moves the remote time (base.updated_at included) of those whose time
  // changed without their content (rare: the wide row is rewritten only then).
  const touched = await tx`
    WITH x AS (
      SELECT * FROM unnest(
        ${items.map((i) => i.skill.skill_id)}::text[],
        ${items.map((i) => i.contentHash)}::text[],
        ${remoteAt}::text[],
        ${remoteAt.map(isoToMs)}::bigint[]
      ) AS x(id, hash, at, ms)
    ), t AS (
      UPDATE skill_sync AS f SET fetched_at = ${o.now}, expires_at = ${expiresAt}, epoch = ${o.epoch}
      FROM x JOIN skills s ON s.skill_id = x.id
      WHERE f.skill_id = x.id AND f.content_hash = x.hash ${notOlder}
      RETURNING f.skill_id
    ), b AS (
      UPDATE skills AS s SET base = jsonb_set(s.base, '{updated_at}', to_jsonb(x.at)),
        remote_updated_at = x.at, remote_updated_ms = coalesce(x.ms, s.remote_updated_ms)
      FROM x JOIN skill_sync f ON f.skill_id = x.id
      WHERE s.skill_id = x.id AND f.content_hash = x.hash ${notOlder}
        AND x.at IS NOT NULL AND x.at IS DISTINCT FROM s.remote_updated_at
    )
    SELECT skill_id FROM t`;
  for (const r of touched) out.unchangedIds.add(r['skill_id'] as string);
  out.unchanged = out.unchangedIds.size;

  const rest = items.filter((i) => !out.unchangedIds.has(i.skill.skill_id));
  const withLocal = new Set<string>();
  if (rest.length === 0) await Promise.all(alongside());
  else {
    // The rest goes in chunks, each sent as soon as it is serialized: the server writes one
    // chunk while this process computes the columns of the next, instead of waiting for the
    // whole page to be serialized first.
    const sent: Promise<readonly Row[]>[] = [];
    for (let at = 0; at < rest.length; at += UPSERT_CHUNK) {
      if (at > 0) await yieldToIo();
      const cols = rest.slice(at, at + UPSERT_CHUNK).map((i) => skillColumns(i.skill, i.contentHash));
      const chunk = upsertStatement(tx, JSON.stringify(cols), o, expiresAt).then((rows) => rows);
      // Handled at once (Promise.all below reports it): a failed chunk must not surface as an
      // unhandled rejection while the next one is being serialized.
      chunk.catch(() => undefined);
      sent.push(chunk);
    }
    const [written] = await Promise.all([Promise.all(sent), ...alongside()]);
    for (const rows of written) {
      for (const r of rows) {
        out.applied.add(r['skill_id'] as string);
        if (r['has_local'] === true) withLocal.add(r['skill_id'] as string);
      }
    }
  }
  out.upserted = out.applied.size;
  out.stale = items.length + refusedByDeletion.size - out.upserted - out.unchanged;

  // Rows whose read columns must be recomputed from base + overrides: rewritten bases that
  // carry overrides (the upsert wrote columns from the base alone) and rows whose overrides change.
  const recompute = new Set<string>(withLocal);
  for (const item of items) {
    const id = item.skill.skill_id;
    if (!out.applied.has(id) && !out.unchangedIds.has(id)) continue;
    if (item.local !== undefined) {
      await tx`UPDATE skills SET local = ${item.local === null ? null : jsonb(tx, item.local)},
        local_updated_at = ${o.now}, source = ${o.source} WHERE skill_id = ${id}`;
      recompute.add(id);
    }
    if (item.resolveOpenConflict) {
      const closed = await tx`UPDATE conflicts SET status = 'resolved',
          resolution = ${item.resolveOpenConflict.resolution}, resolved_by = ${item.resolveOpenConflict.resolvedBy},
          resolved_at = ${o.now}, updated_at = ${o.now}
        WHERE skill_id = ${id} AND status = 'open'`;
      out.conflictsClosed += closed.count;
      // A conflict the strategy settled before any was open: detected and resolved at once.
      if (closed.count === 0) out.conflictsSettled++;
    }
    if (item.conflict) {
      if (await upsertOpenConflict(tx, id, item.conflict, o.now)) out.conflictsOpened++;
      out.conflictsRecorded++;
    }
  }
  await rewriteColumns(tx, [...recompute]);
  return out;
}

/**
 * Remembered deletions (Store.deleteSkill) against a batch. Under the listing guard (a full
 * listing is authoritative) the records of the listed skills are cleared. Under the version
 * guard a skill with a record and no row is refused unless its version is newer than the
 * deletion; a newer one clears the record (the upsert re-creates the skill). Returns the ids
 * refused.
 */
async function guardDeletions(tx: Q, items: readonly SkillUpsert[], o: WriteOptions): Promise<Set<string>> {
  const ids = items.map((i) => i.skill.skill_id);
  const refused = new Set<string>();
  if (o.guard === 'listing') {
    await tx`DELETE FROM skill_deletions WHERE skill_id = ANY(${ids}::text[])`;
    return refused;
  }
  const rows = await tx`SELECT d.skill_id, d.deleted_ms FROM skill_deletions d
    WHERE d.skill_id = ANY(${ids}::text[])
      AND NOT EXISTS (SELECT 1 FROM skills s WHERE s.skill_id = d.skill_id)`;
  if (rows.length === 0) return refused;
  const deletedMs = new Map(rows.map((r) => [r['skill_id'] as string, Number(r['deleted_ms'])]));
  const cleared: string[] = [];
  for (const item of items) {
    const ms = deletedMs.get(item.skill.skill_id);
    if (ms === undefined) continue;
    const incoming = isoToMs(typeof item.skill.updated_at === 'string' ? item.skill.updated_at : null);
    if (incoming === null || incoming <= ms) refused.add(item.skill.skill_id);
    else cleared.push(item.skill.skill_id);
  }
  if (cleared.length > 0) await tx`DELETE FROM skill_deletions WHERE skill_id = ANY(${cleared}::text[])`;
  return refused;
}

/**
 * Remembers remote deletions (Store.deleteSkill), before the rows go: a stored version's time
 * counts when it is later than the deletion's or that is unknown; without any time nothing is
 * remembered. A record already there keeps the later time.
 */
export async function rememberDeletions(
  q: Q,
  tombstones: readonly Tombstone[],
  now: number,
  ttlMs: number,
): Promise<void> {
  if (tombstones.length === 0) return;
  const at = tombstones.map((t) => t.deletedAt);
  // Awaited here, so the statement is sent when this is called (before a delete queued after it).
  await q`
    INSERT INTO skill_deletions AS d (skill_id, deleted_at, deleted_ms, recorded_at, expires_at)
    SELECT x.id,
      CASE WHEN x.ms IS NULL OR s.remote_updated_ms > x.ms THEN s.remote_updated_at ELSE x.at END,
      greatest(x.ms, s.remote_updated_ms), ${now}, ${now + ttlMs}
    FROM unnest(${tombstones.map((t) => t.skillId)}::text[], ${at}::text[], ${at.map(isoToMs)}::bigint[])
      AS x(id, at, ms)
    LEFT JOIN skills s ON s.skill_id = x.id
    WHERE greatest(x.ms, s.remote_updated_ms) IS NOT NULL
    ON CONFLICT (skill_id) DO UPDATE SET
      deleted_at = CASE WHEN excluded.deleted_ms > d.deleted_ms THEN excluded.deleted_at ELSE d.deleted_at END,
      deleted_ms = greatest(d.deleted_ms, excluded.deleted_ms),
      recorded_at = excluded.recorded_at, expires_at = excluded.expires_at`;
}

/**
 * Takes out the items PostgreSQL cannot store (a string or key with U+0000, refused by text
 * and jsonb alike: one such record used to fail its whole page, and the retries with it) and
 * quarantines them in the caller's transaction, as the sync engine quarantines records that
 * fail validation: kind `skill`, the id as key, where the NUL is as reason, the record as
 * payload. A listing saw the record, so under the listing guard a stored version of it is
 * touched as seen and kept, as the engine keeps a stored skill whose new payload is invalid.
 * Returns the storable items.
 */
async function refuseUnstorable(
  tx: Q,
  items: SkillUpsert[],
  o: WriteOptions,
  out: WriteOutcome,
): Promise<SkillUpsert[]> {
  const refused: { item: SkillUpsert; reason: string }[] = [];
  const kept: SkillUpsert[] = [];
  for (const item of items) {
    const reason =
      unstorableReason(item.skill) ??
      (item.local === undefined || item.local === null ? null : unstorableReason(item.local, '/local')) ??
      (item.conflict === undefined ? null : unstorableReason(item.conflict, '/conflict'));
    if (reason === null) kept.push(item);
    else refused.push({ item, reason });
  }
  if (refused.length === 0) return items;
  out.quarantined = refused.length;
  const rows = refused.map(({ item, reason }) =>
    quarantineRow({
      kind: 'skill',
      key: item.skill.skill_id,
      reason,
      payload: item.skill,
      runId: o.runId ?? null,
      at: o.now,
    }),
  );
  await tx`INSERT INTO quarantine ${tx(rows)}`;
  // An id holding U+0000 cannot be stored, so no stored skill has it.
  const seen = refused.map((r) => r.item.skill.skill_id).filter((id) => !id.includes('\0'));
  if (o.guard === 'listing' && seen.length > 0) {
    await tx`UPDATE skill_sync SET fetched_at = ${o.now}, expires_at = ${o.now + o.ttlMs}, epoch = ${o.epoch}
      WHERE skill_id = ANY(${seen}::text[])`;
  }
  return kept;
}

/** Rows per upsert statement: small enough that the server starts early, large enough that the
 * per-statement cost stays small. */
const UPSERT_CHUNK = 250;

/** Lets postgres.js send what was queued and the socket flush it before more CPU work. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * INSERT ... ON CONFLICT DO UPDATE of the skills in `json` (SkillColumns[] as JSON), under the
 * version guard if asked; their sync rows in the same statement, written only for the skills
 * the guard let through. Returns the ids written and whether each has local overrides.
 */
function upsertStatement(tx: Q, json: string, o: WriteOptions, expiresAt: number) {
  // A payload without updated_at keeps the stored time (coalesce below), so the version guard
  // goes on refusing what is older than the newest version seen (null would switch it off).
  const versionGuard =
    o.guard === 'version'
      ? tx`WHERE skills.remote_updated_ms IS NULL OR excluded.remote_updated_ms IS NULL
              OR excluded.remote_updated_ms >= skills.remote_updated_ms`
      : tx``;
  return tx`
    WITH x AS MATERIALIZED (
      SELECT * FROM jsonb_to_recordset(${json}::text::jsonb) AS x(skill_id text,
        base jsonb, name text, category text, skill_type text, version text, search text,
        average_rating double precision, rating_count bigint, install_count bigint,
        remote_updated_at text, remote_updated_ms bigint, content_hash text)
    ), w AS (
      INSERT INTO skills AS skills (skill_id, base, name, category, skill_type, version, search,
        average_rating, rating_count, install_count, remote_updated_at, remote_updated_ms, source)
      SELECT x.skill_id, x.base, x.name, x.category, x.skill_type, x.version, x.search::tsvector,
        x.average_rating, x.rating_count, x.install_count, x.remote_updated_at, x.remote_updated_ms,
        ${o.source}
      FROM x
      ON CONFLICT (skill_id) DO UPDATE SET
        base = excluded.base, name = excluded.name, search = excluded.search,
        category = excluded.category, skill_type = excluded.skill_type, version = excluded.version,
        average_rating = excluded.average_rating, rating_count = excluded.rating_count,
        install_count = excluded.install_count,
        remote_updated_at = coalesce(excluded.remote_updated_at, skills.remote_updated_at),
        remote_updated_ms = coalesce(excluded.remote_updated_ms, skills.remote_updated_ms),
        source = excluded.source
      ${versionGuard}
      RETURNING skills.skill_id, skills.local IS NOT NULL AS has_local
    ), f AS (
      INSERT INTO skill_sync AS f (skill_id, content_hash, fetched_at, expires_at, epoch)
      SELECT x.skill_id, x.content_hash, ${o.now}, ${expiresAt}, ${o.epoch} FROM x JOIN w USING (skill_id)
      ON CONFLICT (skill_id) DO UPDATE SET content_hash = excluded.content_hash,
        fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, epoch = excluded.epoch
    )
    SELECT skill_id, has_local FROM w`;
}

/**
 * Deletes skills by id with their sync rows, in one statement (no foreign key cascades them:
 * see migration 2). Returns how many skills were deleted.
 */
export async function deleteSkillsById(q: Q, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const [r] = await q`
    WITH s AS (DELETE FROM skills WHERE skill_id = ANY(${[...ids]}::text[]) RETURNING skill_id),
      f AS (DELETE FROM skill_sync WHERE skill_id IN (SELECT skill_id FROM s))
    SELECT count(*) AS n FROM s`;
  return Number(r?.['n'] ?? 0);
}

/**
 * Deletes the skills whose sync row matches `where` (a condition on skill_sync: unseen since a
 * listing, expired) with their sync rows, in one statement. Returns how many skills. The skill
 * rows are locked first, then their sync rows: the order of the writers, so a delete and a
 * concurrent page write never deadlock.
 */
export async function deleteSkillsBySync(q: Q, where: postgres.Fragment): Promise<number> {
  const [r] = await q`
    WITH s AS (DELETE FROM skills WHERE skill_id IN (SELECT skill_id FROM skill_sync WHERE ${where})
        RETURNING skill_id),
      f AS (DELETE FROM skill_sync WHERE skill_id IN (SELECT skill_id FROM s))
    SELECT count(*) AS n FROM s`;
  return Number(r?.['n'] ?? 0);
}

/**
 * Recomputes the read columns of the given skills from their stored base and overrides, in one
 * statement. Used whenever the overrides change or a base is replaced under existing overrides.
 */
export async function rewriteColumns(tx: Q, skillIds: readonly string[]): Promise<void> {
  if (skillIds.length === 0) return;
  const rows =
    await tx`SELECT skill_id, base, local FROM skills WHERE skill_id = ANY(${[...skillIds]}::text[])`;
  if (rows.length === 0) return;
  const cols = rows.map((r) =>
    skillColumns(
      r['base'] as Skill,
      r['content_hash'] as string,
      (r['local'] ?? null) as SkillOverrides | null,
    ),
  );
  await tx`
    UPDATE skills AS s SET name = x.name, search = x.search::tsvector, category = x.category,
      skill_type = x.skill_type, version = x.version,
      average_rating = x.average_rating, rating_count = x.rating_count, install_count = x.install_count
    FROM jsonb_to_recordset(${JSON.stringify(cols.map(({ base: _b, ...c }) => c))}::text::jsonb) AS x(
      skill_id text, name text, search text, category text, skill_type text, version text,
      average_rating double precision, rating_count bigint, install_count bigint)
    WHERE s.skill_id = x.skill_id`;
}

/** Opens the skill's conflict or updates the open one in place. Returns true when it opened one. */
export async function upsertOpenConflict(
  tx: Q,
  skillId: string,
  c: ConflictUpsert,
  now: number,
): Promise<boolean> {
  const rows = await tx`
    INSERT INTO conflicts (skill_id, type, severity, base, local, remote, strategy, fields, status,
      detected_at, updated_at)
    VALUES (${skillId}, ${c.type}, ${c.severity}, ${jsonb(tx, c.base)}, ${jsonb(tx, c.local)},
      ${jsonb(tx, c.remote)}, ${c.strategy}, ${jsonb(tx, c.fields)}, 'open', ${now}, ${now})
    ON CONFLICT (skill_id) WHERE status = 'open' DO UPDATE SET
      type = excluded.type, severity = excluded.severity, base = excluded.base, local = excluded.local,
      remote = excluded.remote, strategy = excluded.strategy, fields = excluded.fields,
      updated_at = excluded.updated_at
    RETURNING (xmax = 0) AS inserted`;
  return rows[0]?.['inserted'] === true;
}

/**
 * Merges rating aggregates into a skill's base (the remote's answer to a rating, or a
 * rating_update event). With `remoteAt` it is version-guarded and becomes the remote time.
 */
export async function mergeAggregates(
  tx: Q,
  skillId: string,
  aggregates: { averageRating?: number | undefined; ratingCount?: number | undefined },
  remoteAt: string | null,
): Promise<EventOutcome | 'missing'> {
  const [row] = await tx`SELECT base, remote_updated_ms FROM skills WHERE skill_id = ${skillId} FOR UPDATE`;
  if (!row) return 'missing';
  const remoteMs = isoToMs(remoteAt);
  const storedMs = (row['remote_updated_ms'] ?? null) as number | null;
  if (remoteMs !== null && storedMs !== null && remoteMs < storedMs) return 'stale';
  const base = row['base'] as Skill;
  const next: Skill = { ...base };
  if (aggregates.averageRating !== undefined) next.average_rating = aggregates.averageRating;
  if (aggregates.ratingCount !== undefined) next.rating_count = aggregates.ratingCount;
  const same = next.average_rating === base.average_rating && next.rating_count === base.rating_count;
  if (remoteAt !== null) next.updated_at = remoteAt;
  if (same) {
    if (remoteAt !== null && remoteAt !== base.updated_at) {
      await tx`UPDATE skills SET base = ${jsonb(tx, next)}, remote_updated_at = ${remoteAt},
        remote_updated_ms = coalesce(${remoteMs}::bigint, remote_updated_ms) WHERE skill_id = ${skillId}`;
    }
    return 'duplicate';
  }
  await tx`UPDATE skill_sync SET content_hash = ${skillContentHash(next)} WHERE skill_id = ${skillId}`;
  await tx`UPDATE skills SET base = ${jsonb(tx, next)},
      remote_updated_at = coalesce(${remoteAt}::text, remote_updated_at),
      remote_updated_ms = coalesce(${remoteMs}::bigint, remote_updated_ms)
    WHERE skill_id = ${skillId}`;
  await rewriteColumns(tx, [skillId]);
  return 'applied';
}
