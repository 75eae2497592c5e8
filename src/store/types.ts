/**
 * Domain types of the local store. All timestamps are epoch milliseconds (numbers) and are
 * always passed in by the caller (`now`), never read inside SQL, so TTLs behave the same on
 * SQLite, PostgreSQL and under a fake clock. Remote timestamps (`remoteUpdatedAt`) stay ISO
 * strings as the marketplace sent them.
 */
import type { Category, Skill } from '../remote/contract.js';

/** Where the last change to a record came from. */
export const CHANGE_SOURCES = ['full', 'incremental', 'websocket', 'resolve', 'local'] as const;
export type ChangeSource = (typeof CHANGE_SOURCES)[number];

/** A user's local customisation of an installed skill: top-level skill fields that replace the base's. */
export type SkillOverrides = Record<string, unknown>;

export interface Freshness {
  /** Last time a sync saw the record (epoch ms). */
  fetchedAt: number;
  /** fetchedAt + TTL. */
  expiresAt: number;
  /** expiresAt <= now, computed at read time. */
  stale: boolean;
  source: ChangeSource;
  epoch: string | null;
}

/** A skill as read from the store. */
export interface SkillRecord extends Freshness {
  skillId: string;
  /** The last remote payload applied (the base of three-way conflict detection). */
  base: Skill;
  /** Local overrides, or null. */
  local: SkillOverrides | null;
  /** base with local overrides applied on top: what readers see. */
  effective: Skill;
  /**
   * `effective` as JSON text, when the store holds it as such (SQLite: the stored payload of a
   * skill without local overrides). Answers in JSON splice it instead of serialising
   * `effective`; absent, serialise `effective`.
   */
  effectiveJson?: string;
  contentHash: string;
  remoteUpdatedAt: string | null;
  hasOpenConflict: boolean;
}

/** The local side of a skill, as conflict resolution needs it. */
export interface LocalSkillState {
  skillId: string;
  base: Skill;
  local: SkillOverrides;
  contentHash: string;
}

export const CONFLICT_TYPES = ['VERSION_MISMATCH', 'CONTENT_MISMATCH', 'DEPENDENCY_CONFLICT'] as const;
export type ConflictType = (typeof CONFLICT_TYPES)[number];
export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const CONFLICT_STRATEGIES = ['remote_wins', 'local_wins', 'merge', 'manual'] as const;
export type ConflictStrategy = (typeof CONFLICT_STRATEGIES)[number];

/** Opens the skill's conflict, or updates the open one in place (at most one open per skill). */
export interface ConflictUpsert {
  type: ConflictType;
  severity: Severity;
  base: Skill;
  local: SkillOverrides;
  remote: Skill;
  strategy: ConflictStrategy;
  /** Fields that differ on both sides and need a decision. */
  fields: string[];
}

export interface ConflictRecord extends ConflictUpsert {
  id: number;
  skillId: string;
  status: 'open' | 'resolved';
  /** How it was resolved: a strategy name or 'explicit'. */
  resolution: string | null;
  resolvedBy: string | null;
  resolvedAt: number | null;
  detectedAt: number;
  updatedAt: number;
}

/** One skill to write. The engine resolves conflicts first and says what happens to local data. */
export interface SkillUpsert {
  /** The normalised remote payload: becomes the new base. */
  skill: Skill;
  contentHash: string;
  /** New local overrides: undefined keeps them as they are, null clears them. */
  local?: SkillOverrides | null;
  /** Record or update the open conflict of this skill. */
  conflict?: ConflictUpsert;
  /** Close the skill's open conflict (resolved automatically by a strategy). */
  resolveOpenConflict?: { resolution: string; resolvedBy: string };
}

/** Progress of an in-progress listing, saved with each page so a crashed sync resumes. */
export interface ListingCheckpoint {
  runId: number;
  mode: 'full' | 'incremental';
  /** When the listing started: skills with fetchedAt before it were not seen by it. */
  startedAt: number;
  /** Next page to fetch (1-based), for page-numbered listings. */
  nextPage: number;
  /** Next cursor, for keyset listings (`cursor` extension); null when not used. */
  cursor: string | null;
  pageSize: number;
  /** For incremental listings: the updated_since they list from. */
  updatedSince: string | null;
  epoch: string | null;
  pagesApplied: number;
  skillsApplied: number;
}

/** How long a remembered deletion is kept when the caller gives no TTL (Store.deleteSkill). */
export const DELETION_MEMORY_MS = 24 * 3_600_000;

/** A remote deletion: the skill and when the remote deleted it (deleted_at, else updated_at), if known. */
export interface Tombstone {
  skillId: string;
  deletedAt: string | null;
}

export interface ApplyPageInput {
  items: SkillUpsert[];
  /**
   * Skills deleted remotely (tombstones of an incremental listing). Each deletion is remembered
   * with its remote time (see Store.deleteSkill), so a late older update does not bring it back.
   */
  tombstones: Tombstone[];
  source: ChangeSource;
  now: number;
  ttlMs: number;
  epoch: string | null;
  /**
   * 'listing' (a full listing is authoritative: apply whatever differs) or 'version' (apply
   * only when the incoming remote updated_at is >= the stored one: incremental and events).
   */
  guard: 'listing' | 'version';
  /** Saved in the same transaction as the page; null clears it (the listing ended). */
  checkpoint: ListingCheckpoint | null;
  /**
   * Saved in the same transaction (incremental watermark covering this page); null clears it
   * (the next run lists in full); absent leaves it as it is.
   */
  watermark?: string | null;
  /** The sync run applying the page, for records the store quarantines itself. */
  runId?: number;
}

