/**
 * The outbox on the PostgreSQL store (a shared deployment): the same exactly-once and
 * per-chain order guarantees under transient failures and lost responses, also with two
 * uploaders (two instances) claiming from the same outbox at once. Each test gets its own
 * schema, dropped afterwards. Skips with a notice when no server answers (fails in CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { LocalActions } from '../src/sync/local-actions.js';
import { OutboxUploader } from '../src/sync/outbox-uploader.js';
import { FakeClock } from './helpers/fake-clock.js';
import {
  createApi,
  drainWithFakeClock,
  INSTANCE_ID,
  seededRandom,
  startOutboxRig,
} from './helpers/outbox-rig.js';
import {
  dropSchemas,
  freshSchemaName,
  PG_REQUIRED,
  PG_TEST_URL,
  pgTarget,
  probePostgres,
} from './helpers/pg-test-env.js';

let unavailable: string | null = null;
const schemas: string[] = [];
beforeAll(async () => {
  unavailable = await probePostgres();
  if (unavailable !== null && PG_REQUIRED)
    throw new Error(`PostgreSQL at ${pgTarget()} is required: ${unavailable}`);
  if (unavailable !== null)
    console.warn(`outbox-postgres: skipped, PostgreSQL at ${pgTarget()}: ${unavailable}`);
});
afterAll(async () => {
  await dropSchemas(schemas);
});

describe('outbox on PostgreSQL', () => {
  it('300 actions under faults, two uploaders sharing the outbox: each applied once, chains in order', async (ctx) => {
    if (unavailable !== null) return ctx.skip();
    const schema = freshSchemaName('outbox');
    schemas.push(schema);
    const clock = new FakeClock();
    const random = seededRandom(300);
    const rig = await startOutboxRig({
      clock,
      random: seededRandom(31),
      skills: 8,
      store: await openPostgresStore({ url: PG_TEST_URL, schema }),
      sim: {
        faults: {
          seed: 3,
          rules: [
            { fault: 'error', route: ['rate', 'install'], rate: 0.15, status: 502 },
            { fault: 'lost_response', rate: 0.1 },
          ],
        },
      },
    });
    // A second instance: its own client and uploader, the same database and marketplace.
    const api2 = createApi(rig.sim.url, clock);
    const second = new OutboxUploader({ store: rig.store, api: api2, random: seededRandom(32) }, {}, clock);
    try {
      await rig.uploader.start();
      await second.start();
      // Both instances hear of every local action (as two services behind one database would
      // through their own API); the claim decides who sends what.
      const actions = new LocalActions(
        rig.store,
        {
          instanceId: INSTANCE_ID,
          onQueued: () => {
            rig.uploader.kick();
            second.kick();
          },
        },
        clock,
      );
      const expected = new Map<string, number[]>();
      const keys: string[] = [];
      for (let i = 0; i < 300; i++) {
        const skillId = rig.skillIds[Math.floor(random() * rig.skillIds.length)]!;
        if (i % 6 === 0) {
          keys.push((await actions.install({ skillId, agentId: `agent-${i % 3}` })).idempotencyKey);
          continue;
        }
        const userId = `user-${Math.floor(random() * 6)}`;
        const rating = 1 + Math.floor(random() * 5);
        keys.push((await actions.rate({ skillId, userId, rating })).outbox.idempotencyKey);
        const k = `${userId}\u0000${skillId}`;
        expected.set(k, [...(expected.get(k) ?? []), rating]);
      }
      const both = {
        whenIdle: async () => {
          await Promise.all([rig.uploader.whenIdle(), second.whenIdle()]);
        },
      };
      await drainWithFakeClock({ store: rig.store, uploader: both }, clock, { minStepMs: 2_000 });

      const counters = rig.sim.control.counters();
      for (const key of keys) expect(counters.appliedByKey(key), key).toBe(1);
      for (const [k, ratings] of expected) {
        const [userId, skillId] = k.split('\u0000') as [string, string];
        expect(counters.ratingHistory(userId, skillId), k).toEqual(ratings);
      }
      const all = await rig.store.listOutbox({ limit: 1000, offset: 0 });
      expect(all.total).toBe(300);
      expect(all.items.filter((i) => i.status !== 'done')).toEqual([]);
      // Both instances did part of the work.
      expect(rig.uploader.counters().uploaded).toBeGreaterThan(0);
      expect(second.counters().uploaded).toBeGreaterThan(0);
      expect(rig.uploader.counters().uploaded + second.counters().uploaded).toBe(300);
    } finally {
      await second.stop();
      await api2.close();
      await rig.close();
    }
  }, 120_000);
});
