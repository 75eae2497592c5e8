/**
 * What the real-time channel needs from the rest of skillsync, and nothing more: a narrow
 * port, so the socket client and its message pipeline do not depend on the sync engine's
 * internals. `createEngineSink` adapts the real engine + store to it.
 *
 * skill_update goes through the engine (the same conflict resolution as polling, no bypass);
 * deletes, categories and rating aggregates apply directly to the store.
 */
import type { Category, RatingUpdate, Skill } from '../remote/contract.js';
import type { Store } from '../store/store.js';
import type { EventOutcome } from '../store/types.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';

/** Why the stream asks for a catch-up sync (for the runs history and logs). */
export type CatchUpReason =
  'reconnect' | 'seq_gap' | 'rate_limited' | 'missing_skill' | 'rating_only' | 'message_lost' | 'reset';

export type CatchUpMode = 'incremental' | 'full';

export interface StreamSink {
  /** A remote skill update: conflict resolution, then the store's version-guarded apply. */
  applySkill(skill: Skill): Promise<EventOutcome>;
  /**
   * Optional batch form of applySkill: skills in arrival order, one outcome each, exactly what
   * applySkill for each in turn gives (a skill may come more than once: each version is judged
   * against the one before it). The pipeline uses it when events queue up (bursts, resume
   * replays): the store's per-transaction cost is then shared.
   */
  applySkills?(skills: readonly Skill[]): Promise<EventOutcome[]>;
  /**
   * A remote delete. `remoteAt` (the message timestamp) guards against a delete that arrives
   * after a newer update of the same skill. 'missing' when the skill was not stored.
   */
  deleteSkill(skillId: string, remoteAt: string | undefined): Promise<EventOutcome | 'missing'>;
  applyCategory(category: Category): Promise<EventOutcome>;
  deleteCategory(name: string): Promise<boolean>;
  /** Merges rating aggregates; 'missing' when the skill is not stored. */
  applyRating(update: RatingUpdate, remoteAt: string | undefined): Promise<EventOutcome | 'missing'>;
  /** Asks for a catch-up sync; must not throw and must coalesce with a running sync. */
  requestCatchUp(reason: CatchUpReason, mode: CatchUpMode): void;
  /** The socket is (or is no longer) the live channel: the schedule switches interval. */
  setFallback(active: boolean): void;
}

/** The part of the sync engine the sink uses (structural, so tests pass the real engine). */
export interface EngineForStream {
  applySkill(skill: Skill, source: 'websocket'): Promise<EventOutcome>;
  /** Used when the engine offers it (one transaction for many events; ids may repeat). */
  applySkills?(skills: readonly Skill[], source: 'websocket'): Promise<EventOutcome[]>;
  requestCatchUp(reason: string, mode: CatchUpMode): void;
}

/** The part of the scheduler the sink uses. */
export interface ScheduleForStream {
  setFallback(active: boolean): void;
}

export interface EngineSinkOptions {
  readonly engine: EngineForStream;
  readonly store: Store;
  /**
   * The scheduler whose interval follows the fallback, or a function returning it (for a
   * composition root that creates the scheduler after the sink). Null when no scheduler runs
   * (CLI, tests): fallback changes then only reach `onFallback`.
   */
  readonly schedule?: ScheduleForStream | (() => ScheduleForStream | null | undefined) | null;
  /** TTL of category rows written from the stream and of remembered deletions (the engine's cache TTL). */
  readonly ttlMs: number;
  readonly clock?: Clock;
  /** Called when the stream's fallback state changes (logs, metrics). */
  readonly onFallback?: (active: boolean) => void;
}

export function createEngineSink(options: EngineSinkOptions): StreamSink {
  const { engine, store, ttlMs } = options;
  const clock = options.clock ?? systemClock;
  // The dataset epoch stamped on category rows: the one the last sync recorded.
  const epoch = async (): Promise<string | null> => (await store.getSyncState()).epoch;

  const sink: StreamSink = {
    applySkill: (skill) => engine.applySkill(skill, 'websocket'),

    async deleteSkill(skillId, remoteAt) {
      const now = clock.now();
      if (remoteAt !== undefined) {
        const current = await store.getSkill(skillId, now);
        const storedAt = current?.remoteUpdatedAt ?? null;
        if (storedAt !== null && Date.parse(storedAt) > Date.parse(remoteAt)) return 'stale';
      }
      // The store remembers the deletion (even of a skill it does not hold: the delete may have
      // overtaken the update), so a late or replayed older update does not bring it back.
      const options = remoteAt === undefined ? { now, ttlMs } : { now, ttlMs, remoteAt };
      return (await store.deleteSkill(skillId, options)) ? 'applied' : 'missing';
    },

    async applyCategory(category) {
      return store.upsertCategory(category, {
        now: clock.now(),
        ttlMs,
        epoch: await epoch(),
        source: 'websocket',
      });
    },

    deleteCategory: (name) => store.deleteCategory(name),

    applyRating(update, remoteAt) {
      const aggregates: { averageRating?: number; ratingCount?: number } = {};
      if (update.average_rating !== undefined) aggregates.averageRating = update.average_rating;
      if (update.rating_count !== undefined) aggregates.ratingCount = update.rating_count;
      const opts: { now: number; remoteAt?: string } = { now: clock.now() };
      if (remoteAt !== undefined) opts.remoteAt = remoteAt;
      return store.applyRatingAggregates(update.skill_id, aggregates, opts);
    },

    requestCatchUp(reason, mode) {
      engine.requestCatchUp(`websocket:${reason}`, mode);
    },

    setFallback(active) {
      const schedule = typeof options.schedule === 'function' ? options.schedule() : options.schedule;
      schedule?.setFallback(active);
      options.onFallback?.(active);
    },
  };
  const batch = engine.applySkills?.bind(engine);
  if (batch) sink.applySkills = (skills) => batch(skills, 'websocket');
  return sink;
}
