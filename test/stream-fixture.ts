/**
 * Shared set-up for the stream tests: the real simulator (port 0), a fresh in-memory SQLite
 * store, the real sync engine and the real WsClient wired through createEngineSink. Nothing
 * here is a fake: the only test-side piece is an optional FakeClock for timing logic.
 */
import { expect } from 'vitest';
import type { Clock } from '../src/core/clock.js';
import { systemClock } from '../src/core/clock.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { StreamSink } from '../src/stream/stream-sink.js';
import { createEngineSink } from '../src/stream/stream-sink.js';
import type { WsClientOptions } from '../src/stream/ws-client.js';
import { WsClient } from '../src/stream/ws-client.js';
import type { MachineEvent, WsStateName } from '../src/stream/ws-state-machine.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { SyncScheduler } from '../src/scheduler/sync-scheduler.js';
import type { SimulatorHandle, SimulatorOptions } from '../simulator/index.js';
import { startSimulator } from '../simulator/index.js';

export const TOKEN = 'stream-test-token-0123456789';

export interface StreamRig {
  sim: SimulatorHandle;
  store: Store;
  engine: SyncEngine;
  /** The real scheduler (not started): the sink switches its interval on fallback. */
  scheduler: SyncScheduler;
  sink: StreamSink;
  client: WsClient;
  /** Catch-up requests the sink passed on to the engine, in order. */
  catchUps: { reason: string; mode: string }[];
  /** Fallback switches the sink passed on, in order. */
  fallbacks: boolean[];
  transitions: { from: WsStateName; to: WsStateName; event: MachineEvent['type'] }[];
  errors: unknown[];
  close(): Promise<void>;
}

export interface RigOptions {
  sim?: SimulatorOptions;
  client?: Partial<WsClientOptions>;
  /** Clock of the WsClient (the engine and simulator keep real time). */
  clock?: Clock;
  random?: () => number;
  /** Run a full sync before the client starts (default true). */
  initialSync?: boolean;
}

export async function startRig(options: RigOptions = {}): Promise<StreamRig> {
  const sim = await startSimulator({ skills: 300, seed: 11, token: TOKEN, ...options.sim });
  const store = await openSqliteStore({ path: ':memory:' });
  const remote = createMarketplaceClient({ baseUrl: sim.url, token: TOKEN, requestsPerMinute: 0 });
  const engine = new SyncEngine({ remote, store, options: { pageSize: 1000, catchUpDelayMs: 20 } });
  if (options.initialSync !== false) {
    const r = await engine.syncAll({ trigger: 'startup', mode: 'full' });
    expect(r.status).toBe('success');
  }
  const catchUps: StreamRig['catchUps'] = [];
  const fallbacks: boolean[] = [];
  const scheduler = new SyncScheduler({
    engine,
    store,
    options: { intervalMinutes: 15, fallbackIntervalMinutes: 5, syncOnStart: false },
  });
  const real = createEngineSink({ engine, store, ttlMs: engine.options.ttlMs, schedule: () => scheduler });
  const sink: StreamSink = {
    ...real,
    requestCatchUp(reason, mode) {
      catchUps.push({ reason, mode });
      real.requestCatchUp(reason, mode);
    },
    setFallback(active) {
      fallbacks.push(active);
      real.setFallback(active);
    },
  };
  const transitions: StreamRig['transitions'] = [];
  const errors: unknown[] = [];
  const client = new WsClient(
    { url: sim.wsUrl, token: TOKEN, instanceId: 'stream-test', ...options.client },
    {
      store,
      sink,
      clock: options.clock ?? systemClock,
      ...(options.random ? { random: options.random } : {}),
      onError: (err) => errors.push(err),
      onTransition: (from, to, event) => transitions.push({ from, to, event: event.type }),
    },
  );
  return {
    sim,
    store,
    engine,
    scheduler,
    sink,
    client,
    catchUps,
    fallbacks,
    transitions,
    errors,
    async close() {
      await client.stop();
      await engine.close();
      await sim.close();
      await store.close();
    },
  };
}

/** Polls (real time, short steps) until `check` holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the engine is idle with no catch-up pending. */
export async function engineIdle(engine: SyncEngine): Promise<void> {
  await waitFor(() => !engine.running && !engine.catchUpPending, 'the engine to be idle', 20_000);
}

/**
 * Live changes are done: let the socket deliver, let any catch-up finish, then check whether
 * the socket alone converged; finally a catch-up through the engine (the safety net) must
 * converge in every case.
 */
export async function settledDigest(rig: StreamRig): Promise<{ withoutManualSync: boolean }> {
  const want = rig.sim.control.digest();
  let withoutManualSync = false;
  try {
    await waitFor(
      async () => {
        await rig.client.settle();
        return !rig.engine.running && !rig.engine.catchUpPending && (await rig.store.digest()) === want;
      },
      'the store to converge through the socket',
      1_500,
    );
    withoutManualSync = true;
  } catch {
    // Not converged without help: the manual catch-up below must do it.
  }
  if (!withoutManualSync) {
    await engineIdle(rig.engine);
    const r = await rig.engine.syncAll({ trigger: 'manual', mode: 'incremental' });
    expect(['success', 'partial']).toContain(r.status);
    await rig.client.settle();
  }
  expect(await rig.store.digest()).toBe(want);
  return { withoutManualSync };
}
