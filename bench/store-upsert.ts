/**
 * bench/store-upsert: the store's hot path.
 *
 * Measures, on 100,000 generated skills (~1 KB of JSON each, seeded) applied in pages of
 * 1,000 through Store.applySkillPage:
 *   - first load, skills/s, and its ratio to a raw better-sqlite3 prepared-statement insert of
 *     the same rows (same JSON, same pages, one transaction per page) measured in this run;
 *   - re-applying the same 100,000 unchanged skills (only fetched_at touched): speed-up over
 *     the first load;
 *   - searchSkills median / p95 latency for a text query with a category filter.
 * Then the same figures for PostgreSQL through openStore(SKILLSYNC_TEST_POSTGRES_URL or
 * postgres://postgres@127.0.0.1:5432/test) in a fresh schema, when the server is reachable.
 *
 * Run: npx tsx bench/store-upsert.ts [--skills 100000] [--page 1000] [--no-pg]
 * Targets: SQLite >= 150,000 skills/s and within 3x of raw; re-apply >= 2x faster;
 * search median < 5 ms; PostgreSQL >= 30,000 skills/s. Last line: one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { skillContentHash } from '../src/remote/contract.js';
import type { Skill } from '../src/remote/contract.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/store.js';
import type { ApplyPageInput, SkillUpsert } from '../src/store/types.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SKILLS = arg('skills', 100_000);
const PAGE = arg('page', 1000);
const SEARCHES = arg('searches', 300);
const WITH_PG = !args.includes('--no-pg');
const T0 = Date.UTC(2026, 0, 1);

// ---- data ----------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(42);
const SYLLABLES = [
  'da',
  'ta',
  'py',
  'ro',
  'ne',
  'lo',
  'ki',
  'mu',
  'sa',
  'ver',
  'tor',
  'lex',
  'zen',
  'qu',
  'fi',
  'gra',
];
/** 3,000 pseudo-words; texts draw them with a Zipf-like skew, like real prose. */
const VOCAB = Array.from({ length: 3000 }, (_, i) => {
  let w = '';
  let n = i + 7;
  do {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  } while (n > 0);
  return w;
});
const zipfWord = (): string => VOCAB[Math.min(VOCAB.length - 1, Math.floor(VOCAB.length ** random()) - 1)]!;
const words = (n: number): string => Array.from({ length: n }, zipfWord).join(' ');
const CATEGORIES = Array.from({ length: 24 }, (_, i) => `category-${i}`);
const TYPES = ['tool', 'workflow', 'agent', 'template', 'connector'];

function makeSkill(i: number): Skill {
  return {
    skill_id: `skill-${String(i).padStart(7, '0')}`,
    name: `${zipfWord()} ${zipfWord()} ${i}`,
    version: `1.${i % 10}.${i % 7}`,
    description: words(45),
    category: CATEGORIES[Math.floor(random() * CATEGORIES.length)]!,
    skill_type: TYPES[i % TYPES.length]!,
    author: `author-${i % 997}`,
    tags: [zipfWord(), zipfWord(), zipfWord()],
    python_packages: ['requests', 'pydantic'],
    npm_packages: [],
    examples: [words(12)],
    code: `def run(ctx):\n    return ctx.call("${zipfWord()}", ${i})\n`,
    parameters: { type: 'object', properties: { input: { type: 'string' } } },
    metadata: { license: 'MIT', homepage: `https://example.invalid/skills/${i}` },
    average_rating: Math.round(random() * 50) / 10,
    rating_count: Math.floor(random() * 500),
    install_count: Math.floor(random() * 100_000),
    created_at: new Date(T0 - i * 1000).toISOString(),
    updated_at: new Date(T0 + i * 1000).toISOString(),
  };
}

