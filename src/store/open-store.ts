/**
 * Picks and opens the Store named by SKILLSYNC_DATABASE_URL:
 *
 *   sqlite:./data/skillsync.db        embedded file (the default; its directory is created)
 *   sqlite:/abs/path.db, sqlite:///abs/path.db
 *   sqlite::memory:                   in-memory, for tests
 *   postgres://user@host:5432/db?schema=skillsync&pool=10   (postgresql:// too)
 *
 * PostgreSQL support is imported on demand, so embedded users never load the postgres driver.
 * A malformed URL fails with a ConfigError naming the variable; credentials never appear in it.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, SkillsyncError } from '../core/errors.js';
import type { Store } from './store.js';

export const DEFAULT_DATABASE_URL = 'sqlite:./data/skillsync.db';
const VARIABLE = 'SKILLSYNC_DATABASE_URL';
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MAX_POOL = 1000;

export type DatabaseTarget =
  { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

/** The URL with any password replaced, for messages. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

export function parseDatabaseUrl(url: string, variable: string = VARIABLE): DatabaseTarget {
  const text = url.trim();
  if (text === '') throw new ConfigError(variable, 'is empty; use sqlite:<path> or postgres://user@host/db');
  if (text.startsWith('sqlite:')) {
    let path = text.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new ConfigError(variable, `"${text}" has no file path (sqlite:./data/skillsync.db)`);
    if (path.includes('\0')) throw new ConfigError(variable, 'the SQLite path contains a NUL byte');
    if (path.includes('?')) {
      throw new ConfigError(
        variable,
        `"${text}": SQLite URLs take no parameters (sqlite:<path> or sqlite::memory:)`,
      );
    }
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//i.test(text)) {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ConfigError(variable, `"${redactDatabaseUrl(text)}" is not a valid PostgreSQL URL`);
    }
    if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
      throw new ConfigError(
        variable,
        `"${redactDatabaseUrl(text)}" names no host (postgres://user@host:5432/db)`,
      );
    }
    const target: DatabaseTarget = { kind: 'postgres', url: '' };
    const schema = parsed.searchParams.get('schema');
    if (schema !== null) {
      if (!SCHEMA_NAME.test(schema)) {
        throw new ConfigError(variable, `schema "${schema}" must be a plain identifier (letters, digits, _)`);
      }
      target.schema = schema;
      parsed.searchParams.delete('schema');
    }
    const pool = parsed.searchParams.get('pool');
    if (pool !== null) {
      const n = Number(pool);
      if (!/^\d+$/.test(pool) || !Number.isInteger(n) || n < 1 || n > MAX_POOL) {
        throw new ConfigError(variable, `pool "${pool}" must be an integer from 1 to ${MAX_POOL}`);
      }
      target.poolSize = n;
      parsed.searchParams.delete('pool');
    }
    target.url = parsed.toString();
    return target;
  }
  throw new ConfigError(
    variable,
    `"${redactDatabaseUrl(text)}" is not a supported database URL: use sqlite:<path>, sqlite::memory: or postgres://user@host/db`,
  );
}

export async function openStore(url: string, options: { variable?: string } = {}): Promise<Store> {
  const target = parseDatabaseUrl(url, options.variable ?? VARIABLE);
  if (target.kind === 'postgres') {
    const { openPostgresStore } = await import('./postgres/postgres-store.js');
    return openPostgresStore({
      url: target.url,
      ...(target.schema !== undefined ? { schema: target.schema } : {}),
      ...(target.poolSize !== undefined ? { poolSize: target.poolSize } : {}),
    });
  }
  if (target.path !== ':memory:') {
    const dir = dirname(resolve(target.path));
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new SkillsyncError(
        'SKILLSYNC_ERR_STORE_UNAVAILABLE',
        `cannot create the database directory ${dir}`,
        {
          cause: err,
        },
      );
    }
  }
  const { openSqliteStore } = await import('./sqlite/sqlite-store.js');
  return openSqliteStore({ path: target.path });
}
