/**
 * bench/ws-apply: the real-time channel's apply path, end to end over a real socket.
 *
 *   npx tsx bench/ws-apply.ts [--events 20000] [--skills 10000] [--rate 1000] [--seconds 10]
 *
 * 1. Sustained apply rate: N skill updates are made on the simulator while the client is
 *    down; the client then connects with its persisted lastSeq and `resume` replays all N in
 *    one burst. Measured: N / (time from connect to the last event applied in SQLite), through
 *    the whole path (frame -> parse/validate -> conflict resolution in the engine -> version-
 *    guarded write). Baseline in the same run: the same kind of updates written straight
 *    into the store with applySkillEvent (no socket, no parsing, no engine) -> ratio.
 *    Target: >= 5,000 events/s.
 * 2. Latency at a steady rate (default 1,000 events/s for 10 s): from the simulator emitting
 *    an update to the change being readable from the store (getSkill after the apply), p50 /
 *    p99 / max. Target: p99 <= 50 ms. The simulator runs in this process (same event loop),
 *    so its own work is included in the figures: a conservative measurement.
 *
 * 3. Projection (bench-only, labelled as such): the same socket burst through the pipeline's
 *    batch path (sink.applySkills), with a bench-local batch that resolves conflicts with the
 *    engine's resolveIncoming and writes one applySkillPage per batch. The engine and store
 *    offer no batched event write yet; this figure shows what adding one would give. A
 *    second baseline (applySkillPage in batches of 256, no socket) bounds it.
 *
 * Wall-clock rates depend on what else runs on the machine; the CPU time per event
 * (process.cpuUsage) does not, so it is reported too, with the load average.
 *
 * SQLite on a file (WAL, synchronous=normal) in a temp dir. The client's rate limit is raised
 * above the offered rate (the default 100 msg/s would turn the burst into catch-up syncs) and
 * the engine's catch-up delay is long so no catch-up listing competes with the measurement.
 * Last line: one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startSimulator } from '../simulator/index.js';
import type { Skill } from '../src/remote/contract.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { StreamSink } from '../src/stream/stream-sink.js';
import { createEngineSink } from '../src/stream/stream-sink.js';
import { WsClient } from '../src/stream/ws-client.js';
import { hashSkill } from '../src/sync/skill-hash.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { resolveIncoming } from '../src/core/conflicts.js';
import type { Store } from '../src/store/store.js';
import type { EventOutcome } from '../src/store/types.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const EVENTS = arg('events', 20_000);
const SKILLS = arg('skills', 10_000);
const RATE = arg('rate', 1_000);
const SECONDS = arg('seconds', 10);
const TOKEN = 'bench-ws-apply-token';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
const round = (v: number, d = 2): number => Math.round(v * 10 ** d) / 10 ** d;
/** Process CPU time (user + system) since `since`, in µs: unaffected by other processes' load. */
const cpuUs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return d.user + d.system;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-ws-apply-'));
  const sim = await startSimulator({ skills: SKILLS, seed: 5, token: TOKEN, wsBufferSize: EVENTS + 10 });
  const store = await openSqliteStore({ path: join(dir, 'bench.db') });
  const remote = createMarketplaceClient({ baseUrl: sim.url, token: TOKEN, requestsPerMinute: 0 });
  const engine = new SyncEngine({ remote, store, options: { pageSize: 1000, catchUpDelayMs: 10 * 60_000 } });
  try {
    const t0 = performance.now();
    const full = await engine.syncAll({ trigger: 'startup', mode: 'full' });
    if (full.status !== 'success') throw new Error(`initial sync: ${full.status}`);
    console.log(`initial full sync: ${SKILLS} skills in ${round(performance.now() - t0, 0)} ms`);

    // ---- baseline: the same kind of updates straight into the store ----------------------
    const baseIds = sim.control.mutate(EVENTS, ['update']).map((m) => m.skillId as string);
    const baseSkills: Skill[] = [];
    for (const id of baseIds) {
      const s = sim.control.getSkill(id);
      if (s) baseSkills.push(s);
    }
    const ttlMs = engine.options.ttlMs;
    const bc0 = process.cpuUsage();
    const b0 = performance.now();
    for (const skill of baseSkills) {
      await store.applySkillEvent(
        { skill, contentHash: hashSkill(skill) },
        { now: Date.now(), ttlMs, epoch: null, source: 'websocket' },
      );
    }
    const baseMs = performance.now() - b0;
    const baseCpuUs = cpuUs(bc0) / baseSkills.length;
    const basePerSec = baseSkills.length / (baseMs / 1000);
    console.log(
      `baseline store.applySkillEvent: ${baseSkills.length} in ${round(baseMs, 0)} ms = ${round(basePerSec, 0)}/s`,
    );
    const batchIds = sim.control.mutate(EVENTS, ['update']).map((m) => m.skillId as string);
    const batchSkills = batchIds.map((id) => sim.control.getSkill(id)).filter((x): x is Skill => x !== null);
    const p0 = performance.now();
    for (let i = 0; i < batchSkills.length; i += 256) {
      await store.applySkillPage({
        items: batchSkills.slice(i, i + 256).map((skill) => ({ skill, contentHash: hashSkill(skill) })),
        tombstones: [],
        source: 'websocket',
        now: Date.now(),
        ttlMs,
        epoch: null,
        guard: 'version',
        checkpoint: null,
      });
    }
    const pageMs = performance.now() - p0;
    const pagePerSec = batchSkills.length / (pageMs / 1000);
    console.log(
      `baseline store.applySkillPage x256: ${batchSkills.length} in ${round(pageMs, 0)} ms = ${round(pagePerSec, 0)}/s`,
    );

    // ---- 1. sustained apply: a resume burst of EVENTS updates ----------------------------
    const seqBefore = sim.control.stats().seq;
    await store.updateWsState({ lastSeq: seqBefore });
    sim.control.mutate(EVENTS, ['update']);
    const real = createEngineSink({ engine, store, ttlMs });
    const pendingEmit = new Map<string, number[]>();
    const latencies: number[] = [];
    let measuring = false;
    // Latency sample: emitted -> applied and readable from the store. The pipeline uses the
    // batched path (applySkills) when the engine offers it, so both paths are timed.
    const sample = async (skill: Skill, appliedAt: number): Promise<void> => {
      const q = pendingEmit.get(skill.skill_id);
      const emittedAt = q?.shift();
      if (emittedAt === undefined) return;
      if (q?.length === 0) pendingEmit.delete(skill.skill_id);
      const read = await store.getSkill(skill.skill_id, Date.now());
      if (read?.remoteUpdatedAt !== skill.updated_at) throw new Error('not readable after apply');
      latencies.push(appliedAt - emittedAt);
    };
    const realBatch = real.applySkills?.bind(real);
    const sink: StreamSink = {
      ...real,
      async applySkill(skill) {
        const outcome = await real.applySkill(skill);
        if (measuring) await sample(skill, performance.now());
        return outcome;
      },
      ...(realBatch
        ? {
            async applySkills(skills: readonly Skill[]) {
              const outcomes = await realBatch(skills);
              const appliedAt = performance.now();
              if (measuring) for (const skill of skills) await sample(skill, appliedAt);
              return outcomes;
            },
          }
        : {}),
    };
    const client = new WsClient(
      {
        url: sim.wsUrl,
        token: TOKEN,
        instanceId: 'bench',
        pipeline: { rateLimitPerSec: Math.max(20_000, RATE * 4), flushIntervalMs: 1_000 },
      },
      { store, sink },
    );
    const cc0 = process.cpuUsage();
    const c0 = performance.now();
    await client.start();
    const applied = (): number => {
      const c = client.status().pipeline.counts;
      return c.applied + c.duplicate + c.stale;
    };
    while (applied() < EVENTS) {
      if (performance.now() - c0 > 600_000)
        throw new Error(`only ${applied()} of ${EVENTS} applied in 600 s`);
      await sleep(5);
    }
    const burstMs = performance.now() - c0;
    const applyCpuUs = cpuUs(cc0) / EVENTS;
    console.log(
      `CPU per event (load-independent): socket path ${round(applyCpuUs, 1)} µs, bare store ${round(baseCpuUs, 1)} µs ` +
        `-> one idle core could apply ${round(1e6 / applyCpuUs, 0)} events/s (load average now ${round(loadavg()[0] ?? 0, 1)})`,
    );
    const applyPerSec = EVENTS / (burstMs / 1000);
    const counts = client.status().pipeline.counts;
    console.log(
      `sustained apply over the socket: ${EVENTS} events in ${round(burstMs, 0)} ms = ${round(applyPerSec, 0)} events/s ` +
        `(applied ${counts.applied}, duplicate ${counts.duplicate}, stale ${counts.stale}); ` +
        `${round(applyPerSec / basePerSec, 3)}x the bare store`,
    );

    // ---- 2. latency at RATE events/s --------------------------------------------------------
    measuring = true;
    const total = Math.round(RATE * SECONDS);
    const tickMs = 10;
    const perTick = Math.max(1, Math.round((RATE * tickMs) / 1000));
    const l0 = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - l0) / 1000) * RATE) + perTick);
      const n = due - sent;
      if (n > 0) {
        const at = performance.now();
        for (const m of sim.control.mutate(n, ['update'])) {
          const id = m.skillId as string;
          const q = pendingEmit.get(id);
          if (q) q.push(at);
          else pendingEmit.set(id, [at]);
        }
        sent += n;
      }
      await sleep(tickMs);
    }
    const offeredMs = performance.now() - l0;
    while (latencies.length < total && performance.now() - l0 < offeredMs + 10_000) await sleep(5);
    measuring = false;
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = pct(sorted, 50);
    const p99 = pct(sorted, 99);
    const max = sorted[sorted.length - 1] ?? NaN;
    console.log(
      `latency emit -> readable at ${round((total / offeredMs) * 1000, 0)} events/s over ${round(offeredMs / 1000, 1)} s: ` +
        `n=${sorted.length} p50=${round(p50)} ms p99=${round(p99)} ms max=${round(max)} ms`,
    );
    console.log(
      `targets: apply >= 5000/s ${applyPerSec >= 5000 ? 'met' : 'MISSED'}; p99 <= 50 ms ${p99 <= 50 ? 'met' : 'MISSED'}`,
    );
    await client.stop();

    // ---- 3. projection: the same burst through the pipeline's batch path ------------------
    const seq3 = sim.control.stats().seq;
    await store.updateWsState({ lastSeq: seq3 });
    sim.control.mutate(EVENTS, ['update']);
    const batched: StreamSink = { ...real, applySkills: (skills) => benchBatchApply(store, skills, ttlMs) };
    const client3 = new WsClient(
      { url: sim.wsUrl, token: TOKEN, instanceId: 'bench-batch', pipeline: { rateLimitPerSec: 0 } },
      { store, sink: batched },
    );
    const dc0 = process.cpuUsage();
    const d0 = performance.now();
    await client3.start();
    const applied3 = (): number => {
      const c = client3.status().pipeline.counts;
      return c.applied + c.duplicate + c.stale;
    };
    while (applied3() < EVENTS) {
      if (performance.now() - d0 > 600_000)
        throw new Error(`only ${applied3()} of ${EVENTS} applied in 600 s`);
      await sleep(5);
    }
    const batchedPerSec = EVENTS / ((performance.now() - d0) / 1000);
    const batchedCpuUs = cpuUs(dc0) / EVENTS;
    await client3.stop();
    console.log(
      `projection, batch path (bench-local batched write, not in the product yet): ${round(batchedPerSec, 0)} events/s ` +
        `(${round(batchedPerSec / applyPerSec, 2)}x the per-event path; ${round(batchedCpuUs, 1)} µs CPU per event)`,
    );

    console.log(
      JSON.stringify({
        bench: 'ws-apply',
        events: EVENTS,
        skills: SKILLS,
        applyEventsPerSec: round(applyPerSec, 0),
        baselineStoreEventsPerSec: round(basePerSec, 0),
        applyVsStoreRatio: round(applyPerSec / basePerSec, 3),
        baselineStorePageEventsPerSec: round(pagePerSec, 0),
        projectedBatchedApplyEventsPerSec: round(batchedPerSec, 0),
        projectedBatchedVsPerEventRatio: round(batchedPerSec / applyPerSec, 2),
        applyCpuUsPerEvent: round(applyCpuUs, 1),
        baselineStoreCpuUsPerEvent: round(baseCpuUs, 1),
        applyCpuBoundEventsPerSec: round(1e6 / applyCpuUs, 0),
        projectedBatchedCpuUsPerEvent: round(batchedCpuUs, 1),
        projectedBatchedCpuBoundEventsPerSec: round(1e6 / batchedCpuUs, 0),
        loadAverage1m: round(loadavg()[0] ?? 0, 2),
        latencyRatePerSec: RATE,
        latencySamples: sorted.length,
        latencyLost: total - sorted.length,
        latencyP50Ms: round(p50),
        latencyP99Ms: round(p99),
        latencyMaxMs: round(max),
        applyTargetMet: applyPerSec >= 5000,
        latencyTargetMet: p99 <= 50,
      }),
    );
  } finally {
    await engine.close();
    await sim.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Bench-only batched apply: the engine's conflict resolution per skill, one store transaction
 * per batch. Not used by the product (applySkillPage also writes the listing checkpoint).
 */
async function benchBatchApply(
  store: Store,
  skills: readonly Skill[],
  ttlMs: number,
): Promise<EventOutcome[]> {
  const states = await store.getLocalStates(skills.map((s) => s.skill_id));
  const items = skills.map(
    (s) => resolveIncoming(s, hashSkill(s), states.get(s.skill_id), 'remote_wins').upsert,
  );
  const r = await store.applySkillPage({
    items,
    tombstones: [],
    source: 'websocket',
    now: Date.now(),
    ttlMs,
    epoch: null,
    guard: 'version',
    checkpoint: null,
  });
  // Per-item outcomes are not reported by a page; the totals are what the counters need.
  return [
    ...Array<EventOutcome>(r.upserted).fill('applied'),
    ...Array<EventOutcome>(r.unchanged).fill('duplicate'),
    ...Array<EventOutcome>(r.stale).fill('stale'),
  ];
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
