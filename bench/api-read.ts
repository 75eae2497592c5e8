/**
 * bench/api-read: read throughput of the catalog API over a 100,000-skill SQLite store.
 *
 * Setup: the simulator (100,000 skills) is synced into a fresh SQLite file with pages of
 * 1,000; the service then runs in a child process (so the load generator does not share its
 * event loop) at log level `warn` with no remote activity (auto sync off), and autocannon
 * (10 connections, 5 s per scenario after a 1 s warm-up) measures, in the same run:
 *   0. a trivial JSON route (GET /healthz): the baseline of this machine and framework;
 *   1. a skill by id (GET /api/marketplace/skills/:id, random ids): target >= 10,000 req/s;
 *   2. a text search with a category filter (GET /api/marketplace/skills?query=<word>&category=<c>,
 *      random words and categories, 20 per page): target >= 2,000 req/s.
 * Each is also reported as a ratio to the baseline.
 *
 * Run: npx tsx bench/api-read.ts      (SKILLS=20000 for a quicker run)
 * Last line: one JSON object with "bench": "api-read".
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { startSimulator } from '../simulator/index.js';
import { loadConfig } from '../src/config/load-config.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

const SERVE_FLAG = '--serve';

async function serveMode(dbPath: string): Promise<void> {
  const { createService } = await import('../src/service.js');
  const { config } = loadConfig({
    envFile: null,
    env: {
      ATOM_SAAS_API_URL: 'http://127.0.0.1:9/unused',
      ATOM_SAAS_AUTO_SYNC: 'false',
      ATOM_SAAS_SYNC_ON_START: 'false',
      SKILLSYNC_DATABASE_URL: `sqlite:${dbPath}`,
      SKILLSYNC_PORT: '0',
      SKILLSYNC_LOG_LEVEL: 'warn',
    },
  });
  const service = await createService({ config });
  await service.start();
  process.stdout.write(`URL ${service.url}\n`);
  process.on('SIGTERM', () => {
    void service.stop().then(() => process.exit(0));
  });
}

interface Scenario {
  name: string;
  paths: () => string;
}

async function measure(
  url: string,
  scenario: Scenario,
  seconds: number,
): Promise<{ rps: number; p99: number; errors: number }> {
  const run = (duration: number) =>
    autocannon({
      url,
      connections: 10,
      duration,
      requests: [
        {
          setupRequest: (req) => {
            req.path = scenario.paths();
            return req;
          },
        },
      ],
    });
  await run(1); // warm-up: JIT, SQLite page cache
  const result = await run(seconds);
  return {
    rps: Math.round(result.requests.average),
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

async function main(): Promise<void> {
  const skills = Number(process.env['SKILLS'] ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-api-read-'));
  const dbPath = join(dir, 'bench.db');
  try {
    // 1. Dataset: a full sync of the simulator into SQLite.
    const sim = await startSimulator({ skills, seed: 5 });
    const store = await openSqliteStore({ path: dbPath });
    const remote = createMarketplaceClient({ baseUrl: sim.url, requestsPerMinute: 0 });
    const engine = new SyncEngine({ remote, store, options: { pageSize: 1000 } });
    const t0 = performance.now();
    const run = await engine.syncAll({ trigger: 'cli', mode: 'full' });
    const syncSeconds = (performance.now() - t0) / 1000;
    if (run.status !== 'success') throw new Error(`sync ${run.status}: ${run.error?.message}`);
    const ids = sim.control.liveSkillIds();
    const categories = (await store.listCategories(Date.now())).map((c) => c.name);
    const sample = await store.searchSkills({ page: 1, pageSize: 100, now: Date.now(), sort: 'rating' });
    const words = [
      ...new Set(sample.items.flatMap((s) => String(s.base.name).split(/\s+/)).filter((w) => w.length > 3)),
    ];
    const stats = await store.stats(Date.now());
    await engine.close();
    await remote.close();
    await store.close();
    await sim.close();
    console.log(
      `dataset: ${stats.skills} skills, ${categories.length} categories, synced in ${syncSeconds.toFixed(1)} s`,
    );

    // 2. The service in its own process.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL(import.meta.url).pathname, SERVE_FLAG, dbPath],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const url = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        if (line.startsWith('URL ')) resolve(line.slice(4));
      });
      child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });

    const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
    const scenarios: Scenario[] = [
      { name: 'trivial JSON (/healthz)', paths: () => '/healthz' },
      { name: 'skill by id', paths: () => `/api/marketplace/skills/${encodeURIComponent(pick(ids))}` },
      {
        name: 'text search + category',
        paths: () =>
          `/api/marketplace/skills?query=${encodeURIComponent(pick(words))}&category=${encodeURIComponent(pick(categories))}`,
      },
    ];
    const results: Record<string, { rps: number; p99: number; errors: number }> = {};
    for (const s of scenarios) {
      results[s.name] = await measure(url, s, 5);
      const r = results[s.name]!;
      console.log(
        `${s.name.padEnd(26)} ${String(r.rps).padStart(7)} req/s  p99 ${r.p99} ms  errors ${r.errors}`,
      );
    }
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));

    const base = results[scenarios[0]!.name]!;
    const byId = results[scenarios[1]!.name]!;
    const search = results[scenarios[2]!.name]!;
    console.log(
      `ratios to the trivial route: by id ${(byId.rps / base.rps).toFixed(2)}, search ${(search.rps / base.rps).toFixed(2)}`,
    );
    console.log(
      `targets: by id >= 10,000 req/s ${byId.rps >= 10_000 ? 'MET' : 'MISSED'}; search >= 2,000 req/s ${search.rps >= 2_000 ? 'MET' : 'MISSED'}`,
    );
    console.log(
      JSON.stringify({
        bench: 'api-read',
        skills: stats.skills,
        baseline_rps: base.rps,
        by_id_rps: byId.rps,
        by_id_p99_ms: byId.p99,
        by_id_ratio: Number((byId.rps / base.rps).toFixed(3)),
        search_category_rps: search.rps,
        search_category_p99_ms: search.p99,
        search_category_ratio: Number((search.rps / base.rps).toFixed(3)),
        errors: base.errors + byId.errors + search.errors,
        by_id_target_met: byId.rps >= 10_000,
        search_target_met: search.rps >= 2_000,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === SERVE_FLAG) await serveMode(process.argv[3]!);
else await main();