export interface ApplyResult {
  upserted: number;
  /** Same content hash: only fetchedAt/expiresAt touched. */
  unchanged: number;
  /** Refused by the version guard (older than what is stored). */
  stale: number;
  deleted: number;
  conflictsRecorded: number;
  /**
   * Records the store cannot hold and quarantined instead, in the same transaction (PostgreSQL:
   * strings with U+0000). Only present when there were some.
   */
  quarantined?: number;
}

export type EventOutcome = 'applied' | 'duplicate' | 'stale';

export interface CategoryRecord extends Freshness {
  name: string;
  data: Category;
  contentHash: string;
  /** Skills in the store whose category is this one. */
  skillCount: number;
}

export const SORTS = ['rating', 'installs', 'name', 'updated'] as const;
export type SkillSort = (typeof SORTS)[number];

export interface SkillQuery {
  text?: string;
  category?: string;
  skillType?: string;
  tag?: string;
  sort?: SkillSort;
  /** 1-based. */
  page: number;
  pageSize: number;
  now: number;
}

export interface SkillPageResult {
  items: SkillRecord[];
  total: number;
}

// ---- ratings and outbox ------------------------------------------------------------------

export type UploadStatus = 'pending' | 'uploaded' | 'failed';

export interface RatingRecord {
  id: number;
  skillId: string;
  userId: string;
  rating: number;
  comment: string | null;
  createdAt: number;
  updatedAt: number;
  uploadStatus: UploadStatus;
  remoteRatingId: string | null;
}

export const OUTBOX_KINDS = ['rating', 'install'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];
export const OUTBOX_STATUSES = ['pending', 'in_flight', 'done', 'dead'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export interface OutboxItem {
  id: number;
  kind: OutboxKind;
  /** Items of one chain upload in order; different chains never wait on each other. */
  chainKey: string;
  payload: Record<string, unknown>;
  /** Fixed at creation, reused on every retry and after restarts. */
  idempotencyKey: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  result: Record<string, unknown> | null;
  createdAt: number;
  updatedAt: number;
}

export interface EnqueueInput {
  kind: OutboxKind;
  chainKey: string;
  payload: Record<string, unknown>;
  idempotencyKey: string;
  now: number;
}

// ---- state, runs, websocket, quarantine -------------------------------------------------

export type SyncStatus = 'idle' | 'running' | 'success' | 'partial' | 'failed' | 'auth_failed';

export interface SyncState {
  status: SyncStatus;
  lastSyncAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  consecutiveErrors: number;
  totalSyncs: number;
  successfulSyncs: number;
  failedSyncs: number;
  pendingActions: number;
  autoSyncEnabled: boolean;
  skillsCached: number;
  categoriesCached: number;
  /** Incremental watermark (`server_time` of the last complete incremental/full listing). */
  watermark: string | null;
  epoch: string | null;
  nextRunAt: number | null;
  /** Start time of the last listing that completed without gaps (for the TTL sweep). */
  lastCompleteListingAt: number | null;
  /** Deletions held by the guard: how many, and when. */
  heldDeletions: number;
  heldDeletionsAt: number | null;
  conflictsDetectedTotal: number;
  conflictsResolvedTotal: number;
}

export const RUN_TRIGGERS = ['schedule', 'manual', 'startup', 'websocket', 'retry', 'cli'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];
export type RunMode = 'full' | 'incremental';
export type RunStatus = 'running' | 'success' | 'partial' | 'failed' | 'rejected';

export interface RunRecord {
  id: number;
  trigger: RunTrigger;
  mode: RunMode;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  pages: number;
  upserted: number;
  unchanged: number;
  deleted: number;
  quarantined: number;
  conflictsDetected: number;
  conflictsResolved: number;
  conflictsManual: number;
  /** Deletions the guard held in this run. */
  deletionsHeld: number;
  resumedFromCheckpoint: boolean;
  error: string | null;
}

export type RunPatch = Partial<Omit<RunRecord, 'id' | 'trigger' | 'startedAt'>>;

export const WS_OUTCOMES = ['applied', 'duplicate', 'stale', 'invalid', 'rate_limited', 'unknown'] as const;
export type WsOutcome = (typeof WS_OUTCOMES)[number];

export interface WsState {
  connected: boolean;
  /** Never with credentials. */
  url: string | null;
  state: string;
  lastConnectedAt: number | null;
  lastMessageAt: number | null;
  disconnectReason: string | null;
  reconnectAttempts: number;
  consecutiveFailures: number;
  fallbackSince: number | null;
  nextAttemptAt: number | null;
  enabled: boolean;
  lastSeq: number | null;
  counts: Record<WsOutcome, number>;
}

export interface QuarantineInput {
  /** 'skill', 'category', 'ws_message', 'page'. */
  kind: string;
  key: string | null;
  reason: string;
  /** The offending record or message, stored as JSON text (truncated to 64 KiB). */
  payload: unknown;
  runId: number | null;
  at: number;
}

export interface QuarantineRecord extends QuarantineInput {
  id: number;
}

export interface StoreStats {
  skills: number;
  staleSkills: number;
  categories: number;
  localOverrides: number;
  openConflicts: number;
  outbox: Record<OutboxStatus, number>;
  quarantined: number;
  /** Oldest fetchedAt among skills, or null when empty. */
  oldestFetchedAt: number | null;
}
