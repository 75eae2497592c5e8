import { afterEach, describe, expect, it } from 'vitest';
import type { StreamRig } from './stream-fixture.js';
import { settledDigest, startRig, waitFor } from './stream-fixture.js';

let rig: StreamRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('stream: live changes over a healthy socket', () => {
  it('applies every change and converges to the simulator digest through the socket alone', async () => {
    rig = await startRig({ client: { pipeline: { rateLimitPerSec: 0 } } });
    const r = rig;
    await r.client.start();
    await waitFor(() => r.client.status().state === 'connected', 'connected');
    r.sim.control.mutate(300);
    const { viaSocket } = await settledDigest(r);
    expect(viaSocket).toBe(true);
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
  });
});
