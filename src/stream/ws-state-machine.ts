/**
 * The WebSocket client's lifecycle as an explicit state machine: a pure function from
 * (state, event) to (next state, effects). No I/O, no clock, no randomness: the client
 * (ws-client.ts) performs the effects (open a socket, arm a timer, ask for a catch-up sync)
 * and feeds what happens back in as events. Every edge is in the transition-table test.
 *
 *   disconnected --start--> connecting --opened--> connected --stable--> connected (failures reset)
 *        ^                     |  ^                     |
 *        |                 failed |                  dropped
 *        |                     v  |                     v
 *      stop             backing_off --retry_timer-------+  (delay: full-jitter 1 s .. 16 s)
 *                              |
 *               failures >= maxFailures
 *                              v
 *                     polling_fallback --probe_timer--> probing --stable--> connected
 *                              ^                            |     (leave fallback)
 *                              +-----------failed/dropped---+
 *
 *   any --disable--> disabled --enable--> connecting
 *
 * Why failures are only reset after a connection has stayed up for a while (`stable`), not
 * on open: a server that accepts and closes at once (flapping) would otherwise look healthy
 * forever and be hammered at the minimum backoff. client-go resets its backoff after 2 min
 * of health for the same reason (../shared/LESSONS.md, "Connections").
 *
 * The fallback is reversible (Electric's one-way fallback is the anti-example): in fallback
 * the socket is re-probed periodically, and a probe that stays up for the stability window
 * returns the client to WebSocket mode.
 */

export const WS_STATES = [
  'disconnected',
  'connecting',
  'connected',
  'backing_off',
  'polling_fallback',
  'probing',
  'disabled',
] as const;
export type WsStateName = (typeof WS_STATES)[number];

export interface MachineState {
  readonly name: WsStateName;
  /** Connection attempts or connections that ended before they were stable, in a row. */
  readonly consecutiveFailures: number;
  /** While probing: the probe socket is open (waiting for the stability window). */
  readonly socketOpen: boolean;
  /** True while the scheduled sync runs at its fallback interval. */
  readonly fallback: boolean;
}

export type MachineEvent =
  | { readonly type: 'start'; readonly enabled: boolean }
  | { readonly type: 'opened' }
  /** The connection attempt failed, or an open socket closed, errored or missed its pong. */
  | { readonly type: 'failed'; readonly reason: string }
  | { readonly type: 'retry_timer' }
  | { readonly type: 'probe_timer' }
  /** The socket has stayed open for the stability window. */
  | { readonly type: 'stable' }
  | { readonly type: 'reconnect_now' }
  | { readonly type: 'enable' }
  | { readonly type: 'disable' }
  | { readonly type: 'stop' };

export type MachineEffect =
  | { readonly type: 'connect' }
  /** Close the current socket (if any); `terminate` for a dead one. */
  | { readonly type: 'close_socket'; readonly reason: string }
  /** Arm the reconnect timer; the delay is backoffDelayMs(attempt). */
  | { readonly type: 'schedule_reconnect'; readonly attempt: number }
  | { readonly type: 'schedule_probe' }
  | { readonly type: 'start_stability_timer' }
  /** Cancel the reconnect, probe and stability timers. */
  | { readonly type: 'cancel_timers' }
  | { readonly type: 'enter_fallback' }
  | { readonly type: 'exit_fallback' }
  /** The socket is open: start liveness, send resume, request the catch-up sync for the window. */
  | { readonly type: 'on_open' };

export interface MachinePolicy {
  /** Consecutive failures before polling fallback; 0 never falls back (keeps backing off). */
  readonly maxFailures: number;
}

export interface Transition {
  readonly state: MachineState;
  readonly effects: readonly MachineEffect[];
}

export const INITIAL_MACHINE_STATE: MachineState = Object.freeze({
  name: 'disconnected',
  consecutiveFailures: 0,
  socketOpen: false,
  fallback: false,
});

function to(state: MachineState, patch: Partial<MachineState>, ...effects: MachineEffect[]): Transition {
  return { state: { ...state, ...patch }, effects };
}

const same = (state: MachineState): Transition => ({ state, effects: [] });

/** Leaving fallback is an effect only when we were in it: the sink hears each change once. */
function exitFallbackIf(state: MachineState): MachineEffect[] {
  return state.fallback ? [{ type: 'exit_fallback' }] : [];
}

