/**
 * The message pipeline on its own: frames pushed straight into it (no socket), applied
 * through the real engine sink into a real SQLite store, time on a FakeClock. Sequence gaps
 * vs reordering, the dirty window, validation and quarantine, counters batching.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientWsMessage, Skill } from '../src/remote/contract.js';
import type { EventOutcome } from '../src/store/types.js';
import { MessagePipeline } from '../src/stream/message-pipeline.js';
import type { MessagePipelineOptions } from '../src/stream/message-pipeline.js';
import { FakeClock } from './helpers/fake-clock.js';
import type { StreamRig } from './stream-fixture.js';
import { startRig } from './stream-fixture.js';

let rig: StreamRig | null = null;
let pipeline: MessagePipeline | null = null;
afterEach(async () => {
  await pipeline?.close();
  pipeline = null;
  await rig?.close();
  rig = null;
});

async function setup(
  options: Partial<MessagePipelineOptions> = {},
  initialSeq: number | null = null,
): Promise<{ r: StreamRig; p: MessagePipeline; clock: FakeClock; replies: ClientWsMessage[] }> {
  rig = await startRig({ sim: { skills: 50 } });
  const clock = new FakeClock(Date.now());
  pipeline = new MessagePipeline({ store: rig.store, sink: rig.sink, clock, options, initialSeq });
  const replies: ClientWsMessage[] = [];
  return { r: rig, p: pipeline, clock, replies };
}

/** A real skill_update frame for skill i of the simulator's catalog. */
function skillFrame(r: StreamRig, seq?: number, mutate = true): string {
  const rec = mutate ? r.sim.control.mutate(1, ['update'])[0] : undefined;
  const id = rec?.skillId ?? r.sim.control.liveSkillIds()[0]!;
  const data = r.sim.control.getSkill(id);
  return JSON.stringify({ type: 'skill_update', data, ...(seq === undefined ? {} : { seq }) });
}

describe('pipeline: sequence numbers', () => {
  it('reordering within the grace period is not a gap', async () => {
    const { r, p, clock, replies } = await setup({ gapGraceMs: 2_000 }, 10);
    const f11 = skillFrame(r, 11);
    const f12 = skillFrame(r, 12);
    const f13 = skillFrame(r, 13);
    p.push(f11, (m) => replies.push(m));
    p.push(f13, (m) => replies.push(m));
    clock.advance(1_000);
    p.push(f12, (m) => replies.push(m));
    clock.advance(5_000);
    await p.idle();
    expect(r.catchUps).toEqual([]);
    expect(p.lastSeq).toBe(13);
    expect(p.stats().counts.applied).toBe(3);
  });

  it('a hole that stays open past the grace period asks for one incremental catch-up', async () => {
    const { r, p, clock } = await setup({ gapGraceMs: 2_000 }, 10);
    p.push(skillFrame(r, 11), () => {});
    p.push(skillFrame(r, 14), () => {});
    p.push(skillFrame(r, 15), () => {});
    clock.advance(1_999);
    expect(r.catchUps).toEqual([]);
    clock.advance(1);
    expect(r.catchUps).toEqual([{ reason: 'seq_gap', mode: 'incremental' }]);
  });

  it('a gap larger than maxTrackedGap asks at once', async () => {
    const { r, p } = await setup({ maxTrackedGap: 100 }, 10);
    p.push(skillFrame(r, 500), () => {});
    expect(r.catchUps).toEqual([{ reason: 'seq_gap', mode: 'incremental' }]);
    expect(p.lastSeq).toBe(500);
  });

  it('a stream that restarted its numbering is followed, duplicates are harmless', async () => {
    const { r, p, clock } = await setup({}, 1_000);
    p.connectionOpened();
    p.push(skillFrame(r, 3), () => {});
    p.push(skillFrame(r, 4), () => {});
    const dup = skillFrame(r, 5);
    p.push(dup, () => {});
    p.push(dup, () => {});
    clock.advance(10_000);
    await p.idle();
    expect(p.lastSeq).toBe(5);
    expect(r.catchUps).toEqual([]);
    expect(p.stats().counts).toMatchObject({ applied: 3, duplicate: 1 });
  });

  it('lastSeq is persisted with the batched counters', async () => {
    const { r, p, clock } = await setup({ flushIntervalMs: 1_000 }, null);
    p.push(skillFrame(r, 7), () => {});
    await p.idle();
    expect((await r.store.getWsState()).lastSeq).toBeNull();
    expect((await r.store.getWsState()).counts.applied).toBe(0);
    clock.advance(1_000);
    await new Promise((res) => setTimeout(res, 20));
    const row = await r.store.getWsState();
    expect(row.lastSeq).toBe(7);
    expect(row.counts.applied).toBe(1);
    expect(row.lastMessageAt).toBe(clock.now() - 1_000);
  });
});

