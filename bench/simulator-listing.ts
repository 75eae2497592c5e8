/**
 * bench/simulator-listing: can the simulator keep up with a sync client, and does a
 * million-skill catalog fit in memory?
 *
 *  1. listing: a plain undici client (one keep-alive connection) pages through 100,000 skills
 *     with pages of 1,000 (`?page=N&page_size=1000`, JSON.parse of every body), three passes,
 *     best pass reported. Target >= 100,000 skills/s.
 *  2. baseline in the same run: a plain node:http server answering the same requests with
 *     pre-built page bodies of the same skills (built from the same catalog beforehand, so
 *     the bytes are identical). The ratio simulator/baseline says what generating pages on
 *     the fly costs.
 *  3. memory: a 1,000,000-skill catalog with live changes (1,000 changes/s) and WebSocket
 *     events, after 10 s of changes, some listing pages, an incremental listing and a full
 *     digest: RSS and peak RSS. Target <= 300 MB.
 *
 * Each server runs in its own child process (this file with --child <kind>), so it does not
 * share an event loop with the client and its RSS is its own.
 *
 * Run: npx tsx bench/simulator-listing.ts [--skills 100000] [--page 1000] [--memory-skills 1000000]
 * The last line is one JSON object with the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { Catalog } from '../simulator/catalog.js';
import { startSimulator } from '../simulator/index.js';
import { systemClock } from '../src/core/clock.js';

function arg(name: string, fallback: number): number {
  const k = process.argv.indexOf(`--${name}`);
  return k >= 0 ? Number(process.argv[k + 1]) : fallback;
}

const SKILLS = arg('skills', 100_000);
const PAGE = arg('page', 1000);
const MEMORY_SKILLS = arg('memory-skills', 1_000_000);
const SEED = 42;

// ---------------------------------------------------------------------------------------------
// Children

async function childSimulator(): Promise<void> {
  const sim = await startSimulator({ skills: SKILLS, seed: SEED });
  process.stdout.write(`${JSON.stringify({ url: `${sim.url}${sim.paths.skills}` })}\n`);
}

async function childBaseline(): Promise<void> {
  // Same bytes as the simulator's pages, built once up front.
  const cat = new Catalog({ seed: SEED, skills: SKILLS, categories: 30, clock: systemClock });
  const pages: Buffer[] = [];
  const totalPages = Math.ceil(SKILLS / PAGE);
  for (let p = 0; p < totalPages; p++) {
    const items: string[] = [];
    for (let i = p * PAGE; i < Math.min(SKILLS, (p + 1) * PAGE); i++) items.push(cat.skillJson(i));
    pages.push(
      Buffer.from(
        `{"skills":[${items.join(',')}],"page":${p + 1},"page_size":${PAGE},"total":${SKILLS},"total_pages":${totalPages},"has_more":${p + 1 < totalPages}}`,
      ),
    );
  }
  const empty = Buffer.from(`{"skills":[],"page":0,"page_size":${PAGE},"total":${SKILLS}}`);
  const server = createServer((req, res) => {
    const page = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('page') ?? '1');
    const body = pages[page - 1] ?? empty;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/skills` })}\n`);
}

async function childMemory(): Promise<void> {
  const t0 = performance.now();
  const sim = await startSimulator({ skills: MEMORY_SKILLS, seed: SEED, changesPerSecond: 1000 });
  const buildMs = performance.now() - t0;
  const rssBuiltMb = process.memoryUsage().rss / 2 ** 20;
  // The parent connects a WebSocket listener now, so events are really produced and sent.
  process.stdout.write(`${JSON.stringify({ wsUrl: sim.wsUrl })}\n`);
  const since = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 10_000));
  const agent = new Agent({ connections: 1 });
  for (const q of [
    'page=1&page_size=1000',
    'page=500&page_size=1000',
    'page=1000&page_size=1000',
    'cursor=&page_size=1000',
    `updated_since=${since}&include_deleted=true&page_size=1000`,
  ]) {
    const r = await request(`${sim.url}${sim.paths.skills}?${q}`, { dispatcher: agent });
    await r.body.json();
  }
  const t1 = performance.now();
  sim.control.digest();
  const digestMs = performance.now() - t1;
  const stats = sim.control.stats();
  process.stdout.write(
    `${JSON.stringify({
      rssBuiltMb,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      buildMs,
      digestMs,
      changes: stats.generation,
      liveSkills: stats.liveSkills,
    })}\n`,
  );
  await agent.close();
  await sim.close();
}

/** What the runtime alone costs (node + the tsx loader), to read the figures above against. */
function childIdle(): void {
  process.stdout.write(`${JSON.stringify({ rssMb: process.memoryUsage().rss / 2 ** 20 })}\n`);
}

// ---------------------------------------------------------------------------------------------
// Parent

interface Child {
  child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
}

/** How children are started: through tsx by default, or a plain-node bundle (memory figures). */
let childEntry: string[] = ['--import', 'tsx', fileURLToPath(import.meta.url)];

/**
 * Bundles this file to plain JavaScript with esbuild (tsx's own dependency), so the memory
 * child runs as production does (`node` on compiled code) instead of carrying tsx's loader
 * thread, which alone costs ~40 MB RSS. Falls back to tsx when esbuild is not there.
 */
