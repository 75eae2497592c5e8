/**
 * The WebSocket message pipeline: size check -> JSON parse + per-type validation (the
 * contract's readWsMessage) -> rate limit -> sequence tracking -> apply through the sink.
 *
 * Decisions that matter:
 * - Nothing is lost silently. A message over the rate limit, an invalid or oversized frame,
 *   a write that failed, a rating for a skill we do not have, or a gap in `seq` marks the
 *   window dirty, and a catch-up
 *   incremental sync is requested once the burst is over (debounced, bounded by
 *   `dirtyMaxDelayMs` so a sustained flood still gets periodic catch-ups). The listing then
 *   delivers what the socket dropped; the store's version guard absorbs the repeats.
 * - Arrival-time work (parse, rate limit, seq) is synchronous; store writes are applied in
 *   arrival order from a queue, so a slow write never reorders events. Consecutive skill
 *   updates go in one batch when the sink offers a batch write: one store transaction for
 *   many events (SQLite's commit, which also flushes the FTS index, is shared).
 * - The queue is drained on the next turn of the event loop, not inside the socket callback,
 *   so every frame of a network read is queued before the first write; and the drain yields
 *   to I/O again after every `maxBatch` messages written, so a backlog is read while it is
 *   written (batches fill up to `maxBatch`) and the rest of the process (HTTP, timers) is not
 *   held for the whole backlog. At low rates a batch is what one loop turn brought: no timer
 *   is waited on, latency stays one write. A yield is `setImmediate`, not a clock timer: it
 *   orders work, it does not measure time.
 * - The queue is bounded: above `maxQueued` waiting messages the pipeline asks its owner to
 *   stop reading the socket (TCP then holds the rest at the sender) and to read again once
 *   half of it is written. Nothing is dropped for it.
 * - Outcome counts, lastMessageAt and lastSeq go to the ws state row in batches (every
 *   `flushIntervalMs`), so the hot path is one store write per event, not three.
 * - Reordering is not a gap: a missing seq gets `gapGraceMs` to arrive before it counts.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { ClientWsMessage, Skill, WsMessage } from '../remote/contract.js';
import { readWsMessage, WS_MAX_MESSAGE_BYTES } from '../remote/contract.js';
import type { Store } from '../store/store.js';
import type { QuarantineInput, WsOutcome } from '../store/types.js';
import { WS_OUTCOMES } from '../store/types.js';
import type { CatchUpReason, StreamSink } from './stream-sink.js';
import { TokenBucket } from './token-bucket.js';

export interface MessagePipelineOptions {
  /** Frames larger than this are refused (also the socket's maxPayload). */
  readonly maxMessageBytes: number;
  /** Messages per second; 0 = unlimited. */
  readonly rateLimitPerSec: number;
  /** Bucket size; defaults to one second's worth. */
  readonly rateLimitBurst: number;
  /** After the last dirty-marking message, wait this long before asking for the catch-up. */
  readonly dirtyQuietMs: number;
  /** ...but never longer than this after the window became dirty. */
  readonly dirtyMaxDelayMs: number;
  /** How long a missing seq may take to arrive (reordering) before it is a gap. */
  readonly gapGraceMs: number;
  /** A gap larger than this triggers the catch-up at once. */
  readonly maxTrackedGap: number;
  /** Batching of counts / lastMessageAt / lastSeq / quarantine writes to the store. */
  readonly flushIntervalMs: number;
  /** Queued skill updates applied in one batch when the sink supports it. */
  readonly maxBatch: number;
  /** Waiting messages above which reading is paused (onBackpressure), resumed at half. */
  readonly maxQueued: number;
}

export const DEFAULT_MESSAGE_PIPELINE: MessagePipelineOptions = Object.freeze({
  maxMessageBytes: WS_MAX_MESSAGE_BYTES,
  rateLimitPerSec: 100,
  rateLimitBurst: 100,
  dirtyQuietMs: 1_000,
  dirtyMaxDelayMs: 5_000,
  gapGraceMs: 2_000,
  maxTrackedGap: 1_000,
  flushIntervalMs: 1_000,
  maxBatch: 256,
  maxQueued: 2_048,
});

