/**
 * bench/sync-full: full sync throughput of the SyncEngine, simulator -> SQLite.
 *
 * Measures, with the simulator in its own process (it is "the remote") and pages of 1,000,
 * request budget unlimited:
 *   1. fetch-only pass: the marketplace client lists all 100,000 skills (HTTP, JSON, validation);
 *   2. store-only pass: the engine's write path over the same pages already in memory (content
 *      hash, local states, conflict resolution, applySkillPage with its checkpoint) into a
 *      fresh SQLite file;
 *   3. the full sync: SyncEngine.syncAll into another fresh SQLite file (fetch of page n+1
 *      overlapped with the write of page n).
 *   Figures: skills/s of (3) (target >= 50,000/s) and ratio (3) / ((1) + (2)) (target <= 1.25).
 *   4. 1,000,000 skills: a full sync by the shipped program (`skillsync sync --full`, compiled
 *      first with the build's tsc step) in a child process, its peak RSS (target <= 256 MB) and
 *      its time against a 100,000-skill sync by the same command (target <= 11x).
 *
 * Run: npx tsx bench/sync-full.ts            (SKIP_1M=1 to leave out step 4)
 * Last line: one JSON object with "bench": "sync-full".
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { resolveBatch, type IncomingSkill } from '../src/core/conflicts.js';
import type { SkillPage } from '../src/remote/contract.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { RunRecord } from '../src/store/types.js';
import { hashSkill } from '../src/sync/skill-hash.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

const TOKEN = 'bench-token-0123456789';
const PAGE = 1000;
const TTL = 24 * 3_600_000;

interface SimProcess {
  url: string;
  controlUrl: string;
  stop(): Promise<void>;
}

/** Starts the simulator in a child process (role "sim" of this file). */
export async function spawnSimulator(skills: number, seed = 1): Promise<SimProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--role', 'sim', String(skills), String(seed)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  const info = JSON.parse(line) as { url: string; controlUrl: string };
  return {
    ...info,
    // Idempotent: a second stop of an exited child resolves at once (it waited for an exit
    // event that never came, and the bench ended with an unsettled top-level await, code 13).
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function roleSim(skills: number, seed: number): Promise<void> {
  const { startSimulator } = await import('../simulator/index.js');
  const sim = await startSimulator({ skills, seed, token: TOKEN });
  process.stdout.write(`${JSON.stringify({ url: sim.url, controlUrl: sim.controlUrl })}\n`);
  process.once('SIGTERM', () => {
    void sim.close().then(() => process.exit(0));
  });
}

function client(url: string) {
  return createMarketplaceClient({ baseUrl: url, token: TOKEN, requestsPerMinute: 0 });
}

/** One full sync into a fresh SQLite file; returns its time. */
export async function timedFullSync(url: string, dbPath: string): Promise<{ ms: number; skills: number }> {
  const store = await openSqliteStore({ path: dbPath });
  const remote = client(url);
  const engine = new SyncEngine({ remote, store, options: { pageSize: PAGE } });
  const t = performance.now();
  const r = await engine.syncAll({ trigger: 'manual', mode: 'full' });
  const ms = performance.now() - t;
  if (r.status !== 'success') throw new Error(`sync ${r.status}: ${r.error?.message}`);
  const skills = (await store.stats(Date.now())).skills;
  await engine.close();
  await remote.close();
  await store.close();
  return { ms, skills };
}

interface ChildSync {
  ms: number;
  skills: number;
  maxRssMb: number;
}

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/src/cli/main.js');

/** Compiles the shipped program (`npm run build`'s tsc step) so the children run what users run. */
function buildCli(): void {
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
}

/** Peak resident set (VmHWM) of a live process, in kB; 0 once it is gone. */
function peakRssKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * `skillsync sync --full --json` (compiled, no tsx loader in the process) into a fresh SQLite
 * file: the sync process as shipped. Time from its run record; peak RSS sampled from
 * /proc/<pid>/status (VmHWM is the high-water mark, so sampling every 20 ms misses nothing but
 * the last few milliseconds of shutdown).
 */
async function childSync(url: string, dbPath: string): Promise<ChildSync> {
  const child = spawn(process.execPath, [CLI, 'sync', '--full', '--json'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ATOM_SAAS_API_URL: url,
      ATOM_SAAS_API_TOKEN: TOKEN,
      ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
      ATOM_SAAS_PAGE_SIZE: String(PAGE),
      SKILLSYNC_DATABASE_URL: `sqlite:${dbPath}`,
      SKILLSYNC_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let peakKb = 0;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, peakRssKb(child.pid!));
  }, 20);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`sync child exited with ${code}: ${out.slice(0, 500)}`);
  const run = JSON.parse(out) as RunRecord;
  const check = await openSqliteStore({ path: dbPath, readonly: true });
  const skills = (await check.stats(Date.now())).skills;
  await check.close();
  return { ms: run.finishedAt! - run.startedAt, skills, maxRssMb: peakKb / 1024 };
}

