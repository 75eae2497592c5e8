/**
 * The real-time channel against the simulator over real sockets, with real SQLite and the
 * real sync engine: live changes reach the store, and after changes stop the store's digest
 * equals the simulator's, under every WebSocket fault the simulator scripts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultRule } from '../simulator/index.js';
import type { RigOptions, StreamRig } from './stream-fixture.js';
import { settledDigest, startRig, waitFor } from './stream-fixture.js';

let rig: StreamRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

/** Short real-time intervals so reconnects happen within a test's second or two. */
const FAST: RigOptions['client'] = {
  backoff: { baseMs: 20, capMs: 200, jitter: 'full' },
  stableAfterMs: 300,
  pipeline: { rateLimitPerSec: 0, gapGraceMs: 200 },
};

async function started(options: RigOptions): Promise<StreamRig> {
  rig = await startRig(options);
  const r = rig;
  await r.client.start();
  await waitFor(() => r.client.status().state === 'connected', 'connected');
  return r;
}

/** Mutates `total` changes in steps, `perStep` every `stepMs` (real time). */
async function churn(r: StreamRig, total: number, perStep: number, stepMs: number): Promise<void> {
  for (let done = 0; done < total; done += perStep) {
    r.sim.control.mutate(Math.min(perStep, total - done));
    await new Promise((res) => setTimeout(res, stepMs));
  }
}

describe('stream: live changes over a healthy socket', () => {
  it('applies every change and converges to the simulator digest through the socket alone', async () => {
    const r = await started({ client: FAST });
    r.sim.control.mutate(300);
    const { withoutManualSync } = await settledDigest(r);
    expect(withoutManualSync).toBe(true);
    // Only the catch-up of the first connect: nothing was missed.
    expect(r.catchUps).toEqual([{ reason: 'reconnect', mode: 'incremental' }]);
    const st = r.client.status();
    expect(st.pipeline.counts.applied).toBeGreaterThan(280);
    expect(st.pipeline.counts.invalid).toBe(0);
    const row = await r.store.getWsState();
    expect(row.connected).toBe(true);
    expect(row.state).toBe('connected');
    expect(row.url).toBe(r.sim.wsUrl);
    expect(row.counts.applied).toBe(st.pipeline.counts.applied);
    expect(row.lastSeq).toBe(r.sim.control.stats().seq);
    expect(row.lastMessageAt).not.toBeNull();
  });

  it('a backlog larger than the queue bound pauses reading, resumes, and loses nothing', async () => {
    const r = await started({
      client: { ...FAST, pipeline: { ...FAST.pipeline, maxQueued: 4, maxBatch: 2 } },
    });
    r.sim.control.mutate(300);
    const { withoutManualSync } = await settledDigest(r);
    expect(withoutManualSync).toBe(true);
    const st = r.client.status();
    expect(st.state).toBe('connected');
    expect(st.pipeline.received).toBe(300);
    const { applied, duplicate, stale, invalid, rate_limited } = st.pipeline.counts;
    expect([applied + duplicate + stale, invalid, rate_limited]).toEqual([300, 0, 0]);
    expect(r.errors).toEqual([]);
  });
});