describe('pipeline: validation, types, limits', () => {
  it('invalid frames are quarantined and counted; unknown types counted and ignored; server pings answered', async () => {
    const { r, p, replies } = await setup();
    const reply = (m: ClientWsMessage): number => replies.push(m);
    p.push('{"type":"skill_update","data":{"skill_id":', reply);
    p.push('[1,2,3]', reply);
    p.push('{"type":"skill_update","data":{"skill_id":"x"}}', reply); // no name
    p.push('{"type":"mystery","data":{}}', reply);
    p.push('{"type":"ping"}', reply);
    p.push('{"type":"pong"}', reply);
    p.push(Buffer.alloc(2 * 1024 * 1024, 0x20), reply);
    await p.close();
    pipeline = null;
    expect(replies).toEqual([{ type: 'pong' }]);
    // What the invalid frames carried is unknown: a catch-up covers it (asked for on close at the latest).
    expect(r.catchUps).toEqual([{ reason: 'message_lost', mode: 'incremental' }]);
    const st = p.stats();
    expect(st.counts).toMatchObject({ invalid: 4, unknown: 1, applied: 0 });
    const q = await r.store.listQuarantine({ limit: 10, offset: 0 });
    expect(q.items.map((i) => i.kind)).toEqual(['ws_message', 'ws_message', 'ws_message', 'ws_message']);
    expect(q.items.map((i) => i.reason).join('\n')).toMatch(/not valid JSON/);
    expect(q.items.map((i) => i.reason).join('\n')).toMatch(/exceeds the 1048576-byte limit/);
    expect((await r.store.getWsState()).counts).toMatchObject({ invalid: 4, unknown: 1 });
  });

  it('over the rate limit: counted, not applied, and a catch-up follows once the burst is quiet', async () => {
    const { r, p, clock } = await setup({
      rateLimitPerSec: 1,
      rateLimitBurst: 10,
      dirtyQuietMs: 500,
      dirtyMaxDelayMs: 3_000,
    });
    for (let i = 0; i < 25; i++) p.push(skillFrame(r), () => {});
    await p.idle();
    expect(p.stats().counts).toMatchObject({ applied: 10, rate_limited: 15 });
    expect(r.catchUps).toEqual([]);
    clock.advance(400);
    p.push(skillFrame(r), () => {}); // still over the limit: pushes the catch-up back
    clock.advance(400);
    expect(r.catchUps).toEqual([]);
    clock.advance(100);
    expect(r.catchUps).toEqual([{ reason: 'rate_limited', mode: 'incremental' }]);
    expect(p.stats().counts.rate_limited).toBe(16);
  });

  it('a sustained flood still gets a catch-up within dirtyMaxDelayMs', async () => {
    const { r, p, clock } = await setup({
      rateLimitPerSec: 1,
      rateLimitBurst: 1,
      dirtyQuietMs: 500,
      dirtyMaxDelayMs: 2_000,
    });
    const frame = skillFrame(r);
    p.push(frame, () => {});
    for (let t = 0; t < 2_000; t += 100) {
      p.push(frame, () => {});
      clock.advance(100);
    }
    expect(r.catchUps.map((c) => c.reason)).toContain('rate_limited');
  });

  it('rating updates merge aggregates; one for an unknown skill or without aggregates asks for a catch-up', async () => {
    const { r, p, clock } = await setup({ dirtyQuietMs: 100 });
    const id = r.sim.control.liveSkillIds()[0]!;
    const at = new Date(Date.now() + 60_000).toISOString();
    p.push(
      JSON.stringify({
        type: 'rating_update',
        data: { skill_id: id, average_rating: 4.5, rating_count: 99 },
        timestamp: at,
      }),
      () => {},
    );
    await p.idle();
    const s = await r.store.getSkill(id, Date.now());
    expect(s?.base.average_rating).toBe(4.5);
    expect(s?.base.rating_count).toBe(99);
    p.push(
      JSON.stringify({ type: 'rating_update', data: { skill_id: 'no-such-skill', rating_count: 1 } }),
      () => {},
    );
    await p.idle();
    clock.advance(100);
    expect(r.catchUps).toEqual([{ reason: 'missing_skill', mode: 'incremental' }]);
    p.push(JSON.stringify({ type: 'rating_update', data: { skill_id: id, rating: 3 } }), () => {});
    await p.idle();
    clock.advance(100);
    expect(r.catchUps.map((c) => c.reason)).toEqual(['missing_skill', 'rating_only']);
    expect(p.stats().counts).toMatchObject({ applied: 1, stale: 2 });
  });

  it('a delete older than the stored update is stale; deletes and category events apply directly', async () => {
    const { r, p } = await setup();
    const [a, b] = r.sim.control.liveSkillIds();
    const stored = await r.store.getSkill(a!, Date.now());
    const older = new Date(Date.parse(stored!.remoteUpdatedAt!) - 1_000).toISOString();
    p.push(JSON.stringify({ type: 'skill_delete', data: { skill_id: a }, timestamp: older }), () => {});
    p.push(JSON.stringify({ type: 'skill_delete', data: { skill_id: b } }), () => {});
    p.push(JSON.stringify({ type: 'skill_delete', data: { skill_id: b } }), () => {});
    p.push(
      JSON.stringify({ type: 'category_update', data: { name: 'zz-new', display_name: 'New' } }),
      () => {},
    );
    p.push(JSON.stringify({ type: 'category_delete', data: { name: 'zz-new' } }), () => {});
    p.push(JSON.stringify({ type: 'category_delete', data: { name: 'zz-new' } }), () => {});
    await p.idle();
    expect(await r.store.getSkill(a!, Date.now())).not.toBeNull();
    expect(await r.store.getSkill(b!, Date.now())).toBeNull();
    expect(p.stats().counts).toMatchObject({ stale: 1, applied: 3, duplicate: 2 });
  });

  it('a reset asks for a full sync', async () => {
    const { r, p } = await setup();
    p.push('{"type":"reset","data":{"epoch":"ep-2"}}', () => {});
    await p.idle();
    expect(r.catchUps).toEqual([{ reason: 'reset', mode: 'full' }]);
  });

  it('a failed store write is not lost: it marks the window for a catch-up', async () => {
    const { r, p, clock } = await setup({ dirtyQuietMs: 100 });
    const frame = skillFrame(r);
    await r.store.close(); // every write now fails
    p.push(frame, () => {});
    await p.idle();
    clock.advance(100);
    expect(p.stats().applyErrors).toBe(1);
    expect(r.catchUps.map((c) => c.reason)).toEqual(['message_lost']);
    pipeline = null; // its final flush cannot reach the closed store
  });
});

