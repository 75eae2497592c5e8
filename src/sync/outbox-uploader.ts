/**
 * The outbox uploader: sends queued local actions (ratings, installs) to the marketplace,
 * exactly once and in order per chain, surviving crashes, lost responses and long outages.
 *
 * Exactly once = at-least-once delivery + the remote's idempotency. Every item carries the
 * Idempotency-Key fixed when it was created; an item leaves the in-flight state only after
 * the store has recorded the remote's answer (completeOutbox). A crash between the remote
 * applying an item and that write leaves the item leased; after the lease expires it is sent
 * again with the same key, and the remote answers the first result without a second effect.
 *
 * Order: the store claims at most one item per chain, and only the chain's oldest unfinished
 * item, so an edit can never overtake the rating it edits while unrelated chains upload
 * concurrently (up to `concurrency`).
 *
 * Failures are classified by the error's type, never its text:
 *  - transient (5xx, timeouts, resets, 429, malformed answers, unknown errors): back to
 *    pending with a full-jitter exponential backoff persisted as nextAttemptAt (so it survives
 *    restarts); a 429's Retry-After is a floor. After `maxAttempts` the item is dead.
 *  - permanent (400, 404, 409, 422): dead-lettered at once with its last error. Only its own
 *    chain waits behind it (replicache#336: never let one item wedge the queue).
 *  - auth (401/403): the item backs off and the uploader stops sending until the next
 *    scheduled run or onRemoteReachable(): hammering with refused credentials helps nobody.
 *
 * A remote that is down makes every request fail; sending 1,000 due items into it just to
 * learn that 1,000 times is the thundering herd client-go's backoff design avoids. After
 * `probeAfterFailures` consecutive transient failures the uploader therefore switches to
 * probing: one request at a time, spaced by its own backoff. The first success (or
 * onRemoteReachable()) ends probing and pulls every backed-off item forward (store
 * rescheduleOutbox), so the queue drains at once without operator action.
 *
 * Triggers: start() (after recovering expired leases), the scheduled job (every
 * `intervalMinutes`), kick() shortly after a local action (debounced), a timer for the next
 * due item (store.nextOutboxDueAt), completions (the next item of the chain), and
 * onRemoteReachable(). Every timer goes through the injected Clock.
 */
import { EventEmitter } from 'node:events';
import { backoffDelayMs, type RandomSource } from '../core/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ConfigError, PermanentError, RemoteHttpError, SkillsyncError } from '../core/errors.js';
import type { InstallRequest, RatingRequest } from '../remote/contract.js';
import type { MarketplaceApi } from '../remote/marketplace.js';
import type { Store } from '../store/store.js';
import type { OutboxItem } from '../store/types.js';

export interface OutboxUploaderOptions {
  /** Items uploaded at once (different chains). */
  readonly concurrency: number;
  /**
   * Items claimed ahead of free slots, sent as slots free up. A claim is a query over the
   * pending items, so one claim per `prefetch` items is far cheaper than one per completion.
   * A claimed item waits at most for one request to finish (well inside its lease); items
   * not sent when the uploader stops or the remote goes down are handed back at once (their
   * claim still counts as an attempt). 0 claims only for free slots.
   */
  readonly prefetch: number;
  /** How long a claimed item stays leased; a crashed uploader's items return after it. */
  readonly leaseMs: number;
  /** Backoff of a transient failure: full jitter in [0, min(cap, base * 2^(attempt-1))]. */
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  /** An item that failed this many attempts is dead-lettered. */
  readonly maxAttempts: number;
  /** The scheduled job: every N minutes (10..120). */
  readonly intervalMinutes: number;
  /** A local action kicks an upload this long after the first action of a burst. */
  readonly kickDebounceMs: number;
  /** Consecutive transient failures after which only one probe request is in flight. */
  readonly probeAfterFailures: number;
  /** stop() waits this long for in-flight uploads, then aborts them (they stay leased). */
  readonly stopGraceMs: number;
  /** Delay before trying again after the store itself failed (claim, timer query). */
  readonly storeRetryMs: number;
}