async function plainNodeEntry(): Promise<string[] | null> {
  try {
    const esbuild = await import('esbuild');
    const dir = mkdtempSync(join(tmpdir(), 'skillsync-bench-'));
    const outfile = join(dir, 'simulator-listing.mjs');
    await esbuild.build({
      entryPoints: [fileURLToPath(import.meta.url)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      external: ['bufferutil', 'utf-8-validate'],
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
      logLevel: 'error',
    });
    return [outfile];
  } catch (err) {
    console.log(
      `  (esbuild unavailable, memory child runs under tsx: ${err instanceof Error ? err.message : String(err)})`,
    );
    return null;
  }
}

async function spawnChild(kind: string): Promise<Child> {
  const child = spawn(process.execPath, [...childEntry, '--child', kind, ...process.argv.slice(2)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const lines = rl[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done) throw new Error(`child ${kind} ended early`);
    return JSON.parse(r.value) as Record<string, unknown>;
  };
  return { child, next };
}

async function pass(url: string, agent: Agent): Promise<{ skills: number; ms: number }> {
  const t0 = performance.now();
  let skills = 0;
  for (let page = 1; ; page++) {
    const r = await request(`${url}?page=${page}&page_size=${PAGE}`, { dispatcher: agent });
    const body = JSON.parse(await r.body.text()) as { skills: unknown[] };
    skills += body.skills.length;
    if (body.skills.length < PAGE) break;
  }
  return { skills, ms: performance.now() - t0 };
}

async function measure(kind: 'simulator' | 'baseline'): Promise<number> {
  const { child, next } = await spawnChild(kind);
  const line = await next();
  const agent = new Agent({ connections: 1, pipelining: 1 });
  try {
    await pass(line['url'] as string, agent); // warm-up
    let best = 0;
    for (let k = 0; k < 3; k++) {
      const r = await pass(line['url'] as string, agent);
      if (r.skills !== SKILLS) throw new Error(`${kind}: read ${r.skills} skills, expected ${SKILLS}`);
      const rate = r.skills / (r.ms / 1000);
      console.log(
        `  ${kind} pass ${k + 1}: ${r.skills} skills in ${r.ms.toFixed(0)} ms = ${Math.round(rate)} skills/s`,
      );
      best = Math.max(best, rate);
    }
    return best;
  } finally {
    await agent.close();
    child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  console.log(`bench/simulator-listing: ${SKILLS} skills, pages of ${PAGE}, plain undici client`);
  const loadBefore = loadavg()[0] ?? 0;
  // Absolute rates depend on what else runs on the machine; the ratio to the baseline does not.
  console.log(`  load average (1 min) at start: ${loadBefore.toFixed(1)}`);
  const sim = await measure('simulator');
  const base = await measure('baseline');
  console.log(
    `listing: simulator ${Math.round(sim)} skills/s, baseline (pre-built pages) ${Math.round(base)} skills/s, ratio ${(sim / base).toFixed(2)}`,
  );
  const plain = await plainNodeEntry();
  if (plain) childEntry = plain;
  const runtime = plain ? 'plain node (esbuild bundle)' : 'node + tsx loader';
  const idle = await spawnChild('idle');
  const idleRss = (await idle.next())['rssMb'] as number;
  console.log(
    `memory: ${MEMORY_SKILLS} skills with 1000 changes/s for 10 s, a WebSocket listener, listings, a digest ...`,
  );
  const memChild = await spawnChild('memory');
  const { wsUrl } = await memChild.next();
  const ws = new WebSocket(wsUrl as string);
  let events = 0;
  ws.on('message', () => events++);
  const mem = await memChild.next();
  ws.close();
  await new Promise((r) => memChild.child.once('exit', r));
  const rss = mem['rssMb'] as number;
  const maxRss = mem['maxRssMb'] as number;
  console.log(
    `memory: built in ${(mem['buildMs'] as number).toFixed(0)} ms (RSS ${(mem['rssBuiltMb'] as number).toFixed(0)} MB); after ${String(mem['changes'])} changes and ${events} events received: RSS ${rss.toFixed(0)} MB, peak ${maxRss.toFixed(0)} MB; full digest ${((mem['digestMs'] as number) / 1000).toFixed(1)} s`,
  );
  console.log(`memory: runtime ${runtime}; the runtime alone (no simulator) is ${idleRss.toFixed(0)} MB RSS`);
  const result = {
    bench: 'simulator-listing',
    skills: SKILLS,
    page_size: PAGE,
    simulator_skills_per_s: Math.round(sim),
    baseline_skills_per_s: Math.round(base),
    ratio_vs_baseline: Number((sim / base).toFixed(3)),
    listing_target_met: sim >= 100_000,
    load_avg_1m: Number(loadBefore.toFixed(1)),
    memory_skills: MEMORY_SKILLS,
    memory_rss_mb: Math.round(rss),
    memory_peak_rss_mb: Math.round(maxRss),
    memory_build_ms: Math.round(mem['buildMs'] as number),
    memory_digest_ms: Math.round(mem['digestMs'] as number),
    memory_events_received: events,
    memory_runtime: plain ? 'node' : 'node+tsx',
    runtime_idle_rss_mb: Math.round(idleRss),
    memory_target_met: maxRss <= 300,
  };
  console.log(JSON.stringify(result));
}

const childKind = process.argv.includes('--child')
  ? process.argv[process.argv.indexOf('--child') + 1]
  : undefined;
if (childKind === 'simulator') await childSimulator();
else if (childKind === 'baseline') await childBaseline();
else if (childKind === 'memory') await childMemory();
else if (childKind === 'idle') childIdle();
else await main();
