/**
 * Builds indexes on a database file from a worker thread, with a connection of its own.
 *
 * better-sqlite3 is synchronous: a CREATE INDEX on the store's connection holds the event loop
 * for as long as it runs (the deferred indexes after a first load: ~0.8 s for 100k skills,
 * 7–9 s for 1M), and with it every HTTP request, health probe and WebSocket heartbeat of the
 * service. From a worker, the main thread keeps serving reads meanwhile: WAL readers never wait
 * for a writer. The caller must not write while the build runs (its write would wait on the
 * lock, blocking the thread): SqliteStore queues its writes until the promise settles.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface IndexBuildOptions {
  /** Absolute path of the database file (not `:memory:`: a worker cannot see that one). */
  path: string;
  /** CREATE INDEX statements, run in one IMMEDIATE transaction. */
  statements: readonly string[];
  busyTimeoutMs: number;
  cacheSizeKiB: number;
  walAutocheckpointPages: number;
  journalSizeLimitBytes: number;
}

// CommonJS source for an eval worker: no file to resolve under tsx or from dist/.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const o = workerData.options;
let db;
try {
  db = new Database(o.path, { fileMustExist: true, timeout: o.busyTimeoutMs });
  db.pragma('busy_timeout = ' + o.busyTimeoutMs);
  db.pragma('temp_store = FILE');
  db.pragma('cache_size = -' + o.cacheSizeKiB);
  db.pragma('wal_autocheckpoint = ' + o.walAutocheckpointPages);
  db.pragma('journal_size_limit = ' + o.journalSizeLimitBytes);
  db.transaction(() => { for (const sql of o.statements) db.exec(sql); }).immediate();
  parentPort.postMessage({ built: true });
} catch (err) {
  parentPort.postMessage({ built: false, code: String(err && err.code), message: String(err && err.message) });
} finally {
  if (db) db.close();
}
`;

const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

/** The database refused the build (busy, full disk...): the worker itself ran. */
export class IndexBuildError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'IndexBuildError';
  }
}

/**
 * Resolves when the indexes are committed. Rejects with an IndexBuildError when SQLite refused
 * the build, and with another error when the worker could not run at all.
 */
export function buildIndexesInWorker(options: IndexBuildOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let built = false;
    let failure: unknown = null;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: DRIVER, options },
    });
    worker.once('message', (m: { built: boolean; code?: string; message?: string }) => {
      if (m.built) built = true;
      else failure = new IndexBuildError(m.code ?? 'SQLITE_ERROR', m.message ?? 'index build failed');
    });
    worker.once('error', (err) => {
      failure = err;
    });
    worker.once('exit', (code) => {
      if (built) resolve();
      else reject(failure ?? new Error(`index build worker exited with code ${code}`));
    });
  });
}
