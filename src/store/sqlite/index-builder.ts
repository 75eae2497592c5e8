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
const db = new Database(o.path, { fileMustExist: true, timeout: o.busyTimeoutMs });
try {
  db.pragma('busy_timeout = ' + o.busyTimeoutMs);
  db.pragma('temp_store = FILE');
  db.pragma('cache_size = -' + o.cacheSizeKiB);
  db.pragma('wal_autocheckpoint = ' + o.walAutocheckpointPages);
  db.pragma('journal_size_limit = ' + o.journalSizeLimitBytes);
  db.transaction(() => { for (const sql of o.statements) db.exec(sql); }).immediate();
} finally {
  db.close();
}
parentPort.postMessage('built');
`;

const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

/** Resolves when the indexes are committed; rejects with the worker's error otherwise. */
export function buildIndexesInWorker(options: IndexBuildOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let built = false;
    let failure: unknown = null;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: DRIVER, options },
    });
    worker.once('message', () => {
      built = true;
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
