/**
 * A deleted skill stays deleted when an older update of it arrives late over the real socket
 * (the store remembers the deletion; see Store.deleteSkill): the simulator holds the update
 * (ws_out_of_order) and sends it after the delete.
 */
import { afterEach, expect, it } from 'vitest';
import type { StreamRig } from './stream-fixture.js';
import { startRig, waitFor } from './stream-fixture.js';

let rig: StreamRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

it('an update held behind the delete of its skill does not bring the skill back', async () => {
  rig = await startRig({
    client: {
      backoff: { baseMs: 20, capMs: 200, jitter: 'full' },
      stableAfterMs: 300,
      pipeline: { rateLimitPerSec: 0, gapGraceMs: 200 },
    },
  });
  const r = rig;
  await r.client.start();
  await waitFor(() => r.client.status().state === 'connected', 'connected');
  const id = 'skill-00000007';
  expect(await r.store.getSkill(id, Date.now())).not.toBeNull();

  r.sim.control.setFaults([{ fault: 'ws_out_of_order', times: 1 }]);
  r.sim.control.updateSkill(id); // held by the simulator
  r.sim.control.deleteSkill(id); // sent, then the held update behind it
  await waitFor(() => r.client.status().pipeline.received >= 2, 'both events received');
  await r.client.settle();

  const counts = r.client.status().pipeline.counts;
  expect(counts.stale).toBe(1);
  expect(await r.store.getSkill(id, Date.now())).toBeNull();
  expect(await r.store.digest()).toBe(r.sim.control.digest());
});
