/**
 * The sync lease: which process runs a sync of this store, and until when.
 *
 * Several processes may share one store: instances of the service on one PostgreSQL schema
 * (the reason to choose PostgreSQL), or `skillsync serve` and a one-off `skillsync sync` on one
 * SQLite file. Two concurrent runs would overwrite each other's listing checkpoint, and each
 * would close the other's live run as "interrupted". So a run starts only under the lease: one
 * row, taken when it is free, expired or already the caller's, renewed while the run lasts and
 * released at its end. A holder that dies stops renewing, and its lease expires after its TTL,
 * so a crash never blocks syncs for longer than that. Time is passed in (`now`), as everywhere:
 * hosts sharing a PostgreSQL schema must keep their clocks within LEASE_TTL_MS - LEASE_RENEW_MS
 * of each other (NTP does), or one may take a lease the other still renews. The holder also
 * fences itself by a monotonic clock: a run that could not renew for that long stops.
 */
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

export interface SyncLease {
  /** Who holds it: an id unique to one engine instance (host, pid and a random part). */
  owner: string;
  /** The run the holder is executing, once it has one. */
  runId: number | null;
  /** Epoch ms after which anyone may take it. */
  expiresAt: number;
}

export interface LeaseAttempt {
  acquired: boolean;
  /** The lease after the attempt: the caller's when acquired, the other holder's otherwise. */
  lease: SyncLease;
}

/**
 * A name for one engine instance: `host:pid-namespace:pid:random`. The pid namespace tells
 * processes that share a host name but not a pid space (containers on the host network) apart.
 */
export function leaseOwnerName(pid: number = process.pid): string {
  return `${hostname()}:${PID_NAMESPACE}:${pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * True when `owner` names a process of this host and pid namespace that no longer exists: its
 * lease can be taken without waiting for it to expire. Without a known namespace (not Linux),
 * and for other hosts, nothing is assumed: their leases expire.
 */
export function isDeadLocalOwner(owner: string): boolean {
  const [host, namespace, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (PID_NAMESPACE === 'unknown' || host !== hostname() || namespace !== PID_NAMESPACE) return false;
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** The inode of this process's pid namespace (Linux), or 'unknown'. */
const PID_NAMESPACE = ((): string => {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** Lease time-to-live; the holder renews it every LEASE_RENEW_MS while its run lasts. */
export const LEASE_TTL_MS = 60_000;
export const LEASE_RENEW_MS = 15_000;
