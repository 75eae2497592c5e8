/**
 * bench/outbox-upload: how fast local actions are queued and uploaded through the outbox.
 *
 *  1. enqueue: LocalActions.rate()/install() calls, one after another, each committed with
 *     its outbox item in one transaction of a file SQLite store (WAL). Target >= 5,000/s.
 *     Then the same mix issued 10 at once (as concurrent API requests are) into a second store
 *     of the same catalog: the store may commit actions that arrive in the same event-loop
 *     turn together, each caller answered after that commit. Reported beside the sequential
 *     figure, not instead of it; CPU time per action for both (process.cpuUsage: the
 *     simulator is another process).
 *  2. upload: OutboxUploader with its defaults (10 at once) drains those actions to the
 *     simulator, each exactly once (checked against the simulator's per-key counts).
 *     Target >= 500/s.
 *  3. baselines in the same run, against the same simulator: raw POSTs with undici (10 at
 *     once, unique Idempotency-Keys, no store, no client logic), and the marketplace client
 *     alone (10 at once, no store). For enqueue: raw better-sqlite3 transactions of one INSERT
 *     each (WAL, synchronous=NORMAL) on the same disk. The ratios say what the outbox costs.
 *
 * The simulator runs in a child process (this file with --simulator) so that it does not
 * share an event loop with the uploader, as a real marketplace would not.
 *
 * Run: npx tsx bench/outbox-upload.ts [--actions 5000]
 * The last line is one JSON object with the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Pool, request } from 'undici';
import { skillContentHash } from '../src/remote/contract.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { ApplyPageInput } from '../src/store/types.js';
import { LocalActions } from '../src/sync/local-actions.js';
import { OutboxUploader } from '../src/sync/outbox-uploader.js';
import { startSimulator } from '../simulator/index.js';

const TOKEN = 'bench-outbox-token-0123456789';
const SKILLS = 1000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

async function serveSimulator(): Promise<void> {
  const sim = await startSimulator({ skills: SKILLS, seed: 21, token: TOKEN });
  process.stdout.write(`${JSON.stringify({ url: sim.url, controlUrl: sim.controlUrl })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void sim.close().then(() => process.exit(0)));
}

async function startChildSimulator(): Promise<{ url: string; controlUrl: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--simulator'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  return { ...(JSON.parse(line) as { url: string; controlUrl: string }), child };
}

async function counters(controlUrl: string): Promise<{ applied: Record<string, number> }> {
  const res = await request(`${controlUrl}/counters`);
  return (await res.body.json()) as { applied: Record<string, number> };
}

/** Runs `total` calls of `fn`, `width` at once; returns calls per second. */
async function rate(total: number, width: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const actions = arg('actions', 5000);
  const sim = await startChildSimulator();
  const dir = mkdtempSync(join(tmpdir(), 'bench-outbox-'));
  const store = await openSqliteStore({ path: join(dir, 'store.db') });
  const api = createMarketplaceClient({
    baseUrl: sim.url,
    token: TOKEN,
    instanceId: 'bench',
    requestsPerMinute: 0,
  });
  try {
    const page = await api.listSkills({ page: 1, pageSize: SKILLS });
    const catalogPage: ApplyPageInput = {
      items: page.skills.map((skill) => ({ skill, contentHash: skillContentHash(skill) })),
      tombstones: [],
      source: 'full',
      now: Date.now(),
      ttlMs: 86_400_000,
      epoch: null,
      guard: 'listing',
      checkpoint: null,
    };
    await store.applySkillPage(catalogPage);
    const ids = page.skills.map((s) => s.skill_id);

    // 1. enqueue
    const local = new LocalActions(store, { instanceId: 'bench' });
    const keys: string[] = [];
    /** Action i of the bench mix (4 ratings : 1 install); returns its idempotency key. */
    const act = async (into: LocalActions, i: number): Promise<string> => {
      const skillId = ids[i % ids.length]!;
      if (i % 5 === 4) return (await into.install({ skillId, agentId: `agent-${i % 50}` })).idempotencyKey;
      const r = await into.rate({
        skillId,
        userId: `user-${i % 997}`,
        rating: 1 + (i % 5),
        comment: 'bench',
      });
      return r.outbox.idempotencyKey;
    };
    const cpuUsPerAction = (since: NodeJS.CpuUsage): number => {
      const cpu = process.cpuUsage(since);
      return (cpu.user + cpu.system) / actions;
    };
    let cpuStarted = process.cpuUsage();
    const enqueueStarted = performance.now();
    for (let i = 0; i < actions; i++) keys.push(await act(local, i));
    const enqueuePerS = actions / ((performance.now() - enqueueStarted) / 1000);
    const enqueueCpuUs = cpuUsPerAction(cpuStarted);
    console.log(
      `enqueue: ${actions} actions one after another, ${enqueuePerS.toFixed(0)}/s (target >= 5000), ${enqueueCpuUs.toFixed(0)} us CPU each`,
    );
    // The same mix, 10 at once, into a second store (the upload below drains the first).
    const store2 = await openSqliteStore({ path: join(dir, 'store2.db') });
    let enqueueConcurrentPerS: number;
    let enqueueConcurrentCpuUs: number;
    try {
      await store2.applySkillPage(catalogPage);
      const local2 = new LocalActions(store2, { instanceId: 'bench' });
      cpuStarted = process.cpuUsage();
      enqueueConcurrentPerS = await rate(actions, 10, (i) => act(local2, i));
      enqueueConcurrentCpuUs = cpuUsPerAction(cpuStarted);
      if ((await store2.getSyncState()).pendingActions !== actions)
        throw new Error('concurrent enqueue lost actions');
    } finally {
      await store2.close();
    }
    console.log(
      `enqueue: ${actions} actions 10 at once, ${enqueueConcurrentPerS.toFixed(0)}/s, ${enqueueConcurrentCpuUs.toFixed(0)} us CPU each`,
    );
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, payload TEXT NOT NULL)');
    const insert = raw.prepare('INSERT INTO t (k, payload) VALUES (?, ?)');
    const one = raw.transaction((i: number) => insert.run(`k-${i}`, '{"rating":3}'));
    const rawStarted = performance.now();
    for (let i = 0; i < actions; i++) one.immediate(i);
    const rawTxPerS = actions / ((performance.now() - rawStarted) / 1000);
    raw.close();
    console.log(`baseline raw SQLite transactions (one INSERT each): ${rawTxPerS.toFixed(0)}/s`);

    // 2. upload with the defaults
    const uploader = new OutboxUploader({ store, api });
    const uploadStarted = performance.now();
    await uploader.start();
    for (;;) {
      await uploader.whenIdle();
      if ((await store.getSyncState()).pendingActions === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const uploadPerS = actions / ((performance.now() - uploadStarted) / 1000);
    await uploader.stop();
    const applied = (await counters(sim.controlUrl)).applied;
    const exactlyOnce = keys.every((k) => applied[k] === 1);
    console.log(
      `upload: ${uploadPerS.toFixed(0)}/s with concurrency ${uploader.options.concurrency} (target >= 500); exactly once: ${exactlyOnce}`,
    );

    // 3. baselines against the same simulator
    const pool = new Pool(new URL(sim.url).origin, { connections: 10 });
    const basePath = new URL(sim.url).pathname;
    const rawPerS = await rate(actions, 10, async (i) => {
      const skillId = ids[i % ids.length]!;
      const res = await pool.request({
        method: 'POST',
        path: `${basePath}/skills/${skillId}/rate`,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'idempotency-key': `raw-${i}`,
        },
        body: JSON.stringify({ skill_id: skillId, user_id: `raw-${i % 997}`, rating: 3 }),
      });
      await res.body.text();
    });
    await pool.close();
    console.log(`baseline raw POSTs (undici, 10 at once): ${rawPerS.toFixed(0)}/s`);
    const clientPerS = await rate(actions, 10, async (i) => {
      const skillId = ids[i % ids.length]!;
      await api.rate({ skill_id: skillId, user_id: `cl-${i % 997}`, rating: 4 }, `client-${i}`, {
        retry: false,
      });
    });
    console.log(`baseline marketplace client alone (10 at once): ${clientPerS.toFixed(0)}/s`);
    console.log(
      `outbox upload / raw POSTs: ${(uploadPerS / rawPerS).toFixed(2)}; / client alone: ${(uploadPerS / clientPerS).toFixed(2)}`,
    );

    console.log(
      JSON.stringify({
        bench: 'outbox-upload',
        actions,
        concurrency: uploader.options.concurrency,
        enqueue_per_s: Math.round(enqueuePerS),
        enqueue_cpu_us_per_action: Math.round(enqueueCpuUs),
        enqueue_concurrent_per_s: Math.round(enqueueConcurrentPerS),
        enqueue_concurrent_cpu_us_per_action: Math.round(enqueueConcurrentCpuUs),
        raw_sqlite_tx_per_s: Math.round(rawTxPerS),
        enqueue_vs_raw_tx: Number((enqueuePerS / rawTxPerS).toFixed(3)),
        upload_per_s: Math.round(uploadPerS),
        raw_post_per_s: Math.round(rawPerS),
        client_post_per_s: Math.round(clientPerS),
        upload_vs_raw: Number((uploadPerS / rawPerS).toFixed(3)),
        upload_vs_client: Number((uploadPerS / clientPerS).toFixed(3)),
        exactly_once: exactlyOnce,
        targets: { enqueue_per_s: 5000, upload_per_s: 500 },
        pass: enqueuePerS >= 5000 && uploadPerS >= 500 && exactlyOnce,
      }),
    );
  } finally {
    await api.close();
    await store.close();
    sim.child.stdin?.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--simulator')) await serveSimulator();
else await main();
