/**
 * The WebSocket side: one stream of events fanned out to every connection, a bounded ring
 * buffer for `resume` (ws_seq), and the per-connection and per-event faults (close every N ms,
 * half-open, flapping, duplicates, reordering, malformed/oversized/unknown frames, pings).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Clock, TimerHandle } from '../src/core/clock.js';
import type { FaultEngine } from './faults.js';

export interface WsHubDeps {
  clock: Clock;
  /** Current fault engine (it changes when faults are set). */
  faults: () => FaultEngine;
  /** Whether `resume` is honoured (ws_seq extension on). */
  resumeEnabled: () => boolean;
  onConnection: () => void;
}

interface Conn {
  id: number;
  ws: WebSocket;
  halfOpen: boolean;
  held: string | null;
  timers: TimerHandle[];
}

/** An event held back by ws_out_of_order goes out after the next event, or after this long. */
const HOLD_MAX_MS = 200;

/** A frame just over the contract's 1 MiB limit. */
const OVERSIZED_FRAME = `{"type":"skill_update","data":{"skill_id":"oversized","name":"x","blob":"${'x'.repeat(1024 * 1024 + 16)}"}}`;

export class WsHub {
  readonly #wss: WebSocketServer;
  readonly #deps: WsHubDeps;
  readonly #conns = new Set<Conn>();
  #nextConn = 0;
  // Ring buffer of [seq, frame].
  #ring: { seq: number; frame: string }[] = [];
  #ringStart = 0;
  readonly #ringSize: number;

  constructor(deps: WsHubDeps, ringSize: number) {
    this.#deps = deps;
    this.#ringSize = ringSize;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, autoPong: false });
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
  }

