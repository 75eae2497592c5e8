import { afterEach, describe, expect, it } from 'vitest';
import { startSyncRig, type SyncRig } from './helpers/sync-rig.js';

let rig: SyncRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('SyncEngine against the simulator', () => {
  it('a full sync makes the store digest equal the simulator digest', async () => {
    rig = await startSyncRig({ sim: { skills: 1234, seed: 3 } });
    const r = await rig.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(r.error).toBeNull();
    expect(r.status).toBe('success');
    expect(await rig.store.digest()).toBe(rig.sim.control.digest());
    expect(r.run?.pages).toBeGreaterThan(1);
    expect(r.run?.upserted).toBe(1234);
  });
});