export const DEFAULT_OUTBOX_UPLOADER: OutboxUploaderOptions = Object.freeze({
  concurrency: 10,
  prefetch: 10,
  leaseMs: 120_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 3_600_000,
  maxAttempts: 10,
  intervalMinutes: 30,
  kickDebounceMs: 250,
  probeAfterFailures: 10,
  stopGraceMs: 5_000,
  storeRetryMs: 1_000,
});

const RANGES: Record<keyof OutboxUploaderOptions, readonly [number, number]> = {
  concurrency: [1, 100],
  prefetch: [0, 1_000],
  leaseMs: [1, 24 * 3_600_000],
  backoffBaseMs: [1, 3_600_000],
  backoffCapMs: [1, 7 * 24 * 3_600_000],
  maxAttempts: [1, 1_000],
  intervalMinutes: [10, 120],
  kickDebounceMs: [0, 60_000],
  probeAfterFailures: [1, 1_000],
  stopGraceMs: [0, 600_000],
  storeRetryMs: [1, 3_600_000],
};

/** Merges over the defaults, validates every value (integers in range) and freezes. */
export function resolveOutboxUploaderOptions(
  options: Partial<OutboxUploaderOptions> = {},
): OutboxUploaderOptions {
  const merged = { ...DEFAULT_OUTBOX_UPLOADER, ...options };
  for (const [key, [min, max]] of Object.entries(RANGES) as [
    keyof OutboxUploaderOptions,
    [number, number],
  ][]) {
    const value = merged[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(
        `outbox.${key}`,
        `must be an integer from ${min} to ${max} (got ${String(value)})`,
      );
    }
  }
  if (merged.backoffCapMs < merged.backoffBaseMs) {
    throw new ConfigError('outbox.backoffCapMs', 'must be at least outbox.backoffBaseMs');
  }
  return Object.freeze(merged);
}

export type UploadErrorClass = 'transient' | 'permanent' | 'auth';

/** Decides by the error's type and `retryable` flag, never its message. */
export function classifyUploadError(err: unknown): UploadErrorClass {
  if (err instanceof SkillsyncError) {
    if (err.code === 'SKILLSYNC_ERR_REMOTE_AUTH') return 'auth';
    return err.retryable ? 'transient' : 'permanent';
  }
  // Not one of ours: a bug or an unwrapped socket error. Retrying is the safe side; the
  // attempt limit still dead-letters it eventually.
  return 'transient';
}

/**
 * Delay before the next attempt after `attemptsMade` failed attempts (>= 1): full jitter over
 * min(cap, base * 2^(attemptsMade-1)), never less than the answer's Retry-After (itself capped).
 */
export function retryDelayMs(
  attemptsMade: number,
  err: unknown,
  options: Pick<OutboxUploaderOptions, 'backoffBaseMs' | 'backoffCapMs'>,
  random: RandomSource,
): number {
  const jittered = backoffDelayMs(
    Math.max(0, attemptsMade - 1),
    { baseMs: options.backoffBaseMs, capMs: options.backoffCapMs, jitter: 'full' },
    random,
  );
  const floor =
    err instanceof RemoteHttpError && err.retryAfterMs !== undefined
      ? Math.min(err.retryAfterMs, options.backoffCapMs)
      : 0;
  return Math.max(jittered, floor);
}

