/**
 * Timing logic of the WebSocket client on a FakeClock (no real-clock waiting for the
 * client's own timers), against the real simulator over real sockets: the backoff ladder,
 * half-open detection within ping interval + pong deadline, flapping -> polling fallback
 * with a bounded connection rate and back, controls, and a clean stop.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffCeilingMs } from '../src/core/backoff.js';
import { WsClient } from '../src/stream/ws-client.js';
import { FakeClock } from './helpers/fake-clock.js';
import type { RigOptions, StreamRig } from './stream-fixture.js';
import { settledDigest, startRig, TOKEN, waitFor } from './stream-fixture.js';

let rig: StreamRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Moves the fake clock in steps, letting real socket traffic (pongs) arrive in between. */
async function advanceLive(clock: FakeClock, ms: number, stepMs = 5_000): Promise<void> {
  for (let left = ms; left > 0; left -= stepMs) {
    clock.advance(Math.min(stepMs, left));
    await sleep(15);
  }
}

async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function rigOn(clock: FakeClock, options: RigOptions = {}): Promise<StreamRig> {
  rig = await startRig({ clock, random: () => 1, ...options });
  return rig;
}

const stateOf = (r: StreamRig): string => r.client.status().state;

/** Waits (real time) until the client is in one of `states`; returns it. */
async function oneOf(r: StreamRig, states: string[]): Promise<string> {
  await waitFor(() => states.includes(stateOf(r)), states.join(' or '));
  return stateOf(r);
}

/** Waits (real time) until the client leaves `connecting`/`probing` with a closed socket. */
async function settledState(r: StreamRig): Promise<string> {
  await waitFor(() => {
    const s = r.client.status();
    return s.state !== 'connecting' && !(s.state === 'probing' && !s.connected);
  }, 'the connection attempt to finish');
  return stateOf(r);
}

describe('stream timing: reconnect backoff', () => {
  it('asks for 1, 2, 4, 8, 16, 16... s (full jitter at its ceiling), then falls back after 10 failures and probes every 5 min', async () => {
    const clock = new FakeClock();
    const port = await refusedPort();
    const r = await rigOn(clock, { initialSync: false, client: { url: `ws://127.0.0.1:${port}/ws` } });
    await r.client.start();
    const delays: number[] = [];
    for (;;) {
      const state = await settledState(r);
      if (state === 'polling_fallback') break;
      expect(state).toBe('backing_off');
      const delay = (r.client.status().nextAttemptAt as number) - clock.now();
      delays.push(delay);
      expect(clock.requestedDelays).toContain(delay);
      clock.advance(delay);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 16000, 16000, 16000, 16000]);
    const st = r.client.status();
    expect(st.connectAttempts).toBe(10);
    expect(st.consecutiveFailures).toBe(10);
    expect(r.fallbacks).toEqual([true]);
    expect((st.nextAttemptAt as number) - clock.now()).toBe(5 * 60_000);
    const row = await r.store.getWsState();
    expect(row.state).toBe('polling_fallback');
    expect(row.fallbackSince).toBe(clock.now());
    expect(row.consecutiveFailures).toBe(10);
    expect(row.connected).toBe(false);
    expect(row.disconnectReason).toMatch(/ECONNREFUSED/);
    // The probe is a connection attempt; failing, it stays in fallback and probes again later.
    clock.advance(5 * 60_000);
    expect(stateOf(r)).toBe('probing');
    expect(await settledState(r)).toBe('polling_fallback');
    expect(r.client.status().connectAttempts).toBe(11);
    expect(r.fallbacks).toEqual([true]);
  });

  it('with a random source, every delay stays within [0, min(16 s, 1 s * 2^n)]', async () => {
    const clock = new FakeClock();
    const port = await refusedPort();
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    rig = await startRig({
      clock,
      random,
      initialSync: false,
      client: { url: `ws://127.0.0.1:${port}/ws`, maxFailuresBeforeFallback: 0 },
    });
    const r = rig;
    await r.client.start();
    const delays: number[] = [];
    for (let n = 0; n < 12; n++) {
      expect(await settledState(r)).toBe('backing_off'); // 0 = never fall back
      const delay = (r.client.status().nextAttemptAt as number) - clock.now();
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(backoffCeilingMs(n));
      delays.push(delay);
      clock.advance(delay);
    }
    expect(new Set(delays).size).toBeGreaterThan(6); // jittered, not a fixed ladder
  });

  it('rejects maxFailuresBeforeFallback outside 0..100', async () => {
    const r = await rigOn(new FakeClock(), { initialSync: false });
    for (const bad of [-1, 101, 2.5]) {
      expect(
        () =>
          new WsClient(
            { url: r.sim.wsUrl, maxFailuresBeforeFallback: bad },
            { store: r.store, sink: r.sink },
          ),
      ).toThrow(/0 to 100/);
    }
  });
});