/** A connection attempt or a live connection failed: back off, or fall back to polling. */
function onFailure(state: MachineState, reason: string, policy: MachinePolicy): Transition {
  const failures = state.consecutiveFailures + 1;
  const close: MachineEffect = { type: 'close_socket', reason };
  if (state.fallback) {
    // A failed probe: stay in fallback and probe again later.
    return to(
      state,
      { name: 'polling_fallback', consecutiveFailures: failures, socketOpen: false },
      close,
      { type: 'cancel_timers' },
      { type: 'schedule_probe' },
    );
  }
  if (policy.maxFailures > 0 && failures >= policy.maxFailures) {
    return to(
      state,
      { name: 'polling_fallback', consecutiveFailures: failures, socketOpen: false, fallback: true },
      close,
      { type: 'cancel_timers' },
      { type: 'enter_fallback' },
      { type: 'schedule_probe' },
    );
  }
  return to(
    state,
    { name: 'backing_off', consecutiveFailures: failures, socketOpen: false },
    close,
    { type: 'cancel_timers' },
    { type: 'schedule_reconnect', attempt: failures - 1 },
  );
}

export function transition(
  state: MachineState,
  event: MachineEvent,
  policy: MachinePolicy = { maxFailures: 10 },
): Transition {
  // Events valid in every state first.
  switch (event.type) {
    case 'stop':
      return to(
        state,
        { name: 'disconnected', socketOpen: false, fallback: false },
        { type: 'close_socket', reason: 'stopped' },
        { type: 'cancel_timers' },
        ...exitFallbackIf(state),
      );
    case 'disable':
      if (state.name === 'disabled') return same(state);
      // Disabled by an operator: polling is the only channel, so the schedule runs at its
      // fallback interval (the fastest it has) until the socket is enabled again.
      return to(
        state,
        { name: 'disabled', socketOpen: false, fallback: true, consecutiveFailures: 0 },
        { type: 'close_socket', reason: 'disabled' },
        { type: 'cancel_timers' },
        ...(state.fallback ? [] : [{ type: 'enter_fallback' } as const]),
      );
    default:
      break;
  }

  switch (state.name) {
    case 'disconnected':
      if (event.type === 'start') {
        if (!event.enabled)
          return to(state, { name: 'disabled', fallback: true }, { type: 'enter_fallback' });
        return to(state, { name: 'connecting' }, { type: 'connect' });
      }
      return same(state);

    case 'disabled':
      if (event.type === 'enable') {
        return to(
          state,
          { name: 'connecting', consecutiveFailures: 0, socketOpen: false, fallback: false },
          ...exitFallbackIf(state),
          { type: 'connect' },
        );
      }
      return same(state);

    case 'connecting':
      switch (event.type) {
        case 'opened':
          return to(
            state,
            { name: 'connected', socketOpen: true },
            { type: 'on_open' },
            { type: 'start_stability_timer' },
          );
        case 'failed':
          return onFailure(state, event.reason, policy);
        case 'reconnect_now':
          // Already connecting: a second socket would only race the first.
          return same(state);
        default:
          return same(state);
      }

    case 'connected':
      switch (event.type) {
        case 'failed':
          return onFailure(state, event.reason, policy);
        case 'stable':
          // Sustained health: the backoff ladder starts from the bottom again.
          return to(state, { consecutiveFailures: 0 });
        case 'reconnect_now':
          return to(
            state,
            { name: 'connecting', socketOpen: false },
            { type: 'close_socket', reason: 'reconnect requested' },
            { type: 'cancel_timers' },
            { type: 'connect' },
          );
        default:
          return same(state);
      }

    case 'backing_off':
      switch (event.type) {
        case 'retry_timer':
          return to(state, { name: 'connecting' }, { type: 'connect' });
        case 'reconnect_now':
          return to(state, { name: 'connecting' }, { type: 'cancel_timers' }, { type: 'connect' });
        default:
          return same(state);
      }

    case 'polling_fallback':
      switch (event.type) {
        case 'probe_timer':
        case 'reconnect_now':
          return to(
            state,
            { name: 'probing', socketOpen: false },
            { type: 'cancel_timers' },
            { type: 'connect' },
          );
        default:
          return same(state);
      }

    case 'probing':
      switch (event.type) {
        case 'opened':
          // The probe is up; it must stay up for the stability window before we trust it.
          return to(state, { socketOpen: true }, { type: 'on_open' }, { type: 'start_stability_timer' });
        case 'failed':
          return onFailure(state, event.reason, policy);
        case 'stable':
          return state.socketOpen
            ? to(
                state,
                { name: 'connected', consecutiveFailures: 0, fallback: false },
                ...exitFallbackIf(state),
              )
            : same(state);
        default:
          return same(state);
      }
  }
}