  #accept(ws: WebSocket): void {
    const conn: Conn = { id: this.#nextConn++, ws, halfOpen: false, held: null, timers: [] };
    this.#deps.onConnection();
    const engine = this.#deps.faults();
    const fired = engine.forConnection(conn.id);
    const flap = fired.find((f) => f.rule.fault === 'ws_flap');
    if (flap) {
      ws.close(flap.rule.code ?? 1011, 'flap');
      return;
    }
    this.#conns.add(conn);
    const clock = this.#deps.clock;
    for (const f of fired) {
      if (f.rule.fault === 'ws_half_open') {
        const go = (): void => {
          conn.halfOpen = true;
        };
        if ((f.rule.afterMs ?? 0) === 0) go();
        else conn.timers.push(clock.setTimeout(go, f.rule.afterMs ?? 0));
      } else if (f.rule.fault === 'ws_close_every') {
        const code = f.rule.code ?? 1001;
        conn.timers.push(
          clock.setTimeout(() => this.#close(conn, code, 'scheduled close'), f.rule.everyMs ?? 1000),
        );
      }
    }
    const pingEvery = engine.pingEveryMs();
    if (pingEvery !== undefined) {
      const ping = (): void => {
        if (!this.#conns.has(conn)) return;
        if (!conn.halfOpen)
          this.#send(conn, `{"type":"ping","timestamp":"${new Date(clock.now()).toISOString()}"}`);
        conn.timers.push(clock.setTimeout(ping, pingEvery));
      };
      conn.timers.push(clock.setTimeout(ping, pingEvery));
    }
    ws.on('ping', (data) => {
      if (!conn.halfOpen) ws.pong(data);
    });
    ws.on('message', (data, isBinary) => {
      if (conn.halfOpen || isBinary) return;
      this.#onClientMessage(conn, data.toString());
    });
    ws.on('close', () => this.#drop(conn));
    ws.on('error', () => this.#drop(conn));
  }

  #onClientMessage(conn: Conn, text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as Record<string, unknown>;
    if (m['type'] === 'ping') {
      this.#send(conn, `{"type":"pong","timestamp":"${new Date(this.#deps.clock.now()).toISOString()}"}`);
    } else if (m['type'] === 'resume' && this.#deps.resumeEnabled()) {
      const since = m['since_seq'];
      if (typeof since === 'number' && Number.isSafeInteger(since)) this.#replay(conn, since);
    }
  }

  /**
   * Replays buffered events after `since`. When the buffer no longer holds seq since+1 the
   * server sends nothing: the client sees the gap from the next event's seq and relists.
   */
  #replay(conn: Conn, since: number): void {
    const ring = this.#ring;
    if (ring.length === 0) return;
    const oldest = ring[this.#ringStart % ring.length] as { seq: number };
    if (since + 1 < oldest.seq) return;
    for (let k = 0; k < ring.length; k++) {
      const e = ring[(this.#ringStart + k) % ring.length] as { seq: number; frame: string };
      if (e.seq > since) this.#send(conn, e.frame);
    }
  }

  #remember(seq: number, frame: string): void {
    if (this.#ringSize === 0) return;
    if (this.#ring.length < this.#ringSize) this.#ring.push({ seq, frame });
    else {
      this.#ring[this.#ringStart] = { seq, frame };
      this.#ringStart = (this.#ringStart + 1) % this.#ringSize;
    }
  }

  /** Forgets buffered events (dataset reset). */
  clearBuffer(): void {
    this.#ring = [];
    this.#ringStart = 0;
  }

  /** Sends one event to every connection, through the event faults. */
  broadcast(seq: number, frame: string): void {
    this.#remember(seq, frame);
    if (this.#conns.size === 0) return;
    const engine = this.#deps.faults();
    for (const conn of this.#conns) {
      if (conn.halfOpen) continue;
      if (engine.empty) {
        this.#send(conn, frame);
        continue;
      }
      const fired = engine.forEvent(conn.id);
      let dup = false;
      let hold = false;
      for (const f of fired) {
        switch (f.rule.fault) {
          case 'ws_malformed':
            this.#send(conn, '{"type":"skill_update","data":{"skill_id":');
            break;
          case 'ws_unknown_type':
            this.#send(conn, `{"type":"mystery_event","data":{"n":${seq}}}`);
            break;
          case 'ws_oversized':
            this.#send(conn, OVERSIZED_FRAME);
            break;
          case 'ws_duplicate':
            dup = true;
            break;
          case 'ws_out_of_order':
            hold = true;
            break;
          default:
            break;
        }
      }
      if (hold && conn.held === null) {
        conn.held = frame;
        // Late, not lost: without a next event the held one still goes out shortly.
        conn.timers.push(
          this.#deps.clock.setTimeout(() => {
            if (conn.held !== frame) return;
            conn.held = null;
            if (!conn.halfOpen) this.#send(conn, frame);
          }, HOLD_MAX_MS),
        );
        continue;
      }
      this.#send(conn, frame);
      if (dup) this.#send(conn, frame);
      if (conn.held !== null) {
        const held = conn.held;
        conn.held = null;
        this.#send(conn, held);
      }
    }
  }

  #send(conn: Conn, frame: string): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(frame);
  }

  #close(conn: Conn, code: number, reason: string): void {
    this.#drop(conn);
    if (conn.ws.readyState === conn.ws.OPEN || conn.ws.readyState === conn.ws.CONNECTING)
      conn.ws.close(code, reason);
  }

  #drop(conn: Conn): void {
    if (!this.#conns.delete(conn)) return;
    for (const t of conn.timers) this.#deps.clock.clearTimeout(t);
    conn.timers = [];
  }

  /** Closes every open connection with this code (control API). */
  closeAll(code = 1001): void {
    for (const conn of [...this.#conns]) this.#close(conn, code, 'closed by control');
  }

  /** Drops every connection at once (no close handshake) and the server. */
  terminate(): void {
    for (const conn of [...this.#conns]) {
      this.#drop(conn);
      conn.ws.terminate();
    }
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}
