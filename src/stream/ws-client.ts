/**
 * The real-time channel: a `ws` client driven by the pure state machine in
 * ws-state-machine.ts. This file performs the machine's effects (sockets, timers on the
 * injected Clock, the ws state row) and turns what happens on the wire into machine events.
 *
 * Liveness (the most reported field failure of watch-style clients is the half-open
 * connection: no FIN, no data, kubernetes#65012, pouchdb#8462): every inbound frame (data,
 * ping, pong) stamps `lastInboundAt`. One timer per socket checks it: after `pingIntervalMs`
 * of silence we send a WebSocket ping frame and a JSON `{type:"ping"}` (a server may answer
 * either), then allow `pongTimeoutMs` for *any* inbound frame. No frame -> the socket is
 * `terminate()`d (a dead peer never completes a closing handshake) and the machine backs off.
 * A half-open socket is therefore detected within pingIntervalMs + pongTimeoutMs of its last
 * frame. The check re-arms lazily, so the hot path (thousands of frames a second) touches no
 * timer: it writes one number. While the pipeline holds reading paused (its queue is full,
 * backpressure), silence proves nothing and no ping is sent.
 *
 * Credentials go in the upgrade request's headers; only the configured legacy mode puts the
 * token in the query string, and the URL recorded in the state row never carries it.
 */
import WebSocket from 'ws';
import type { RawData } from 'ws';
import type { BackoffOptions, RandomSource } from '../core/backoff.js';
import { backoffDelayMs } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { SkillsyncError } from '../core/errors.js';
import type { ClientWsMessage } from '../remote/contract.js';
import { WS_MAX_MESSAGE_BYTES } from '../remote/contract.js';
import type { Store } from '../store/store.js';
import type { WsState } from '../store/types.js';
import type { MessagePipelineOptions, PipelineStats } from './message-pipeline.js';
import { MessagePipeline } from './message-pipeline.js';
import type { StreamSink } from './stream-sink.js';
import type { MachineEffect, MachineEvent, MachineState, WsStateName } from './ws-state-machine.js';
import { INITIAL_MACHINE_STATE, transition } from './ws-state-machine.js';

export interface WsClientOptions {
  /** ATOM_SAAS_WS_URL. */
  readonly url: string;
  /** API token; null sends no auth headers. Never logged or recorded. */
  readonly token: string | null;
  readonly instanceId: string | null;
  /** Legacy servers: put the token in the query string (`?token=`) too. Off by default. */
  readonly tokenInQuery: boolean;
  /** Silence after which we ping. */
  readonly pingIntervalMs: number;
  /** After a ping, how long any inbound frame may take before the socket is declared dead. */
  readonly pongTimeoutMs: number;
  /** Opening handshake deadline (on the injected clock). */
  readonly connectTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** Consecutive failures before the polling fallback (0 = never fall back). 0..100. */
  readonly maxFailuresBeforeFallback: number;
  /** In fallback, how often the socket is re-probed. */
  readonly probeIntervalMs: number;
  /**
   * How long a connection must stay up to count as healthy: resets the failure counter, and
   * ends the fallback when the connection was a probe.
   */
  readonly stableAfterMs: number;
  /** On stop/disable, how long a graceful close may take before the socket is terminated. */
  readonly closeTimeoutMs: number;
  readonly pipeline: Partial<MessagePipelineOptions>;
}

export const DEFAULT_WS_CLIENT: Omit<WsClientOptions, 'url'> = Object.freeze({
  token: null,
  instanceId: null,
  tokenInQuery: false,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  backoff: Object.freeze({ baseMs: 1_000, capMs: 16_000, jitter: 'full' as const }),
  maxFailuresBeforeFallback: 10,
  probeIntervalMs: 5 * 60_000,
  stableAfterMs: 60_000,
  closeTimeoutMs: 2_000,
  pipeline: Object.freeze({ maxMessageBytes: WS_MAX_MESSAGE_BYTES }),
});

export interface WsClientDeps {
  readonly store: Store;
  readonly sink: StreamSink;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly onError?: (err: unknown) => void;
  /** Every state change, for logs and tests. */
  readonly onTransition?: (from: WsStateName, to: WsStateName, event: MachineEvent) => void;
}

