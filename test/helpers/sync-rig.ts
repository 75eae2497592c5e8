/**
 * Set-up of the sync tests and benches: the real simulator (port 0), a real SQLite store in a
 * fresh temp dir, the real marketplace client and the SyncEngine. Nothing here is a fake.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/core/clock.js';
import {
  createMarketplaceClient,
  type MarketplaceClient,
  type MarketplaceClientOptions,
} from '../../src/remote/marketplace-client.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { SyncEngine, type SyncEngineOptions } from '../../src/sync/sync-engine.js';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../../simulator/index.js';

export const SYNC_TOKEN = 'sync-test-token-0123456789';

export interface SyncRig {
  sim: SimulatorHandle;
  store: Store;
  remote: MarketplaceClient;
  engine: SyncEngine;
  dir: string;
  dbPath: string;
  /** A second engine on the same store (e.g. after a "restart"). */
  newEngine(options?: Partial<SyncEngineOptions>): SyncEngine;
  close(): Promise<void>;
}

export interface SyncRigOptions {
  sim?: SimulatorOptions;
  client?: MarketplaceClientOptions;
  engine?: Partial<SyncEngineOptions>;
  clock?: Clock;
}

export async function startSyncRig(options: SyncRigOptions = {}): Promise<SyncRig> {
  const sim = await startSimulator({ token: SYNC_TOKEN, ...options.sim });
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-sync-'));
  const dbPath = join(dir, 'store.db');
  const store = await openSqliteStore({ path: dbPath });
  const remote = createMarketplaceClient(
    {
      baseUrl: sim.url,
      token: SYNC_TOKEN,
      paths: sim.layout,
      requestsPerMinute: 0,
      connectTimeoutMs: 5_000,
      headersTimeoutMs: 5_000,
      bodyTimeoutMs: 5_000,
      ...options.client,
    },
    options.clock,
  );
  const engines: SyncEngine[] = [];
  const newEngine = (o?: Partial<SyncEngineOptions>): SyncEngine => {
    const e = new SyncEngine({
      remote,
      store,
      ...(options.clock ? { clock: options.clock } : {}),
      options: { ...options.engine, ...o },
    });
    engines.push(e);
    return e;
  };
  const engine = newEngine();
  return {
    sim,
    store,
    remote,
    engine,
    dir,
    dbPath,
    newEngine,
    async close() {
      for (const e of engines) await e.close();
      await remote.close();
      await store.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
