/**
 * Maps better-sqlite3 / SQLite failures to skillsync codes. SQLite reports extended result
 * codes (`SQLITE_BUSY_SNAPSHOT`, `SQLITE_READONLY_DBMOVED`, `SQLITE_IOERR_WRITE`): the primary
 * code is the part before the second underscore. The driver error is kept as `cause`.
 */
import { SkillsyncError, type ErrorCode } from '../../core/errors.js';

const PRIMARY_TO_CODE: Readonly<Record<string, ErrorCode>> = {
  SQLITE_READONLY: 'SKILLSYNC_ERR_STORE_READONLY',
  SQLITE_BUSY: 'SKILLSYNC_ERR_STORE_LOCKED',
  SQLITE_LOCKED: 'SKILLSYNC_ERR_STORE_LOCKED',
  SQLITE_FULL: 'SKILLSYNC_ERR_STORE_FULL',
  SQLITE_CORRUPT: 'SKILLSYNC_ERR_STORE_CORRUPT',
  SQLITE_NOTADB: 'SKILLSYNC_ERR_STORE_CORRUPT',
  SQLITE_CANTOPEN: 'SKILLSYNC_ERR_STORE_UNAVAILABLE',
};

/** `SQLITE_BUSY_SNAPSHOT` -> `SQLITE_BUSY`. */
export function primarySqliteCode(code: string): string {
  const parts = code.split('_');
  return parts.length >= 2 ? `${parts[0]}_${parts[1]}` : code;
}

export function storeErrorCodeFor(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return PRIMARY_TO_CODE[primarySqliteCode(code)] ?? 'SKILLSYNC_ERR_STORE_QUERY';
  }
  // better-sqlite3 throws TypeError for a closed handle or a missing directory.
  const message = err instanceof Error ? err.message : '';
  if (/connection is not open|directory does not exist|unable to open/i.test(message)) {
    return 'SKILLSYNC_ERR_STORE_UNAVAILABLE';
  }
  return 'SKILLSYNC_ERR_STORE_QUERY';
}

/** Wraps a driver failure; SkillsyncErrors raised by the store itself pass through unchanged. */
export function toStoreError(err: unknown, operation: string): SkillsyncError {
  if (err instanceof SkillsyncError) return err;
  const code = storeErrorCodeFor(err);
  const driverCode = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new SkillsyncError(code, `sqlite ${operation} failed: ${message}`, {
    cause: err,
    details: typeof driverCode === 'string' ? { driverCode } : {},
  });
}
