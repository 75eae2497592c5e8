/**
 * Store records -> API answers (snake_case, ISO times). Kept apart from the routes so the
 * dashboard, the catalog and the admin routes show the same thing the same way.
 */
import type {
  ConflictRecord,
  OutboxItem,
  RunRecord,
  SkillRecord,
  SyncState,
  WsState,
} from '../store/types.js';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export function skillView(record: SkillRecord, now: number) {
  return {
    skill: record.effective,
    local_overrides: record.local,
    has_open_conflict: record.hasOpenConflict,
    freshness: {
      synced_at: iso(record.fetchedAt),
      expires_at: iso(record.expiresAt),
      age_seconds: Math.max(0, Math.round((now - record.fetchedAt) / 1000)),
      stale: record.stale,
      source: record.source,
      served_from: 'cache' as const,
    },
  };
}

/**
 * skillView as JSON text, for the catalog's hot reads. The skill is the store's JSON text of
 * the effective skill when it has one (SQLite: the stored payload of a skill without local
 * overrides), so answering does not parse the payload and serialise it again; otherwise
 * JSON.stringify of `effective`. The rest is a few fixed keys. The document is the one
 * `skillView` and the SkillView schema give (the skill's keys keep their stored order).
 */
export function skillViewJson(record: SkillRecord, now: number): string {
  const skill = record.effectiveJson ?? JSON.stringify(record.effective);
  const local = record.local === null ? 'null' : JSON.stringify(record.local);
  const age = Math.max(0, Math.round((now - record.fetchedAt) / 1000));
  return (
    `{"skill":${skill},"local_overrides":${local},"has_open_conflict":${record.hasOpenConflict},` +
    `"freshness":{"synced_at":"${iso(record.fetchedAt)}","expires_at":"${iso(record.expiresAt)}",` +
    `"age_seconds":${age},"stale":${record.stale},"source":${JSON.stringify(record.source)},` +
    `"served_from":"cache"}}`
  );
}

export function remoteHealth(state: SyncState): 'ok' | 'degraded' | 'unknown' {
  if (state.status === 'failed' || state.status === 'auth_failed' || state.status === 'partial')
    return 'degraded';
  if (state.consecutiveErrors > 0) return 'degraded';
  if (state.lastSuccessAt === null) return 'unknown';
  return 'ok';
}

export function catalogFreshness(state: SyncState, now: number, ttlMs: number) {
  const at = state.lastSuccessAt;
  return {
    synced_at: isoOrNull(at),
    age_seconds: at === null ? null : Math.max(0, Math.round((now - at) / 1000)),
    stale: at === null || now - at >= ttlMs,
    source: 'cache' as const,
    remote: remoteHealth(state),
  };
}

export function runView(run: RunRecord) {
  return {
    id: run.id,
    trigger: run.trigger,
    mode: run.mode,
    status: run.status,
    started_at: iso(run.startedAt),
    finished_at: isoOrNull(run.finishedAt),
    duration_ms: run.finishedAt === null ? null : run.finishedAt - run.startedAt,
    pages: run.pages,
    upserted: run.upserted,
    unchanged: run.unchanged,
    deleted: run.deleted,
    quarantined: run.quarantined,
    conflicts_detected: run.conflictsDetected,
    conflicts_resolved: run.conflictsResolved,
    conflicts_manual: run.conflictsManual,
    deletions_held: run.deletionsHeld,
    resumed_from_checkpoint: run.resumedFromCheckpoint,
    error: run.error,
  };
}

export function wsView(
  stored: WsState,
  configured: boolean,
  live: (Partial<Omit<WsState, 'counts'>> & { state: string }) | null,
) {
  const ws: WsState = { ...stored, ...(live ?? {}), counts: stored.counts };
  return {
    configured,
    enabled: ws.enabled,
    connected: ws.connected,
    state: ws.state,
    url: ws.url,
    last_connected_at: isoOrNull(ws.lastConnectedAt),
    last_message_at: isoOrNull(ws.lastMessageAt),
    disconnect_reason: ws.disconnectReason,
    reconnect_attempts: ws.reconnectAttempts,
    consecutive_failures: ws.consecutiveFailures,
    fallback_since: isoOrNull(ws.fallbackSince),
    next_attempt_at: isoOrNull(ws.nextAttemptAt),
    last_seq: ws.lastSeq,
    counts: { ...ws.counts },
  };
}

export function conflictView(c: ConflictRecord) {
  return {
    id: c.id,
    skill_id: c.skillId,
    type: c.type,
    severity: c.severity,
    status: c.status,
    strategy: c.strategy,
    fields: c.fields,
    resolution: c.resolution,
    resolved_by: c.resolvedBy,
    resolved_at: isoOrNull(c.resolvedAt),
    detected_at: iso(c.detectedAt),
    updated_at: iso(c.updatedAt),
  };
}

export function outboxView(item: OutboxItem) {
  return {
    id: item.id,
    kind: item.kind,
    chain_key: item.chainKey,
    status: item.status,
    attempts: item.attempts,
    next_attempt_at: iso(item.nextAttemptAt),
    last_error: item.lastError,
    payload: item.payload,
    result: item.result,
    created_at: iso(item.createdAt),
    updated_at: iso(item.updatedAt),
  };
}

export function totalPages(total: number, pageSize: number): number {
  return Math.max(1, Math.ceil(total / pageSize));
}