export type OutcomeCounts = Record<WsOutcome, number>;

export interface PipelineStats {
  counts: OutcomeCounts;
  /** Frames received (all kinds, pings included). */
  received: number;
  /** Catch-up syncs requested by the pipeline, by reason. */
  catchUps: Partial<Record<CatchUpReason, number>>;
  /** Store writes that threw (the window was marked dirty for a catch-up). */
  applyErrors: number;
  lastSeq: number | null;
  lastMessageAt: number | null;
  /** Messages waiting for their store write. */
  queued: number;
}

export interface MessagePipelineDeps {
  readonly store: Store;
  readonly sink: StreamSink;
  readonly clock?: Clock;
  readonly options?: Partial<MessagePipelineOptions>;
  /** lastSeq persisted in the ws state row (resume after a restart). */
  readonly initialSeq?: number | null;
  readonly onError?: (err: unknown) => void;
  /**
   * true: too many messages wait for their write, stop reading the socket; false: read again.
   * Called on changes only.
   */
  readonly onBackpressure?: (paused: boolean) => void;
}

type Reply = (message: ClientWsMessage) => void;

/** Resolves after the I/O callbacks that are ready have run (see the header). */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
type DataMessage = Exclude<WsMessage, { type: 'ping' | 'pong' | 'unknown' }>;

const zeroCounts = (): OutcomeCounts => Object.fromEntries(WS_OUTCOMES.map((o) => [o, 0])) as OutcomeCounts;

export class MessagePipeline {
  readonly #store: Store;
  readonly #sink: StreamSink;
  readonly #clock: Clock;
  readonly #options: MessagePipelineOptions;
  readonly #onError: (err: unknown) => void;
  readonly #onBackpressure: (paused: boolean) => void;
  readonly #bucket: TokenBucket;

  // Apply queue (arrival order).
  #queue: DataMessage[] = [];
  #head = 0;
  #draining: Promise<void> | null = null;
  #paused = false;

  // Counters: totals for metrics, and deltas not yet written to the store.
  readonly #totals = zeroCounts();
  #pending: Partial<OutcomeCounts> = {};
  #pendingQuarantine: QuarantineInput[] = [];
  #received = 0;
  #applyErrors = 0;
  readonly #catchUps: Partial<Record<CatchUpReason, number>> = {};
  #lastMessageAt: number | null = null;
  #stateDirty = false;
  #flushTimer: TimerHandle | null = null;
  #flushing: Promise<void> | null = null;

  // Sequence tracking (ws_seq).
  #lastSeq: number | null;
  #persistedSeq: number | null;
  #missing = new Set<number>();
  #gapTimer: TimerHandle | null = null;
  #firstOnConnection = false;

  // Dirty window (something was not applied: a catch-up must follow).
  #dirtyReason: CatchUpReason | null = null;
  #dirtySince = 0;
  #dirtyLastAt = 0;
  #dirtyTimer: TimerHandle | null = null;

  #closed = false;

  constructor(deps: MessagePipelineDeps) {
    this.#store = deps.store;
    this.#sink = deps.sink;
    this.#clock = deps.clock ?? systemClock;
    this.#options = { ...DEFAULT_MESSAGE_PIPELINE, ...deps.options };
    this.#onError = deps.onError ?? (() => {});
    this.#onBackpressure = deps.onBackpressure ?? (() => {});
    this.#lastSeq = deps.initialSeq ?? null;
    this.#persistedSeq = this.#lastSeq;
    this.#bucket = new TokenBucket(
      this.#options.rateLimitPerSec,
      deps.options?.rateLimitBurst ?? Math.max(1, this.#options.rateLimitPerSec),
      this.#clock.now(),
    );
  }

  get lastSeq(): number | null {
    return this.#lastSeq;
  }