console.log(`generating ${SKILLS} skills ...`);
const skills = Array.from({ length: SKILLS }, (_, i) => makeSkill(i));
const upserts: SkillUpsert[] = skills.map((skill) => ({ skill, contentHash: skillContentHash(skill) }));
const avgBytes = Math.round(skills.slice(0, 1000).reduce((n, s) => n + JSON.stringify(s).length, 0) / 1000);
console.log(`average payload ${avgBytes} bytes`);

function pages(now: number): ApplyPageInput[] {
  const out: ApplyPageInput[] = [];
  for (let i = 0, p = 1; i < upserts.length; i += PAGE, p++) {
    out.push({
      items: upserts.slice(i, i + PAGE),
      tombstones: [],
      source: 'full',
      now,
      ttlMs: 3_600_000,
      epoch: 'bench',
      guard: 'listing',
      // The last page of a listing carries no checkpoint (as the engine sends it): the listing
      // is over, and a first load builds its deferred indexes in that page's transaction.
      checkpoint:
        i + PAGE >= upserts.length
          ? null
          : {
              runId: 1,
              mode: 'full',
              startedAt: now,
              nextPage: p + 1,
              cursor: null,
              pageSize: PAGE,
              updatedSince: null,
              epoch: 'bench',
              pagesApplied: p,
              skillsApplied: i + PAGE,
            },
    });
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const p95 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!;
};
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

// ---- measurements --------------------------------------------------------------------------

interface StoreFigures {
  loadSkillsPerSec: number;
  loadMs: number;
  /** CPU time of this process (user + system): steadier than wall time on a busy machine. */
  loadCpuMs: number;
  reapplySkillsPerSec: number;
  reapplyMs: number;
  reapplySpeedup: number;
  reapplyCpuSpeedup: number;
  searchMedianMs: number;
  /** Median CPU time per search; on PostgreSQL only the client's share. */
  searchCpuMedianMs: number;
  searchP95Ms: number;
  searchMeanHits: number;
}

async function measureStore(label: string, store: Store): Promise<StoreFigures> {
  let t = performance.now();
  let cpu = process.cpuUsage();
  for (const p of pages(T0)) await store.applySkillPage(p);
  const loadMs = performance.now() - t;
  const loadCpuMs = cpuMs(process.cpuUsage(cpu));
  const loaded = (await store.stats(T0)).skills;
  if (loaded !== SKILLS) throw new Error(`${label}: expected ${SKILLS} skills, found ${loaded}`);
  console.log(
    `${label}: first load ${round(loadMs, 0)} ms = ${Math.round((SKILLS / loadMs) * 1000)} skills/s`,
  );

  t = performance.now();
  cpu = process.cpuUsage();
  let unchanged = 0;
  for (const p of pages(T0 + 60_000)) unchanged += (await store.applySkillPage(p)).unchanged;
  const reapplyMs = performance.now() - t;
  const reapplyCpuMs = cpuMs(process.cpuUsage(cpu));
  if (unchanged !== SKILLS) throw new Error(`${label}: re-apply saw ${unchanged} unchanged of ${SKILLS}`);
  console.log(
    `${label}: re-apply unchanged ${round(reapplyMs, 0)} ms = ${Math.round((SKILLS / reapplyMs) * 1000)} skills/s (${round(loadMs / reapplyMs)}x faster)`,
  );

  const qr = rng(7);
  // Search terms: words of middling frequency (Zipf ranks 20..400), as users type them.
  const terms = Array.from({ length: SEARCHES }, () => ({
    text: VOCAB[20 + Math.floor(qr() * 380)]!,
    category: CATEGORIES[Math.floor(qr() * CATEGORIES.length)]!,
  }));
  for (const q of terms.slice(0, 20)) await store.searchSkills({ ...q, page: 1, pageSize: 20, now: T0 });
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let hits = 0;
  for (const q of terms) {
    const s = performance.now();
    const c = process.cpuUsage();
    const r = await store.searchSkills({ ...q, page: 1, pageSize: 20, now: T0 });
    cpuTimes.push(cpuMs(process.cpuUsage(c)));
    times.push(performance.now() - s);
    hits += r.total;
  }
  const figures: StoreFigures = {
    loadSkillsPerSec: Math.round((SKILLS / loadMs) * 1000),
    loadMs: round(loadMs, 0),
    loadCpuMs: round(loadCpuMs, 0),
    reapplySkillsPerSec: Math.round((SKILLS / reapplyMs) * 1000),
    reapplyMs: round(reapplyMs, 0),
    reapplySpeedup: round(loadMs / reapplyMs),
    reapplyCpuSpeedup: round(loadCpuMs / reapplyCpuMs),
    searchMedianMs: round(median(times), 3),
    searchCpuMedianMs: round(median(cpuTimes), 3),
    searchP95Ms: round(p95(times), 3),
    searchMeanHits: Math.round(hits / terms.length),
  };
  console.log(
    `${label}: search text+category median ${figures.searchMedianMs} ms, p95 ${figures.searchP95Ms} ms, cpu median ${figures.searchCpuMedianMs} ms (mean ${figures.searchMeanHits} hits, page of 20)`,
  );
  return figures;
}

function measureRawInsert(path: string): { ms: number; cpuMs: number } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE skills (skill_id TEXT PRIMARY KEY, base TEXT NOT NULL, content_hash TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO skills (skill_id, base, content_hash) VALUES (?, ?, ?)');
  const page = db.transaction((items: SkillUpsert[]) => {
    for (const u of items) insert.run(u.skill.skill_id, JSON.stringify(u.skill), u.contentHash);
  });
  const t = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < upserts.length; i += PAGE) page(upserts.slice(i, i + PAGE));
  const ms = performance.now() - t;
  const used = cpuMs(process.cpuUsage(cpu));
  db.close();
  return { ms, cpuMs: used };
}

