/**
 * PostgreSQL test environment: which server, whether it answers, and fresh schemas that are
 * dropped afterwards. When no server answers, suites skip with a visible notice, except when
 * SKILLSYNC_REQUIRE_POSTGRES=1 (CI), where that is a failure.
 */
import postgres from 'postgres';

export const PG_TEST_URL =
  process.env['SKILLSYNC_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const PG_REQUIRED = process.env['SKILLSYNC_REQUIRE_POSTGRES'] === '1';

/** Host/port/db only: never print credentials. */
export function pgTarget(url = PG_TEST_URL): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(bad URL)';
  }
}

/** null when the server answers, else why not. */
export async function probePostgres(url = PG_TEST_URL): Promise<string | null> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return null;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `${e.code ?? 'error'}: ${e.message ?? String(err)}`;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

/** An admin handle for setup and inspection in tests. */
export function adminSql(url = PG_TEST_URL) {
  return postgres(url, { max: 2, onnotice: () => {} });
}

let counter = 0;
/** A schema name unique to this process and call: `<prefix>_<pid>_<time>_<n>`. */
export function freshSchemaName(prefix: string): string {
  counter++;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

export async function dropSchemas(names: readonly string[], url = PG_TEST_URL): Promise<void> {
  if (names.length === 0) return;
  const sql = adminSql(url);
  try {
    // A few statements for all of them: dozens of separate DROP ... CASCADE take long on a busy
    // box, and one for ~75 schemas runs out of lock slots ("out of shared memory").
    for (let i = 0; i < names.length; i += 16) {
      const list = names
        .slice(i, i + 16)
        .map((n) => `"${n.replaceAll('"', '""')}"`)
        .join(', ');
      await sql.unsafe(`DROP SCHEMA IF EXISTS ${list} CASCADE`);
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}