  stats(): PipelineStats {
    return {
      counts: { ...this.#totals },
      received: this.#received,
      catchUps: { ...this.#catchUps },
      applyErrors: this.#applyErrors,
      lastSeq: this.#lastSeq,
      lastMessageAt: this.#lastMessageAt,
      queued: this.#queue.length - this.#head,
    };
  }

  /** A new socket is open: the first seq on it may legitimately restart the stream. */
  connectionOpened(): void {
    this.#firstOnConnection = true;
  }

  /**
   * One inbound frame. Synchronous: classification, rate limit and seq tracking happen at
   * arrival; the store write is queued. `reply` sends to the server (pong).
   */
  push(frame: Buffer | string, reply: Reply): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#received++;
    this.#lastMessageAt = now;
    this.#stateDirty = true;
    const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    if (size > this.#options.maxMessageBytes) {
      this.recordOversized(size);
      return;
    }
    const parsed = readWsMessage(frame);
    if (!parsed.ok) {
      // Whatever this frame carried is unknown to us: the listing will tell.
      this.#count('invalid');
      this.#markDirty('message_lost');
      this.#quarantine(
        `${parsed.error.path}: ${parsed.error.message}`,
        typeof frame === 'string' ? frame : frame.toString('utf8'),
        now,
      );
      this.#armFlush();
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'ping':
        reply({ type: 'pong' });
        this.#armFlush();
        return;
      case 'pong':
        this.#armFlush();
        return;
      default:
        break;
    }
    if (!this.#bucket.take(now)) {
      this.#count('rate_limited');
      if (msg.seq !== undefined) this.#trackSeq(msg.seq);
      this.#markDirty('rate_limited');
      this.#armFlush();
      return;
    }
    if (msg.type === 'unknown') {
      this.#count('unknown');
      if (msg.seq !== undefined) this.#trackSeq(msg.seq);
      this.#armFlush();
      return;
    }
    if (msg.seq !== undefined) this.#trackSeq(msg.seq);
    this.#queue.push(msg);
    this.#draining ??= this.#drain();
    if (!this.#paused && this.#queue.length - this.#head >= this.#options.maxQueued) this.#setPaused(true);
    this.#armFlush();
  }

  /** A frame over the size limit (the socket refused it): counted and quarantined. */
  recordOversized(size: number | null): void {
    this.#count('invalid');
    this.#markDirty('message_lost');
    this.#quarantine(
      `frame${size === null ? '' : ` of ${size} bytes`} exceeds the ${this.#options.maxMessageBytes}-byte limit`,
      { size },
      this.#clock.now(),
    );
    this.#armFlush();
  }

