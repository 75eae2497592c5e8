/**
 * Resume after a crash: a `skillsync sync` child process is killed with SIGKILL in the middle of
 * its listing, then started again. The second run resumes from the checkpoint committed with the
 * last applied page, refetches at most one page's worth, and converges to the digest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../simulator/index.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const TOKEN = 'resume-test-token-0123456789';
const ROOT = resolve(import.meta.dirname, '..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startSync(
  sim: SimulatorHandle,
  dbPath: string,
): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'sync', '--json'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ATOM_SAAS_API_URL: sim.url,
      ATOM_SAAS_API_TOKEN: TOKEN,
      SKILLSYNC_DATABASE_URL: `sqlite:${dbPath}`,
      ATOM_SAAS_PAGE_SIZE: '50',
      ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return { child, done };
}

function listRequests(sim: SimulatorHandle): number {
  return Object.values(sim.control.counters().requests['list_skills'] ?? {}).reduce((a, b) => a + b, 0);
}

describe('resume after SIGKILL', () => {
  it('a killed `skillsync sync` resumes from its checkpoint and converges', async () => {
    const sim = await startSimulator({
      skills: 4000,
      seed: 12,
      token: TOKEN,
      faults: [{ fault: 'latency', route: 'list_skills', latencyMs: 40 }],
    });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'skillsync-resume-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dbPath = join(dir, 'store.db');
    const totalPages = 4000 / 50;

    const first = startSync(sim, dbPath);
    cleanups.push(() => {
      first.child.kill('SIGKILL');
    });
    // Kill it mid-listing: after some pages, well before the end.
    const deadline = Date.now() + 60_000;
    while (listRequests(sim) < 12) {
      if (Date.now() > deadline) throw new Error('the child made no progress');
      await new Promise((r) => setTimeout(r, 10));
    }
    first.child.kill('SIGKILL');
    await first.done;

    let store = await openSqliteStore({ path: dbPath });
    const checkpoint = await store.getCheckpoint();
    expect(checkpoint).not.toBeNull();
    const applied = checkpoint?.pagesApplied ?? 0;
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(totalPages);
    expect((await store.stats(Date.now())).skills).toBe(checkpoint?.skillsApplied);
    await store.close();

    const before = listRequests(sim);
    const second = startSync(sim, dbPath);
    let out = '';
    second.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    expect(await second.done).toBe(0);
    const refetched = listRequests(sim) - before - (totalPages - applied);
    // At most one page's worth of what was already applied is fetched again.
    expect(refetched).toBeLessThanOrEqual(1);
    const run = JSON.parse(out) as { resumedFromCheckpoint: boolean; status: string; pages: number };
    expect(run.status).toBe('success');
    expect(run.resumedFromCheckpoint).toBe(true);
    expect(run.pages).toBe(totalPages - applied);

    store = await openSqliteStore({ path: dbPath });
    cleanups.push(() => store.close());
    expect(await store.digest()).toBe(sim.control.digest());
    expect(await store.getCheckpoint()).toBeNull();
    const state = await store.getSyncState();
    expect(state.lastCompleteListingAt).not.toBeNull();
    // The killed run is not left 'running' in the history.
    const runs = (await store.listRuns({ limit: 10, offset: 0 })).items;
    expect(runs.map((r) => r.status).sort()).toEqual(['failed', 'success']);
    expect(runs.find((r) => r.status === 'failed')?.error).toMatch(/interrupted/);
  }, 120_000);
});
