/** The engine is store-agnostic: the same convergence against the real PostgreSQL store. */
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../simulator/index.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import {
  dropSchemas,
  freshSchemaName,
  PG_REQUIRED,
  PG_TEST_URL,
  pgTarget,
  probePostgres,
} from './helpers/pg-test-env.js';

const unavailable = await probePostgres();
if (unavailable !== null && !PG_REQUIRED)
  console.warn(`sync-postgres: skipped, no PostgreSQL at ${pgTarget()} (${unavailable})`);
const schemas: string[] = [];
afterAll(async () => {
  await dropSchemas(schemas);
});

describe.skipIf(unavailable !== null && !PG_REQUIRED)('SyncEngine on PostgreSQL', () => {
  it('full sync, live changes, incremental sync, deletion guard: digest equality', async () => {
    const token = 'pg-sync-token-0123456789';
    const sim = await startSimulator({ skills: 800, token, seed: 21 });
    const schema = freshSchemaName('sync');
    schemas.push(schema);
    const store = await openPostgresStore({ url: PG_TEST_URL, schema });
    const remote = createMarketplaceClient({ baseUrl: sim.url, token, requestsPerMinute: 0 });
    const engine = new SyncEngine({ remote, store, options: { pageSize: 100 } });
    try {
      const full = await engine.syncAll({ trigger: 'manual' });
      expect(full.status).toBe('success');
      expect(await store.digest()).toBe(sim.control.digest());
      sim.control.mutate(50);
      const inc = await engine.syncAll({ trigger: 'schedule' });
      expect(inc.status).toBe('success');
      expect(inc.run?.mode).toBe('incremental');
      expect(await store.digest()).toBe(sim.control.digest());
      sim.control.setFaults([{ fault: 'empty_catalog' }]);
      const empty = await engine.syncAll({ trigger: 'manual', mode: 'full' });
      expect(empty.run?.deletionsHeld).toBe(sim.control.stats().liveSkills);
      expect(await store.digest()).toBe(sim.control.digest());
    } finally {
      await engine.close();
      await remote.close();
      await store.close();
      await sim.close();
    }
  }, 120_000);
});