export interface WsClientStatus {
  state: WsStateName;
  connected: boolean;
  enabled: boolean;
  /** Without credentials. */
  url: string;
  consecutiveFailures: number;
  reconnectAttempts: number;
  connectAttempts: number;
  fallback: boolean;
  fallbackSince: number | null;
  nextAttemptAt: number | null;
  lastConnectedAt: number | null;
  disconnectReason: string | null;
  pipeline: PipelineStats;
}

/** The URL without credentials: no userinfo, no token-like query parameters. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    for (const key of [...u.searchParams.keys()]) {
      if (/token|key|secret|auth|password/i.test(key)) u.searchParams.delete(key);
    }
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

const CLOSE_CODE_NAMES: Record<number, string> = {
  1000: 'normal closure',
  1001: 'going away',
  1006: 'abnormal closure',
  1009: 'message too big',
  1011: 'server error',
  1012: 'service restart',
  1013: 'try again later',
};

export class WsClient {
  readonly #options: WsClientOptions;
  readonly #store: Store;
  readonly #sink: StreamSink;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #onError: (err: unknown) => void;
  readonly #onTransition: WsClientDeps['onTransition'];
  readonly #safeUrl: string;

  #machine: MachineState = INITIAL_MACHINE_STATE;
  #pipeline: MessagePipeline | null = null;
  #started = false;
  #enabled = true;

  // The current socket and its per-socket timers.
  #ws: WebSocket | null = null;
  #connectTimer: TimerHandle | null = null;
  #liveTimer: TimerHandle | null = null;
  #lastInboundAt = 0;
  #pingSentAt: number | null = null;
  #closing = new Set<Promise<void>>();
  /** The pipeline's queue is full: the socket is not read until it drains (backpressure). */
  #readPaused = false;

  // Lifecycle timers (reconnect, probe, stability).
  #retryTimer: TimerHandle | null = null;
  #probeTimer: TimerHandle | null = null;
  #stableTimer: TimerHandle | null = null;

  // Facts for status() and the ws state row.
  #connectAttempts = 0;
  #lastConnectedAt: number | null = null;
  #disconnectReason: string | null = null;
  #fallbackSince: number | null = null;
  #nextAttemptAt: number | null = null;
  #persist: Promise<void> = Promise.resolve();

  constructor(options: Partial<WsClientOptions> & { url: string }, deps: WsClientDeps) {
    const merged = { ...DEFAULT_WS_CLIENT, ...options };
    if (
      !Number.isInteger(merged.maxFailuresBeforeFallback) ||
      merged.maxFailuresBeforeFallback < 0 ||
      merged.maxFailuresBeforeFallback > 100
    ) {
      throw new SkillsyncError(
        'SKILLSYNC_ERR_CONFIG_INVALID',
        `maxFailuresBeforeFallback must be an integer from 0 to 100, got ${merged.maxFailuresBeforeFallback}`,
      );
    }
    this.#options = Object.freeze({
      ...merged,
      pipeline: { ...DEFAULT_WS_CLIENT.pipeline, ...merged.pipeline },
    });
    this.#store = deps.store;
    this.#sink = deps.sink;
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#onError = deps.onError ?? (() => {});
    this.#onTransition = deps.onTransition;
    this.#safeUrl = redactUrl(this.#options.url);
  }

  // ---- controls ------------------------------------------------------------------------------

  /** Reads the persisted state (enabled, lastSeq) and connects unless disabled. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    let saved: WsState;
    try {
      saved = await this.#store.getWsState();
    } catch (err) {
      this.#started = false;
      throw err;
    }
    this.#enabled = saved.enabled;
    this.#pipeline = new MessagePipeline({
      store: this.#store,
      sink: this.#sink,
      clock: this.#clock,
      options: this.#options.pipeline,
      initialSeq: saved.lastSeq,
      onError: this.#onError,
      onBackpressure: (paused) => {
        this.#readPaused = paused;
        const ws = this.#ws;
        if (ws === null) return;
        if (paused) ws.pause();
        else ws.resume();
      },
    });
    await this.#store.updateWsState({ url: this.#safeUrl, connected: false });
    this.#dispatch({ type: 'start', enabled: this.#enabled });
    await this.#persist;
  }

  /** Closes the socket, cancels every timer, writes the final counters. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#dispatch({ type: 'stop' });
    await Promise.all([...this.#closing]);
    await this.#pipeline?.close();
    this.#pipeline = null;
    await this.#persist;
  }

  /** Drops the current socket (if any) and connects now, skipping any backoff wait. */
  reconnectNow(): void {
    if (!this.#enabled)
      throw new SkillsyncError('SKILLSYNC_ERR_WS_DISABLED', 'the WebSocket client is disabled');
    this.#dispatch({ type: 'reconnect_now' });
  }

  /** Persisted: the client stays enabled across restarts. */
  async enable(): Promise<void> {
    this.#enabled = true;
    this.#queuePersist({ enabled: true });
    // Not started: only the persisted flag changes; start() reads it.
    if (this.#started) this.#dispatch({ type: 'enable' });
    await this.#persist;
  }

  /** Persisted: closes the socket; polling (at the fallback interval) is the only channel. */
  async disable(): Promise<void> {
    this.#enabled = false;
    this.#queuePersist({ enabled: false });
    if (this.#started) this.#dispatch({ type: 'disable' });
    await Promise.all([...this.#closing]);
    await this.#persist;
  }

  status(): WsClientStatus {
    const m = this.#machine;
    return {
      state: m.name,
      connected: this.#ws !== null && m.socketOpen,
      enabled: this.#enabled,
      url: this.#safeUrl,
      consecutiveFailures: m.consecutiveFailures,
      reconnectAttempts: Math.max(0, this.#connectAttempts - 1),
      connectAttempts: this.#connectAttempts,
      fallback: m.fallback,
      fallbackSince: this.#fallbackSince,
      nextAttemptAt: this.#nextAttemptAt,
      lastConnectedAt: this.#lastConnectedAt,
      disconnectReason: this.#disconnectReason,
      pipeline: this.#pipeline?.stats() ?? emptyStats(),
    };
  }

  /** Waits until every received message has been applied and the counters are written. */
  async settle(): Promise<void> {
    await this.#pipeline?.idle();
    await this.#pipeline?.flush();
    await this.#persist;
  }

  // ---- the machine ---------------------------------------------------------------------------

  #dispatch(event: MachineEvent): void {
    const from = this.#machine;
    const { state, effects } = transition(from, event, {
      maxFailures: this.#options.maxFailuresBeforeFallback,
    });
    this.#machine = state;
    if (event.type === 'failed') this.#disconnectReason = event.reason;
    for (const effect of effects) this.#perform(effect);
    if (from !== state) {
      if (from.name !== state.name) this.#onTransition?.(from.name, state.name, event);
      this.#queuePersist({});
    }
  }

  #perform(effect: MachineEffect): void {
    switch (effect.type) {
      case 'connect':
        this.#connect();
        return;
      case 'close_socket':
        this.#closeSocket(effect.reason);
        return;
      case 'schedule_reconnect': {
        const delay = backoffDelayMs(effect.attempt, this.#options.backoff, this.#random);
        this.#nextAttemptAt = this.#clock.now() + delay;
        this.#retryTimer = this.#clock.setTimeout(() => {
          this.#retryTimer = null;
          this.#nextAttemptAt = null;
          this.#dispatch({ type: 'retry_timer' });
        }, delay);
        return;
      }
      case 'schedule_probe':
        this.#nextAttemptAt = this.#clock.now() + this.#options.probeIntervalMs;
        this.#probeTimer = this.#clock.setTimeout(() => {
          this.#probeTimer = null;
          this.#nextAttemptAt = null;
          this.#dispatch({ type: 'probe_timer' });
        }, this.#options.probeIntervalMs);
        return;
      case 'start_stability_timer':
        this.#stableTimer = this.#clock.setTimeout(() => {
          this.#stableTimer = null;
          this.#dispatch({ type: 'stable' });
        }, this.#options.stableAfterMs);
        return;
      case 'cancel_timers':
        for (const t of [this.#retryTimer, this.#probeTimer, this.#stableTimer])
          if (t) this.#clock.clearTimeout(t);
        this.#retryTimer = this.#probeTimer = this.#stableTimer = null;
        this.#nextAttemptAt = null;
        return;
      case 'enter_fallback':
        this.#fallbackSince = this.#clock.now();
        this.#safeSink(() => this.#sink.setFallback(true));
        return;
      case 'exit_fallback':
        this.#fallbackSince = null;
        this.#safeSink(() => this.#sink.setFallback(false));
        return;
      case 'on_open':
        this.#onOpen();
        return;
    }
  }

  #safeSink(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }

  // ---- sockets -------------------------------------------------------------------------------

  #connect(): void {
    const { token, instanceId, tokenInQuery } = this.#options;
    const headers: Record<string, string> = {};
    if (token) {
      headers['Authorization'] = `Bearer ${token}`;
      headers['X-API-Token'] = token;
    }
    if (instanceId) headers['X-Instance-ID'] = instanceId;
    let url = this.#options.url;
    if (tokenInQuery && token) {
      const u = new URL(url);
      u.searchParams.set('token', token);
      url = u.toString();
    }
    this.#connectAttempts++;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        headers,
        maxPayload: this.#options.pipeline.maxMessageBytes ?? WS_MAX_MESSAGE_BYTES,
        perMessageDeflate: false,
        followRedirects: false,
      });
    } catch (err) {
      // A malformed URL: report it as a failed attempt (backoff, then fallback), not a crash.
      this.#onError(err);
      queueMicrotask(() => this.#dispatch({ type: 'failed', reason: 'invalid url' }));
      return;
    }
    this.#ws = ws;
    this.#connectTimer = this.#clock.setTimeout(() => {
      this.#connectTimer = null;
      if (this.#ws === ws) this.#dispatch({ type: 'failed', reason: 'connect timeout' });
    }, this.#options.connectTimeoutMs);

    const mine = (): boolean => this.#ws === ws;
    ws.on('open', () => {
      if (!mine()) return;
      this.#clearConnectTimer();
      this.#dispatch({ type: 'opened' });
    });
    ws.on('message', (data: RawData) => {
      if (!mine()) return;
      this.#lastInboundAt = this.#clock.now();
      this.#pipeline?.push(toBuffer(data), this.#reply);
    });
    ws.on('ping', () => {
      if (mine()) this.#lastInboundAt = this.#clock.now();
    });
    ws.on('pong', () => {
      if (mine()) this.#lastInboundAt = this.#clock.now();
    });
    ws.on('unexpected-response', (_req, res) => {
      if (!mine()) return;
      res.resume();
      this.#dispatch({ type: 'failed', reason: `upgrade refused: HTTP ${res.statusCode ?? '?'}` });
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (!mine()) return;
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.#pipeline?.recordOversized(null);
        this.#dispatch({ type: 'failed', reason: 'message too big' });
        return;
      }
      // Never echo the error text blindly: it can contain the URL (and a legacy token).
      this.#dispatch({ type: 'failed', reason: `socket error${err.code ? ` (${err.code})` : ''}` });
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (!mine()) return;
      const name = CLOSE_CODE_NAMES[code] ?? 'closed';
      const text = reason.length > 0 ? `: ${reason.toString('utf8').slice(0, 100)}` : '';
      this.#dispatch({ type: 'failed', reason: `closed by server (${code} ${name}${text})` });
    });
  }

  readonly #reply = (message: ClientWsMessage): void => {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  };

  #onOpen(): void {
    const now = this.#clock.now();
    this.#lastConnectedAt = now;
    this.#lastInboundAt = now;
    this.#pingSentAt = null;
    this.#armLiveness(this.#options.pingIntervalMs);
    if (this.#readPaused) this.#ws?.pause();
    const pipeline = this.#pipeline;
    pipeline?.connectionOpened();
    const seq = pipeline?.lastSeq ?? null;
    if (seq !== null) this.#reply({ type: 'resume', since_seq: seq });
    // Whatever happened while the socket was down is not coming over it: list the window.
    this.#safeSink(() => this.#sink.requestCatchUp('reconnect', 'incremental'));
    this.#queuePersist({ lastConnectedAt: now });
  }

  #armLiveness(delayMs: number): void {
    if (this.#liveTimer) this.#clock.clearTimeout(this.#liveTimer);
    this.#liveTimer = this.#clock.setTimeout(() => this.#onLivenessTimer(), Math.max(1, delayMs));
  }

  #onLivenessTimer(): void {
    this.#liveTimer = null;
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = this.#clock.now();
    const { pingIntervalMs, pongTimeoutMs } = this.#options;
    if (this.#readPaused) {
      // We are not reading (backpressure): silence proves nothing. Look again later.
      this.#pingSentAt = null;
      this.#armLiveness(pingIntervalMs);
      return;
    }
    if (this.#pingSentAt !== null) {
      if (this.#lastInboundAt >= this.#pingSentAt) {
        // Answered (by a pong or by any other frame).
        this.#pingSentAt = null;
        this.#armLiveness(pingIntervalMs - (now - this.#lastInboundAt));
      } else {
        this.#dispatch({ type: 'failed', reason: 'pong timeout (connection dead)' });
      }
      return;
    }
    const idle = now - this.#lastInboundAt;
    if (idle < pingIntervalMs) {
      this.#armLiveness(pingIntervalMs - idle);
      return;
    }
    this.#pingSentAt = now;
    try {
      ws.ping();
      this.#reply({ type: 'ping' });
    } catch (err) {
      this.#onError(err);
    }
    this.#armLiveness(pongTimeoutMs);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer) this.#clock.clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }

  /**
   * Detaches the current socket (its late events are ignored from here on) and ends it: a
   * graceful close for stop/disable/reconnect on a healthy socket, terminate() otherwise.
   */
  #closeSocket(reason: string): void {
    this.#clearConnectTimer();
    if (this.#liveTimer) this.#clock.clearTimeout(this.#liveTimer);
    this.#liveTimer = null;
    this.#pingSentAt = null;
    const ws = this.#ws;
    this.#ws = null;
    if (!ws) return;
    ws.removeAllListeners();
    ws.on('error', () => {}); // late errors of a socket we let go are expected
    const graceful =
      (reason === 'stopped' || reason === 'disabled' || reason === 'reconnect requested') &&
      ws.readyState === WebSocket.OPEN;
    if (!graceful) {
      ws.terminate();
      return;
    }
    const done = new Promise<void>((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        ws.terminate();
        resolve();
      }, this.#options.closeTimeoutMs);
      ws.once('close', () => {
        this.#clock.clearTimeout(timer);
        resolve();
      });
      ws.close(1000, reason === 'stopped' ? 'client stopping' : reason);
    });
    this.#closing.add(done);
    void done.then(() => this.#closing.delete(done));
  }

  // ---- the state row -------------------------------------------------------------------------

  #queuePersist(extra: Partial<Omit<WsState, 'counts'>>): void {
    const m = this.#machine;
    const patch: Partial<Omit<WsState, 'counts'>> = {
      state: m.name,
      connected: m.socketOpen,
      consecutiveFailures: m.consecutiveFailures,
      reconnectAttempts: Math.max(0, this.#connectAttempts - 1),
      fallbackSince: this.#fallbackSince,
      nextAttemptAt: this.#nextAttemptAt,
      disconnectReason: this.#disconnectReason,
      ...extra,
    };
    this.#persist = this.#persist
      .then(() => this.#store.updateWsState(patch))
      .then(
        () => undefined,
        (err: unknown) => this.#onError(err),
      );
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function emptyStats(): PipelineStats {
  return {
    counts: { applied: 0, duplicate: 0, stale: 0, invalid: 0, rate_limited: 0, unknown: 0 },
    received: 0,
    catchUps: {},
    applyErrors: 0,
    lastSeq: null,
    lastMessageAt: null,
    queued: 0,
  };
}