describe('stream: faults', () => {
  const cases: { name: string; rules: FaultRule[]; features?: { ws_seq: boolean } }[] = [
    { name: 'drops every 250 ms (1001)', rules: [{ fault: 'ws_close_every', everyMs: 250, code: 1001 }] },
    { name: 'drops every 250 ms (1000)', rules: [{ fault: 'ws_close_every', everyMs: 250, code: 1000 }] },
    {
      name: 'drops every 250 ms without ws_seq',
      rules: [{ fault: 'ws_close_every', everyMs: 250, code: 1011 }],
      features: { ws_seq: false },
    },
    {
      name: 'duplicates and reordering',
      rules: [
        { fault: 'ws_duplicate', rate: 0.2 },
        { fault: 'ws_out_of_order', rate: 0.2 },
      ],
    },
    {
      name: 'duplicates and reordering without ws_seq',
      rules: [
        { fault: 'ws_duplicate', rate: 0.2 },
        { fault: 'ws_out_of_order', rate: 0.2 },
      ],
      features: { ws_seq: false },
    },
    {
      name: 'malformed, oversized and unknown frames',
      rules: [
        { fault: 'ws_malformed', rate: 0.05 },
        { fault: 'ws_unknown_type', rate: 0.05 },
        { fault: 'ws_oversized', rate: 0.01 },
      ],
    },
  ];
  for (const c of cases) {
    it(`converges with ${c.name}`, async () => {
      const r = await started({
        client: FAST,
        sim: { faults: c.rules, ...(c.features ? { features: c.features } : {}) },
      });
      await churn(r, 400, 20, 25);
      if (c.rules.some((x) => x.fault === 'ws_close_every')) {
        // Keep changing until the server has dropped the socket a few times: on a loaded
        // machine 500 ms of churn may cover only one or two drops.
        const deadline = Date.now() + 15_000;
        while (r.transitions.filter((t) => t.event === 'opened').length <= 3 && Date.now() < deadline) {
          await churn(r, 20, 20, 50);
        }
      }
      await settledDigest(r);
      const st = r.client.status();
      const counts = st.pipeline.counts;
      expect(counts.applied).toBeGreaterThan(0);
      const rules = c.rules.map((x) => x.fault);
      if (rules.includes('ws_close_every')) {
        expect(st.connectAttempts).toBeGreaterThan(2);
        // Every reconnect asked for a catch-up of the window it was down.
        const opened = r.transitions.filter((t) => t.event === 'opened').length;
        expect(opened).toBeGreaterThan(2);
        expect(r.catchUps.filter((x) => x.reason === 'reconnect').length).toBe(opened);
        expect(st.disconnectReason).toMatch(/closed by server \(10\d\d/);
      }
      if (rules.includes('ws_duplicate')) expect(counts.duplicate).toBeGreaterThan(0);
      if (rules.includes('ws_unknown_type')) expect(counts.unknown).toBeGreaterThan(0);
      if (rules.includes('ws_malformed')) {
        expect(counts.invalid).toBeGreaterThan(0);
        const q = await r.store.listQuarantine({ limit: 1000, offset: 0 });
        expect(q.items.filter((i) => i.kind === 'ws_message').length).toBe(counts.invalid);
      }
      if (rules.includes('ws_oversized')) {
        expect(r.transitions.some((t) => t.event === 'failed')).toBe(true);
        expect(r.client.status().pipeline.counts.invalid).toBeGreaterThan(0);
      }
      if (c.features?.ws_seq === false) expect(st.pipeline.lastSeq).toBeNull();
      const row = await r.store.getWsState();
      expect(row.counts).toEqual(r.client.status().pipeline.counts);
    });
  }

  it('converges with changes made while the socket was down (changes not emitted)', async () => {
    const r = await started({ client: FAST });
    r.sim.control.setEmitEvents(false);
    r.sim.control.mutate(100);
    r.sim.control.setEmitEvents(true);
    const before = r.catchUps.length;
    r.sim.control.closeWebSockets(1001);
    await waitFor(
      () => r.client.status().connectAttempts >= 2 && r.client.status().state === 'connected',
      'reconnected',
    );
    expect(r.catchUps.length).toBeGreaterThan(before);
    r.sim.control.mutate(50);
    const { withoutManualSync } = await settledDigest(r);
    // The reconnect's catch-up sync delivered what the socket never carried.
    expect(withoutManualSync).toBe(true);
  });

  it('with ws_seq: resume replays what was missed while down; an unreplayable gap triggers a catch-up, not a full relisting', async () => {
    const r = await started({ client: FAST, sim: { wsBufferSize: 5 } });
    r.sim.control.mutate(10);
    await waitFor(() => r.client.status().pipeline.lastSeq === r.sim.control.stats().seq, 'seq caught up');
    // Take the socket down with the client's backoff long enough to miss events.
    r.sim.control.setFaults([{ fault: 'ws_flap', times: 1 }]);
    r.sim.control.closeWebSockets(1001);
    r.sim.control.mutate(40); // more than the 5-event resume buffer
    // Initial connect, the flapped one, then the one that stays.
    await waitFor(
      () => r.client.status().connectAttempts >= 3 && r.client.status().state === 'connected',
      'reconnected',
    );
    r.sim.control.mutate(5);
    await waitFor(() => r.catchUps.some((c) => c.reason === 'seq_gap'), 'a seq_gap catch-up');
    await settledDigest(r);
    expect(r.catchUps.every((c) => c.mode === 'incremental')).toBe(true);
    expect(r.client.status().pipeline.lastSeq).toBe(r.sim.control.stats().seq);
  });

  it('with ws_seq: events missed while down come back through resume (no gap)', async () => {
    const r = await started({ client: FAST, sim: { wsBufferSize: 1000 } });
    r.sim.control.mutate(10);
    await waitFor(() => r.client.status().pipeline.lastSeq === r.sim.control.stats().seq, 'seq caught up');
    r.sim.control.setFaults([{ fault: 'ws_flap', times: 1 }]);
    r.sim.control.closeWebSockets(1001);
    r.sim.control.mutate(40);
    await waitFor(() => r.client.status().pipeline.lastSeq === r.sim.control.stats().seq, 'replayed');
    expect(r.catchUps.some((c) => c.reason === 'seq_gap')).toBe(false);
    await settledDigest(r);
  });

  it('a dataset reset (new epoch) asks for a full sync', async () => {
    const r = await started({ client: FAST });
    r.sim.control.resetDataset();
    await waitFor(() => r.catchUps.some((c) => c.reason === 'reset' && c.mode === 'full'), 'a full catch-up');
    await settledDigest(r);
  });

  it('a burst above the rate limit is not lost: the window is caught up', async () => {
    const r = await started({
      client: { ...FAST, pipeline: { rateLimitPerSec: 50, dirtyQuietMs: 100, dirtyMaxDelayMs: 500 } },
    });
    r.sim.control.mutate(500);
    await waitFor(() => r.catchUps.some((c) => c.reason === 'rate_limited'), 'a rate_limited catch-up');
    const { withoutManualSync } = await settledDigest(r);
    expect(withoutManualSync).toBe(true);
    expect(r.client.status().pipeline.counts.rate_limited).toBeGreaterThan(300);
  });
});
