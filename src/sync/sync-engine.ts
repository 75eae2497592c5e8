/**
 * The sync engine: keeps the store equal to the marketplace.
 *
 * One run = categories, then skills, recorded in the runs history. The skills listing is
 * pull -> validate -> resolve conflicts -> write page + checkpoint (one transaction, in the
 * store), with the next page fetched while the current one is written. A crashed or
 * interrupted run leaves its checkpoint; the next run resumes from it. Only a listing that saw
 * the whole catalog may delete, and then only within the delete guard.
 *
 * The decisions are pure and tested on their own: conflicts (src/core/conflicts.ts), listing
 * plans and page ends (listing.ts), run status, state and the delete guard (run-outcome.ts).
 */
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { resolveBatch, resolveIncoming, type IncomingSkill } from '../core/conflicts.js';
import { SkillsyncError, isSkillsyncError, type ErrorCode } from '../core/errors.js';
import type { Health, Skill, SkillPage } from '../remote/contract.js';
import type { ListSkillsParams, MarketplaceApi } from '../remote/marketplace.js';
import type { Store } from '../store/store.js';
import { LEASE_RENEW_MS, LEASE_TTL_MS, isDeadLocalOwner, leaseOwnerName } from '../store/sync-lease.js';
import {
  CONFLICT_STRATEGIES,
  type ConflictStrategy,
  type EventOutcome,
  type ListingCheckpoint,
  type QuarantineInput,
  type RunMode,
  type RunRecord,
  type RunStatus,
  type RunTrigger,
  type SkillUpsert,
  type SyncState,
  type Tombstone,
} from '../store/types.js';
import { hashSkill } from './skill-hash.js';
import {
  judgePage,
  listingIsGapless,
  planListing,
  type ListingPlan,
  type ListingPosition,
  type RequestedMode,
} from './listing.js';
import {
  DEFAULT_DELETE_GUARD,
  deleteDecision,
  runStatus,
  stateAfterRun,
  type DeleteGuard,
  type PartOutcome,
} from './run-outcome.js';

export interface SyncEngineOptions {
  /** Skills asked per page (5..1000); the server's cap wins when lower. */
  readonly pageSize: number;
  /** expires_at = fetched_at + ttlMs. */
  readonly ttlMs: number;
  /** Incremental listings start this long before the saved watermark (clock skew, commit lag). */
  readonly overlapMs: number;
  readonly strategy: ConflictStrategy;
  readonly deleteGuard: DeleteGuard;
  /** Fetch page n+1 while page n is written. */
  readonly prefetch: boolean;
  /** A catch-up request waits this long, so a burst of requests becomes one run. */
  readonly catchUpDelayMs: number;
  /** After refused credentials, automatic runs try at most once per this interval. */
  readonly authRetryIntervalMs: number;
  /** Safety cap on pages in one listing. */
  readonly maxPages: number;
  /** Automatic runs do a full listing when the last complete one is older (renews TTLs). */
  readonly fullListingMaxAgeMs: number;
}

export const DEFAULT_SYNC_ENGINE: SyncEngineOptions = Object.freeze({
  pageSize: 100,
  ttlMs: 24 * 3600_000,
  overlapMs: 2_000,
  strategy: 'remote_wins' as ConflictStrategy,
  deleteGuard: DEFAULT_DELETE_GUARD,
  prefetch: true,
  catchUpDelayMs: 250,
  authRetryIntervalMs: 15 * 60_000,
  maxPages: 1_000_000,
  fullListingMaxAgeMs: 12 * 3600_000,
});

/** Pino-compatible subset; the engine logs no payloads and no secrets. */
export interface EngineLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const SILENT: EngineLogger = { info() {}, warn() {}, error() {} };

export interface SyncEngineDeps {
  remote: MarketplaceApi;
  store: Store;
  clock?: Clock;
  logger?: EngineLogger;
  options?: Partial<SyncEngineOptions>;
  /** Sync lease timing (see src/store/sync-lease.ts); tests shorten it. */
  lease?: { ttlMs: number; renewMs: number };
}

export interface SyncRequest {
  trigger: RunTrigger;
  mode?: RequestedMode;
}

export interface SyncResult {
  /** 'rejected' when another run was in progress or credentials are known bad. */
  status: RunStatus;
  /** The run record (null when rejected). */
  run: RunRecord | null;
  /** This run's id, or the running run's id when rejected as in progress. */
  runId: number | null;
  alreadyInProgress: boolean;
  error: { code: ErrorCode; message: string } | null;
}

export interface PageProgress {
  runId: number;
  mode: RunMode;
  /** Pages applied by this listing so far (resumed pages included). */
  pages: number;
  /** Skills applied by this listing so far. */
  skills: number;
  /** Records on this page (valid and invalid). */
  received: number;
  upserted: number;
  unchanged: number;
  quarantined: number;
  /** Total skills in the catalog when the server says (listing progress). */
  total: number | undefined;
  totalPages: number | undefined;
}

export interface SyncEngineEvents {
  runStarted: RunRecord;
  pageApplied: PageProgress;
  runFinished: SyncResult;
}

type Listener<T> = (payload: T) => void;

/** Delay before a catch-up that another process's run refused is asked again. */
const CATCH_UP_RETRY_MS = 5_000;

interface Counters {
  pages: number;
  upserted: number;
  unchanged: number;
  deleted: number;
  quarantined: number;
  conflictsDetected: number;
  conflictsResolved: number;
  conflictsManual: number;
  deletionsHeld: number;
}

