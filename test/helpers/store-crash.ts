/**
 * Crash-safety scenario, reusable by every Store implementation: a child process applies
 * pages with checkpoints in a loop and is SIGKILLed at seeded random moments; after each kill
 * the store must open, pass its integrity check, and hold exactly the data its checkpoint
 * covers (digest comparison against the rebuilt catalog: no half page, no checkpoint ahead).
 *
 *   await runCrashScenario({ url: 'sqlite:/tmp/x.db', kills: 20, seed: 7 });
 *
 * `url` must name an empty store (fresh file or schema) that stays the same across kills.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { openStore } from '../../src/store/open-store.js';
import { DEFAULT_CRASH_WORKLOAD, expectedCrashDigest, type CrashWorkload } from './store-crash-workload.js';

export interface CrashScenarioOptions {
  url: string;
  kills: number;
  seed: number;
  workload?: CrashWorkload;
  /** Longest random delay between "ready" and SIGKILL. Default 250 ms. */
  maxDelayMs?: number;
  /** Called after each verified kill (progress logs). */
  onKill?: (report: CrashKillReport) => void;
}

export interface CrashKillReport {
  kill: number;
  delayMs: number;
  pagesApplied: number;
}

export interface CrashScenarioResult {
  kills: number;
  pagesApplied: number;
  /** Kills after which the child had made progress since the previous one. */
  killsWithProgress: number;
  reports: CrashKillReport[];
}

/** mulberry32: small seeded PRNG, so a failing run replays from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHILD = fileURLToPath(new URL('./store-crash-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Bundles the child once with esbuild (tsx's own compiler) so each restart is a plain
 * `node child.mjs` (~0.1 s) instead of a tsx start (~1.5 s on a busy 2-core machine). The
 * bundle sits under node_modules/.cache so its bare imports (better-sqlite3, postgres)
 * resolve from the project's node_modules.
 */
async function bundleChild(): Promise<string> {
  const outDir = join(REPO, 'node_modules', '.cache', 'skillsync-crash');
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, `child-${process.pid}-${Date.now()}.mjs`);
  await build({
    entryPoints: [CHILD],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
  });
  return outfile;
}

async function runChildUntilKilled(
  childFile: string,
  url: string,
  w: CrashWorkload,
  delayMs: number,
): Promise<void> {
  const child = spawn(process.execPath, [childFile, url, String(w.pageSize), String(w.pool)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`crash child exited (${code}) before ready: ${stderr}`)));
  });
  await ready;
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  const { signal } = await exited;
  if (signal !== 'SIGKILL') throw new Error(`crash child ended by itself (${signal}): ${stderr}`);
}

/** Opens the store and checks it against its checkpoint; returns the pages applied. */
export async function verifyCrashStore(url: string, w: CrashWorkload): Promise<number> {
  const store = await openStore(url);
  try {
    const problems = await store.integrityCheck();
    if (problems.length > 0) throw new Error(`integrity check failed: ${problems.join('; ')}`);
    const cp = await store.getCheckpoint();
    const pages = cp?.pagesApplied ?? 0;
    if (cp !== null && (cp.nextPage !== pages + 1 || cp.skillsApplied !== pages * w.pageSize)) {
      throw new Error(`checkpoint is inconsistent with itself: ${JSON.stringify(cp)}`);
    }
    const digest = await store.digest();
    if (digest !== expectedCrashDigest(pages, w)) {
      throw new Error(
        `data does not match the checkpoint (${pages} pages): a page is half applied or missing`,
      );
    }
    return pages;
  } finally {
    await store.close();
  }
}

export async function runCrashScenario(options: CrashScenarioOptions): Promise<CrashScenarioResult> {
  const w = options.workload ?? DEFAULT_CRASH_WORKLOAD;
  const random = seededRandom(options.seed);
  const maxDelay = options.maxDelayMs ?? 250;
  const reports: CrashKillReport[] = [];
  const childFile = await bundleChild();
  let previous = await verifyCrashStore(options.url, w);
  let killsWithProgress = 0;
  try {
    for (let kill = 1; kill <= options.kills; kill++) {
      const delayMs = Math.floor(random() * maxDelay);
      await runChildUntilKilled(childFile, options.url, w, delayMs);
      const pages = await verifyCrashStore(options.url, w);
      if (pages < previous)
        throw new Error(`kill ${kill}: checkpoint went back from ${previous} to ${pages}`);
      if (pages > previous) killsWithProgress++;
      previous = pages;
      const report = { kill, delayMs, pagesApplied: pages };
      reports.push(report);
      options.onKill?.(report);
    }
  } finally {
    rmSync(childFile, { force: true });
  }
  return { kills: options.kills, pagesApplied: previous, killsWithProgress, reports };
}
