/**
 * Every error code skillsync raises lives here (as fastify's lib/errors.js holds every
 * FST_ERR_*). Each code says whether retrying can help and which HTTP status the API answers
 * with. Retry decisions read `retryable`, never message text. A test fails when a code here is
 * missing from docs/errors.md.
 *
 * Add a code by adding one row to ERROR_CODES (keep the areas grouped) and a row to
 * docs/errors.md.
 */

export interface ErrorCodeInfo {
  readonly retryable: boolean;
  /** HTTP status the API answers with when this error reaches a route. */
  readonly status: number;
  readonly summary: string;
}

export const ERROR_CODES = {
  // configuration
  SKILLSYNC_ERR_CONFIG_INVALID: {
    retryable: false,
    status: 500,
    summary: 'A configuration value is missing, malformed or out of range.',
  },
  // remote marketplace
  SKILLSYNC_ERR_REMOTE_HTTP: {
    retryable: true,
    status: 502,
    summary: 'The marketplace answered with an unexpected HTTP status.',
  },
  SKILLSYNC_ERR_REMOTE_UNAVAILABLE: {
    retryable: true,
    status: 503,
    summary: 'The marketplace answered 5xx or could not be reached.',
  },
  SKILLSYNC_ERR_REMOTE_TIMEOUT: {
    retryable: true,
    status: 504,
    summary: 'A request to the marketplace timed out (connect, headers or body).',
  },
  SKILLSYNC_ERR_REMOTE_NETWORK: {
    retryable: true,
    status: 502,
    summary: 'The connection to the marketplace failed or was reset.',
  },
  SKILLSYNC_ERR_REMOTE_RATE_LIMITED: {
    retryable: true,
    status: 503,
    summary: 'The marketplace answered 429; wait at least Retry-After.',
  },
  SKILLSYNC_ERR_REMOTE_AUTH: {
    retryable: false,
    status: 502,
    summary: 'The marketplace refused the credentials (401/403).',
  },
  SKILLSYNC_ERR_REMOTE_BAD_REQUEST: {
    retryable: false,
    status: 502,
    summary: 'The marketplace refused the request as invalid (400/422).',
  },
  SKILLSYNC_ERR_REMOTE_NOT_FOUND: {
    retryable: false,
    status: 404,
    summary: 'The marketplace does not know the resource (404).',
  },
  SKILLSYNC_ERR_REMOTE_CONFLICT: {
    retryable: false,
    status: 409,
    summary: 'The marketplace answered 409 Conflict.',
  },
  SKILLSYNC_ERR_REMOTE_GONE: {
    retryable: false,
    status: 502,
    summary: 'The cursor or watermark expired (410): the listing restarts from scratch.',
  },
  SKILLSYNC_ERR_REMOTE_MALFORMED: {
    retryable: true,
    status: 502,
    summary: 'The marketplace answered a body that is not JSON or not the expected shape.',
  },
  SKILLSYNC_ERR_REMOTE_PAGINATION: {
    retryable: false,
    status: 502,
    summary: 'The marketplace paginates inconsistently (for example it ignores `page`).',
  },
  SKILLSYNC_ERR_REMOTE_ABORTED: {
    retryable: false,
    status: 503,
    summary: 'The request was aborted because skillsync is shutting down.',
  },
  // local store
  SKILLSYNC_ERR_STORE_UNAVAILABLE: {
    retryable: true,
    status: 503,
    summary: 'The database cannot be reached or the connection dropped.',
  },
  SKILLSYNC_ERR_STORE_READONLY: { retryable: false, status: 503, summary: 'The database is read-only.' },
  SKILLSYNC_ERR_STORE_LOCKED: {
    retryable: true,
    status: 503,
    summary: 'The database is locked by another process.',
  },
  SKILLSYNC_ERR_STORE_FULL: {
    retryable: false,
    status: 507,
    summary: 'The disk holding the database is full.',
  },
  SKILLSYNC_ERR_STORE_CORRUPT: {
    retryable: false,
    status: 500,
    summary: 'The database file failed its integrity check.',
  },
  SKILLSYNC_ERR_STORE_SCHEMA_TOO_NEW: {
    retryable: false,
    status: 500,
    summary: 'The database was written by a newer version of skillsync.',
  },
  SKILLSYNC_ERR_STORE_QUERY: { retryable: false, status: 500, summary: 'A database statement failed.' },
  // sync engine
  SKILLSYNC_ERR_SYNC_IN_PROGRESS: {
    retryable: false,
    status: 409,
    summary: 'A sync run is already in progress.',
  },
  SKILLSYNC_ERR_SYNC_AUTH_FAILED: {
    retryable: false,
    status: 503,
    summary: 'Sync is stopped until the credentials are fixed.',
  },
  SKILLSYNC_ERR_SYNC_DELETE_GUARD: {
    retryable: false,
    status: 409,
    summary: 'A listing would delete more than the guard allows; deletions are held.',
  },
  SKILLSYNC_ERR_SYNC_NOTHING_HELD: {
    retryable: false,
    status: 409,
    summary: 'There are no held deletions to confirm.',
  },
  // websocket
  SKILLSYNC_ERR_WS_MESSAGE_TOO_LARGE: {
    retryable: false,
    status: 400,
    summary: 'A WebSocket frame exceeded the size limit.',
  },
  SKILLSYNC_ERR_WS_MESSAGE_INVALID: {
    retryable: false,
    status: 400,
    summary: 'A WebSocket message is not valid JSON or fails its schema.',
  },
  SKILLSYNC_ERR_WS_DISABLED: { retryable: false, status: 409, summary: 'The WebSocket client is disabled.' },
  // local actions and outbox
  SKILLSYNC_ERR_ACTION_INVALID: {
    retryable: false,
    status: 400,
    summary: 'A local action (rating, install) has invalid input.',
  },
  SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL: {
    retryable: false,
    status: 404,
    summary: 'The action names a skill that is not in the catalog.',
  },
  SKILLSYNC_ERR_OUTBOX_NOT_FOUND: { retryable: false, status: 404, summary: 'No outbox item has that id.' },
  SKILLSYNC_ERR_OUTBOX_STATE: {
    retryable: false,
    status: 409,
    summary: 'The outbox item is not in a state that allows this operation.',
  },
  // conflicts
  SKILLSYNC_ERR_CONFLICT_NOT_FOUND: { retryable: false, status: 404, summary: 'No conflict has that id.' },
  SKILLSYNC_ERR_CONFLICT_RESOLVED: {
    retryable: false,
    status: 409,
    summary: 'The conflict is already resolved.',
  },
  // HTTP API
  SKILLSYNC_ERR_API_VALIDATION: { retryable: false, status: 400, summary: 'The request failed validation.' },
  SKILLSYNC_ERR_API_UNAUTHORIZED: {
    retryable: false,
    status: 401,
    summary: 'The admin token is missing or wrong.',
  },
  SKILLSYNC_ERR_API_ADMIN_DISABLED: {
    retryable: false,
    status: 403,
    summary: 'No admin token is configured, so the admin routes are refused.',
  },
  SKILLSYNC_ERR_API_NOT_FOUND: { retryable: false, status: 404, summary: 'No such route or resource.' },
  SKILLSYNC_ERR_API_PAYLOAD_TOO_LARGE: {
    retryable: false,
    status: 413,
    summary: 'The request body is larger than the API accepts.',
  },
  SKILLSYNC_ERR_API_UNSUPPORTED_MEDIA_TYPE: {
    retryable: false,
    status: 415,
    summary: 'The request body has a content type the API does not accept (send application/json).',
  },
  SKILLSYNC_ERR_API_UNAVAILABLE: {
    retryable: true,
    status: 503,
    summary:
      'The component this route drives is not running in this process (the sync engine or local actions).',
  },
  SKILLSYNC_ERR_API_INTERNAL: {
    retryable: false,
    status: 500,
    summary: 'An unexpected error; the log has the details.',
  },
  // simulator
  SKILLSYNC_ERR_SIM_BAD_SETTING: {
    retryable: false,
    status: 400,
    summary: 'A simulator setting or fault is unknown or out of range.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface SkillsyncErrorOptions {
  cause?: unknown;
  /** Overrides the code's default retryability (rarely needed). */
  retryable?: boolean;
  /** Structured details safe to show in API answers (never secrets). */
  details?: Record<string, unknown>;
}

export class SkillsyncError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: SkillsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SkillsyncError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.status = ERROR_CODES[code].status;
    this.details = options.details;
  }
}

/** An error that says "stop retrying" by its type (p-retry's AbortError, bullmq's UnrecoverableError). */
export class PermanentError extends SkillsyncError {
  constructor(code: ErrorCode, message: string, options: Omit<SkillsyncErrorOptions, 'retryable'> = {}) {
    super(code, message, { ...options, retryable: false });
    this.name = 'PermanentError';
  }
}

/** An HTTP answer from the marketplace that was not a success. */
export class RemoteHttpError extends SkillsyncError {
  readonly httpStatus: number;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    httpStatus: number,
    options: SkillsyncErrorOptions & { retryAfterMs?: number | undefined } = {},
  ) {
    super(code, message, options);
    this.name = 'RemoteHttpError';
    this.httpStatus = httpStatus;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export class ConfigError extends SkillsyncError {
  /** The environment variable (or flag) that holds the bad value. */
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('SKILLSYNC_ERR_CONFIG_INVALID', `${variable}: ${message}`, { details: { variable } });
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

export function isSkillsyncError(err: unknown): err is SkillsyncError {
  return err instanceof SkillsyncError;
}

/** Retry decisions read this, never message text. Unknown errors are not retried. */
export function isRetryable(err: unknown): boolean {
  return err instanceof SkillsyncError ? err.retryable : false;
}