describe('stream timing: liveness', () => {
  it('a half-open socket is terminated within ping interval + pong deadline, and the client recovers', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock, { sim: { faults: [{ fault: 'ws_half_open', times: 1 }] } });
    await r.client.start();
    await waitFor(() => stateOf(r) === 'connected', 'connected');
    const openedAt = clock.now();
    await advanceLive(clock, 39_000, 1_000);
    expect(stateOf(r)).toBe('connected'); // pinged at 30 s, still within the 10 s deadline
    await advanceLive(clock, 1_000, 1_000);
    expect(stateOf(r)).toBe('backing_off');
    expect(clock.now() - openedAt).toBe(40_000);
    expect(r.client.status().disconnectReason).toMatch(/pong timeout/);
    // The simulator healed (the fault fired once): the next connection stays up.
    clock.advance(1_000);
    await waitFor(() => stateOf(r) === 'connected', 'reconnected');
    expect(r.client.status().consecutiveFailures).toBe(1);
    // Sustained health resets the failure counter (the backoff ladder starts over).
    await advanceLive(clock, 59_000, 5_000);
    expect(r.client.status().consecutiveFailures).toBe(1);
    await advanceLive(clock, 1_000, 1_000);
    expect(r.client.status().consecutiveFailures).toBe(0);
    await r.client.settle();
    expect((await r.store.getWsState()).consecutiveFailures).toBe(0);
    r.sim.control.mutate(30);
    await settledDigest(r);
  });

  it('a live socket answers the ping (the pong counts as traffic) and stays up', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock);
    await r.client.start();
    await waitFor(() => stateOf(r) === 'connected', 'connected');
    await advanceLive(clock, 5 * 60_000, 5_000);
    expect(stateOf(r)).toBe('connected');
    expect(r.client.status().connectAttempts).toBe(1);
  });

  it('a half-open server everywhere leads to the fallback; when it heals, a stable probe returns to WebSocket', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock, {
      sim: { faults: [{ fault: 'ws_half_open' }] },
      client: { maxFailuresBeforeFallback: 3 },
    });
    await r.client.start();
    while (stateOf(r) !== 'polling_fallback') {
      await waitFor(() => r.client.status().connected, 'a (half-open) connection');
      await advanceLive(clock, 40_000, 10_000);
      const next = r.client.status().nextAttemptAt;
      if (stateOf(r) === 'backing_off' && next !== null) clock.advance(next - clock.now());
    }
    expect(r.fallbacks).toEqual([true]);
    expect(r.client.status().connectAttempts).toBe(3);
    r.sim.control.clearFaults();
    clock.advance(5 * 60_000);
    expect(stateOf(r)).toBe('probing');
    await waitFor(() => r.client.status().connected, 'the probe to open');
    await advanceLive(clock, 60_000, 5_000);
    expect(stateOf(r)).toBe('connected');
    expect(r.fallbacks).toEqual([true, false]);
    expect(r.client.status().consecutiveFailures).toBe(0);
    expect((await r.store.getWsState()).fallbackSince).toBeNull();
  });
});

describe('stream timing: flapping', () => {
  it('falls back with a bounded connection rate, and returns to WebSocket once stable', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock, { sim: { faults: [{ fault: 'ws_flap', code: 1011 }] } });
    const start = clock.now();
    await r.client.start();
    while ((await oneOf(r, ['backing_off', 'polling_fallback'])) === 'backing_off') {
      clock.advance((r.client.status().nextAttemptAt as number) - clock.now());
    }
    expect(stateOf(r)).toBe('polling_fallback');
    expect(r.client.status().connectAttempts).toBe(10);
    expect(clock.now() - start).toBe(1_000 + 2_000 + 4_000 + 8_000 + 16_000 * 5);
    expect(r.sim.control.counters().wsConnections).toBe(10);
    expect(r.scheduler.effectiveIntervalMinutes).toBe(5); // the schedule is on its fallback interval
    // An hour of flapping in fallback: one probe per 5 minutes, no more.
    for (let i = 0; i < 12; i++) {
      clock.advance(5 * 60_000);
      await waitFor(() => r.sim.control.counters().wsConnections === 11 + i, 'the probe');
      expect(await oneOf(r, ['polling_fallback'])).toBe('polling_fallback');
    }
    expect(r.sim.control.counters().wsConnections).toBe(22);
    expect(r.fallbacks).toEqual([true]);
    r.sim.control.clearFaults();
    clock.advance(5 * 60_000);
    await waitFor(() => r.client.status().connected, 'the probe to open');
    expect(stateOf(r)).toBe('probing');
    await advanceLive(clock, 59_000, 5_000);
    expect(stateOf(r)).toBe('probing'); // not trusted before the stability window
    await advanceLive(clock, 1_000, 1_000);
    expect(stateOf(r)).toBe('connected');
    expect(r.fallbacks).toEqual([true, false]);
    expect(r.scheduler.effectiveIntervalMinutes).toBe(15);
    r.sim.control.mutate(20);
    await settledDigest(r);
  });
});

