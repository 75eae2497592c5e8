/**
 * bench/ws-apply: the real-time channel's apply path, end to end over a real socket.
 *
 *   npx tsx bench/ws-apply.ts [--events 20000] [--skills 10000] [--rate 1000] [--seconds 10]
 *
 * 0. Store floors (no socket, no parsing, no engine): the same kind of updates written with
 *    store.applySkillEvent (one transaction each) and store.applySkillEvents in batches of 256
 *    (the write the pipeline's batch path ends in).
 * 1. Sender side: the simulator replays a resume burst of N updates to a bare `ws` client that
 *    only counts frames. This bounds what the socket path can reach here: when the apply rate
 *    below comes close to it, the figure measures the sender, not the apply.
 * 2. Sustained apply: N skill updates are made on the simulator while the client is down; the
 *    client then connects with its persisted lastSeq and `resume` replays all N in one burst.
 *    Measured: N / (time from connect to the last event applied in SQLite), through the whole
 *    path (frame -> parse/validate -> rate limit -> conflict resolution in the engine ->
 *    version-guarded write, in batches when events queue up). The simulator's own replay
 *    (framing and writing N frames, in this process) is inside that window: conservative.
 *    Also reported: store transactions used (batch calls + single applies). Target: >= 5,000/s.
 * 3. Latency at a steady rate (default 1,000 events/s for 10 s): from the simulator emitting
 *    an update to the change being readable from the store (getSkill after the apply), p50 /
 *    p99 / max. Target: p99 <= 50 ms. The simulator runs in this process (same event loop),
 *    so its own work is included in the figures: a conservative measurement.
 *
 * Wall-clock rates depend on what else runs on the machine; the CPU time per event
 * (process.cpuUsage, this whole process: simulator included) much less, so it is reported
 * too, with the load average.
 *
 * SQLite on a file (WAL, synchronous=normal) in a temp dir. The client's rate limit stays in
 * the path but is raised above the offered rate, with a bucket that holds the whole burst (the
 * default 100 msg/s would turn the burst into catch-up syncs), and the engine's catch-up delay
 * is long so no catch-up listing competes with the measurement.
 * Last line: one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { startSimulator } from '../simulator/index.js';
import type { SimulatorHandle } from '../simulator/index.js';
import type { Skill } from '../src/remote/contract.js';
import { createMarketplaceClient } from '../src/remote/marketplace-client.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { StreamSink } from '../src/stream/stream-sink.js';
import { createEngineSink } from '../src/stream/stream-sink.js';
import { WsClient } from '../src/stream/ws-client.js';
import { hashSkill } from '../src/sync/skill-hash.js';
import { SyncEngine } from '../src/sync/sync-engine.js';

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

/** Replays a resume burst of `events` updates to a bare ws client that only counts frames. */
async function senderSide(
  sim: SimulatorHandle,
  events: number,
): Promise<{ perSec: number; cpuUs: number; firstFrameMs: number }> {
  const since = sim.control.stats().seq;
  sim.control.mutate(events, ['update']);
  const ws = new WebSocket(sim.wsUrl, {
    headers: { Authorization: `Bearer ${TOKEN}`, 'X-API-Token': TOKEN },
    perMessageDeflate: false,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let n = 0;
  let firstAt = 0;
  const done = new Promise<void>((resolve) => {
    ws.on('message', () => {
      if (n++ === 0) firstAt = performance.now();
      if (n === events) resolve();
    });
  });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  ws.send(JSON.stringify({ type: 'resume', since_seq: since }));
  await done;
  const ms = performance.now() - t0;
  const cpu = cpuUs(c0) / events;
  ws.terminate();
  return { perSec: events / (ms / 1000), cpuUs: cpu, firstFrameMs: firstAt - t0 };
}

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

    // ---- 0. store floors: the same kind of updates straight into the store -----------------
    const updatedSkills = (): Skill[] =>
      sim.control
        .mutate(EVENTS, ['update'])
        .map((m) => sim.control.getSkill(m.skillId as string))
        .filter((x): x is Skill => x !== null);
    const ttlMs = engine.options.ttlMs;
    const eventOptions = (): Parameters<typeof store.applySkillEvents>[1] => ({
      now: Date.now(),
      ttlMs,
      epoch: null,
      source: 'websocket',
    });
    const baseSkills = updatedSkills();
    const bc0 = process.cpuUsage();
    const b0 = performance.now();
    for (const skill of baseSkills) {
      await store.applySkillEvent({ skill, contentHash: hashSkill(skill) }, eventOptions());
    }
    const baseMs = performance.now() - b0;
    const baseCpuUs = cpuUs(bc0) / baseSkills.length;
    const basePerSec = baseSkills.length / (baseMs / 1000);
    console.log(
      `store floor, applySkillEvent (one transaction each): ${baseSkills.length} in ${round(baseMs, 0)} ms = ` +
        `${round(basePerSec, 0)}/s, ${round(baseCpuUs, 1)} µs CPU each`,
    );
    const batchSkills = updatedSkills();
    const pc0 = process.cpuUsage();
    const p0 = performance.now();
    for (let i = 0; i < batchSkills.length; i += 256) {
      const items = batchSkills.slice(i, i + 256).map((skill) => ({ skill, contentHash: hashSkill(skill) }));
      await store.applySkillEvents(items, eventOptions());
    }
    const batchMs = performance.now() - p0;
    const batchCpuUs = cpuUs(pc0) / batchSkills.length;
    const batchPerSec = batchSkills.length / (batchMs / 1000);
    console.log(
      `store floor, applySkillEvents x256: ${batchSkills.length} in ${round(batchMs, 0)} ms = ` +
        `${round(batchPerSec, 0)}/s, ${round(batchCpuUs, 1)} µs CPU each`,
    );

    // ---- 1. sender side: the same burst to a client that only counts ---------------------
    const sender = await senderSide(sim, EVENTS);
    console.log(
      `sender side, resume burst to a counting client: ${EVENTS} in ${round(EVENTS / sender.perSec, 2)} s = ` +
        `${round(sender.perSec, 0)} events/s, ${round(sender.cpuUs, 1)} µs CPU each ` +
        `(first frame after ${round(sender.firstFrameMs, 0)} ms: the replay is written in one go)`,
    );

    // ---- 2. sustained apply: a resume burst of EVENTS updates ----------------------------
    const seqBefore = sim.control.stats().seq;
    await store.updateWsState({ lastSeq: seqBefore });
    sim.control.mutate(EVENTS, ['update']);
    const real = createEngineSink({ engine, store, ttlMs });
    const pendingEmit = new Map<string, number[]>();
    const latencies: number[] = [];
    let measuring = false;
    let transactions = 0;
    // Latency sample: emitted -> applied and readable from the store (this version, or a newer
    // one of the same skill written in the same batch).
    const sample = async (skill: Skill, appliedAt: number): Promise<void> => {
      const q = pendingEmit.get(skill.skill_id);
      const emittedAt = q?.shift();
      if (emittedAt === undefined) return;
      if (q?.length === 0) pendingEmit.delete(skill.skill_id);
      const read = await store.getSkill(skill.skill_id, Date.now());
      const readAt = Date.parse(read?.remoteUpdatedAt ?? '');
      if (!(readAt >= Date.parse(skill.updated_at ?? ''))) throw new Error('not readable after apply');
      latencies.push(appliedAt - emittedAt);
    };
    const realBatch = real.applySkills?.bind(real);
    const sink: StreamSink = {
      ...real,
      async applySkill(skill) {
        transactions++;
        const outcome = await real.applySkill(skill);
        if (measuring) await sample(skill, performance.now());
        return outcome;
      },
      ...(realBatch
        ? {
            async applySkills(skills: readonly Skill[]) {
              transactions++;
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
        pipeline: {
          rateLimitPerSec: Math.max(20_000, RATE * 4),
          rateLimitBurst: Math.max(EVENTS, RATE * 4),
          flushIntervalMs: 1_000,
        },
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
    let firstFrameMs = NaN;
    while (applied() < EVENTS) {
      if (performance.now() - c0 > 600_000)
        throw new Error(`only ${applied()} of ${EVENTS} applied in 600 s`);
      await sleep(5);
      if (Number.isNaN(firstFrameMs) && client.status().pipeline.received > 0)
        firstFrameMs = performance.now() - c0;
    }
    const burstMs = performance.now() - c0;
    const applyCpuUs = cpuUs(cc0) / EVENTS;
    const applyPerSec = EVENTS / (burstMs / 1000);
    const counts = client.status().pipeline.counts;
    const burstTransactions = transactions;
    console.log(
      `sustained apply over the socket: ${EVENTS} events in ${round(burstMs, 0)} ms = ${round(applyPerSec, 0)} events/s ` +
        `(applied ${counts.applied}, duplicate ${counts.duplicate}, stale ${counts.stale}; ` +
        `${burstTransactions} store transactions; first frame seen after ~${round(firstFrameMs, 0)} ms); ` +
        `${round(applyPerSec / batchPerSec, 3)}x the batched store floor, ${round(applyPerSec / sender.perSec, 3)}x the sender side`,
    );
    console.log(
      `CPU per event: socket path ${round(applyCpuUs, 1)} µs (simulator included), batched store floor ` +
        `${round(batchCpuUs, 1)} µs -> one idle core could apply ${round(1e6 / applyCpuUs, 0)} events/s ` +
        `(load average now ${round(loadavg()[0] ?? 0, 1)}); less the sender side's ${round(sender.cpuUs, 1)} µs ` +
        `(an estimate of the client's own cost): ${round(applyCpuUs - sender.cpuUs, 1)} µs`,
    );

    // ---- 3. latency at RATE events/s --------------------------------------------------------
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

    console.log(
      JSON.stringify({
        bench: 'ws-apply',
        events: EVENTS,
        skills: SKILLS,
        applyEventsPerSec: round(applyPerSec, 0),
        applyStoreTransactions: burstTransactions,
        applyCpuUsPerEvent: round(applyCpuUs, 1),
        applyCpuBoundEventsPerSec: round(1e6 / applyCpuUs, 0),
        applyCpuUsPerEventLessSender: round(applyCpuUs - sender.cpuUs, 1),
        senderEventsPerSec: round(sender.perSec, 0),
        senderCpuUsPerEvent: round(sender.cpuUs, 1),
        applyVsSenderRatio: round(applyPerSec / sender.perSec, 3),
        baselineStoreEventsPerSec: round(basePerSec, 0),
        baselineStoreCpuUsPerEvent: round(baseCpuUs, 1),
        baselineStoreBatchEventsPerSec: round(batchPerSec, 0),
        baselineStoreBatchCpuUsPerEvent: round(batchCpuUs, 1),
        applyVsStoreBatchRatio: round(applyPerSec / batchPerSec, 3),
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

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
