/**
 * bench/sync-incremental: an incremental sync after 1% of the catalog changed, against the full
 * sync of the same catalog measured in the same run.
 *
 * The simulator (100,000 skills, every extension on) runs in its own process. A full sync fills
 * a fresh SQLite store; then 1,000 skills are updated through the simulator's control API and
 * an automatic run (`updated_since` from the watermark) brings the store up to date. The store
 * digest is checked against the simulator's after each run.
 * Figure: incremental time / full time (target <= 0.05).
 *
 * Run: npx tsx bench/sync-incremental.ts
 * Last line: one JSON object with "bench": "sync-incremental".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { spawnSimulator } from './sync-full.js';

const TOKEN = 'bench-token-0123456789';
const N = 100_000;
const CHANGED = N / 100;

async function control(base: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`control ${path}: ${res.status}`);
  return res.json();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-bench-inc-'));
  const sim = await spawnSimulator(N, 2);
  const store = await openSqliteStore({ path: join(dir, 'store.db') });
  const remote = createMarketplaceClient({ baseUrl: sim.url, token: TOKEN, requestsPerMinute: 0 });
  const engine = new SyncEngine({ remote, store, options: { pageSize: 1000 } });
  try {
    let t = performance.now();
    const full = await engine.syncAll({ trigger: 'manual', mode: 'auto' });
    const fullMs = performance.now() - t;
    if (full.status !== 'success' || full.run?.mode !== 'full') throw new Error(`full sync: ${full.status}`);
    const d1 = (await control(sim.controlUrl, '/digest')) as { digest: string };
    if (d1.digest !== (await store.digest())) throw new Error('digest differs after the full sync');
    console.log(`full sync        : ${N} skills in ${fullMs.toFixed(0)} ms`);

    await control(sim.controlUrl, '/mutate', { n: CHANGED, kinds: ['update'] });
    t = performance.now();
    const inc = await engine.syncAll({ trigger: 'schedule', mode: 'auto' });
    const incMs = performance.now() - t;
    if (inc.status !== 'success' || inc.run?.mode !== 'incremental')
      throw new Error(`incremental sync: ${inc.status} ${inc.run?.mode}`);
    const d2 = (await control(sim.controlUrl, '/digest')) as { digest: string };
    const converged = d2.digest === (await store.digest());
    if (!converged) throw new Error('digest differs after the incremental sync');
    const ratio = incMs / fullMs;
    console.log(
      `incremental sync : ${CHANGED} changed (${inc.run.upserted} upserted, ${inc.run.unchanged} unchanged, ${inc.run.pages} pages) in ${incMs.toFixed(0)} ms`,
    );
    console.log(`ratio incremental / full = ${ratio.toFixed(4)} (target <= 0.05)`);
    console.log(
      JSON.stringify({
        bench: 'sync-incremental',
        skills: N,
        changed: CHANGED,
        fullMs: Math.round(fullMs),
        incrementalMs: Math.round(incMs),
        incrementalUpserted: inc.run.upserted,
        ratioToFull: Number(ratio.toFixed(4)),
        converged,
      }),
    );
  } finally {
    await engine.close();
    await remote.close();
    await store.close();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