describe('stream: controls and credentials', () => {
  it('disable persists and closes the socket; enable reconnects; reconnectNow skips the backoff', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock);
    await r.client.start();
    await waitFor(() => stateOf(r) === 'connected', 'connected');
    await r.client.disable();
    expect(stateOf(r)).toBe('disabled');
    expect(r.fallbacks).toEqual([true]);
    await waitFor(() => r.sim.control.stats().wsConnections === 0, 'the server to see the close');
    expect((await r.store.getWsState()).enabled).toBe(false);
    expect(() => r.client.reconnectNow()).toThrow(/disabled/);
    // Persisted: a restarted client stays disabled.
    await r.client.stop();
    await r.client.start();
    expect(stateOf(r)).toBe('disabled');
    await r.client.enable();
    await waitFor(() => stateOf(r) === 'connected', 'connected again');
    expect((await r.store.getWsState()).enabled).toBe(true);
    // reconnectNow from backing_off connects without waiting for the timer.
    r.sim.control.setFaults([{ fault: 'ws_flap', times: 1 }]);
    r.sim.control.closeWebSockets(1001);
    await waitFor(() => stateOf(r) === 'backing_off', 'backing off');
    r.client.reconnectNow();
    await waitFor(
      () => stateOf(r) === 'backing_off' && r.client.status().consecutiveFailures === 2,
      'flapped',
    );
    r.client.reconnectNow();
    await waitFor(() => stateOf(r) === 'connected', 'connected without advancing the clock');
  });

  it('enable/disable before start only change the persisted flag; start honours it', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock);
    await r.client.disable();
    expect(stateOf(r)).toBe('disconnected');
    expect(r.sim.control.counters().wsConnections).toBe(0);
    await r.client.start();
    expect(stateOf(r)).toBe('disabled');
    expect(r.fallbacks).toEqual([true]);
    expect(r.sim.control.counters().wsConnections).toBe(0);
    await r.client.enable();
    await waitFor(() => stateOf(r) === 'connected', 'connected');
    expect(r.fallbacks).toEqual([true, false]);
  });

  it('sends the credentials as upgrade headers; a refused upgrade is a failure; the recorded URL has no token', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock, { client: { token: 'wrong-token', tokenInQuery: true } });
    await r.client.start();
    expect(await settledState(r)).toBe('backing_off');
    expect(r.client.status().disconnectReason).toBe('upgrade refused: HTTP 401');
    const row = await r.store.getWsState();
    expect(row.url).toBe(r.sim.wsUrl);
    expect(JSON.stringify(row)).not.toContain('wrong-token');
    expect(JSON.stringify(r.client.status())).not.toContain('wrong-token');
    await r.client.stop();
    // The right token, in headers (the simulator ignores ?token=): accepted.
    rig = null;
    await r.close();
    const clock2 = new FakeClock();
    const r2 = await rigOn(clock2, { client: { tokenInQuery: true } });
    await r2.client.start();
    await waitFor(() => stateOf(r2) === 'connected', 'connected');
    expect((await r2.store.getWsState()).url).not.toContain(TOKEN);
  });

  it('stop closes the socket and leaves no timer behind', async () => {
    const clock = new FakeClock();
    const r = await rigOn(clock);
    await r.client.start();
    await waitFor(() => stateOf(r) === 'connected', 'connected');
    r.sim.control.mutate(10);
    await waitFor(() => r.client.status().pipeline.received >= 10, 'events');
    await r.client.stop();
    expect(clock.pendingCount).toBe(0);
    expect(stateOf(r)).toBe('disconnected');
    const row = await r.store.getWsState();
    expect(row.connected).toBe(false);
    expect(row.state).toBe('disconnected');
    expect(row.counts.applied).toBeGreaterThanOrEqual(10);
    await waitFor(() => r.sim.control.stats().wsConnections === 0, 'the server to see the close');
  });
});
