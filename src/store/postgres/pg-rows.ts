/**
 * Row <-> domain mapping for the PostgreSQL store: the indexed columns derived from a skill's
 * base, and every table's row read back as its domain record. Pure functions, no I/O.
 */
import { createHash } from 'node:crypto';
import { nulPath } from '../../core/nul.js';
import type { Category, Skill } from '../../remote/contract.js';
import { effectiveSkill, textTokens } from '../sqlite/skill-columns.js';
import type {
  CategoryRecord,
  ChangeSource,
  ConflictRecord,
  ConflictStrategy,
  ConflictType,
  OutboxItem,
  OutboxKind,
  OutboxStatus,
  QuarantineInput,
  QuarantineRecord,
  RatingRecord,
  RunRecord,
  Severity,
  SkillOverrides,
  SkillRecord,
  SyncState,
  UploadStatus,
  WsState,
} from '../types.js';

export type Row = Record<string, unknown>;

/** Epoch ms of an ISO time, or null. Used for version-guard comparisons. */
export function isoToMs(iso: string | null | undefined): number | null {
  if (typeof iso !== 'string') return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * The columns of a skill row. The read columns (name ... search) describe the effective skill
 * (base with local overrides on top); remote time and content hash describe the base.
 */
export interface SkillColumns {
  skill_id: string;
  base: Skill;
  name: string;
  category: string | null;
  skill_type: string | null;
  version: string | null;
  /** tsvector literal over name, tags and description, plus the category facet (see searchVector). */
  search: string;
  average_rating: number | null;
  rating_count: number | null;
  install_count: number | null;
  remote_updated_at: string | null;
  remote_updated_ms: number | null;
  content_hash: string;
}

export function skillColumns(
  base: Skill,
  contentHash: string,
  local: SkillOverrides | null = null,
): SkillColumns {
  const e = effectiveSkill(base, local);
  const tags = Array.isArray(e.tags) ? e.tags.filter((t): t is string => typeof t === 'string') : [];
  const updatedAt = str(base.updated_at);
  const category = str(e.category);
  return {
    skill_id: base.skill_id,
    base,
    // Sort key only (records are read from base/local): bounded so its btree entry always fits.
    name: e.name.slice(0, MAX_NAME_SORT_CHARS),
    category,
    skill_type: str(e.skill_type),
    version: str(e.version),
    search: searchVector(e.name, tags, str(e.description), category),
    average_rating: num(e.average_rating),
    rating_count: num(e.rating_count),
    install_count: num(e.install_count),
    remote_updated_at: updatedAt,
    remote_updated_ms: isoToMs(updatedAt),
    content_hash: contentHash,
  };
}

/** Characters of the name kept in the sort column (a btree entry must stay under ~2.7 KB). */
const MAX_NAME_SORT_CHARS = 512;
/** Longest token indexed; PostgreSQL refuses lexemes over 2047 bytes. */
const MAX_TOKEN_CHARS = 200;
/** Distinct lexemes kept per skill: keeps a pathological description far below tsvector's 1 MB. */
const MAX_LEXEMES = 4000;

/**
 * The lexeme standing for an exact category in the search vector: `#c` and the MD5 of the
 * category's UTF-8 (migration 2 backfills it in SQL with the same formula). A text word can
 * never produce it or prefix-match it (words are letters and digits only), any category fits
 * in a lexeme whatever its length, and a text search within a category is one GIN scan of the
 * AND of both instead of two indexes combined. The category column stays the exact check.
 */
export function categoryLexeme(category: string): string {
  let lexeme = categoryLexemes.get(category);
  if (lexeme === undefined) {
    lexeme = '#c' + createHash('md5').update(category, 'utf8').digest('hex');
    // Categories repeat across a catalog: a small memo saves a hash per row on the write path,
    // bounded so odd data cannot grow it forever.
    if (categoryLexemes.size >= 10_000) categoryLexemes.clear();
    categoryLexemes.set(category, lexeme);
  }
  return lexeme;
}
const categoryLexemes = new Map<string, string>();

/**
 * The search vector as a tsvector literal: every word (letters and digits, lower-cased: the
 * tokenizer the query side and the SQLite store use) of the name (weight A, position 1), the
 * tags (B, 2) and the description (C, 3), then the category facet (no position: ranking never
 * asks for it). Tokens hold only letters and digits, so they need no escaping inside the quotes.
 */
export function searchVector(
  name: string,
  tags: readonly string[],
  description: string | null,
  category: string | null = null,
): string {
  const lexemes = new Map<string, string>();
  const add = (text: string, pos: string): void => {
    for (const t of textTokens(text)) {
      if (t.length > MAX_TOKEN_CHARS) continue;
      const cur = lexemes.get(t);
      if (cur === undefined) {
        if (lexemes.size < MAX_LEXEMES) lexemes.set(t, pos);
      } else if (!cur.endsWith(pos)) lexemes.set(t, `${cur},${pos}`);
    }
  };
  add(name, '1A');
  for (const tag of tags) add(tag, '2B');
  if (description !== null) add(description, '3C');
  let out = '';
  for (const [t, pos] of lexemes) out += `${out === '' ? '' : ' '}'${t}':${pos}`;
  if (category !== null) out += `${out === '' ? '' : ' '}'${categoryLexeme(category)}'`;
  return out;
}

function nOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/** A skill's wide row `s` with its sync row `f`. */
export const SKILL_FROM = 'skills s JOIN skill_sync f ON f.skill_id = s.skill_id';

/** What a SkillRecord is read from (never the search vector), over SKILL_FROM. */
export const SKILL_COLUMNS = `s.skill_id, s.base, s.local, f.content_hash, s.remote_updated_at, f.fetched_at,
  f.expires_at, s.source, f.epoch,
  EXISTS (SELECT 1 FROM conflicts c WHERE c.skill_id = s.skill_id AND c.status = 'open') AS has_open_conflict`;

export function toSkillRecord(r: Row, now: number): SkillRecord {
  const base = r['base'] as Skill;
  const local = (r['local'] ?? null) as SkillOverrides | null;
  const expiresAt = Number(r['expires_at']);
  return {
    skillId: r['skill_id'] as string,
    base,
    local,
    effective: effectiveSkill(base, local),
    contentHash: r['content_hash'] as string,
    remoteUpdatedAt: (r['remote_updated_at'] ?? null) as string | null,
    hasOpenConflict: r['has_open_conflict'] === true,
    fetchedAt: Number(r['fetched_at']),
    expiresAt,
    stale: expiresAt <= now,
    source: r['source'] as ChangeSource,
    epoch: (r['epoch'] ?? null) as string | null,
  };
}

export function toCategoryRecord(r: Row, now: number): CategoryRecord {
  const expiresAt = Number(r['expires_at']);
  return {
    name: r['name'] as string,
    data: r['data'] as Category,
    contentHash: r['content_hash'] as string,
    skillCount: Number(r['skill_count'] ?? 0),
    fetchedAt: Number(r['fetched_at']),
    expiresAt,
    stale: expiresAt <= now,
    source: r['source'] as ChangeSource,
    epoch: (r['epoch'] ?? null) as string | null,
  };
}

export function toConflictRecord(r: Row): ConflictRecord {
  return {
    id: Number(r['id']),
    skillId: r['skill_id'] as string,
    type: r['type'] as ConflictType,
    severity: r['severity'] as Severity,
    base: r['base'] as Skill,
    local: r['local'] as SkillOverrides,
    remote: r['remote'] as Skill,
    strategy: r['strategy'] as ConflictStrategy,
    fields: r['fields'] as string[],
    status: r['status'] as 'open' | 'resolved',
    resolution: (r['resolution'] ?? null) as string | null,
    resolvedBy: (r['resolved_by'] ?? null) as string | null,
    resolvedAt: nOrNull(r['resolved_at']),
    detectedAt: Number(r['detected_at']),
    updatedAt: Number(r['updated_at']),
  };
}

export function toRatingRecord(r: Row): RatingRecord {
  return {
    id: Number(r['id']),
    skillId: r['skill_id'] as string,
    userId: r['user_id'] as string,
    rating: Number(r['rating']),
    comment: (r['comment'] ?? null) as string | null,
    createdAt: Number(r['created_at']),
    updatedAt: Number(r['updated_at']),
    uploadStatus: r['upload_status'] as UploadStatus,
    remoteRatingId: (r['remote_rating_id'] ?? null) as string | null,
  };
}

export function toOutboxItem(r: Row): OutboxItem {
  return {
    id: Number(r['id']),
    kind: r['kind'] as OutboxKind,
    chainKey: r['chain_key'] as string,
    payload: r['payload'] as Record<string, unknown>,
    idempotencyKey: r['idempotency_key'] as string,
    status: r['status'] as OutboxStatus,
    attempts: Number(r['attempts']),
    nextAttemptAt: Number(r['next_attempt_at']),
    lastError: (r['last_error'] ?? null) as string | null,
    result: (r['result'] ?? null) as Record<string, unknown> | null,
    createdAt: Number(r['created_at']),
    updatedAt: Number(r['updated_at']),
  };
}

export function toRunRecord(r: Row): RunRecord {
  return {
    id: Number(r['id']),
    trigger: r['trigger'] as RunRecord['trigger'],
    mode: r['mode'] as RunRecord['mode'],
    status: r['status'] as RunRecord['status'],
    startedAt: Number(r['started_at']),
    finishedAt: nOrNull(r['finished_at']),
    pages: Number(r['pages']),
    upserted: Number(r['upserted']),
    unchanged: Number(r['unchanged']),
    deleted: Number(r['deleted']),
    quarantined: Number(r['quarantined']),
    conflictsDetected: Number(r['conflicts_detected']),
    conflictsResolved: Number(r['conflicts_resolved']),
    conflictsManual: Number(r['conflicts_manual']),
    deletionsHeld: Number(r['deletions_held']),
    resumedFromCheckpoint: r['resumed_from_checkpoint'] === true,
    error: (r['error'] ?? null) as string | null,
  };
}

/** Quarantined payloads are kept as JSON text of at most this many characters. */
const QUARANTINE_MAX_CHARS = 64 * 1024;

/**
 * The quarantine row of an input. The payload is JSON text (which escapes U+0000); key and
 * reason are text, where PostgreSQL cannot store U+0000: it becomes U+FFFD there.
 */
export function quarantineRow(i: QuarantineInput): Row {
  let text: string;
  try {
    text = JSON.stringify(i.payload) ?? 'null';
  } catch {
    text = JSON.stringify(String(i.payload));
  }
  const truncated = text.length > QUARANTINE_MAX_CHARS;
  return {
    kind: withoutNul(i.kind),
    key: i.key === null ? null : withoutNul(i.key),
    reason: withoutNul(i.reason),
    payload: truncated ? text.slice(0, QUARANTINE_MAX_CHARS) : text,
    truncated,
    run_id: i.runId,
    at: i.at,
  };
}

function withoutNul(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

/**
 * Why PostgreSQL cannot store `value` (a string or key holding U+0000, named by its JSON pointer
 * under `root`), or null. The same walk as the request validator's (src/core/nul.ts).
 */
export function unstorableReason(value: unknown, root = ''): string | null {
  const at = nulPath(value);
  return at === null ? null : `${root}${at || '/'}: contains U+0000, which PostgreSQL cannot store`;
}

export function toQuarantineRecord(r: Row): QuarantineRecord {
  const text = r['payload'] as string;
  let payload: unknown = text;
  try {
    payload = JSON.parse(text);
  } catch {
    // Truncated payloads stay as their text.
  }
  return {
    id: Number(r['id']),
    kind: r['kind'] as string,
    key: (r['key'] ?? null) as string | null,
    reason: r['reason'] as string,
    payload,
    runId: nOrNull(r['run_id']),
    at: Number(r['at']),
  };
}

// ---- single-row tables: camelCase field <-> snake_case column ------------------------------

export const SYNC_STATE_COLUMNS = {
  status: 'status',
  lastSyncAt: 'last_sync_at',
  lastSuccessAt: 'last_success_at',
  lastError: 'last_error',
  consecutiveErrors: 'consecutive_errors',
  totalSyncs: 'total_syncs',
  successfulSyncs: 'successful_syncs',
  failedSyncs: 'failed_syncs',
  autoSyncEnabled: 'auto_sync_enabled',
  watermark: 'watermark',
  epoch: 'epoch',
  nextRunAt: 'next_run_at',
  lastCompleteListingAt: 'last_complete_listing_at',
  heldDeletions: 'held_deletions',
  heldDeletionsAt: 'held_deletions_at',
  conflictsDetectedTotal: 'conflicts_detected_total',
  conflictsResolvedTotal: 'conflicts_resolved_total',
  // pendingActions, skillsCached, categoriesCached are counted on read, never stored.
} as const satisfies Record<
  Exclude<keyof SyncState, 'pendingActions' | 'skillsCached' | 'categoriesCached'>,
  string
>;

export const WS_STATE_COLUMNS = {
  connected: 'connected',
  url: 'url',
  state: 'state',
  lastConnectedAt: 'last_connected_at',
  lastMessageAt: 'last_message_at',
  disconnectReason: 'disconnect_reason',
  reconnectAttempts: 'reconnect_attempts',
  consecutiveFailures: 'consecutive_failures',
  fallbackSince: 'fallback_since',
  nextAttemptAt: 'next_attempt_at',
  enabled: 'enabled',
  lastSeq: 'last_seq',
} as const satisfies Record<keyof Omit<WsState, 'counts'>, string>;

export const RUN_COLUMNS = {
  mode: 'mode',
  status: 'status',
  finishedAt: 'finished_at',
  pages: 'pages',
  upserted: 'upserted',
  unchanged: 'unchanged',
  deleted: 'deleted',
  quarantined: 'quarantined',
  conflictsDetected: 'conflicts_detected',
  conflictsResolved: 'conflicts_resolved',
  conflictsManual: 'conflicts_manual',
  deletionsHeld: 'deletions_held',
  resumedFromCheckpoint: 'resumed_from_checkpoint',
  error: 'error',
} as const;

/** Turns a camelCase patch into a column -> value object, keeping only known keys. */
export function patchColumns(
  patch: Record<string, unknown>,
  columns: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    const column = columns[key];
    if (column !== undefined && value !== undefined) out[column] = value;
  }
  return out;
}

export function toSyncState(r: Row): SyncState {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(SYNC_STATE_COLUMNS)) out[key] = r[column] ?? null;
  return out as unknown as SyncState;
}

export function toWsState(r: Row): WsState {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(WS_STATE_COLUMNS)) out[key] = r[column] ?? null;
  out['counts'] = {
    applied: Number(r['count_applied']),
    duplicate: Number(r['count_duplicate']),
    stale: Number(r['count_stale']),
    invalid: Number(r['count_invalid']),
    rate_limited: Number(r['count_rate_limited']),
    unknown: Number(r['count_unknown']),
  };
  return out as unknown as WsState;
}
