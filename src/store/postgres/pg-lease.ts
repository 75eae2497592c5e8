/**
 * The sync lease on PostgreSQL (see ../sync-lease.ts): one row of sync_lease, taken by a single
 * upsert whose condition decides (free, expired or the caller's), so concurrent instances
 * cannot both win: the row lock orders them.
 */
import type { LeaseAttempt, SyncLease } from '../sync-lease.js';
import type { Q } from './pg-sql.js';

function toLease(r: Record<string, unknown>): SyncLease {
  return {
    owner: String(r['owner']),
    runId: r['run_id'] === null || r['run_id'] === undefined ? null : Number(r['run_id']),
    expiresAt: Number(r['expires_at']),
  };
}

export async function acquireLease(
  q: Q,
  owner: string,
  now: number,
  ttlMs: number,
  staleOwner?: string,
): Promise<LeaseAttempt> {
  const won = await q`
    INSERT INTO sync_lease (id, owner, run_id, expires_at) VALUES (1, ${owner}, NULL, ${now + ttlMs})
    ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, run_id = NULL, expires_at = excluded.expires_at
      WHERE sync_lease.owner = excluded.owner OR sync_lease.owner = ${staleOwner ?? null}
        OR sync_lease.expires_at <= ${now}
    RETURNING owner, run_id, expires_at`;
  if (won.length === 1) return { acquired: true, lease: toLease(won[0]!) };
  const [held] = await q`SELECT owner, run_id, expires_at FROM sync_lease WHERE id = 1`;
  // Released between the two statements: the next attempt takes it.
  if (held === undefined) return { acquired: false, lease: { owner: '', runId: null, expiresAt: now } };
  return { acquired: false, lease: toLease(held) };
}

export async function renewLease(
  q: Q,
  owner: string,
  now: number,
  ttlMs: number,
  runId: number | null,
): Promise<boolean> {
  const r = await q`
    UPDATE sync_lease SET expires_at = ${now + ttlMs}, run_id = coalesce(${runId}::bigint, run_id)
    WHERE id = 1 AND owner = ${owner}`;
  return r.count === 1;
}

export async function releaseLease(q: Q, owner: string): Promise<void> {
  await q`DELETE FROM sync_lease WHERE id = 1 AND owner = ${owner}`;
}