describe('pipeline: batching', () => {
  it('queued skill updates go to the batch path in arrival order, in batches of at most maxBatch', async () => {
    rig = await startRig({ sim: { skills: 50 } });
    const r = rig;
    const batches: string[][] = [];
    // The batch path composed from the real engine's per-skill apply: what matters here is
    // how the pipeline cuts batches.
    const sink = {
      ...r.sink,
      async applySkills(skills: readonly Skill[]) {
        batches.push(skills.map((s) => s.skill_id));
        const out: EventOutcome[] = [];
        for (const s of skills) out.push(await r.sink.applySkill(s));
        return out;
      },
    };
    const clock = new FakeClock(Date.now());
    pipeline = new MessagePipeline({ store: r.store, sink, clock, options: { maxBatch: 4 } });
    const p = pipeline;
    const ids = r.sim.control.liveSkillIds();
    const frames: string[] = [];
    // a b c d e f, then a again (a later version of a: same batch path, in order), then g.
    for (const i of [0, 1, 2, 3, 4, 5, 0, 6]) {
      r.sim.control.mutate(0);
      frames.push(JSON.stringify({ type: 'skill_update', data: r.sim.control.getSkill(ids[i]!) }));
    }
    for (const f of frames) p.push(f, () => {});
    await p.idle();
    // Draining starts after the pushes (the next turn of the event loop): every frame is batched.
    expect(batches).toEqual([[0, 1, 2, 3].map((i) => ids[i]), [4, 5, 0, 6].map((i) => ids[i])]);
    expect(p.stats().counts.applied + p.stats().counts.duplicate).toBe(8);
  });

  it('a full queue asks to stop reading the socket and to read again once half is written', async () => {
    const { r } = await setup();
    const signals: { paused: boolean; queued: number }[] = [];
    const clock = new FakeClock(Date.now());
    const p = new MessagePipeline({
      store: r.store,
      sink: r.sink,
      clock,
      options: { maxBatch: 4, maxQueued: 10 },
      onBackpressure: (paused) => signals.push({ paused, queued: p.stats().queued }),
    });
    await pipeline?.close();
    pipeline = p;
    for (let i = 0; i < 30; i++) p.push(skillFrame(r), () => {});
    // Frames that are already read still go in (nothing dropped); the signal is sent once.
    expect(signals).toEqual([{ paused: true, queued: 10 }]);
    expect(p.stats().queued).toBe(30);
    await p.idle();
    expect(signals).toEqual([
      { paused: true, queued: 10 },
      { paused: false, queued: 2 },
    ]);
    expect(p.stats().counts.applied + p.stats().counts.duplicate).toBe(30);
  });
});
