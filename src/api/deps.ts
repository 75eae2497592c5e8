/**
 * What the HTTP app needs from the rest of the service. The app speaks to narrow ports, never
 * to concrete classes: service.ts (the composition root) adapts the real engine, scheduler,
 * WebSocket client and outbox to them. A port left out (for example no WebSocket configured)
 * makes its routes answer 503 SKILLSYNC_ERR_API_UNAVAILABLE instead of failing.
 */
import type { Logger } from 'pino';
import type { LiveConfig } from '../config/live-config.js';
import type { Clock } from '../core/clock.js';
import type { Store } from '../store/store.js';
import type { OutboxItem, RatingRecord, RunMode, WsState } from '../store/types.js';
import type { ServiceMetrics } from './metrics.js';

export interface SyncPort {
  /**
   * Starts a run in the background and returns its id once the run is recorded. Throws
   * SkillsyncError SKILLSYNC_ERR_SYNC_IN_PROGRESS with `details.runId` when one is running.
   */
  trigger(mode: RunMode): Promise<{ runId: number }>;
  /** Deletes the skills a held listing did not see; throws SKILLSYNC_ERR_SYNC_NOTHING_HELD. */
  confirmHeldDeletions(): Promise<number>;
  /** Id of the run in progress, or null. */
  runningRunId(): number | null;
  /** Next scheduled run (epoch ms), or null when auto sync is off. */
  nextRunAt(): number | null;
}

export interface WsPort {
  reconnectNow(): Promise<void> | void;
  enable(): Promise<void> | void;
  disable(): Promise<void> | void;
  /** Live state of the client; fields given here win over the stored WebSocket state row. */
  status(): Partial<Omit<WsState, 'counts'>> & { state: string };
}

export interface ActionsPort {
  rate(input: {
    skillId: string;
    userId: string;
    rating: number;
    comment: string | null;
  }): Promise<{ rating: RatingRecord; outbox: OutboxItem }>;
  install(input: { skillId: string; agentId: string }): Promise<{ outbox: OutboxItem }>;
}

export interface OutboxPort {
  /**
   * Operator retry: a dead item goes back to pending (same idempotency key) and the uploader
   * sends it now, ending any wait for its next probe (after a 401 or a long outage).
   */
  retry(id: number): Promise<OutboxItem>;
}

export interface AppDeps {
  store: Store;
  config: LiveConfig;
  clock: Clock;
  metrics: ServiceMetrics;
  /** pino logger for the app (redaction configured by the caller via createLogger). */
  logger: Logger;
  sync?: SyncPort;
  ws?: WsPort;
  actions?: ActionsPort;
  outbox?: OutboxPort;
  /** Dashboard assets directory (defaults to src/api/dashboard next to the compiled file). */
  dashboardDir?: string;
}