async function fetchAll(url: string): Promise<{ ms: number; pages: SkillPage[] }> {
  const remote = client(url);
  const pages: SkillPage[] = [];
  const t = performance.now();
  let cursor = '';
  for (;;) {
    const p = await remote.listSkills({ pageSize: PAGE, cursor });
    pages.push(p);
    if (!p.next_cursor || p.received === 0) break;
    cursor = p.next_cursor;
  }
  const ms = performance.now() - t;
  await remote.close();
  return { ms, pages };
}

async function storeOnly(pages: SkillPage[], dbPath: string): Promise<number> {
  const store = await openSqliteStore({ path: dbPath });
  const t = performance.now();
  let n = 0;
  for (const [i, page] of pages.entries()) {
    const now = Date.now();
    const incoming: IncomingSkill[] = page.skills.map((skill) => ({ skill, contentHash: hashSkill(skill) }));
    const states = await store.getLocalStates(incoming.map((x) => x.skill.skill_id));
    const { items } = resolveBatch(incoming, states, 'remote_wins');
    n += items.length;
    await store.applySkillPage({
      items,
      tombstones: [],
      source: 'full',
      now,
      ttlMs: TTL,
      epoch: null,
      guard: 'listing',
      checkpoint:
        i === pages.length - 1
          ? null
          : {
              runId: 1,
              mode: 'full',
              startedAt: now,
              nextPage: i + 2,
              cursor: 'x',
              pageSize: PAGE,
              updatedSince: null,
              epoch: null,
              pagesApplied: i + 1,
              skillsApplied: n,
            },
    });
  }
  const ms = performance.now() - t;
  await store.close();
  return ms;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-bench-sync-'));
  const N = 100_000;
  buildCli();
  const sim = await spawnSimulator(N);
  try {
    // Warm-up: the simulator builds its JSON lazily; every pass then sees the same server.
    await fetchAll(sim.url);
    const fetchOnly = await fetchAll(sim.url);
    console.log(
      `fetch-only : ${N} skills in ${fetchOnly.ms.toFixed(0)} ms (${((N / fetchOnly.ms) * 1000).toFixed(0)}/s)`,
    );
    const storeMs = await storeOnly(fetchOnly.pages, join(dir, 'store-only.db'));
    fetchOnly.pages.length = 0;
    console.log(
      `store-only : ${N} skills in ${storeMs.toFixed(0)} ms (${((N / storeMs) * 1000).toFixed(0)}/s)`,
    );
    const full = await timedFullSync(sim.url, join(dir, 'full.db'));
    if (full.skills !== N) throw new Error(`synced ${full.skills} skills, expected ${N}`);
    const rate = (N / full.ms) * 1000;
    const ratio = full.ms / (fetchOnly.ms + storeMs);
    console.log(`full sync  : ${N} skills in ${full.ms.toFixed(0)} ms (${rate.toFixed(0)}/s)`);
    console.log(`ratio full / (fetch-only + store-only) = ${ratio.toFixed(3)} (target <= 1.25)`);
    const child100k = await childSync(sim.url, join(dir, 'child-100k.db'));
    console.log(`child 100k : ${child100k.ms.toFixed(0)} ms, peak RSS ${child100k.maxRssMb.toFixed(0)} MB`);
    await sim.stop();

    let million: ChildSync | null = null;
    if (process.env['SKIP_1M'] !== '1') {
      const big = await spawnSimulator(1_000_000);
      try {
        await fetchAll(big.url).then((r) => (r.pages.length = 0));
        million = await childSync(big.url, join(dir, 'child-1m.db'));
      } finally {
        await big.stop();
      }
      console.log(
        `child 1M   : ${million.skills} skills in ${million.ms.toFixed(0)} ms, peak RSS ${million.maxRssMb.toFixed(0)} MB (target <= 256), ` +
          `time ${(million.ms / child100k.ms).toFixed(2)}x the 100k child (target <= 11)`,
      );
    }
    console.log(
      JSON.stringify({
        bench: 'sync-full',
        skills: N,
        pageSize: PAGE,
        fetchOnlyMs: Math.round(fetchOnly.ms),
        storeOnlyMs: Math.round(storeMs),
        fullSyncMs: Math.round(full.ms),
        skillsPerSecond: Math.round(rate),
        ratioToFetchPlusStore: Number(ratio.toFixed(3)),
        child100kMs: Math.round(child100k.ms),
        child100kPeakRssMb: Math.round(child100k.maxRssMb),
        million: million
          ? {
              ms: Math.round(million.ms),
              peakRssMb: Math.round(million.maxRssMb),
              timeRatioTo100k: Number((million.ms / child100k.ms).toFixed(2)),
            }
          : null,
      }),
    );
  } finally {
    await sim.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const roleIndex = process.argv.indexOf('--role');
if (roleIndex >= 0) {
  const role = process.argv[roleIndex + 1];
  const a = process.argv[roleIndex + 2] ?? '';
  const b = process.argv[roleIndex + 3] ?? '';
  if (role === 'sim') await roleSim(Number(a), Number(b || 1));
} else if (process.argv[1] !== undefined && new URL(import.meta.url).pathname === process.argv[1]) {
  await main();
}
