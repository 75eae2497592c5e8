/**
 * The postgres.js handle the PostgreSQL store uses: int8 read as a JS number (every bigint here
 * is an epoch-ms timestamp or a count, far below 2^53), notices silenced, undefined sent as
 * NULL. Kept in one place so the store, its migrations and its tests build it the same way.
 */
import postgres from 'postgres';

const PG_TYPES = {
  int8: {
    to: 20,
    from: [20],
    serialize: (x: number) => String(x),
    parse: (x: string) => Number(x),
  },
};

export interface PgConnectOptions {
  url: string;
  /** Sets search_path on every connection of the pool (already quoted). */
  searchPath?: string;
  max: number;
  applicationName?: string;
  connectTimeoutS?: number;
}

export function createSql(options: PgConnectOptions) {
  return postgres(options.url, {
    max: options.max,
    idle_timeout: 30,
    connect_timeout: options.connectTimeoutS ?? 10,
    onnotice: () => {},
    types: PG_TYPES,
    transform: { undefined: null },
    connection: {
      application_name: options.applicationName ?? 'skillsync',
      ...(options.searchPath === undefined ? {} : { search_path: options.searchPath }),
    },
  });
}

export type Db = ReturnType<typeof createSql>;
/** A pool or a transaction: what a statement helper needs. */
export type Q = postgres.ISql<{ int8: number }>;
/** A transaction handle (see inTransaction). */
export type Tx = Q;

/** A JSON value as a jsonb parameter. */
export function jsonb(q: Q, value: unknown): postgres.Parameter {
  return q.json(value as postgres.JSONValue);
}

/**
 * Removes the query parameters skillsync itself reads (`schema`, `pool`) from a URL, so that
 * postgres.js does not send them to the server as connection settings; the URL is otherwise
 * passed on untouched.
 */
export function stripOwnParams(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  params.delete('schema');
  params.delete('pool');
  const rest = params.toString();
  return url.slice(0, q) + (rest ? `?${rest}` : '');
}

/** The password of a postgres URL, for scrubbing it out of error messages. */
export function urlPassword(url: string): string | null {
  try {
    const u = new URL(url);
    return u.password ? decodeURIComponent(u.password) : null;
  } catch {
    return null;
  }
}

/** host:port/db of a URL without credentials, for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** Errors after which the connection is gone: the server has rolled the transaction back. */
const LOST_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  '57P01',
  '57P02',
  '57P03',
]);

export function isConnectionLost(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; severity?: unknown };
  if (typeof e.code === 'string' && (LOST_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return e.severity === 'FATAL' || e.severity === 'PANIC';
}

/**
 * Runs fn in one transaction on a reserved connection: BEGIN, fn, COMMIT; ROLLBACK on error.
 *
 * Why not sql.begin: when the connection dies mid-transaction (pg_terminate_backend, a server
 * restart, a network drop), sql.begin still writes ROLLBACK to the dead connection, and
 * postgres.js 3.4.9 then throws from a setImmediate (`socket.write` on null, porsager/postgres
 * #1154/#1208): an uncaught exception that kills the process. Here a lost connection is never
 * touched again (the pool has already moved it to its closed queue and reconnects it on
 * demand; releasing it would put a socketless connection back in the open queue), and the
 * server has rolled the transaction back by itself.
 */
export async function inTransaction<T>(sql: Db, fn: (tx: Q) => Promise<T>): Promise<T> {
  const conn = await sql.reserve();
  let began = false;
  try {
    await conn.unsafe('BEGIN');
    began = true;
    const result = await fn(conn);
    await conn.unsafe('COMMIT');
    conn.release();
    return result;
  } catch (err) {
    if (!isConnectionLost(err)) {
      try {
        if (began) await conn.unsafe('ROLLBACK');
        conn.release();
      } catch {
        // The connection died while rolling back: leave it to the pool, as above.
      }
    }
    throw err;
  }
}