/** What a run's failure handling needs from the run so far. */
interface RunContext {
  /** The run as started (its id and trigger). */
  run: RunRecord;
  /** The sync state read before the run. */
  before: SyncState;
  startedAt: number;
  startedEmitted: boolean;
  counters: Counters;
}

interface ActiveRun {
  runId: Promise<number>;
  controller: AbortController;
  done: Promise<SyncResult>;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function errorCode(err: unknown): ErrorCode | null {
  return isSkillsyncError(err) ? err.code : null;
}

function describe(err: unknown): string {
  if (isSkillsyncError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export function validateEngineOptions(o: SyncEngineOptions): SyncEngineOptions {
  const bad = (what: string): never => {
    throw new SkillsyncError('SKILLSYNC_ERR_CONFIG_INVALID', `sync engine: ${what}`);
  };
  if (!Number.isInteger(o.pageSize) || o.pageSize < 5 || o.pageSize > 1000)
    bad('pageSize must be an integer from 5 to 1000');
  if (!(o.ttlMs > 0)) bad('ttlMs must be > 0');
  if (!(o.overlapMs >= 0)) bad('overlapMs must be >= 0');
  if (!CONFLICT_STRATEGIES.includes(o.strategy))
    bad(`strategy must be one of ${CONFLICT_STRATEGIES.join(', ')}`);
  if (!(o.deleteGuard.maxFraction >= 0 && o.deleteGuard.maxFraction <= 1))
    bad('deleteGuard.maxFraction must be from 0 to 1');
  if (!(o.deleteGuard.maxCount >= 0)) bad('deleteGuard.maxCount must be >= 0');
  if (!(o.catchUpDelayMs >= 0)) bad('catchUpDelayMs must be >= 0');
  if (!(o.authRetryIntervalMs >= 0)) bad('authRetryIntervalMs must be >= 0');
  if (!(o.maxPages >= 1)) bad('maxPages must be >= 1');
  if (!(o.fullListingMaxAgeMs > 0)) bad('fullListingMaxAgeMs must be > 0');
  return Object.freeze({ ...o, deleteGuard: Object.freeze({ ...o.deleteGuard }) });
}

/** Whether a listed record (or tombstone) was changed after `sinceMs`. */
function changedAfter(skill: Skill, sinceMs: number): boolean {
  for (const at of [skill.updated_at, skill.deleted_at])
    if (typeof at === 'string' && Date.parse(at) > sinceMs) return true;
  return false;
}

export class SyncEngine {
  #remote: MarketplaceApi;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #log: EngineLogger;
  #options: SyncEngineOptions;
  #active: ActiveRun | null = null;
  #listeners: { [K in keyof SyncEngineEvents]: Set<Listener<SyncEngineEvents[K]>> } = {
    runStarted: new Set(),
    pageApplied: new Set(),
    runFinished: new Set(),
  };
  /** Epoch of the dataset the store holds (null until known). */
  #epoch: string | null | undefined;
  /** Refused credentials: automatic runs wait until then (or until the config changes). */
  #authBlockedUntil: number | null = null;
  #catchUp: { mode: 'incremental' | 'full'; reasons: Set<string> } | null = null;
  #catchUpTimer: TimerHandle | null = null;
  #closed = false;
  /** This engine's name on the store's sync lease (see src/store/sync-lease.ts). */
  readonly #owner = leaseOwnerName();
  /** The lease of the run in progress: `lost` once it may be another process's. */
  #lease: { lost: boolean } | null = null;

  readonly #leaseTtlMs: number;
  readonly #leaseRenewMs: number;

  constructor(deps: SyncEngineDeps) {
    this.#leaseTtlMs = deps.lease?.ttlMs ?? LEASE_TTL_MS;
    this.#leaseRenewMs = deps.lease?.renewMs ?? LEASE_RENEW_MS;
    this.#remote = deps.remote;
    this.#store = deps.store;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? SILENT;
    this.#options = validateEngineOptions({ ...DEFAULT_SYNC_ENGINE, ...deps.options });
  }

  get options(): SyncEngineOptions {
    return this.#options;
  }

  /** True while a run is active. */
  get running(): boolean {
    return this.#active !== null;
  }

  /** Subscribes to an event; returns the unsubscribe function. Listener errors are swallowed. */
  on<K extends keyof SyncEngineEvents>(event: K, listener: Listener<SyncEngineEvents[K]>): () => void {
    const set = this.#listeners[event] as Set<Listener<SyncEngineEvents[K]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  #emit<K extends keyof SyncEngineEvents>(event: K, payload: SyncEngineEvents[K]): void {
    for (const l of this.#listeners[event] as Set<Listener<SyncEngineEvents[K]>>) {
      try {
        l(payload);
      } catch (err) {
        this.#log.warn({ event, err: describe(err) }, 'sync engine listener threw');
      }
    }
  }

  // ---- live configuration --------------------------------------------------------------------

  setStrategy(strategy: ConflictStrategy): void {
    this.updateOptions({ strategy });
  }

  /** Validates and applies at once (the next page uses it). Any change lifts an auth block. */
  updateOptions(patch: Partial<SyncEngineOptions>): SyncEngineOptions {
    this.#options = validateEngineOptions({ ...this.#options, ...patch });
    this.#authBlockedUntil = null;
    return this.#options;
  }

  /** A new remote client (new URL or token): the next automatic run tries at once. */
  setRemote(remote: MarketplaceApi): void {
    this.#remote = remote;
    this.#authBlockedUntil = null;
  }

  /** When automatic runs may try again after refused credentials (null = not blocked). */
  get authBlockedUntil(): number | null {
    return this.#authBlockedUntil;
  }

  // ---- runs ------------------------------------------------------------------------------------

  /**
   * Runs categories then skills as one run. Only one run at a time: a call while one runs
   * returns at once with status 'rejected', alreadyInProgress and the running run's id.
   */
  async syncAll(request: SyncRequest): Promise<SyncResult> {
    if (this.#closed)
      return this.#rejected(null, 'SKILLSYNC_ERR_REMOTE_ABORTED', 'the sync engine is closed');
    const active = this.#active;
    if (active !== null) {
      const id = await active.runId;
      return {
        status: 'rejected',
        run: null,
        runId: id,
        alreadyInProgress: true,
        error: { code: 'SKILLSYNC_ERR_SYNC_IN_PROGRESS', message: `sync run ${id} is already in progress` },
      };
    }
    const automatic = request.trigger !== 'manual' && request.trigger !== 'cli';
    if (automatic && this.#authBlockedUntil !== null && this.#clock.now() < this.#authBlockedUntil) {
      return this.#rejected(
        null,
        'SKILLSYNC_ERR_SYNC_AUTH_FAILED',
        `credentials were refused; next automatic attempt after ${new Date(this.#authBlockedUntil).toISOString()}`,
      );
    }
    const id = deferred<number>();
    const controller = new AbortController();
    const done = this.#leasedRun(request, id.resolve, controller);
    const run: ActiveRun = { runId: id.promise, controller, done };
    this.#active = run;
    // A run that fails before it has an id still releases waiters.
    done.then(
      (r) => id.resolve(r.runId ?? -1),
      () => id.resolve(-1),
    );
    try {
      return await done;
    } finally {
      this.#active = null;
      if (this.#catchUp !== null) this.#armCatchUp();
    }
  }

  #rejected(runId: number | null, code: ErrorCode, message: string): SyncResult {
    return { status: 'rejected', run: null, runId, alreadyInProgress: false, error: { code, message } };
  }

  /**
   * Runs under the store's sync lease, so one run at a time across every process sharing the
   * store (instances on one PostgreSQL schema, `serve` and `skillsync sync` on one file). The
   * lease is renewed while the run lasts; a run whose lease another process took is aborted.
   */
  async #leasedRun(
    request: SyncRequest,
    setRunId: (id: number) => void,
    controller: AbortController,
  ): Promise<SyncResult> {
    const store = this.#store;
    let attempt = await store.acquireSyncLease(this.#owner, this.#clock.now(), this.#leaseTtlMs);
    if (!attempt.acquired && isDeadLocalOwner(attempt.lease.owner)) {
      // Held by a process of this host that is gone (a killed `skillsync sync`): no need to
      // wait for the lease to expire.
      attempt = await store.acquireSyncLease(
        this.#owner,
        this.#clock.now(),
        this.#leaseTtlMs,
        attempt.lease.owner,
      );
    }
    if (!attempt.acquired) {
      const other = attempt.lease.runId;
      this.#log.info(
        { holder: attempt.lease.owner, runId: other },
        'sync run refused: another process runs one',
      );
      return {
        status: 'rejected',
        run: null,
        runId: other,
        alreadyInProgress: true,
        error: {
          code: 'SKILLSYNC_ERR_SYNC_IN_PROGRESS',
          message: `a sync run${other === null ? '' : ` (${other})`} is already in progress in another process`,
        },
      };
    }
    let runId: number | null = null;
    // The holder fences itself: once it may have lost the lease (another process took it, or no
    // renewal succeeded for long enough that it may have expired), the run stops before its next
    // page and does not write the sync state. Real timers and a monotonic clock, not the
    // injected clock: that one stands for the remote's waits (tests make it return at once).
    let renewedAt = performance.now();
    const lose = (why: string): void => {
      lease.lost = true;
      timer = null;
      this.#log.warn({ runId, why }, 'sync lease lost: the run stops');
      controller.abort(new SkillsyncError('SKILLSYNC_ERR_SYNC_IN_PROGRESS', `sync lease lost: ${why}`));
    };
    let timer: NodeJS.Timeout | null = null;
    const renew = (): void => {
      timer = setTimeout(() => {
        store.renewSyncLease(this.#owner, this.#clock.now(), this.#leaseTtlMs, runId).then(
          (held) => {
            if (timer === null) return;
            if (!held) lose('another process holds it');
            else {
              renewedAt = performance.now();
              renew();
            }
          },
          // A store hiccup: the next renewal tries again, while the lease may still be ours.
          () => {
            if (timer === null) return;
            if (performance.now() - renewedAt >= this.#leaseTtlMs - this.#leaseRenewMs)
              lose('no renewal succeeded');
            else renew();
          },
        );
      }, this.#leaseRenewMs);
      timer.unref();
    };
    const lease = { lost: false };
    this.#lease = lease;
    renew();
    try {
      return await this.#run(
        request,
        (id) => {
          runId = id;
          setRunId(id);
          // Others refused meanwhile learn which run holds the lease.
          store.renewSyncLease(this.#owner, this.#clock.now(), this.#leaseTtlMs, id).catch(() => undefined);
        },
        controller.signal,
      );
    } finally {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      this.#lease = null;
      // Only deletes it if it is still ours.
      await store.releaseSyncLease(this.#owner).catch(() => undefined);
    }
  }

  async #run(request: SyncRequest, setRunId: (id: number) => void, signal: AbortSignal): Promise<SyncResult> {
    const store = this.#store;
    const startedAt = this.#clock.now();
    const requested: RequestedMode = request.mode ?? 'auto';
    const before = await store.getSyncState();
    await this.#closeInterruptedRuns(startedAt);
    const run = await store.startRun({
      trigger: request.trigger,
      // Refined once the listing is planned (after /health).
      mode: requested === 'full' || before.watermark === null ? 'full' : 'incremental',
      startedAt,
    });
    setRunId(run.id);
    const ctx: RunContext = {
      run,
      before,
      startedAt,
      startedEmitted: false,
      counters: {
        pages: 0,
        upserted: 0,
        unchanged: 0,
        deleted: 0,
        quarantined: 0,
        conflictsDetected: 0,
        conflictsResolved: 0,
        conflictsManual: 0,
        deletionsHeld: 0,
      },
    };
    try {
      return await this.#runParts(request, ctx, signal);
    } catch (err) {
      // Whatever failed outside the parts' own error handling (a store read or write around
      // them): the run and the sync state must not stay 'running'.
      return this.#finishCrashedRun(ctx, err);
    }
  }

  async #runParts(request: SyncRequest, ctx: RunContext, signal: AbortSignal): Promise<SyncResult> {
    const store = this.#store;
    const { before, startedAt, counters } = ctx;
    const requested: RequestedMode = request.mode ?? 'auto';
    let run = ctx.run;
    await store.updateSyncState({ status: 'running' });
    ctx.startedEmitted = true;
    this.#emit('runStarted', run);
    this.#log.info({ runId: run.id, trigger: request.trigger, requested }, 'sync run started');

    const errors: string[] = [];
    let authFailed = false;
    let firstCode: ErrorCode | null = null;
    const fail = (part: string, cause: unknown): void => {
      // A run stopped because its lease was lost says so (the client reports any abort as its own).
      const err = this.#lease?.lost === true && signal.aborted ? (signal.reason as unknown) : cause;
      const code = errorCode(err);
      firstCode ??= code;
      if (code === 'SKILLSYNC_ERR_REMOTE_AUTH') authFailed = true;
      errors.push(`${part}: ${describe(err)}`);
      this.#log.warn({ runId: run.id, part, code }, `sync ${part} failed`);
    };

    let categories: PartOutcome = 'failed';
    let skills: PartOutcome = 'failed';
    let mode: RunMode = run.mode;
    let resumed = false;
    let listingDone = false;
    let health: Health | null = null;
    try {
      health = await this.#remote.health({ signal });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'SKILLSYNC_ERR_REMOTE_NOT_FOUND' || code === 'SKILLSYNC_ERR_REMOTE_BAD_REQUEST') {
        // A server without a usable /health: the base contract, no extensions, no epoch.
        this.#log.warn({ runId: run.id, code }, 'no usable /health: listing with the base contract');
        health = {
          status: 'unknown',
          timestamp: undefined,
          version: undefined,
          features: [],
          epoch: undefined,
        };
      } else {
        fail('health', err);
      }
    }

    if (health !== null) {
      const epoch = health.epoch ?? null;
      // categories
      try {
        categories = await this.#syncCategories(run.id, epoch, signal, counters);
      } catch (err) {
        fail('categories', err);
      }
      // skills
      if (!authFailed) {
        const state = await store.getSyncState();
        const checkpoint = await store.getCheckpoint();
        let plan = planListing({
          requested,
          features: health.features,
          epoch: health.epoch,
          state,
          checkpoint,
          pageSize: this.#options.pageSize,
          overlapMs: this.#options.overlapMs,
          now: startedAt,
          fullListingMaxAgeMs: this.#options.fullListingMaxAgeMs,
        });
        if (checkpoint !== null && plan.resume === null) await store.setCheckpoint(null);
        mode = plan.mode;
        resumed = plan.resume !== null;
        run = await store.updateRun(run.id, { mode, resumedFromCheckpoint: resumed });
        this.#log.info({ runId: run.id, mode, style: plan.style, reason: plan.reason }, 'skills listing');
        let pagesBefore = counters.pages;
        for (let attempt = 0; ; attempt++) {
          try {
            await this.#listSkills(run.id, plan, startedAt, epoch, signal, counters);
            listingDone = true;
            skills = 'ok';
            break;
          } catch (err) {
            const code = errorCode(err);
            if (code === 'SKILLSYNC_ERR_REMOTE_GONE' && attempt === 0) {
              // 410: the watermark or cursor expired. Relist from scratch, once.
              this.#log.warn({ runId: run.id, mode: plan.mode }, 'listing expired (410): full relist');
              await store.setCheckpoint(null);
              plan = planListing({
                requested: 'full',
                features: health.features,
                epoch: health.epoch,
                state,
                checkpoint: null,
                pageSize: this.#options.pageSize,
                overlapMs: this.#options.overlapMs,
                now: startedAt,
                fullListingMaxAgeMs: this.#options.fullListingMaxAgeMs,
              });
              mode = 'full';
              run = await store.updateRun(run.id, { mode });
              pagesBefore = counters.pages;
              continue;
            }
            fail('skills', err);
            // A permanent listing error would repeat from the checkpoint: start fresh next time.
            if (isSkillsyncError(err) && !err.retryable && code !== 'SKILLSYNC_ERR_REMOTE_ABORTED')
              await store.setCheckpoint(null).catch(() => undefined);
            skills = counters.pages > pagesBefore ? 'partial' : 'failed';
            break;
          }
        }
        if (listingDone && epoch !== (state.epoch ?? null)) await store.updateSyncState({ epoch });
        if (listingDone) this.#epoch = epoch;
      }
    }

    const status = runStatus([categories, skills]);
    const finishedAt = this.#clock.now();
    const error = errors.length > 0 ? errors.join('; ').slice(0, 2000) : null;
    run = await store.updateRun(run.id, {
      status,
      finishedAt,
      mode,
      ...counters,
      resumedFromCheckpoint: resumed,
      error,
    });
    const stats = await store.stats(finishedAt);
    // A run that lost its lease leaves the sync state to the process that holds it now (its
    // totals are built on what this run read when it started).
    if (this.#lease?.lost !== true)
      await store.updateSyncState({
        ...stateAfterRun(before, {
          status,
          authFailed,
          finishedAt,
          error,
        }),
        skillsCached: stats.skills,
        categoriesCached: stats.categories,
      });
    if (authFailed) this.#authBlockedUntil = finishedAt + this.#options.authRetryIntervalMs;
    else if (status !== 'failed') this.#authBlockedUntil = null;
    const result: SyncResult = {
      status,
      run,
      runId: run.id,
      alreadyInProgress: false,
      error:
        status === 'success' || error === null
          ? null
          : { code: firstCode ?? 'SKILLSYNC_ERR_REMOTE_HTTP', message: error },
    };
    this.#log.info(
      {
        runId: run.id,
        status,
        mode,
        pages: run.pages,
        upserted: run.upserted,
        unchanged: run.unchanged,
        deleted: run.deleted,
        quarantined: run.quarantined,
        deletionsHeld: run.deletionsHeld,
        durationMs: finishedAt - startedAt,
      },
      'sync run finished',
    );
    this.#emit('runFinished', result);
    return result;
  }

  /**
   * Ends a run that threw outside its parts' own error handling: the run is recorded as failed
   * with the error, the sync state leaves 'running', and runFinished is emitted, as for any
   * other run. Writes are best effort (the store may be what failed); a run row this cannot
   * close is closed by the next run (#closeInterruptedRuns).
   */
  async #finishCrashedRun(ctx: RunContext, err: unknown): Promise<SyncResult> {
    const store = this.#store;
    const { counters } = ctx;
    const finishedAt = this.#clock.now();
    const error = `run: ${describe(err)}`.slice(0, 2000);
    const code: ErrorCode = errorCode(err) ?? 'SKILLSYNC_ERR_STORE_QUERY';
    this.#log.error({ runId: ctx.run.id, code, err: describe(err) }, 'sync run failed unexpectedly');
    if (!ctx.startedEmitted) this.#emit('runStarted', ctx.run);
    const bestEffort = async <T>(what: string, op: () => Promise<T>): Promise<T | null> => {
      try {
        return await op();
      } catch (e) {
        this.#log.error({ runId: ctx.run.id, err: describe(e) }, `could not record the failed run: ${what}`);
        return null;
      }
    };
    const run = await bestEffort('run', () =>
      store.updateRun(ctx.run.id, { status: 'failed', finishedAt, ...counters, error }),
    );
    // As at a normal end: a run that lost its lease leaves the sync state to the new holder.
    if (this.#lease?.lost !== true)
      await bestEffort('sync state', () =>
        store.updateSyncState(
          stateAfterRun(ctx.before, {
            status: 'failed',
            authFailed: false,
            finishedAt,
            error,
          }),
        ),
      );
    const result: SyncResult = {
      status: 'failed',
      run: run ?? { ...ctx.run, status: 'failed', finishedAt, error },
      runId: ctx.run.id,
      alreadyInProgress: false,
      error: { code, message: error },
    };
    this.#emit('runFinished', result);
    return result;
  }

  /**
   * Runs left 'running' by a process that ended mid-run (a crash, a kill) are closed as failed,
   * so the history stays truthful. Only called under the sync lease: no other process has a
   * live run then.
   */
  async #closeInterruptedRuns(now: number): Promise<void> {
    const recent = await this.#store.listRuns({ limit: 20, offset: 0 });
    for (const r of recent.items) {
      if (r.status !== 'running') continue;
      await this.#store.updateRun(r.id, {
        status: 'failed',
        finishedAt: now,
        error: r.error ?? 'interrupted: the process ended during the run (its checkpoint is resumed)',
      });
    }
  }

  async #syncCategories(
    runId: number,
    epoch: string | null,
    signal: AbortSignal,
    counters: Counters,
  ): Promise<PartOutcome> {
    const { categories, invalid } = await this.#remote.listCategories({ signal });
    const now = this.#clock.now();
    if (invalid.length > 0) {
      await this.#store.quarantine(
        invalid.map((r) => ({
          kind: 'category',
          key: r.key,
          reason: `${r.error.path}: ${r.error.message}`,
          payload: r.raw,
          runId,
          at: now,
        })),
      );
      counters.quarantined += invalid.length;
    }
    // Only a readable, non-empty answer removes the categories it leaves out: an empty one
    // never wipes what we have (the same guard as skills), and a category whose record could
    // not be read still exists remotely.
    await this.#store.replaceCategories(categories, {
      now,
      ttlMs: this.#options.ttlMs,
      epoch,
      source: 'full',
      deleteMissing: categories.length > 0 && invalid.length === 0,
    });
    return 'ok';
  }

  /**
   * One listing, page by page. Each page is written with the checkpoint of the next request in
   * one transaction; the request for page n+1 is already on the wire while page n is written.
   */
  async #listSkills(
    runId: number,
    plan: ListingPlan,
    runStartedAt: number,
    epoch: string | null,
    signal: AbortSignal,
    counters: Counters,
  ): Promise<void> {
    const store = this.#store;
    const resume = plan.resume;
    const listingStartedAt = resume?.startedAt ?? runStartedAt;
    let pos: ListingPosition = resume
      ? { page: resume.nextPage, cursor: resume.cursor, pageSize: resume.pageSize }
      : { page: 1, cursor: plan.style === 'cursor' ? '' : null, pageSize: plan.pageSize };
    let pagesApplied = resume?.pagesApplied ?? 0;
    let skillsApplied = resume?.skillsApplied ?? 0;
    // Records the listing saw, to check a page-numbered listing against `total`.
    let recordsListed = plan.style === 'page' ? (pos.page - 1) * pos.pageSize : 0;
    // Full listings: the server_time of their first page (kept in the checkpoint's updatedSince
    // across a resume) becomes the watermark. Incremental: the listing's first server_time, or
    // when resumed, the updated_since it started from (never a later one: no gaps).
    let watermark: string | null = resume ? resume.updatedSince : null;
    let watermarkMs = watermark === null ? Number.POSITIVE_INFINITY : Date.parse(watermark);
    let firstTotal: number | undefined;
    let lastTotal: number | undefined;
    let changedDuringListing = false;
    // Set when the listing ends (page-numbered: totals unchanged and pages adding up to them).
    let gapless = false;
    let previousFirstKey: string | null = null;
    let pagesThisListing = 0;
    // Invalid records without a readable id: we cannot tell which stored skill they were.
    let keylessInvalid = 0;

    const fetchPage = (p: ListingPosition): Promise<SkillPage> => {
      const params: ListSkillsParams = { pageSize: p.pageSize, signal };
      if (p.cursor !== null) params.cursor = p.cursor;
      else params.page = p.page;
      if (plan.mode === 'incremental' && plan.updatedSince !== null) params.updatedSince = plan.updatedSince;
      return this.#remote.listSkills(params);
    };

    let inflight: Promise<SkillPage> | null = fetchPage(pos);
    try {
      for (;;) {
        const answer: SkillPage = await inflight;
        inflight = null;
        const verdict = judgePage(plan.style, pos, answer, previousFirstKey);
        previousFirstKey = verdict.firstKey;
        pagesThisListing++;
        if (pagesThisListing > this.#options.maxPages)
          throw new SkillsyncError(
            'SKILLSYNC_ERR_REMOTE_PAGINATION',
            `the listing exceeded ${this.#options.maxPages} pages without ending`,
            { retryable: false },
          );
        if (!verdict.done && verdict.next !== null && this.#options.prefetch) {
          inflight = fetchPage(verdict.next);
          // Handled when awaited; until then a rejection must not be "unhandled".
          inflight.catch(() => undefined);
        }
        firstTotal ??= answer.total;
        lastTotal = answer.total;
        recordsListed += answer.received;
        if (answer.server_time !== undefined && watermark === null && !resume) {
          watermark = answer.server_time;
          watermarkMs = Date.parse(watermark);
        }

        const now = this.#clock.now();
        const incoming: IncomingSkill[] = [];
        const tombstones: Tombstone[] = [];
        for (const skill of answer.skills) {
          // A record changed (or deleted: a tombstone) after the listing began moved to its end,
          // and the records behind it moved up a place: one may now sit on a page already read.
          if (plan.style === 'page' && plan.mode === 'incremental' && changedAfter(skill, watermarkMs))
            changedDuringListing = true;
          if (typeof skill.deleted_at === 'string') {
            // The deletion's remote time (CONTRACT.md: a tombstone carries deleted_at): the
            // store remembers it, so a late older update does not bring the skill back.
            tombstones.push({ skillId: skill.skill_id, deletedAt: skill.deleted_at });
            continue;
          }
          incoming.push({ skill, contentHash: hashSkill(skill) });
        }
        const states =
          incoming.length > 0
            ? await store.getLocalStates(incoming.map((i) => i.skill.skill_id))
            : new Map<string, never>();
        const resolved = resolveBatch(incoming, states, this.#options.strategy);
        const items: SkillUpsert[] = resolved.items;
        if (answer.invalid.length > 0) {
          await this.#quarantineInvalid(answer, runId, now, plan.mode === 'full' ? items : null);
          counters.quarantined += answer.invalid.length;
          for (const r of answer.invalid) if (r.key === null) keylessInvalid++;
        }

        pagesApplied++;
        skillsApplied += answer.skills.length;
        let checkpoint: ListingCheckpoint | null = null;
        if (!verdict.done && verdict.next !== null) {
          checkpoint = {
            runId,
            mode: plan.mode,
            startedAt: listingStartedAt,
            nextPage: verdict.next.page,
            cursor: verdict.next.cursor,
            pageSize: verdict.next.pageSize,
            updatedSince: plan.mode === 'incremental' ? plan.updatedSince : watermark,
            epoch,
            pagesApplied,
            skillsApplied,
          };
        }
        // undefined: the stored watermark stays as it is.
        let newWatermark: string | null | undefined;
        if (verdict.done) {
          gapless = listingIsGapless(
            plan.style,
            { first: firstTotal, last: lastTotal },
            recordsListed,
            resume !== null,
          );
          if (plan.mode === 'full' && !gapless) {
            // A full listing that may have skipped records must not let incremental runs start
            // after them (an unchanged skipped record would never be listed again): the watermark
            // is cleared and the next run lists in full.
            newWatermark = null;
          } else if (watermark !== null) {
            // A page-numbered incremental listing over a list that changed under it may have
            // skipped records (offsets shift): keep listing from where this one started.
            newWatermark = changedDuringListing && plan.updatedSince !== null ? plan.updatedSince : watermark;
          }
        }
        if (this.#lease?.lost === true) throw signal.reason;
        const applied = await store.applySkillPage({
          items,
          tombstones,
          source: plan.mode,
          now,
          ttlMs: this.#options.ttlMs,
          epoch,
          guard: plan.mode === 'full' ? 'listing' : 'version',
          checkpoint,
          ...(newWatermark !== undefined ? { watermark: newWatermark } : {}),
          runId,
        });
        // Records the store could not hold were quarantined by it, in the page's transaction.
        const refused = applied.quarantined ?? 0;
        counters.quarantined += refused;
        counters.pages++;
        counters.upserted += applied.upserted;
        counters.unchanged += applied.unchanged;
        counters.deleted += applied.deleted;
        counters.conflictsDetected += resolved.detected;
        counters.conflictsResolved += resolved.resolved;
        counters.conflictsManual += resolved.manual;
        this.#emit('pageApplied', {
          runId,
          mode: plan.mode,
          pages: pagesApplied,
          skills: skillsApplied,
          received: answer.received,
          upserted: applied.upserted,
          unchanged: applied.unchanged,
          quarantined: answer.invalid.length + refused,
          total: answer.total,
          totalPages: answer.total_pages,
        });
        if (verdict.done || verdict.next === null) break;
        pos = verdict.next;
        if (inflight === null) inflight = fetchPage(pos);
      }
    } finally {
      if (inflight !== null) inflight.catch(() => undefined);
    }

    if (plan.mode !== 'full') return;
    if (!gapless) {
      this.#log.warn(
        { runId, firstTotal, lastTotal, recordsListed, resumed: resume !== null },
        'a page-numbered listing that was resumed, or over a catalog that changed, may have skipped records: deletions wait for a clean listing',
      );
      return;
    }
    if (keylessInvalid > 0) {
      this.#log.warn(
        { runId, keylessInvalid },
        'the listing had invalid records without an id: deletions wait for a clean listing',
      );
      return;
    }
    const now = this.#clock.now();
    const unseen = await store.countUnseenSkills(listingStartedAt);
    const catalog = unseen > 0 ? (await store.stats(now)).skills : 0;
    const decision = deleteDecision(unseen, catalog, this.#options.deleteGuard);
    if (decision === 'hold') {
      await store.holdDeletions(listingStartedAt, unseen, now);
      counters.deletionsHeld += unseen;
      this.#log.warn(
        { runId, unseen, catalog },
        'delete guard: the listing would remove too much of the catalog; deletions held for an operator',
      );
      return;
    }
    // Also records the listing as complete (for the TTL sweep) when nothing is unseen.
    counters.deleted += await store.deleteUnseenSkills(listingStartedAt, now);
  }

  /**
   * Quarantines a page's invalid records. In a full listing, a stored skill whose new payload is
   * invalid still exists remotely: its stored version is touched as seen, so the listing does
   * not delete it.
   */
  async #quarantineInvalid(
    answer: SkillPage,
    runId: number,
    now: number,
    keepSeen: SkillUpsert[] | null,
  ): Promise<void> {
    const items: QuarantineInput[] = answer.invalid.map((r) => ({
      kind: 'skill',
      key: r.key,
      reason: `${r.error.path}: ${r.error.message}`,
      payload: r.raw,
      runId,
      at: now,
    }));
    await this.#store.quarantine(items);
    if (keepSeen === null) return;
    for (const r of answer.invalid) {
      if (r.key === null) continue;
      const stored = await this.#store.getSkill(r.key, now);
      if (stored !== null) keepSeen.push({ skill: stored.base, contentHash: stored.contentHash });
    }
  }

  // ---- real-time path and catch-up --------------------------------------------------------------

  /** A skill from the WebSocket: the same conflict resolution as polling, then the version-guarded apply. */
  async applySkill(skill: Skill, source: 'websocket'): Promise<EventOutcome> {
    const store = this.#store;
    const now = this.#clock.now();
    if (this.#epoch === undefined) this.#epoch = (await store.getSyncState()).epoch;
    const states = await store.getLocalStates([skill.skill_id]);
    const r = resolveIncoming(skill, hashSkill(skill), states.get(skill.skill_id), this.#options.strategy);
    // The store counts the conflict totals, in the same transaction.
    return store.applySkillEvent(r.upsert, {
      now,
      ttlMs: this.#options.ttlMs,
      epoch: this.#epoch,
      source,
    });
  }

  /**
   * applySkill for a batch of WebSocket skills, in arrival order: the same conflict resolution
   * per skill, then one store transaction (Store.applySkillEvents). One outcome per skill; the
   * result equals applySkill called for each in turn.
   *
   * A skill may come more than once. Without local overrides that needs nothing here: the
   * store guards each item by the one before it, and such a skill cannot gain overrides on this
   * path. With overrides, a later version must be resolved against what the earlier one left
   * (which the version guard may have refused), so the batch is cut before it and the rest is
   * resolved against states read after the first part is written. Rare: overrides are local
   * customisations of a few skills.
   */
  async applySkills(skills: readonly Skill[], source: 'websocket'): Promise<EventOutcome[]> {
    if (skills.length === 0) return [];
    const store = this.#store;
    const now = this.#clock.now();
    if (this.#epoch === undefined) this.#epoch = (await store.getSyncState()).epoch;
    const options = { now, ttlMs: this.#options.ttlMs, epoch: this.#epoch, source };
    const hashes = skills.map((skill) => hashSkill(skill));
    const outcomes: EventOutcome[] = [];
    let states = await store.getLocalStates([...new Set(skills.map((s) => s.skill_id))]);
    const overridden = new Set(states.keys());
    for (let start = 0; start < skills.length;) {
      let end = start;
      const seen = new Set<string>();
      for (; end < skills.length; end++) {
        const id = (skills[end] as Skill).skill_id;
        if (overridden.has(id)) {
          if (seen.has(id)) break;
          seen.add(id);
        }
      }
      if (start > 0) states = await store.getLocalStates([...seen]);
      const resolved = skills
        .slice(start, end)
        .map((skill, k) =>
          resolveIncoming(
            skill,
            hashes[start + k] as string,
            states.get(skill.skill_id),
            this.#options.strategy,
          ),
        );
      const part = await store.applySkillEvents(
        resolved.map((r) => r.upsert),
        options,
      );
      outcomes.push(...part);
      start = end;
    }
    // The store counts the conflict totals, in the same transaction.
    return outcomes;
  }

  /**
   * Asks for a catch-up run (trigger 'websocket') soon. Requests coalesce: many become one run,
   * 'full' wins over 'incremental'; a request during a run schedules one more after it.
   * Never throws.
   */
  requestCatchUp(reason: string, mode: 'incremental' | 'full'): void {
    if (this.#closed) return;
    this.#addCatchUp(reason, mode);
    if (this.#active === null) this.#armCatchUp();
  }

  #addCatchUp(reason: string, mode: 'incremental' | 'full'): void {
    if (this.#catchUp === null) this.#catchUp = { mode, reasons: new Set([reason]) };
    else {
      this.#catchUp.reasons.add(reason);
      if (mode === 'full') this.#catchUp.mode = 'full';
    }
  }

  #armCatchUp(delayMs = this.#options.catchUpDelayMs): void {
    if (this.#catchUpTimer !== null || this.#closed) return;
    this.#catchUpTimer = this.#clock.setTimeout(() => {
      this.#catchUpTimer = null;
      if (this.#active !== null || this.#catchUp === null) return; // re-armed when the run ends
      const { mode, reasons } = this.#catchUp;
      this.#catchUp = null;
      this.#log.info({ mode, reasons: [...reasons] }, 'catch-up sync');
      this.syncAll({ trigger: 'websocket', mode }).then(
        (result) => {
          // Another process runs a sync: it may have started before what this catch-up is for,
          // so ask again after it (this process's own runs re-arm it when they end).
          if (result.alreadyInProgress && this.#active === null && !this.#closed) {
            for (const reason of reasons) this.#requestCatchUpLater(reason, mode);
          }
        },
        (err: unknown) => this.#log.error({ err: describe(err) }, 'catch-up sync failed'),
      );
    }, delayMs);
  }

  /** A catch-up refused because another process held the lease: retried a few seconds later. */
  #requestCatchUpLater(reason: string, mode: 'incremental' | 'full'): void {
    this.#addCatchUp(reason, mode);
    this.#armCatchUp(Math.max(this.#options.catchUpDelayMs, CATCH_UP_RETRY_MS));
  }

  /** Whether a catch-up run is waiting. */
  get catchUpPending(): boolean {
    return this.#catchUp !== null;
  }

  // ---- operator and housekeeping ------------------------------------------------------------------

  /**
   * Confirms deletions the guard held; returns how many were deleted. The watermark is cleared
   * so the next run is a full listing: if the operator confirmed a mistaken answer, whatever
   * still exists remotely comes back (an incremental run would never list it again).
   */
  async confirmHeldDeletions(): Promise<number> {
    const now = this.#clock.now();
    const deleted = await this.#store.confirmHeldDeletions(now);
    const stats = await this.#store.stats(now);
    await this.#store.updateSyncState({ skillsCached: stats.skills, watermark: null });
    return deleted;
  }

  /** TTL sweep (only entries a complete listing after their expiry did not see). */
  async sweep(now: number = this.#clock.now()): Promise<{ skills: number; categories: number }> {
    const removed = await this.#store.sweepExpired(now);
    if (removed.skills > 0 || removed.categories > 0) {
      const stats = await this.#store.stats(now);
      await this.#store.updateSyncState({ skillsCached: stats.skills, categoriesCached: stats.categories });
    }
    return removed;
  }

  /** Stops catch-ups, aborts the active run (its checkpoint stays for the next start) and waits for it. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#catchUpTimer !== null) this.#clock.clearTimeout(this.#catchUpTimer);
    this.#catchUpTimer = null;
    this.#catchUp = null;
    const active = this.#active;
    if (active !== null) {
      active.controller.abort(new SkillsyncError('SKILLSYNC_ERR_REMOTE_ABORTED', 'sync engine closing'));
      await active.done.catch(() => undefined);
    }
  }
}