/** A short, secret-free description of an error for the item's lastError. */
export function describeUploadError(err: unknown): string {
  if (err instanceof RemoteHttpError) return `${err.code} (HTTP ${err.httpStatus}): ${err.message}`;
  if (err instanceof SkillsyncError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

export interface OutboxUploaderEvents {
  /** The remote accepted the item; emitted synchronously before it is marked done. */
  answered: [{ item: OutboxItem; result: Record<string, unknown> }];
  uploaded: [{ item: OutboxItem; result: Record<string, unknown> }];
  retried: [{ item: OutboxItem; error: string; delayMs: number; nextAttemptAt: number }];
  dead: [{ item: OutboxItem; error: string }];
  auth_failed: [{ item: OutboxItem; error: string }];
  /** Probing started (remote looks down) or ended. */
  probing: [{ probing: boolean }];
  /** The store failed; the item (if any) stays leased and is recovered after its lease. */
  store_error: [{ error: unknown; itemId: number | null }];
}

export interface OutboxUploaderCounters {
  uploaded: number;
  retried: number;
  dead: number;
  authFailures: number;
  storeErrors: number;
}

export interface OutboxUploaderDeps {
  store: Store;
  api: MarketplaceApi;
  /** Jitter source (default Math.random); tests pass a seeded one. */
  random?: RandomSource;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class OutboxUploader extends EventEmitter<OutboxUploaderEvents> {
  readonly options: OutboxUploaderOptions;
  readonly #store: Store;
  readonly #api: MarketplaceApi;
  readonly #clock: Clock;
  readonly #random: RandomSource;

  #running = false;
  #abort = new AbortController();
  #active = new Set<Promise<void>>();
  /** Claimed, not yet sent (see `prefetch`). */
  #ready: { item: OutboxItem; claimedAt: number }[] = [];
  #pumping: Promise<void> | null = null;
  #pumpAgain = false;
  #idleWaiters: (() => void)[] = [];

  #kickTimer: TimerHandle | null = null;
  #dueTimer: TimerHandle | null = null;
  #intervalTimer: TimerHandle | null = null;
  #recoveryTimer: TimerHandle | null = null;

  #consecutiveFailures = 0;
  #probing = false;
  #nextProbeAt = 0;

  readonly #counters: OutboxUploaderCounters = {
    uploaded: 0,
    retried: 0,
    dead: 0,
    authFailures: 0,
    storeErrors: 0,
  };

  constructor(
    deps: OutboxUploaderDeps,
    options: Partial<OutboxUploaderOptions> = {},
    clock: Clock = systemClock,
  ) {
    super();
    this.options = resolveOutboxUploaderOptions(options);
    this.#store = deps.store;
    this.#api = deps.api;
    this.#random = deps.random ?? Math.random;
    this.#clock = clock;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Counters since construction, for metrics. */
  counters(): Readonly<OutboxUploaderCounters> & { inFlight: number; ready: number; probing: boolean } {
    return {
      ...this.#counters,
      inFlight: this.#active.size,
      ready: this.#ready.length,
      probing: this.#probing,
    };
  }

  /** Items not yet uploaded (pending + in flight), as the store counts them. */
  async pendingCount(): Promise<number> {
    return (await this.#store.getSyncState()).pendingActions;
  }

  /** Recovers expired leases, arms the scheduled job and starts uploading. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    const now = this.#clock.now();
    try {
      await this.#store.recoverOutbox(now);
      // Items still leased belong to a process that died less than a lease ago (or to another
      // live uploader sharing the store): look again once their leases can have expired.
      const leased = await this.#store.listOutbox({ status: 'in_flight', limit: 1, offset: 0 });
      if (leased.total > 0) this.#armRecovery(this.options.leaseMs);
    } catch (error) {
      this.#running = false;
      throw error;
    }
    this.#armInterval();
    this.#requestPump();
  }

  /**
   * Stops every timer and claim; waits up to stopGraceMs for in-flight uploads, then aborts
   * them. Aborted items stay leased and are recovered (same key) after their lease.
   */
  async stop(): Promise<void> {
    if (!this.#running && this.#active.size === 0 && this.#pumping === null) return;
    this.#running = false;
    for (const t of [this.#kickTimer, this.#dueTimer, this.#intervalTimer, this.#recoveryTimer]) {
      if (t !== null) this.#clock.clearTimeout(t);
    }
    this.#kickTimer = this.#dueTimer = this.#intervalTimer = this.#recoveryTimer = null;
    if (this.#pumping) await this.#pumping;
    await this.#releaseReady(this.#clock.now());
    if (this.#active.size > 0) {
      let grace: TimerHandle | null = null;
      const graceOver = new Promise<void>((resolve) => {
        grace = this.#clock.setTimeout(resolve, this.options.stopGraceMs);
      });
      await Promise.race([Promise.allSettled([...this.#active]), graceOver]);
      if (grace !== null) this.#clock.clearTimeout(grace);
      this.#abort.abort(new SkillsyncError('SKILLSYNC_ERR_REMOTE_ABORTED', 'outbox uploader stopping'));
      await Promise.allSettled([...this.#active]);
    }
    this.#resolveIdle();
  }

  /** A local action was queued: upload shortly (debounced, so a burst makes one pass). */
  kick(): void {
    if (!this.#running || this.#kickTimer !== null) return;
    this.#kickTimer = this.#clock.setTimeout(() => {
      this.#kickTimer = null;
      this.#requestPump();
    }, this.options.kickDebounceMs);
  }

  /** Upload whatever is due now (the scheduled job and CLI call this). */
  async runNow(): Promise<void> {
    if (!this.#running) return;
    await this.#recover();
    this.#nextProbeAt = 0;
    this.#requestPump();
  }

  /**
   * The service learned that the remote is reachable again (a health check or listing
   * succeeded, the socket connected): end probing and send every pending item now.
   */
  async onRemoteReachable(): Promise<void> {
    if (!this.#running) return;
    this.#setProbing(false);
    this.#consecutiveFailures = 0;
    await this.#rescheduleAll();
    this.#requestPump();
  }

  /** Operator: a dead item goes back to pending (same key) and is sent now. */
  async retry(id: number): Promise<OutboxItem> {
    const item = await this.#store.retryOutbox(id, this.#clock.now());
    this.#nextProbeAt = 0;
    this.#requestPump();
    return item;
  }

  /** Operator: drop a dead or pending item; its chain continues with the next one. */
  async discard(id: number): Promise<void> {
    await this.#store.discardOutbox(id, this.#clock.now());
    this.#requestPump();
  }

  /**
   * Resolves when nothing is in flight and the last pass found nothing more to claim now
   * (items waiting for their backoff may remain). Tests and benchmarks use it.
   */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ---- the pump --------------------------------------------------------------------------

  #isIdle(): boolean {
    return this.#active.size === 0 && this.#pumping === null && this.#ready.length === 0;
  }

  #resolveIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Claims run one at a time; a request while one runs makes it go round once more. */
  #requestPump(): void {
    if (!this.#running) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#pumpLoop().finally(() => {
      this.#pumping = null;
      this.#resolveIdle();
    });
  }

  async #pumpLoop(): Promise<void> {
    do {
      this.#pumpAgain = false;
      try {
        await this.#claimRound();
      } catch (error) {
        this.#storeError(error, null);
        this.#setDueTimer(this.#clock.now() + this.options.storeRetryMs);
        return;
      }
    } while (this.#pumpAgain && this.#running);
  }

  async #claimRound(): Promise<void> {
    const now = this.#clock.now();
    if (this.#probing) {
      if (this.#active.size > 0) return; // the probe's outcome pumps again
      if (now < this.#nextProbeAt) {
        this.#setDueTimer(this.#nextProbeAt);
        return;
      }
      const probe = await this.#store.claimDueOutbox({
        now,
        limit: 1,
        leaseUntil: now + this.options.leaseMs,
      });
      for (const item of probe) this.#launch(item);
      if (probe.length === 0) await this.#armDueTimer(now);
      return;
    }
    await this.#launchReady(now);
    // Claim when the ready queue and the slots together have room for half their capacity
    // (or everything is idle): one claim then serves many items.
    const capacity = this.options.concurrency + this.options.prefetch;
    const room = capacity - this.#active.size - this.#ready.length;
    const busy = this.#active.size + this.#ready.length > 0;
    if (room <= 0 || (busy && room < Math.ceil(capacity / 2))) return;
    const items = await this.#store.claimDueOutbox({
      now,
      limit: room,
      leaseUntil: now + this.options.leaseMs,
    });
    for (const item of items) this.#ready.push({ item, claimedAt: now });
    // Probing may have started while the claim ran: then these wait for the probe too.
    if (this.#probing) await this.#releaseReady(this.#nextProbeAt);
    else await this.#launchReady(this.#clock.now());
    if (items.length < room) await this.#armDueTimer(now);
  }

  /** Sends ready items while slots are free; one claimed too long ago is handed back unsent. */
  async #launchReady(now: number): Promise<void> {
    const stale: OutboxItem[] = [];
    while (this.#active.size < this.options.concurrency && this.#ready.length > 0) {
      const { item, claimedAt } = this.#ready.shift()!;
      // Past half its lease another uploader may soon recover it: do not race it.
      if (now - claimedAt > this.options.leaseMs / 2) stale.push(item);
      else this.#launch(item);
    }
    for (const item of stale) await this.#release(item, now);
  }

  /** Hands every ready (claimed, unsent) item back to the store, due at `dueAt`. */
  async #releaseReady(dueAt: number): Promise<void> {
    for (const { item } of this.#ready.splice(0)) await this.#release(item, dueAt);
  }

  async #release(item: OutboxItem, dueAt: number): Promise<void> {
    try {
      await this.#store.failOutbox(item.id, {
        error: item.lastError ?? 'claimed but not sent',
        nextAttemptAt: dueAt,
        now: this.#clock.now(),
      });
    } catch (error) {
      this.#storeError(error, item.id);
    }
  }

  async #armDueTimer(claimedAt: number): Promise<void> {
    const due = await this.#store.nextOutboxDueAt();
    if (due === null) {
      this.#setDueTimer(null);
    } else if (due > claimedAt) {
      this.#setDueTimer(this.#probing ? Math.max(due, this.#nextProbeAt) : due);
    } else if (this.#active.size === 0) {
      // Due but not claimed: something blocks it that the store did not tell apart. Look
      // again later rather than spin; completions and kicks pump sooner anyway.
      this.#setDueTimer(claimedAt + Math.max(this.options.storeRetryMs, this.options.backoffBaseMs));
    }
  }

  #launch(item: OutboxItem): void {
    const task = this.#upload(item).catch((error: unknown) => this.#storeError(error, item.id));
    this.#active.add(task);
    void task.finally(() => {
      this.#active.delete(task);
      this.#requestPump();
      this.#resolveIdle();
    });
  }

  async #upload(item: OutboxItem): Promise<void> {
    const signal = this.#abort.signal;
    let result: Record<string, unknown>;
    try {
      result = await this.#send(item, signal);
    } catch (error) {
      // Shutting down: leave the item leased; it returns after its lease with the same key.
      if (signal.aborted) return;
      await this.#onFailure(item, error);
      return;
    }
    this.emit('answered', { item, result });
    await this.#store.completeOutbox(item.id, result, this.#clock.now());
    this.#counters.uploaded++;
    this.emit('uploaded', { item, result });
    const wasProbing = this.#probing;
    this.#consecutiveFailures = 0;
    this.#setProbing(false);
    // The remote is back: what backed off while it was down is due now.
    if (wasProbing) await this.#rescheduleAll();
  }

  async #rescheduleAll(): Promise<void> {
    try {
      await this.#store.rescheduleOutbox(this.#clock.now());
    } catch (error) {
      this.#storeError(error, null);
    }
  }

  async #send(item: OutboxItem, signal: AbortSignal): Promise<Record<string, unknown>> {
    const p = item.payload;
    const str = (field: string): string => {
      const v = p[field];
      if (typeof v !== 'string' || v === '') {
        throw new PermanentError(
          'SKILLSYNC_ERR_ACTION_INVALID',
          `outbox item ${item.id}: payload.${field} is missing`,
        );
      }
      return v;
    };
    const options = { retry: false, signal };
    if (item.kind === 'rating') {
      const request: RatingRequest = {
        skill_id: str('skill_id'),
        user_id: str('user_id'),
        rating: Number(p['rating']),
      };
      if (typeof p['comment'] === 'string') request.comment = p['comment'];
      return this.#api.rate(request, item.idempotencyKey, options);
    }
    const request: InstallRequest = { agent_id: str('agent_id'), instance_id: str('instance_id') };
    return this.#api.install(str('skill_id'), request, item.idempotencyKey, options);
  }

  async #onFailure(item: OutboxItem, err: unknown): Promise<void> {
    const now = this.#clock.now();
    const error = describeUploadError(err);
    const kind = classifyUploadError(err);
    if (kind === 'permanent') {
      // The remote answered, so it is reachable: this says nothing about other chains.
      this.#consecutiveFailures = 0;
      this.#setProbing(false);
    }
    if (kind === 'permanent' || item.attempts >= this.options.maxAttempts) {
      await this.#store.deadLetterOutbox(item.id, { error, now });
      this.#counters.dead++;
      this.emit('dead', { item, error });
      return;
    }
    const delayMs = retryDelayMs(item.attempts, err, this.options, this.#random);
    const nextAttemptAt = now + delayMs;
    if (kind === 'auth') {
      this.#counters.authFailures++;
      this.#setProbing(true);
      // Until the next scheduled run (or onRemoteReachable / an operator retry).
      this.#nextProbeAt = now + this.options.intervalMinutes * 60_000;
      this.emit('auth_failed', { item, error });
    } else {
      this.#consecutiveFailures++;
      if (this.#consecutiveFailures >= this.options.probeAfterFailures) {
        this.#setProbing(true);
        const probeDelay = backoffDelayMs(
          this.#consecutiveFailures - this.options.probeAfterFailures,
          { baseMs: this.options.backoffBaseMs, capMs: this.options.backoffCapMs, jitter: 'full' },
          this.#random,
        );
        this.#nextProbeAt = Math.max(
          this.#nextProbeAt,
          now + Math.max(this.options.backoffBaseMs, probeDelay),
        );
      }
    }
    await this.#store.failOutbox(item.id, { error, nextAttemptAt, now });
    this.#counters.retried++;
    this.emit('retried', { item, error, delayMs, nextAttemptAt });
    // The remote looks down (or refuses us): what was claimed ahead goes back, due with the probe.
    if (this.#probing) await this.#releaseReady(this.#nextProbeAt);
  }

  #setProbing(probing: boolean): void {
    if (this.#probing === probing) return;
    this.#probing = probing;
    if (!probing) this.#nextProbeAt = 0;
    this.emit('probing', { probing });
  }

  #storeError(error: unknown, itemId: number | null): void {
    this.#counters.storeErrors++;
    // The item stays leased: look for it again once the lease can have expired.
    if (itemId !== null && this.#running && this.#recoveryTimer === null)
      this.#armRecovery(this.options.leaseMs);
    this.emit('store_error', { error, itemId });
  }

  // ---- timers ----------------------------------------------------------------------------

  #setDueTimer(at: number | null): void {
    if (this.#dueTimer !== null) this.#clock.clearTimeout(this.#dueTimer);
    this.#dueTimer = null;
    if (at === null || !this.#running) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.#clock.now()));
    this.#dueTimer = this.#clock.setTimeout(() => {
      this.#dueTimer = null;
      this.#requestPump();
    }, delay);
  }

  #armInterval(): void {
    if (!this.#running) return;
    this.#intervalTimer = this.#clock.setTimeout(() => {
      this.#intervalTimer = null;
      this.#armInterval();
      void this.runNow();
    }, this.options.intervalMinutes * 60_000);
  }

  #armRecovery(delayMs: number): void {
    if (this.#recoveryTimer !== null) this.#clock.clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = this.#clock.setTimeout(() => {
      this.#recoveryTimer = null;
      void this.runNow();
    }, delayMs);
  }

  async #recover(): Promise<void> {
    try {
      if ((await this.#store.recoverOutbox(this.#clock.now())) > 0) this.#nextProbeAt = 0;
    } catch (error) {
      this.#storeError(error, null);
    }
  }
}