// ---- run ------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'skillsync-bench-'));
const result: Record<string, unknown> = {
  bench: 'store-upsert',
  skills: SKILLS,
  pageSize: PAGE,
  avgPayloadBytes: avgBytes,
};
try {
  const raw = measureRawInsert(join(dir, 'raw.db'));
  const rawPerSec = Math.round((SKILLS / raw.ms) * 1000);
  console.log(
    `raw better-sqlite3 insert: ${round(raw.ms, 0)} ms (cpu ${round(raw.cpuMs, 0)} ms) = ${rawPerSec} rows/s`,
  );
  const sqlite = await openStore(`sqlite:${join(dir, 'store.db')}`);
  const s = await measureStore('sqlite', sqlite);
  await sqlite.close();
  const ratio = round(rawPerSec / s.loadSkillsPerSec);
  const cpuRatio = round(s.loadCpuMs / raw.cpuMs);
  console.log(
    `sqlite: first load is ${ratio}x slower than the raw insert (cpu time ${cpuRatio}x; target <= 3x)`,
  );
  result['sqlite'] = {
    ...s,
    rawInsertRowsPerSec: rawPerSec,
    rawToStoreRatio: ratio,
    rawToStoreCpuRatio: cpuRatio,
  };
  result['loadAverage'] = loadavg().map((x) => round(x));

  if (WITH_PG) result['postgres'] = await measurePostgres();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function measurePostgres(): Promise<Record<string, unknown>> {
  const base = process.env['SKILLSYNC_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `bench_upsert_${process.pid}`;
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  let store: Store;
  try {
    store = await openStore(url.toString());
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    console.log(`postgres: skipped (${why})`);
    return { skipped: why };
  }
  try {
    return { ...(await measureStore('postgres', store)) };
  } finally {
    await store.close();
    try {
      const { default: postgres } = await import('postgres');
      const sql = postgres(base, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end();
    } catch (err) {
      console.log(
        `postgres: could not drop schema ${schema}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

console.log(JSON.stringify(result));
