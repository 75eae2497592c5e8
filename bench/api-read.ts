/**
 * bench/api-read: read throughput of the catalog API over a 100,000-skill SQLite store.
 *
 * Setup: the simulator (100,000 skills) is synced into a fresh SQLite file with pages of
 * 1,000; the service then runs in a child process (so the load generator does not share its
 * event loop) at log level `warn` with no remote activity (auto sync off), and autocannon
 * (10 connections, 5 s per scenario after a 1 s warm-up) measures, in the same run:
 *   0. a bare Fastify app (plain node, one JSON route, no logger): the floor of this machine,
 *      framework and load generator, to tell our overhead from theirs;
 *   1. the service's trivial JSON route (GET /healthz): the baseline of the ratios;
 *   2. a skill by id (GET /api/marketplace/skills/:id, random ids): target >= 10,000 req/s;
 *   3. a text search with a category filter (GET /api/marketplace/skills?query=<word>&category=<c>,
 *      random words and categories, 20 per page): target >= 2,000 req/s.
 * Each is also reported as a ratio to the baseline, with the server's CPU time per request
 * (process.cpuUsage of the child, user + system) and the load generator's, which are steadier
 * than req/s on a shared machine. The client and the server share the machine's cores: a
 * scenario's req/s is bounded by both.
 *
 * Requests are built once (2,000 random paths per scenario, sent in turn): autocannon's
 * per-request `setupRequest` roughly doubled the client's CPU per request and made the
 * load generator, not the server, the bottleneck of the cheap routes. No answer is cached by
 * the service: repeating a path costs what the first request did.
 *
 * Run: npx tsx bench/api-read.ts      (SKILLS=20000 for a quicker run)
 * Last line: one JSON object with "bench": "api-read".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { startSimulator } from '../simulator/index.js';
import { loadConfig } from '../src/config/load-config.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

const SERVE_FLAG = '--serve';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Answers the parent's 'cpu' message with this process's CPU time (for CPU per request). */
function answerCpu(): void {
  process.on('message', (m) => {
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
}

/** The bare Fastify app: plain node (no tsx), no logger, hooks or schemas. */
const BARE_FASTIFY = `
import Fastify from 'fastify';
const app = Fastify();
app.get('/healthz', async () => ({ status: 'ok' }));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.on('message', (m) => { if (m === 'cpu') process.send({ cpu: process.cpuUsage() }); });
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)); });
process.stdout.write('URL ' + url + '\\n');
`;

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
  answerCpu();
  process.stdout.write(`URL ${service.url}\n`);
  process.on('SIGTERM', () => {
    void service.stop().then(() => process.exit(0));
  });
}

interface Server {
  url: string;
  child: ChildProcess;
  cpu(): Promise<NodeJS.CpuUsage>;
}

interface Scenario {
  name: string;
  key: string;
  server: Server;
  paths: readonly string[];
}

interface Result {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, µs. */
  serverUs: number;
  /** Load generator CPU time per request, µs. */
  clientUs: number;
}

/** Starts a child that prints `URL <url>` and answers 'cpu' messages over IPC. */
async function startServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (line.startsWith('URL ')) resolve(line.slice(4));
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const cpu = () =>
    new Promise<NodeJS.CpuUsage>((resolve) => {
      child.once('message', (m) => resolve((m as { cpu: NodeJS.CpuUsage }).cpu));
      child.send('cpu');
    });
  return { url, child, cpu };
}

async function stopServer(server: Server): Promise<void> {
  const exited = new Promise((r) => server.child.on('exit', r));
  server.child.kill('SIGTERM');
  await exited;
}

async function measure(scenario: Scenario, seconds: number): Promise<Result> {
  const requests = scenario.paths.map((path) => ({ path }));
  const run = (duration: number) =>
    autocannon({ url: scenario.server.url, connections: 10, duration, requests });
  await run(1); // warm-up: JIT, SQLite page cache
  const server0 = await scenario.server.cpu();
  const client0 = process.cpuUsage();
  const result = await run(seconds);
  const client = process.cpuUsage(client0);
  const server1 = await scenario.server.cpu();
  const n = Math.max(1, result.requests.total);
  return {
    rps: Math.round(result.requests.average),
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    serverUs: Number(((server1.user + server1.system - server0.user - server0.system) / n).toFixed(1)),
    clientUs: Number(((client.user + client.system) / n).toFixed(1)),
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

    // 2. The service in its own process, and a bare Fastify app beside it.
    const service = await startServer([
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      SERVE_FLAG,
      dbPath,
    ]);
    const bare = await startServer(['--input-type=module', '-e', BARE_FASTIFY]);

    const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
    const paths = (make: () => string): string[] => Array.from({ length: 2000 }, make);
    const scenarios: Scenario[] = [
      { name: 'bare Fastify (/healthz)', key: 'bare', server: bare, paths: ['/healthz'] },
      { name: 'trivial JSON (/healthz)', key: 'base', server: service, paths: ['/healthz'] },
      {
        name: 'skill by id',
        key: 'id',
        server: service,
        paths: paths(() => `/api/marketplace/skills/${encodeURIComponent(pick(ids))}`),
      },
      {
        name: 'text search + category',
        key: 'search',
        server: service,
        paths: paths(
          () =>
            `/api/marketplace/skills?query=${encodeURIComponent(pick(words))}&category=${encodeURIComponent(pick(categories))}`,
        ),
      },
    ];
    console.log(
      `load average at start: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const results: Record<string, Result> = {};
    for (const s of scenarios) {
      const r = await measure(s, 5);
      results[s.key] = r;
      console.log(
        `${s.name.padEnd(26)} ${String(r.rps).padStart(7)} req/s  p99 ${r.p99} ms  errors ${r.errors}` +
          `  server ${r.serverUs} µs/req  client ${r.clientUs} µs/req`,
      );
    }
    await stopServer(service);
    await stopServer(bare);

    const floor = results['bare']!;
    const base = results['base']!;
    const byId = results['id']!;
    const search = results['search']!;
    console.log(
      `trivial route vs bare Fastify: ${(base.rps / floor.rps).toFixed(2)} of its req/s, ` +
        `${(base.serverUs / floor.serverUs).toFixed(2)}x its server CPU per request`,
    );
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
        load_average: Number(loadavg()[0]!.toFixed(2)),
        bare_fastify_rps: floor.rps,
        bare_fastify_server_us: floor.serverUs,
        baseline_rps: base.rps,
        baseline_server_us: base.serverUs,
        baseline_client_us: base.clientUs,
        by_id_rps: byId.rps,
        by_id_p99_ms: byId.p99,
        by_id_ratio: Number((byId.rps / base.rps).toFixed(3)),
        by_id_server_us: byId.serverUs,
        search_category_rps: search.rps,
        search_category_p99_ms: search.p99,
        search_category_ratio: Number((search.rps / base.rps).toFixed(3)),
        search_category_server_us: search.serverUs,
        errors: floor.errors + base.errors + byId.errors + search.errors,
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
