import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MachineEvent, MachineState, WsStateName } from '../src/stream/ws-state-machine.js';
import { INITIAL_MACHINE_STATE, WS_STATES, transition } from '../src/stream/ws-state-machine.js';
import { redactUrl } from '../src/stream/ws-client.js';

const policy = { maxFailures: 3 };

function st(name: WsStateName, patch: Partial<MachineState> = {}): MachineState {
  const fallback = name === 'polling_fallback' || name === 'probing' || name === 'disabled';
  return { ...INITIAL_MACHINE_STATE, name, fallback, socketOpen: name === 'connected', ...patch };
}

const failed: MachineEvent = { type: 'failed', reason: 'x' };

interface Row {
  from: MachineState;
  event: MachineEvent;
  to: WsStateName;
  effects: string[];
  failures?: number;
  fallback?: boolean;
}

// The transition table, state by state. Effects are listed by type, in order.
const TABLE: Record<WsStateName, Row[]> = {
  disconnected: [
    {
      from: st('disconnected'),
      event: { type: 'start', enabled: true },
      to: 'connecting',
      effects: ['connect'],
    },
    {
      from: st('disconnected'),
      event: { type: 'start', enabled: false },
      to: 'disabled',
      effects: ['enter_fallback'],
      fallback: true,
    },
    { from: st('disconnected'), event: { type: 'opened' }, to: 'disconnected', effects: [] },
    { from: st('disconnected'), event: failed, to: 'disconnected', effects: [] },
    { from: st('disconnected'), event: { type: 'retry_timer' }, to: 'disconnected', effects: [] },
    { from: st('disconnected'), event: { type: 'reconnect_now' }, to: 'disconnected', effects: [] },
    {
      from: st('disconnected'),
      event: { type: 'disable' },
      to: 'disabled',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback'],
    },
  ],
  connecting: [
    {
      from: st('connecting'),
      event: { type: 'opened' },
      to: 'connected',
      effects: ['on_open', 'start_stability_timer'],
    },
    {
      from: st('connecting'),
      event: failed,
      to: 'backing_off',
      effects: ['close_socket', 'cancel_timers', 'schedule_reconnect'],
      failures: 1,
    },
    {
      from: st('connecting', { consecutiveFailures: 2 }),
      event: failed,
      to: 'polling_fallback',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback', 'schedule_probe'],
      failures: 3,
      fallback: true,
    },
    { from: st('connecting'), event: { type: 'reconnect_now' }, to: 'connecting', effects: [] },
    { from: st('connecting'), event: { type: 'stable' }, to: 'connecting', effects: [] },
    {
      from: st('connecting'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers'],
    },
    {
      from: st('connecting'),
      event: { type: 'disable' },
      to: 'disabled',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback'],
      fallback: true,
    },
  ],
  connected: [
    {
      from: st('connected', { consecutiveFailures: 2 }),
      event: { type: 'stable' },
      to: 'connected',
      effects: [],
      failures: 0,
    },
    {
      from: st('connected'),
      event: failed,
      to: 'backing_off',
      effects: ['close_socket', 'cancel_timers', 'schedule_reconnect'],
      failures: 1,
    },
    {
      // A connection that dies before it was stable keeps counting towards the fallback.
      from: st('connected', { consecutiveFailures: 2 }),
      event: failed,
      to: 'polling_fallback',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback', 'schedule_probe'],
      failures: 3,
    },
    {
      from: st('connected'),
      event: { type: 'reconnect_now' },
      to: 'connecting',
      effects: ['close_socket', 'cancel_timers', 'connect'],
    },
    { from: st('connected'), event: { type: 'opened' }, to: 'connected', effects: [] },
    {
      from: st('connected'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers'],
    },
    {
      from: st('connected'),
      event: { type: 'disable' },
      to: 'disabled',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback'],
    },
  ],
  backing_off: [
    {
      from: st('backing_off', { consecutiveFailures: 1 }),
      event: { type: 'retry_timer' },
      to: 'connecting',
      effects: ['connect'],
      failures: 1,
    },
    {
      from: st('backing_off', { consecutiveFailures: 1 }),
      event: { type: 'reconnect_now' },
      to: 'connecting',
      effects: ['cancel_timers', 'connect'],
    },
    { from: st('backing_off'), event: { type: 'probe_timer' }, to: 'backing_off', effects: [] },
    { from: st('backing_off'), event: failed, to: 'backing_off', effects: [] },
    {
      from: st('backing_off'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers'],
    },
    {
      from: st('backing_off'),
      event: { type: 'disable' },
      to: 'disabled',
      effects: ['close_socket', 'cancel_timers', 'enter_fallback'],
    },
  ],
  polling_fallback: [
    {
      from: st('polling_fallback', { consecutiveFailures: 3 }),
      event: { type: 'probe_timer' },
      to: 'probing',
      effects: ['cancel_timers', 'connect'],
      fallback: true,
    },
    {
      from: st('polling_fallback'),
      event: { type: 'reconnect_now' },
      to: 'probing',
      effects: ['cancel_timers', 'connect'],
    },
    { from: st('polling_fallback'), event: { type: 'retry_timer' }, to: 'polling_fallback', effects: [] },
    { from: st('polling_fallback'), event: failed, to: 'polling_fallback', effects: [] },
    {
      from: st('polling_fallback'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers', 'exit_fallback'],
      fallback: false,
    },
    {
      // Already on the fallback interval: no second enter_fallback.
      from: st('polling_fallback'),
      event: { type: 'disable' },
      to: 'disabled',
      effects: ['close_socket', 'cancel_timers'],
      fallback: true,
    },
  ],
  probing: [
    {
      from: st('probing'),
      event: { type: 'opened' },
      to: 'probing',
      effects: ['on_open', 'start_stability_timer'],
      fallback: true,
    },
    {
      from: st('probing', { socketOpen: true, consecutiveFailures: 5 }),
      event: { type: 'stable' },
      to: 'connected',
      effects: ['exit_fallback'],
      failures: 0,
      fallback: false,
    },
    { from: st('probing', { socketOpen: false }), event: { type: 'stable' }, to: 'probing', effects: [] },
    {
      from: st('probing', { consecutiveFailures: 5 }),
      event: failed,
      to: 'polling_fallback',
      effects: ['close_socket', 'cancel_timers', 'schedule_probe'],
      failures: 6,
      fallback: true,
    },
    {
      from: st('probing', { socketOpen: true }),
      event: failed,
      to: 'polling_fallback',
      effects: ['close_socket', 'cancel_timers', 'schedule_probe'],
      fallback: true,
    },
    { from: st('probing'), event: { type: 'reconnect_now' }, to: 'probing', effects: [] },
    {
      from: st('probing'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers', 'exit_fallback'],
    },
  ],
  disabled: [
    {
      from: st('disabled'),
      event: { type: 'enable' },
      to: 'connecting',
      effects: ['exit_fallback', 'connect'],
      failures: 0,
      fallback: false,
    },
    { from: st('disabled'), event: { type: 'reconnect_now' }, to: 'disabled', effects: [] },
    { from: st('disabled'), event: { type: 'disable' }, to: 'disabled', effects: [] },
    { from: st('disabled'), event: { type: 'retry_timer' }, to: 'disabled', effects: [] },
    { from: st('disabled'), event: { type: 'probe_timer' }, to: 'disabled', effects: [] },
    { from: st('disabled'), event: { type: 'opened' }, to: 'disabled', effects: [] },
    {
      from: st('disabled'),
      event: { type: 'stop' },
      to: 'disconnected',
      effects: ['close_socket', 'cancel_timers', 'exit_fallback'],
    },
  ],
};

describe('ws state machine: transition table', () => {
  for (const name of WS_STATES) {
    describe(name, () => {
      const rows = TABLE[name];
      it('has rows', () => expect(rows.length).toBeGreaterThan(0));
      for (const row of rows) {
        const label = `${row.event.type}${row.event.type === 'start' ? `(${row.event.enabled})` : ''} -> ${row.to}`;
        it(label, () => {
          const { state, effects } = transition(row.from, row.event, policy);
          expect(state.name).toBe(row.to);
          expect(effects.map((e) => e.type)).toEqual(row.effects);
          if (row.failures !== undefined) expect(state.consecutiveFailures).toBe(row.failures);
          if (row.fallback !== undefined) expect(state.fallback).toBe(row.fallback);
        });
      }
    });
  }

  it('schedules reconnect attempt n-1 after the n-th consecutive failure', () => {
    let s = st('connecting');
    const attempts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = transition(s, failed, { maxFailures: 10 });
      for (const e of t.effects) if (e.type === 'schedule_reconnect') attempts.push(e.attempt);
      s = transition(t.state, { type: 'retry_timer' }, { maxFailures: 10 }).state;
    }
    expect(attempts).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('maxFailures 0 never falls back', () => {
    let s = st('connecting');
    for (let i = 0; i < 200; i++) {
      s = transition(s, failed, { maxFailures: 0 }).state;
      expect(s.name).toBe('backing_off');
      s = transition(s, { type: 'retry_timer' }, { maxFailures: 0 }).state;
    }
  });

  it('maxFailures 1 falls back at the first failure', () => {
    const t = transition(st('connecting'), failed, { maxFailures: 1 });
    expect(t.state.name).toBe('polling_fallback');
  });
});

describe('ws state machine: invariants over random event sequences', () => {
  const eventArb: fc.Arbitrary<MachineEvent> = fc.oneof(
    fc.boolean().map((enabled) => ({ type: 'start' as const, enabled })),
    fc.constant({ type: 'opened' as const }),
    fc.constant({ type: 'failed' as const, reason: 'r' }),
    fc.constant({ type: 'retry_timer' as const }),
    fc.constant({ type: 'probe_timer' as const }),
    fc.constant({ type: 'stable' as const }),
    fc.constant({ type: 'reconnect_now' as const }),
    fc.constant({ type: 'enable' as const }),
    fc.constant({ type: 'disable' as const }),
    fc.constant({ type: 'stop' as const }),
  );

  it('fallback flag, effects and state agree; enter/exit_fallback alternate', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 80 }), fc.integer({ min: 0, max: 5 }), (events, max) => {
        let s = INITIAL_MACHINE_STATE;
        let sinkFallback = false;
        for (const ev of events) {
          const { state, effects } = transition(s, ev, { maxFailures: max });
          for (const e of effects) {
            if (e.type === 'enter_fallback') {
              expect(sinkFallback).toBe(false);
              sinkFallback = true;
            }
            if (e.type === 'exit_fallback') {
              expect(sinkFallback).toBe(true);
              sinkFallback = false;
            }
            if (e.type === 'connect') expect(['connecting', 'probing']).toContain(state.name);
          }
          expect(state.fallback).toBe(sinkFallback);
          if (state.fallback) expect(['polling_fallback', 'probing', 'disabled']).toContain(state.name);
          else expect(['polling_fallback', 'probing']).not.toContain(state.name);
          if (state.name === 'connected') expect(state.socketOpen).toBe(true);
          expect(state.consecutiveFailures).toBeGreaterThanOrEqual(0);
          s = state;
        }
      }),
      { seed: 20261129, numRuns: 500 },
    );
  });
});

describe('redactUrl', () => {
  it('drops userinfo and token-like query parameters, keeps the rest', () => {
    expect(redactUrl('wss://user:secret@example.com/ws?token=abc&x=1&api_key=k')).toBe(
      'wss://example.com/ws?x=1',
    );
    expect(redactUrl('ws://127.0.0.1:9/ws')).toBe('ws://127.0.0.1:9/ws');
    expect(redactUrl('not a url')).toBe('(invalid url)');
  });
});
