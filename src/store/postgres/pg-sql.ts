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
export type Tx = postgres.TransactionSql<{ int8: number }>;

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
