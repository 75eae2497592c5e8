/**
 * The periodic jobs of the sync: the skill sync every N minutes (with a first run at start,
 * fast retries after a failed run, a fallback interval while the WebSocket is down) and the
 * hourly TTL sweep.
 *
 * Each job keeps one timer on the injected Clock and computes its next time with the pure maths
 * of next-run.ts (croner parses and evaluates the sweep's cron pattern). Timers go through the
 * Clock rather than croner's own scheduler so tests drive the schedule with a FakeClock. Jobs are
 * overlap-protected like croner's `protect: true`: a job's next timer is armed only when its run
 * has finished, and the engine itself refuses a second concurrent run.
 *
 * Live changes (the admin API, the WebSocket client): setIntervalMinutes, setFallback,
 * setFallbackIntervalMinutes and setAutoSync re-arm the timer at once; the next run time is
 * written into the sync state (nextRunAt).
 */
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { SyncState } from '../store/types.js';
import type { SyncRequest, SyncResult } from '../sync/sync-engine.js';
import {
  DEFAULT_RETRY_DELAYS_MS,
  nextCronAt,
  nextSyncAt,
  validateCron,
  type LastOutcome,
} from './next-run.js';

export interface SyncSchedulerOptions {
  /** Interval of the scheduled sync (5..60 min). */
  readonly intervalMinutes: number;
  /** Interval while the WebSocket is down (5..60 min); the shorter of the two applies. */
  readonly fallbackIntervalMinutes: number;
  /** false: no scheduled sync (manual triggers only). */
  readonly autoSync: boolean;
  /** Run a first sync when the scheduler starts. */
  readonly syncOnStart: boolean;
  readonly startupDelayMs: number;
  /** Cron pattern (UTC) of the TTL sweep; empty disables it. */
  readonly sweepPattern: string;
  /** Delays of the retries after a failed run, then the normal interval. */
  readonly retryDelaysMs: readonly number[];
}

export const DEFAULT_SYNC_SCHEDULER: SyncSchedulerOptions = Object.freeze({
  intervalMinutes: 15,
  fallbackIntervalMinutes: 5,
  autoSync: true,
  syncOnStart: true,
  startupDelayMs: 0,
  sweepPattern: '0 * * * *',
  retryDelaysMs: DEFAULT_RETRY_DELAYS_MS,
});

/** What the scheduler needs from the engine (structural: the real SyncEngine fits). */
export interface SchedulerEngine {
  syncAll(request: SyncRequest): Promise<SyncResult>;
  sweep(now?: number): Promise<{ skills: number; categories: number }>;
}

export interface SchedulerStateStore {
  updateSyncState(patch: Partial<SyncState>): Promise<unknown>;
}

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const SILENT: SchedulerLogger = { info() {}, warn() {}, error() {} };

function checkMinutes(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 5 || v > 60)
    throw new ConfigError(name, `must be an integer from 5 to 60 (min), got ${String(v)}`);
  return v;
}

export class SyncScheduler {
  readonly #engine: SchedulerEngine;
  readonly #store: SchedulerStateStore;
  readonly #clock: Clock;
  readonly #log: SchedulerLogger;
  #options: SyncSchedulerOptions;
  #started = false;
  #fallback = false;
  #syncTimer: TimerHandle | null = null;
  #sweepTimer: TimerHandle | null = null;
  #syncJob: Promise<void> | null = null;
  #sweepJob: Promise<void> | null = null;
  #pendingTrigger: 'startup' | 'schedule' | 'retry' = 'schedule';
  #nextRunAt: number | null = null;
  #nextSweepAt: number | null = null;
  #lastStartedAt: number | null = null;
  #lastFinishedAt: number | null = null;
  #lastOutcome: LastOutcome | null = null;
  #failuresInRow = 0;

  constructor(deps: {
    engine: SchedulerEngine;
    store: SchedulerStateStore;
    clock?: Clock;
    logger?: SchedulerLogger;
    options?: Partial<SyncSchedulerOptions>;
  }) {
    this.#engine = deps.engine;
    this.#store = deps.store;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? SILENT;
    const o = { ...DEFAULT_SYNC_SCHEDULER, ...deps.options };
    checkMinutes('intervalMinutes', o.intervalMinutes);
    checkMinutes('fallbackIntervalMinutes', o.fallbackIntervalMinutes);
    if (o.sweepPattern !== '') validateCron(o.sweepPattern);
    this.#options = Object.freeze(o);
  }

  get options(): SyncSchedulerOptions {
    return this.#options;
  }

  /** The interval in force now: the fallback one while the WebSocket is down, if shorter. */
  get effectiveIntervalMinutes(): number {
    const { intervalMinutes, fallbackIntervalMinutes } = this.#options;
    return this.#fallback ? Math.min(intervalMinutes, fallbackIntervalMinutes) : intervalMinutes;
  }

  get nextRunAt(): number | null {
    return this.#nextRunAt;
  }

  get nextSweepAt(): number | null {
    return this.#nextSweepAt;
  }

