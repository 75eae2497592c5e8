/**
 * Local actions: a user rates (or re-rates) a skill, an agent installs one. Each action is
 * validated, then committed locally together with its outbox item in ONE store transaction
 * (store.recordRating / store.enqueue) before the call returns, so an acknowledged action can
 * never be lost and a refused one leaves nothing behind. The OutboxUploader sends it later.
 *
 * Idempotency keys are made here, at creation (crypto.randomUUID), and never change: every
 * retry and every restart re-sends the same key, so the marketplace applies the action once
 * (Replicache's rule: keys are the client's job, idempotency the server's).
 *
 * Edits are NOT coalesced: every rating call is its own outbox item, and the items of one
 * (user, skill) chain are uploaded strictly in order (the store claims only the oldest
 * unfinished item of a chain). The remote therefore sees rate, edit, edit again in that
 * order and ends up holding the last rating ("a later rating replaces the earlier one").
 * Why not coalesce: replacing a queued item races with the uploader claiming it, needs a new
 * store operation on both stores, and saves only a few requests for a rare case; in-order
 * delivery is simpler to prove exactly-once and keeps the remote's history faithful.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import { SkillsyncError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { OutboxItem, RatingRecord } from '../store/types.js';

export const MAX_COMMENT_CHARS = 1_000;
/** Ids are opaque strings; this bound only keeps garbage out of the store and the request. */
export const MAX_ID_CHARS = 256;

export interface RateInput {
  skillId: string;
  userId: string;
  /** Integer 1..5. */
  rating: number;
  /** Up to 1,000 characters (code points); empty or null means none. */
  comment?: string | null | undefined;
}

export interface InstallInput {
  skillId: string;
  agentId: string;
}

export interface LocalActionsOptions {
  /** Sent as `instance_id` with installs (the X-Instance-ID of this instance). */
  instanceId: string;
  /** Called after an action is committed: the service wires it to OutboxUploader.kick(). */
  onQueued?: (() => void) | undefined;
  /** Idempotency key factory (default crypto.randomUUID). */
  newKey?: (() => string) | undefined;
}

/** Chain of a user's ratings of one skill: its items upload strictly in order. */
export function ratingChainKey(userId: string, skillId: string): string {
  return `rating:${encodeURIComponent(userId)}:${encodeURIComponent(skillId)}`;
}

/** Chain of an agent's installs of one skill. */
export function installChainKey(agentId: string, skillId: string): string {
  return `install:${encodeURIComponent(agentId)}:${encodeURIComponent(skillId)}`;
}

function invalid(field: string, message: string): SkillsyncError {
  return new SkillsyncError('SKILLSYNC_ERR_ACTION_INVALID', `${field} ${message}`, {
    details: { field },
  });
}

function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, 'is required');
  if (value.length > MAX_ID_CHARS) throw invalid(field, `must be at most ${MAX_ID_CHARS} characters`);
  return value;
}

/** Validates a rating; returns the normalised values or throws SKILLSYNC_ERR_ACTION_INVALID naming the field. */
export function validateRateInput(input: RateInput): {
  skillId: string;
  userId: string;
  rating: number;
  comment: string | null;
} {
  const skillId = checkId('skill_id', input.skillId);
  const userId = checkId('user_id', input.userId);
  const rating = input.rating as unknown;
  if (typeof rating !== 'number' || !Number.isInteger(rating) || rating < 1 || rating > 5) {
    throw invalid('rating', 'must be an integer from 1 to 5');
  }
  const raw = input.comment as unknown;
  let comment: string | null = null;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'string') throw invalid('comment', 'must be a string');
    // Count code points, not UTF-16 units, so an emoji counts as one character.
    let chars = 0;
    for (const _ of raw) if (++chars > MAX_COMMENT_CHARS) break;
    if (chars > MAX_COMMENT_CHARS)
      throw invalid('comment', `must be at most ${MAX_COMMENT_CHARS} characters`);
    comment = raw === '' ? null : raw;
  }
  return { skillId, userId, rating, comment };
}

export function validateInstallInput(input: InstallInput): InstallInput {
  return { skillId: checkId('skill_id', input.skillId), agentId: checkId('agent_id', input.agentId) };
}

export class LocalActions {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #instanceId: string;
  readonly #onQueued: (() => void) | undefined;
  readonly #newKey: () => string;

  constructor(store: Store, options: LocalActionsOptions, clock: Clock = systemClock) {
    this.#store = store;
    this.#clock = clock;
    this.#instanceId = options.instanceId;
    this.#onQueued = options.onQueued;
    this.#newKey = options.newKey ?? randomUUID;
  }

  /**
   * Rates a skill, or edits the user's rating of it (one rating per skill and user). The
   * rating is readable at once (getRating) with uploadStatus 'pending' until uploaded.
   */
  async rate(input: RateInput): Promise<{ rating: RatingRecord; outbox: OutboxItem }> {
    const v = validateRateInput(input);
    const payload: Record<string, unknown> = { skill_id: v.skillId, user_id: v.userId, rating: v.rating };
    if (v.comment !== null) payload['comment'] = v.comment;
    const result = await this.#store.recordRating(v, {
      kind: 'rating',
      chainKey: ratingChainKey(v.userId, v.skillId),
      payload,
      idempotencyKey: this.#newKey(),
      now: this.#clock.now(),
    });
    this.#onQueued?.();
    return result;
  }

  /** Records an install of a skill by an agent and queues its upload. */
  async install(input: InstallInput): Promise<OutboxItem> {
    const v = validateInstallInput(input);
    const item = await this.#store.enqueue({
      kind: 'install',
      chainKey: installChainKey(v.agentId, v.skillId),
      payload: { skill_id: v.skillId, agent_id: v.agentId, instance_id: this.#instanceId },
      idempotencyKey: this.#newKey(),
      now: this.#clock.now(),
      skillId: v.skillId,
    });
    this.#onQueued?.();
    return item;
  }

  /** The local rating (read-your-writes), or null. */
  getRating(skillId: string, userId: string): Promise<RatingRecord | null> {
    return this.#store.getRating(skillId, userId);
  }
}
