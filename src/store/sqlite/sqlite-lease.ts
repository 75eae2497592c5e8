/**
 * The sync lease on SQLite (see ../sync-lease.ts): one row of sync_lease, read and written in
 * the caller's IMMEDIATE transaction, so two processes serialise on the file's write lock.
 */
import type Database from 'better-sqlite3';
import type { LeaseAttempt, SyncLease } from '../sync-lease.js';

interface LeaseRow {
  owner: string;
  run_id: number | null;
  expires_at: number;
}

const toLease = (r: LeaseRow): SyncLease => ({ owner: r.owner, runId: r.run_id, expiresAt: r.expires_at });

function read(db: Database.Database): LeaseRow | undefined {
  return db.prepare('SELECT owner, run_id, expires_at FROM sync_lease WHERE id = 1').get() as
    LeaseRow | undefined;
}

/** Takes the lease when it is free, expired, already `owner`'s or `staleOwner`'s (run cleared). */
export function acquireLease(
  db: Database.Database,
  owner: string,
  now: number,
  ttlMs: number,
  staleOwner?: string,
): LeaseAttempt {
  const held = read(db);
  if (held !== undefined && held.owner !== owner && held.owner !== staleOwner && held.expires_at > now) {
    return { acquired: false, lease: toLease(held) };
  }
  const row: LeaseRow = { owner, run_id: null, expires_at: now + ttlMs };
  db.prepare(
    `INSERT INTO sync_lease (id, owner, run_id, expires_at) VALUES (1, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, run_id = excluded.run_id,
       expires_at = excluded.expires_at`,
  ).run(row.owner, row.run_id, row.expires_at);
  return { acquired: true, lease: toLease(row) };
}

/** Extends `owner`'s lease (and records its run); false when it is no longer theirs. */
export function renewLease(
  db: Database.Database,
  owner: string,
  now: number,
  ttlMs: number,
  runId: number | null,
): boolean {
  return (
    db
      .prepare(
        'UPDATE sync_lease SET expires_at = ?, run_id = coalesce(?, run_id) WHERE id = 1 AND owner = ?',
      )
      .run(now + ttlMs, runId, owner).changes === 1
  );
}

/** Gives `owner`'s lease up (nothing when someone else holds it). */
export function releaseLease(db: Database.Database, owner: string): void {
  db.prepare('DELETE FROM sync_lease WHERE id = 1 AND owner = ?').run(owner);
}