  /** Resolves when every queued message has been applied. */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Writes pending counts, quarantine and state to the store now. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#flushTimer) {
      this.#clock.clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    this.#flushing = this.#flushNow();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = null;
    }
  }

  /**
   * Stops: waits for queued writes, asks for any pending catch-up (a dirty window must not be
   * forgotten on shutdown of the socket), writes the counters, and leaves no timer behind.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.idle();
    for (const t of [this.#gapTimer, this.#dirtyTimer]) if (t) this.#clock.clearTimeout(t);
    this.#gapTimer = null;
    this.#dirtyTimer = null;
    if (this.#missing.size > 0) {
      this.#missing.clear();
      this.#requestCatchUp('seq_gap', 'incremental');
    }
    this.#flushDirty();
    await this.flush();
  }

  // ---- apply -------------------------------------------------------------------------------

  async #drain(): Promise<void> {
    try {
      // Starts with a yield; then one after every maxBatch messages written.
      let sinceYield = this.#options.maxBatch;
      while (this.#head < this.#queue.length) {
        if (sinceYield >= this.#options.maxBatch) {
          await yieldToIo();
          sinceYield = 0;
        }
        const batch = this.#takeBatch();
        if (batch !== null) await this.#applyBatch(batch);
        else await this.#applyOne(this.#queue[this.#head++] as DataMessage);
        sinceYield += batch?.length ?? 1;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        if (this.#paused && (this.#queue.length - this.#head) * 2 <= this.#options.maxQueued)
          this.#setPaused(false);
      }
      this.#queue = [];
      this.#head = 0;
    } finally {
      this.#draining = null;
    }
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    try {
      this.#onBackpressure(paused);
    } catch (err) {
      this.#onError(err);
    }
  }

  /**
   * The consecutive queued skill updates at the head (up to maxBatch), when the sink has a
   * batch path and more than one is waiting. One skill may come more than once: the batch
   * path applies them in order, each judged against the one before (see StreamSink). Null:
   * apply the head message alone.
   */
  #takeBatch(): Skill[] | null {
    if (!this.#sink.applySkills) return null;
    const q = this.#queue;
    const first = q[this.#head];
    const next = q[this.#head + 1];
    if (first?.type !== 'skill_update' || next?.type !== 'skill_update') return null;
    const skills: Skill[] = [];
    for (let i = this.#head; i < q.length && skills.length < this.#options.maxBatch; i++) {
      const m = q[i] as DataMessage;
      if (m.type !== 'skill_update') break;
      skills.push(m.data);
    }
    this.#head += skills.length;
    return skills;
  }

  async #applyBatch(skills: Skill[]): Promise<void> {
    try {
      const outcomes = await (this.#sink.applySkills as NonNullable<StreamSink['applySkills']>)(skills);
      for (const o of outcomes) this.#count(o);
    } catch (err) {
      this.#applyErrors += skills.length;
      this.#markDirty('message_lost');
      this.#onError(err);
    }
  }

  async #applyOne(msg: DataMessage): Promise<void> {
    try {
      this.#count(await this.#apply(msg));
    } catch (err) {
      // The write failed (store down?): the event is lost for now; a catch-up gets it.
      this.#applyErrors++;
      this.#markDirty('message_lost');
      this.#onError(err);
    }
  }

  async #apply(msg: DataMessage): Promise<WsOutcome> {
    switch (msg.type) {
      case 'skill_update':
        return this.#sink.applySkill(msg.data);
      case 'skill_delete': {
        const r = await this.#sink.deleteSkill(msg.data.skill_id, msg.timestamp);
        // Deleting what is not there is a repeat of an earlier delete.
        return r === 'missing' ? 'duplicate' : r;
      }
      case 'category_update':
        return this.#sink.applyCategory(msg.data);
      case 'category_delete':
        return (await this.#sink.deleteCategory(msg.data.name)) ? 'applied' : 'duplicate';
      case 'rating_update': {
        const { average_rating: avg, rating_count: count } = msg.data;
        if (avg === undefined && count === undefined) {
          // A single rating without aggregates: we cannot merge it, the listing can.
          this.#markDirty('rating_only');
          return 'stale';
        }
        const r = await this.#sink.applyRating(msg.data, msg.timestamp);
        if (r === 'missing') {
          // The remote has a skill we do not: the socket missed its creation.
          this.#markDirty('missing_skill');
          return 'stale';
        }
        return r;
      }
      case 'reset':
        // A new dataset epoch: only a full listing can tell what survived.
        this.#requestCatchUp('reset', 'full');
        return 'applied';
    }
  }

  // ---- sequence tracking -------------------------------------------------------------------

  #trackSeq(seq: number): void {
    const first = this.#firstOnConnection;
    this.#firstOnConnection = false;
    const last = this.#lastSeq;
    if (last === null) {
      this.#lastSeq = seq;
    } else if (seq === last + 1) {
      this.#lastSeq = seq;
    } else if (seq > last + 1) {
      const gap = seq - last - 1;
      if (gap > this.#options.maxTrackedGap || this.#missing.size + gap > this.#options.maxTrackedGap) {
        this.#missing.clear();
        this.#clearGapTimer();
        this.#requestCatchUp('seq_gap', 'incremental');
      } else {
        for (let s = last + 1; s < seq; s++) this.#missing.add(s);
        this.#gapTimer ??= this.#clock.setTimeout(() => this.#onGapTimer(), this.#options.gapGraceMs);
      }
      this.#lastSeq = seq;
    } else if (this.#missing.delete(seq)) {
      // A late (reordered) event filled its hole.
      if (this.#missing.size === 0) this.#clearGapTimer();
    } else if (first && seq < last) {
      // The first event on a new socket is behind us and was never missing: the server's
      // stream restarted (or ignored resume). Follow the new numbering; the reconnect
      // catch-up covers the window.
      this.#lastSeq = seq;
      this.#missing.clear();
      this.#clearGapTimer();
    }
    // Otherwise a duplicate: the store's version guard makes it harmless.
    if (this.#lastSeq !== this.#persistedSeq) this.#stateDirty = true;
  }

  #onGapTimer(): void {
    this.#gapTimer = null;
    if (this.#missing.size === 0) return;
    this.#missing.clear();
    this.#requestCatchUp('seq_gap', 'incremental');
  }

  #clearGapTimer(): void {
    if (this.#gapTimer) this.#clock.clearTimeout(this.#gapTimer);
    this.#gapTimer = null;
  }

  // ---- dirty window ------------------------------------------------------------------------

  #markDirty(reason: CatchUpReason): void {
    const now = this.#clock.now();
    if (this.#dirtyReason === null) {
      this.#dirtyReason = reason;
      this.#dirtySince = now;
    }
    this.#dirtyLastAt = now;
    if (!this.#dirtyTimer && !this.#closed) {
      this.#dirtyTimer = this.#clock.setTimeout(() => this.#onDirtyTimer(), this.#options.dirtyQuietMs);
    } else if (this.#closed) {
      this.#flushDirty();
    }
  }

  #onDirtyTimer(): void {
    this.#dirtyTimer = null;
    const now = this.#clock.now();
    const quietFor = now - this.#dirtyLastAt;
    const dirtyFor = now - this.#dirtySince;
    if (quietFor < this.#options.dirtyQuietMs && dirtyFor < this.#options.dirtyMaxDelayMs) {
      const wait = Math.min(this.#options.dirtyQuietMs - quietFor, this.#options.dirtyMaxDelayMs - dirtyFor);
      this.#dirtyTimer = this.#clock.setTimeout(() => this.#onDirtyTimer(), Math.max(1, wait));
      return;
    }
    this.#flushDirty();
  }

  #flushDirty(): void {
    const reason = this.#dirtyReason;
    if (reason === null) return;
    this.#dirtyReason = null;
    this.#requestCatchUp(reason, 'incremental');
  }

  #requestCatchUp(reason: CatchUpReason, mode: 'incremental' | 'full'): void {
    this.#catchUps[reason] = (this.#catchUps[reason] ?? 0) + 1;
    try {
      this.#sink.requestCatchUp(reason, mode);
    } catch (err) {
      this.#onError(err);
    }
  }

  // ---- counters and persistence ------------------------------------------------------------

  #count(outcome: WsOutcome): void {
    this.#totals[outcome]++;
    this.#pending[outcome] = (this.#pending[outcome] ?? 0) + 1;
  }

  #quarantine(reason: string, payload: unknown, at: number): void {
    this.#pendingQuarantine.push({ kind: 'ws_message', key: null, reason, payload, runId: null, at });
  }

  #armFlush(): void {
    if (this.#flushTimer || this.#closed) return;
    this.#flushTimer = this.#clock.setTimeout(() => {
      this.#flushTimer = null;
      this.flush().catch(this.#onError);
    }, this.#options.flushIntervalMs);
  }

  async #flushNow(): Promise<void> {
    const counts = this.#pending;
    const quarantine = this.#pendingQuarantine;
    const stateDirty = this.#stateDirty;
    this.#pending = {};
    this.#pendingQuarantine = [];
    this.#stateDirty = false;
    let stage = 0;
    try {
      if (Object.keys(counts).length > 0) await this.#store.incrementWsCounts(counts);
      stage = 1;
      if (quarantine.length > 0) await this.#store.quarantine(quarantine);
      stage = 2;
      if (stateDirty) {
        const patch: { lastMessageAt: number | null; lastSeq?: number | null } = {
          lastMessageAt: this.#lastMessageAt,
        };
        const seq = this.#lastSeq;
        if (seq !== this.#persistedSeq) patch.lastSeq = seq;
        await this.#store.updateWsState(patch);
        this.#persistedSeq = seq;
      }
    } catch (err) {
      // Keep what was not written for the next flush: counts are never lost to a hiccup.
      if (stage < 1)
        for (const [k, v] of Object.entries(counts) as [WsOutcome, number][])
          this.#pending[k] = (this.#pending[k] ?? 0) + v;
      if (stage < 2) this.#pendingQuarantine.unshift(...quarantine);
      this.#stateDirty ||= stateDirty;
      throw err;
    }
  }
}
