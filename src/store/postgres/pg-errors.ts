/**
 * Maps postgres.js and PostgreSQL errors to skillsync codes. Retry decisions read the code's
 * `retryable`: an unreachable server or a dropped connection is retryable (the transaction that
 * was open was rolled back by the server, so nothing partial was committed); a failed statement
 * is not.
 *
 * Messages never carry the connection URL or its password: they are built from the error code
 * and the server's own message, and any occurrence of the password is scrubbed anyway.
 */
import { SkillsyncError, type ErrorCode } from '../../core/errors.js';

/** Client-side codes postgres.js and Node's net module use for a connection that failed or went away. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

interface PgLikeError {
  code?: unknown;
  message?: unknown;
  severity?: unknown;
}

/** PostgreSQL SQLSTATE -> skillsync code (null: not a state we single out). */
function fromSqlState(state: string): ErrorCode | null {
  // Class 08: connection exception. 57P01-03: admin shutdown / crash shutdown / cannot connect
  // now (pg_terminate_backend answers 57P01). 53300: too many connections.
  if (state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03') {
    return 'SKILLSYNC_ERR_STORE_UNAVAILABLE';
  }
  if (state === '53300') return 'SKILLSYNC_ERR_STORE_UNAVAILABLE';
  if (state === '3D000') return 'SKILLSYNC_ERR_STORE_UNAVAILABLE'; // database does not exist
  if (state === '28000' || state === '28P01') return 'SKILLSYNC_ERR_STORE_UNAVAILABLE'; // auth
  if (state === '40001' || state === '40P01' || state === '55P03') return 'SKILLSYNC_ERR_STORE_LOCKED';
  if (state === '53100') return 'SKILLSYNC_ERR_STORE_FULL';
  if (state === '25006') return 'SKILLSYNC_ERR_STORE_READONLY';
  if (state.startsWith('XX')) return 'SKILLSYNC_ERR_STORE_CORRUPT';
  return null;
}

export function scrub(text: string, secret: string | null): string {
  return secret ? text.split(secret).join('***') : text;
}

/**
 * Wraps any error thrown by a store operation. SkillsyncErrors raised on purpose (not found,
 * already resolved...) pass through untouched.
 */
export function toStoreError(err: unknown, operation: string, password: string | null): SkillsyncError {
  if (err instanceof SkillsyncError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as PgLikeError;
  const code = typeof e.code === 'string' ? e.code : '';
  const raw = typeof e.message === 'string' ? e.message : String(err);
  const message = scrub(raw, password);
  let mapped: ErrorCode | null = null;
  if (CONNECTION_CODES.has(code)) mapped = 'SKILLSYNC_ERR_STORE_UNAVAILABLE';
  else if (/^[0-9A-Z]{5}$/.test(code)) mapped = fromSqlState(code);
  if (mapped === 'SKILLSYNC_ERR_STORE_UNAVAILABLE') {
    return new SkillsyncError(mapped, `PostgreSQL unavailable during ${operation}: ${message} (${code})`, {
      cause: err,
      details: { operation, pgCode: code },
    });
  }
  return new SkillsyncError(
    mapped ?? 'SKILLSYNC_ERR_STORE_QUERY',
    `PostgreSQL ${operation} failed: ${message}${code ? ` (${code})` : ''}`,
    { cause: err, details: { operation, pgCode: code } },
  );
}
