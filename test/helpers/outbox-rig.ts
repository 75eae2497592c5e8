/**
 * Set-up shared by the outbox tests: the real simulator
 * (port 0), a real SQLite store (file or memory), the real marketplace client (no retries of
 * its own, no request budget), LocalActions and the OutboxUploader. Nothing here is a fake;
 * the uploader (and the client's 429 pauses) may run on a FakeClock while sockets keep real time.
 */
import { systemClock, type Clock } from '../../src/core/clock.js';
import { skillContentHash } from '../../src/remote/contract.js';
import { createMarketplaceClient } from '../../src/remote/marketplace-client.js';
import type { MarketplaceApi } from '../../src/remote/marketplace.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { LocalActions } from '../../src/sync/local-actions.js';
import { OutboxUploader, type OutboxUploaderOptions } from '../../src/sync/outbox-uploader.js';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../../simulator/index.js';
import type { FakeClock } from './fake-clock.js';
import { OUTBOX_TOKEN } from './outbox-common.js';
export { OUTBOX_TOKEN, seededRandom } from './outbox-common.js';
export const INSTANCE_ID = 'outbox-test-instance';

/** The real client, without its own retries' budget limit; `clock` drives its 429 pauses. */
export function createApi(url: string, clock: Clock = systemClock, timeoutMs = 5_000): MarketplaceApi {
  return createMarketplaceClient(
    {
      baseUrl: url,
      token: OUTBOX_TOKEN,
      instanceId: INSTANCE_ID,
      requestsPerMinute: 0,
      connectTimeoutMs: timeoutMs,
      headersTimeoutMs: timeoutMs,
      bodyTimeoutMs: timeoutMs,
    },
    clock,
  );
}

/** Copies the simulator's first `limit` skills into the store, as a full listing would. */
export async function seedCatalog(store: Store, api: MarketplaceApi, limit = 1000): Promise<string[]> {
  const page = await api.listSkills({ page: 1, pageSize: limit });
  await store.applySkillPage({
    items: page.skills.map((skill) => ({ skill, contentHash: skillContentHash(skill) })),
    tombstones: [],
    source: 'full',
    now: Date.now(),
    ttlMs: 365 * 24 * 3_600_000,
    epoch: null,
    guard: 'listing',
    checkpoint: null,
  });
  return page.skills.map((s) => s.skill_id);
}

export interface OutboxRig {
  sim: SimulatorHandle;
  store: Store;
  api: MarketplaceApi;
  actions: LocalActions;
  uploader: OutboxUploader;
  skillIds: string[];
  close(): Promise<void>;
}

export interface OutboxRigOptions {
  sim?: SimulatorOptions;
  /** SQLite path (default ':memory:'). */
  dbPath?: string;
  /** Another store (PostgreSQL); the rig closes it. */
  store?: Store;
  uploader?: Partial<OutboxUploaderOptions>;
  clock?: Clock;
  random?: () => number;
  /** Skills copied into the store (default 50). */
  skills?: number;
  /** Reuse a running simulator (then close() leaves it running). */
  simulator?: SimulatorHandle;
}

export async function startOutboxRig(options: OutboxRigOptions = {}): Promise<OutboxRig> {
  const ownSim = options.simulator === undefined;
  const sim =
    options.simulator ??
    (await startSimulator({ skills: 200, seed: 6, token: OUTBOX_TOKEN, ...options.sim }));
  const store = options.store ?? (await openSqliteStore({ path: options.dbPath ?? ':memory:' }));
  const clock = options.clock ?? systemClock;
  const api = createApi(sim.url, clock);
  const skillIds = await seedCatalog(store, api, options.skills ?? 50);
  const uploader = new OutboxUploader(
    { store, api, ...(options.random ? { random: options.random } : {}) },
    options.uploader,
    clock,
  );
  const actions = new LocalActions(
    store,
    { instanceId: INSTANCE_ID, onQueued: () => uploader.kick() },
    clock,
  );
  return {
    sim,
    store,
    api,
    actions,
    uploader,
    skillIds,
    async close() {
      await uploader.stop();
      await api.close();
      await store.close();
      if (ownSim) await sim.close();
    },
  };
}

/**
 * Drives a FakeClock-timed uploader until `done` holds (default: nothing pending): wait for the
 * uploader to go idle, then jump the clock to the next due item, or fire the next timer
 * (kick, probe, recovery) when nothing is due later. Fails after `maxRounds` jumps so a
 * wedged queue cannot hang a test. Returns the number of jumps.
 */
export async function drainWithFakeClock(
  rig: { store: Store; uploader: Pick<OutboxUploader, 'whenIdle'> },
  clock: FakeClock,
  options: { maxRounds?: number; done?: () => Promise<boolean>; minStepMs?: number } = {},
): Promise<number> {
  const done = options.done ?? (async () => (await rig.store.getSyncState()).pendingActions === 0);
  const maxRounds = options.maxRounds ?? 10_000;
  for (let round = 0; round < maxRounds; round++) {
    await rig.uploader.whenIdle();
    if (await done()) return round;
    const due = await rig.store.nextOutboxDueAt();
    if (due !== null && due > clock.now()) clock.advance(Math.max(due - clock.now(), options.minStepMs ?? 0));
    else if (!clock.runNext()) throw new Error('outbox not drained and no timer left to fire');
    clock.advance(0); // and every other timer due at the same instant
    // Timers fired synchronously; let their pump start before asking whether it is idle.
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`outbox not drained after ${maxRounds} clock jumps`);
}