  get fallbackActive(): boolean {
    return this.#fallback;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#store.updateSyncState({ autoSyncEnabled: this.#options.autoSync });
    if (this.#options.syncOnStart) this.#arm(this.#clock.now() + this.#options.startupDelayMs, 'startup');
    else this.#rearm();
    this.#armSweep();
  }

  /** Cancels the timers and waits for a job in progress. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#clear();
    if (this.#sweepTimer !== null) this.#clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = null;
    this.#nextSweepAt = null;
    await Promise.all([this.#syncJob, this.#sweepJob]);
  }

  /** Resolves when no job is running (tests). */
  async idle(): Promise<void> {
    while (this.#syncJob !== null || this.#sweepJob !== null)
      await Promise.all([this.#syncJob, this.#sweepJob]);
  }

  // ---- live changes ------------------------------------------------------------------------

  setIntervalMinutes(minutes: number): void {
    this.#options = Object.freeze({
      ...this.#options,
      intervalMinutes: checkMinutes('intervalMinutes', minutes),
    });
    this.#rearm();
  }

  setFallbackIntervalMinutes(minutes: number): void {
    this.#options = Object.freeze({
      ...this.#options,
      fallbackIntervalMinutes: checkMinutes('fallbackIntervalMinutes', minutes),
    });
    this.#rearm();
  }

  /** The WebSocket is down (true) or live again (false): switches to the fallback interval and back. */
  setFallback(active: boolean): void {
    if (this.#fallback === active) return;
    this.#fallback = active;
    this.#log.info(
      { fallback: active, intervalMinutes: this.effectiveIntervalMinutes },
      'sync interval changed',
    );
    this.#rearm();
  }

  setAutoSync(enabled: boolean): void {
    this.#options = Object.freeze({ ...this.#options, autoSync: enabled });
    this.#store.updateSyncState({ autoSyncEnabled: enabled }).catch((err: unknown) => this.#stateError(err));
    this.#rearm();
  }

  // ---- sync job ----------------------------------------------------------------------------

  #clear(): void {
    if (this.#syncTimer !== null) this.#clock.clearTimeout(this.#syncTimer);
    this.#syncTimer = null;
  }

  /** Recomputes the next run from what happened last (never while a run is in progress). */
  #rearm(): void {
    if (!this.#started || this.#syncJob !== null) return;
    if (this.#pendingTrigger === 'startup' && this.#syncTimer !== null) return; // first run still due
    if (!this.#options.autoSync) {
      this.#clear();
      this.#setNextRunAt(null);
      return;
    }
    const next = nextSyncAt({
      now: this.#clock.now(),
      lastStartedAt: this.#lastStartedAt,
      lastFinishedAt: this.#lastFinishedAt,
      lastOutcome: this.#lastOutcome,
      failuresInRow: this.#failuresInRow,
      intervalMs: this.effectiveIntervalMinutes * 60_000,
      retryDelaysMs: this.#options.retryDelaysMs,
    });
    this.#arm(next.at, next.reason === 'retry' ? 'retry' : 'schedule');
  }

  #arm(at: number, trigger: 'startup' | 'schedule' | 'retry'): void {
    this.#clear();
    this.#pendingTrigger = trigger;
    this.#syncTimer = this.#clock.setTimeout(
      () => {
        this.#syncTimer = null;
        this.#syncJob = this.#runSync(trigger).finally(() => {
          this.#syncJob = null;
          this.#rearm();
        });
      },
      Math.max(0, at - this.#clock.now()),
    );
    this.#setNextRunAt(at);
  }

  async #runSync(trigger: 'startup' | 'schedule' | 'retry'): Promise<void> {
    this.#pendingTrigger = 'schedule';
    this.#lastStartedAt = this.#clock.now();
    let outcome: LastOutcome;
    try {
      const result = await this.#engine.syncAll({ trigger, mode: 'auto' });
      if (result.status === 'rejected')
        outcome = result.error?.code === 'SKILLSYNC_ERR_SYNC_AUTH_FAILED' ? 'auth_failed' : 'rejected';
      else if (result.status === 'failed' && result.error?.code === 'SKILLSYNC_ERR_REMOTE_AUTH')
        outcome = 'auth_failed';
      else outcome = result.status === 'running' ? 'failed' : result.status;
    } catch (err) {
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'scheduled sync threw');
      outcome = 'failed';
    }
    this.#lastFinishedAt = this.#clock.now();
    this.#lastOutcome = outcome;
    if (outcome === 'failed' || outcome === 'partial') this.#failuresInRow++;
    else if (outcome !== 'rejected') this.#failuresInRow = 0;
  }

  #setNextRunAt(at: number | null): void {
    this.#nextRunAt = at;
    this.#store.updateSyncState({ nextRunAt: at }).catch((err: unknown) => this.#stateError(err));
  }

  #stateError(err: unknown): void {
    this.#log.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'could not write the schedule state',
    );
  }

  // ---- TTL sweep ---------------------------------------------------------------------------

  #armSweep(): void {
    if (!this.#started || this.#options.sweepPattern === '') return;
    const at = nextCronAt(this.#options.sweepPattern, this.#clock.now());
    this.#nextSweepAt = at;
    if (at === null) return;
    this.#sweepTimer = this.#clock.setTimeout(
      () => {
        this.#sweepTimer = null;
        this.#sweepJob = this.#engine
          .sweep(this.#clock.now())
          .then(
            (removed) => {
              if (removed.skills > 0 || removed.categories > 0)
                this.#log.info(removed, 'TTL sweep removed entries');
            },
            (err: unknown) =>
              this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'TTL sweep failed'),
          )
          .finally(() => {
            this.#sweepJob = null;
            this.#armSweep();
          });
      },
      Math.max(0, at - this.#clock.now()),
    );
  }
}
