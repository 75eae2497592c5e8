/**
 * Run-status maths and the delete guard, pure.
 *
 * A run has two parts (categories, skills). All parts fine: success. Every part failed without
 * progress (an outage): failed, never "an empty marketplace". Anything between: partial, never
 * reported as success.
 */
import type { RunStatus, SyncState, SyncStatus } from '../store/types.js';

export type PartOutcome = 'ok' | 'failed' | 'partial';

export function runStatus(parts: readonly PartOutcome[]): Exclude<RunStatus, 'running' | 'rejected'> {
  if (parts.every((p) => p === 'ok')) return 'success';
  if (parts.every((p) => p === 'failed')) return 'failed';
  return 'partial';
}

export interface DeleteGuard {
  /** Hold when a listing would remove more than this share of the catalog (0..1). */
  maxFraction: number;
  /** Hold when it would remove more than this many skills. */
  maxCount: number;
}

export const DEFAULT_DELETE_GUARD: DeleteGuard = Object.freeze({ maxFraction: 0.25, maxCount: 1000 });

/**
 * What to do with the skills a complete listing did not see. `catalogSize` counts the skills
 * stored before the deletion (seen and unseen). An empty answer makes every skill unseen, which
 * is always more than the fraction: the guard holds and the cache is never wiped by mistake.
 */
export function deleteDecision(
  unseen: number,
  catalogSize: number,
  guard: DeleteGuard,
): 'none' | 'delete' | 'hold' {
  if (unseen <= 0) return 'none';
  if (unseen > guard.maxCount) return 'hold';
  if (unseen > catalogSize * guard.maxFraction) return 'hold';
  return 'delete';
}

export interface FinishedRun {
  status: Exclude<RunStatus, 'running' | 'rejected'>;
  authFailed: boolean;
  finishedAt: number;
  error: string | null;
}

/**
 * The sync state after a run, from the state before it. Partial runs are not successes: they
 * count as failed syncs and keep the consecutive-error streak going.
 *
 * The conflict totals are not in it: the store counts them in the transactions that record
 * conflicts, and conflicts are also recorded during a run (WebSocket events, operators), so
 * totals read at the run's start would be stale by its end.
 */
export function stateAfterRun(
  before: Pick<
    SyncState,
    'consecutiveErrors' | 'totalSyncs' | 'successfulSyncs' | 'failedSyncs' | 'lastSuccessAt'
  >,
  run: FinishedRun,
): Partial<SyncState> {
  const ok = run.status === 'success';
  const status: SyncStatus = run.authFailed ? 'auth_failed' : run.status;
  return {
    status,
    lastSyncAt: run.finishedAt,
    lastSuccessAt: ok ? run.finishedAt : before.lastSuccessAt,
    lastError: ok ? null : run.error,
    consecutiveErrors: ok ? 0 : before.consecutiveErrors + 1,
    totalSyncs: before.totalSyncs + 1,
    successfulSyncs: before.successfulSyncs + (ok ? 1 : 0),
    failedSyncs: before.failedSyncs + (ok ? 0 : 1),
  };
}
