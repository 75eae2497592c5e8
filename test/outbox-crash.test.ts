/**
 * Crash safety of the outbox (jepsen-powersync's stop/start nemesis): a child process uploads
 * from a SQLite file to the simulator and is SIGKILLed again and again,
 *  - two runs in three exactly between the remote accepting an item and the store marking it
 *    done (the child kills itself in the 'answered' hook, after a seeded number of answers),
 *  - the others from outside at a seeded random moment.
 * Each restart must re-send an accepted-but-unrecorded item with the same Idempotency-Key,
 * and at the end every action was applied exactly once, every chain in order, nothing stuck.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { LocalActions } from '../src/sync/local-actions.js';
import { startSimulator, type SimulatorHandle } from '../simulator/index.js';
import { createApi, INSTANCE_ID, OUTBOX_TOKEN, seedCatalog, seededRandom } from './helpers/outbox-rig.js';

const CHILD = fileURLToPath(new URL('./helpers/outbox-crash-child.ts', import.meta.url));
const SEED = 20261129;

let sim: SimulatorHandle;
let dir: string;
beforeAll(async () => {
  sim = await startSimulator({ skills: 100, seed: 9, token: OUTBOX_TOKEN });
  dir = mkdtempSync(join(tmpdir(), 'outbox-crash-'));
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

interface RunResult {
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
}

/** Runs the child once; `killAfterMs` SIGKILLs it from outside that long after it is READY. */
function runChild(
  args: { dbPath: string; seed: number; killAtAnswer: number | null },
  killAfterMs: number | null,
): Promise<RunResult> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, JSON.stringify({ ...args, url: sim.url, leaseMs: 300 })],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    if (line === 'READY' && killAfterMs !== null)
      timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Let readline deliver the last lines.
      setImmediate(() => resolve({ lines, signal, code }));
    });
  });
}

/**
 * Local actions queued before the children run. Enough that the queue outlasts the kills the
 * test needs: a child killed from outside may upload a few hundred items first (400 once ran
 * out after 8 of the 10 kills in the window).
 */
const ACTIONS = 1000;

it('SIGKILLed between the remote accepting an item and marking it done, >= 10 times: re-sent with the same key, applied once', async () => {
  const random = seededRandom(SEED);
  const dbPath = join(dir, 'store.db');

  // Queue the actions in this process, then close the store: only children upload.
  const expected = new Map<string, number[]>();
  const keys: string[] = [];
  {
    const store = await openSqliteStore({ path: dbPath });
    const api = createApi(sim.url);
    const skillIds = await seedCatalog(store, api, 30);
    const actions = new LocalActions(store, { instanceId: INSTANCE_ID });
    for (let i = 0; i < ACTIONS; i++) {
      const skillId = skillIds[Math.floor(random() * skillIds.length)]!;
      if (i % 7 === 3) {
        keys.push((await actions.install({ skillId, agentId: `agent-${i % 4}` })).idempotencyKey);
        continue;
      }
      const userId = `user-${Math.floor(random() * 12)}`;
      const rating = 1 + Math.floor(random() * 5);
      keys.push((await actions.rate({ skillId, userId, rating })).outbox.idempotencyKey);
      const k = `${userId}\u0000${skillId}`;
      expected.set(k, [...(expected.get(k) ?? []), rating]);
    }
    await api.close();
    await store.close();
  }

  const inWindowKills: { id: number; key: string }[] = [];
  let outsideKills = 0;
  let done = false;
  for (let run = 0; run < 60 && !done; run++) {
    const killing = inWindowKills.length < 10 || outsideKills < 4;
    // Two runs in three die in the window, the third from outside at a random moment.
    const selfKill = killing && (outsideKills >= 4 || run % 3 !== 2) && inWindowKills.length < 10;
    const killAtAnswer = selfKill ? 1 + Math.floor(random() * 25) : null;
    const killAfterMs = killing && !selfKill ? 30 + Math.floor(random() * 400) : null;
    const result = await runChild({ dbPath, seed: SEED + run, killAtAnswer }, killAfterMs);
    if (result.lines.includes('DONE')) {
      expect(result.code).toBe(0);
      done = true;
      continue;
    }
    expect(result.signal).toBe('SIGKILL');
    const kill = result.lines.find((l) => l.startsWith('KILL '));
    if (kill !== undefined) {
      const [, id, key] = kill.split(' ');
      inWindowKills.push({ id: Number(id), key: key! });
    } else {
      outsideKills++;
    }
  }
  expect(done).toBe(true);
  expect(inWindowKills.length).toBeGreaterThanOrEqual(10);
  expect(outsideKills).toBeGreaterThanOrEqual(4);

  const counters = sim.control.counters();
  const store = await openSqliteStore({ path: dbPath });
  try {
    // Each item killed in the window: the remote had applied it, the store had not recorded
    // it; a later run sent it again (attempts >= 2) with the same key, and it took effect once.
    for (const { id, key } of inWindowKills) {
      const item = await store.getOutboxItem(id);
      expect(item?.idempotencyKey).toBe(key);
      expect(item?.status).toBe('done');
      expect(item?.attempts).toBeGreaterThanOrEqual(2);
      expect(counters.appliedByKey(key)).toBe(1);
    }
    for (const key of keys) expect(counters.appliedByKey(key), key).toBe(1);
    for (const [k, ratings] of expected) {
      const [userId, skillId] = k.split('\u0000') as [string, string];
      expect(counters.ratingHistory(userId, skillId), k).toEqual(ratings);
    }
    const notDone = await store.listOutbox({ limit: 1000, offset: 0 });
    expect(notDone.items.filter((i) => i.status !== 'done')).toEqual([]);
    expect(notDone.total).toBe(ACTIONS);
    // Replays happened: the remote saw more rate/install answers than effects.
    const answered = Object.values(counters.requests['rate'] ?? {}).reduce((a, b) => a + b, 0);
    expect(answered).toBeGreaterThan(counters.ratingsApplied);
  } finally {
    await store.close();
  }
}, 180_000);
