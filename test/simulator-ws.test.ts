/**
 * The simulator's WebSocket stream over real sockets: an event per change kind, `seq` and
 * `resume` (ws_seq), the ring buffer's limit, "change without emitting", `reset`, auth on the
 * upgrade, and every WebSocket fault, with timers on a FakeClock.
 */
import { request } from 'undici';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { readWsMessage, type WsMessage } from '../src/remote/contract.js';
import {
  startSimulator,
  type FaultRule,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../simulator/index.js';
import { FakeClock } from './helpers/fake-clock.js';

const handles: SimulatorHandle[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function start(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const h = await startSimulator({ skills: 100, ...options });
  handles.push(h);
  return h;
}

class Client {
  readonly ws: WebSocket;
  readonly frames: string[] = [];
  closeCode: number | null = null;
  #wake: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => {
      this.frames.push(d.toString());
      this.#notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.#notify();
    });
    ws.on('pong', () => {
      this.frames.push('<protocol pong>');
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const c = new Client(ws);
      clients.push(c);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((r) => this.#wake.push(r));
  }

  async count(n: number): Promise<string[]> {
    await this.until(() => this.frames.length >= n || this.closeCode !== null);
    return this.frames.slice(0, n);
  }

  /** Ping/pong round trip: everything the server sent before the pong has arrived. */
  async barrier(): Promise<void> {
    const before = this.frames.filter((f) => f.includes('"pong"')).length;
    this.ws.send(JSON.stringify({ type: 'ping' }));
    await this.until(() => this.frames.filter((f) => f.includes('"pong"')).length > before);
  }

  events(): WsMessage[] {
    return this.frames
      .filter((f) => !f.includes('"pong"') && !f.startsWith('<'))
      .map((f) => {
        const r = readWsMessage(f);
        if (!r.ok) throw new Error(`bad frame ${f.slice(0, 80)}: ${r.error.message}`);
        return r.value;
      });
  }
}

const post = async (url: string, body: unknown, key?: string) => {
  const r = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
};

describe('simulator WebSocket events', () => {
  it('emits one event per change kind with seq +1 over the stream', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    const kinds = ['update', 'create', 'delete', 'rating'] as const;
    const recs = kinds.map((k) => s.control.mutate(1, [k])[0]);
    const cat1 = s.control.mutate(1, ['category'])[0];
    await c.count(5);
    const ev = c.events();
    expect(ev.map((e) => e.type)).toEqual([
      'skill_update',
      'skill_update',
      'skill_delete',
      'rating_update',
      'category_update',
    ]);
    expect(ev.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const [upd, , del, rat] = ev;
    if (upd?.type !== 'skill_update' || del?.type !== 'skill_delete' || rat?.type !== 'rating_update')
      throw new Error('types');
    expect(upd.data.skill_id).toBe(recs[0]?.skillId);
    expect(upd.data).toEqual(s.control.getSkill(recs[0]?.skillId as string));
    expect(del.data.skill_id).toBe(recs[2]?.skillId);
    const rated = s.control.getSkill(recs[3]?.skillId as string);
    expect(rat.data).toMatchObject({ skill_id: recs[3]?.skillId, rating_count: rated?.rating_count });
    expect(rat.data.rating).toBeGreaterThanOrEqual(1);
    // The rating_update timestamp is the skill's new updated_at (a version guard for clients).
    expect(rat.timestamp).toBe(rated?.updated_at);
    expect(ev[4]?.type === 'category_update' && ev[4].data.name).toBe(cat1?.category);
    // Category deletes appear once an extra category exists to delete.
    for (let k = 0; k < 40 && !c.frames.some((f) => f.includes('category_delete')); k++) {
      s.control.mutate(1, ['category']);
      await c.barrier();
    }
    expect(c.events().some((e) => e.type === 'category_delete')).toBe(true);
  });

  it('emits rating_update and skill_update for client ratings and installs', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    const r = await post(`${s.url}/skills/skill-00000004/rate`, { user_id: 'u', rating: 5 });
    await post(`${s.url}/skills/skill-00000004/install`, { agent_id: 'a', instance_id: 'i' });
    await c.count(2);
    const [rating, install] = c.events();
    expect(rating).toMatchObject({
      type: 'rating_update',
      data: { skill_id: 'skill-00000004', rating: 5, rating_count: r.json['rating_count'] },
    });
    expect(rating?.timestamp).toBe(r.json['created_at']);
    expect(install?.type === 'skill_update' && install.data.install_count).toBe(
      s.control.getSkill('skill-00000004')?.install_count,
    );
  });

  it('resume replays buffered events after since_seq', async () => {
    const s = await start();
    s.control.mutate(5, ['update']);
    const c = await Client.open(s.wsUrl);
    c.ws.send(JSON.stringify({ type: 'resume', since_seq: 2 }));
    await c.count(3);
    expect(c.events().map((e) => e.seq)).toEqual([3, 4, 5]);
  });

  it('resume from before the ring buffer sends nothing; the next event shows the gap', async () => {
    const s = await start({ wsBufferSize: 3 });
    s.control.mutate(10, ['update']);
    const c = await Client.open(s.wsUrl);
    c.ws.send(JSON.stringify({ type: 'resume', since_seq: 1 }));
    await c.barrier();
    expect(c.events()).toEqual([]);
    s.control.mutate(1, ['update']);
    await c.count(2);
    expect(c.events().map((e) => e.seq)).toEqual([11]);
    // Within the buffer it still replays.
    c.ws.send(JSON.stringify({ type: 'resume', since_seq: 9 }));
    await c.count(4);
    expect(c.events().map((e) => e.seq)).toEqual([11, 10, 11]);
  });

  it('ws_seq off: no seq and resume is ignored', async () => {
    const s = await start({ features: { ws_seq: false } });
    s.control.mutate(2, ['update']);
    const c = await Client.open(s.wsUrl);
    c.ws.send(JSON.stringify({ type: 'resume', since_seq: 0 }));
    await c.barrier();
    expect(c.events()).toEqual([]);
    s.control.mutate(1, ['update']);
    await c.count(2);
    expect(c.events()[0]?.seq).toBeUndefined();
  });

  it('emitEvents false changes the catalog without emitting', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    s.control.setEmitEvents(false);
    const d0 = s.control.digest();
    s.control.mutate(5);
    expect(s.control.digest()).not.toBe(d0);
    await c.barrier();
    expect(c.events()).toEqual([]);
    s.control.setEmitEvents(true);
    s.control.mutate(1, ['update']);
    await c.count(2);
    expect(c.events().map((e) => e.seq)).toEqual([1]);
  });

  it('emits reset with the new epoch (epoch extension), nothing when it is off', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    const epoch = s.control.resetDataset();
    await c.count(1);
    expect(c.events()[0]).toMatchObject({ type: 'reset', data: { epoch } });
    s.control.configure({ features: { epoch: false } });
    s.control.resetDataset();
    await c.barrier();
    expect(c.events()).toHaveLength(1);
  });

  it('mutates live at changesPerSecond on the injected clock, and stops when paused', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, changesPerSecond: 10 });
    const c = await Client.open(s.wsUrl);
    clock.advance(1000);
    await c.count(10);
    expect(c.events()).toHaveLength(10);
    s.control.pauseChanges();
    clock.advance(5000);
    await c.barrier();
    expect(c.events()).toHaveLength(10);
    s.control.resumeChanges();
    clock.advance(500);
    await c.count(15);
    expect(c.events()).toHaveLength(15);
  });

  it('refuses the upgrade without the token', async () => {
    const s = await start({ token: 'tok-1' });
    await expect(Client.open(s.wsUrl)).rejects.toThrow(/401/);
    const c = await Client.open(s.wsUrl, { authorization: 'Bearer tok-1' });
    await c.barrier();
    await expect(
      Client.open(s.wsUrl.replace('/ws', '/other'), { authorization: 'Bearer tok-1' }),
    ).rejects.toThrow(/404/);
  });
});

describe('simulator WebSocket faults', () => {
  it('ws_close_every closes each connection after N ms with the given code', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, faults: [{ fault: 'ws_close_every', everyMs: 2000, code: 1011 }] });
    const c = await Client.open(s.wsUrl);
    await c.barrier();
    clock.advance(1999);
    await c.barrier();
    expect(c.closeCode).toBeNull();
    clock.advance(1);
    await c.until(() => c.closeCode !== null);
    expect(c.closeCode).toBe(1011);
    for (const code of [1000, 1001]) {
      s.control.setFaults([{ fault: 'ws_close_every', everyMs: 10, code }]);
      const d = await Client.open(s.wsUrl);
      await d.barrier();
      clock.advance(10);
      await d.until(() => d.closeCode !== null);
      expect(d.closeCode).toBe(code);
    }
  });

  it('ws_half_open: stops sending and stops answering pings without closing', async () => {
    const s = await start({ faults: [{ fault: 'ws_half_open', times: 1 }] });
    const dead = await Client.open(s.wsUrl);
    const live = await Client.open(s.wsUrl);
    dead.ws.send(JSON.stringify({ type: 'ping' }));
    dead.ws.ping();
    live.ws.ping();
    s.control.mutate(2, ['update']);
    await live.count(3);
    await live.barrier();
    expect(live.events()).toHaveLength(2);
    expect(live.frames).toContain('<protocol pong>');
    expect(dead.frames).toEqual([]);
    expect(dead.closeCode).toBeNull();
    expect(dead.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('ws_flap: accepts then closes at once', async () => {
    const s = await start({ faults: [{ fault: 'ws_flap', times: 2 }] });
    for (let k = 0; k < 2; k++) {
      const c = await Client.open(s.wsUrl);
      await c.until(() => c.closeCode !== null);
      expect(c.closeCode).toBe(1011);
    }
    const ok = await Client.open(s.wsUrl);
    await ok.barrier();
    expect(ok.closeCode).toBeNull();
    expect(s.control.counters().wsConnections).toBe(3);
  });

  it('ws_duplicate and ws_out_of_order', async () => {
    const s = await start({ faults: [{ fault: 'ws_duplicate', times: 1 }] });
    const c = await Client.open(s.wsUrl);
    s.control.mutate(2, ['update']);
    await c.count(3);
    expect(c.events().map((e) => e.seq)).toEqual([1, 1, 2]);
    s.control.setFaults([{ fault: 'ws_out_of_order' }]);
    s.control.mutate(4, ['update']);
    await c.count(7);
    expect(c.events().map((e) => e.seq)).toEqual([1, 1, 2, 4, 3, 6, 5]);
  });

  it('ws_out_of_order: a held event still goes out when no other event follows', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, faults: [{ fault: 'ws_out_of_order', times: 1 }] });
    const c = await Client.open(s.wsUrl);
    s.control.mutate(1, ['update']);
    await c.barrier();
    expect(c.events()).toEqual([]);
    clock.advance(200);
    await c.count(2);
    expect(c.events().map((e) => e.seq)).toEqual([1]);
  });

  it('ws_malformed, ws_oversized and ws_unknown_type frames come before the event', async () => {
    const s = await start({ faults: [{ fault: 'ws_malformed', times: 1 }] });
    const c = await Client.open(s.wsUrl);
    s.control.mutate(1, ['update']);
    await c.count(2);
    expect(readWsMessage(c.frames[0] as string).ok).toBe(false);
    expect(readWsMessage(c.frames[1] as string).ok).toBe(true);
    s.control.setFaults([{ fault: 'ws_oversized', times: 1 }]);
    s.control.mutate(1, ['update']);
    await c.count(4);
    expect(Buffer.byteLength(c.frames[2] as string)).toBeGreaterThan(1024 * 1024);
    const big = readWsMessage(c.frames[2] as string);
    expect(!big.ok && big.error.message).toMatch(/exceeds/);
    s.control.setFaults([{ fault: 'ws_unknown_type', times: 1 }]);
    s.control.mutate(1, ['update']);
    await c.count(6);
    const unknown = readWsMessage(c.frames[4] as string);
    expect(unknown.ok && unknown.value.type).toBe('unknown');
  });

  it('ws_ping: server pings every N ms on the clock', async () => {
    const clock = new FakeClock();
    const s = await start({ clock, faults: [{ fault: 'ws_ping', everyMs: 500 }] });
    const c = await Client.open(s.wsUrl);
    await c.barrier();
    clock.advance(1000);
    await c.until(() => c.frames.filter((f) => f.includes('"type":"ping"')).length >= 2);
    expect(readWsMessage(c.frames.find((f) => f.includes('"ping"')) as string).ok).toBe(true);
  });

  it('the same seed gives the same event fault sequence', async () => {
    const rules: FaultRule[] = [
      { fault: 'ws_duplicate', rate: 0.3 },
      { fault: 'ws_unknown_type', rate: 0.3 },
    ];
    const run = async (seed: number): Promise<string[]> => {
      const s = await start({ seed, faults: rules });
      const c = await Client.open(s.wsUrl);
      s.control.mutate(30, ['update']);
      await c.count(30);
      await c.barrier();
      return c.frames.map((f) =>
        f.includes('mystery') ? 'U' : f.includes('pong') ? 'P' : (/"seq":(\d+)/.exec(f)?.[1] ?? '?'),
      );
    };
    const a = await run(12);
    expect(await run(12)).toEqual(a);
    expect(await run(13)).not.toEqual(a);
    expect(a.filter((x) => x === 'U').length).toBeGreaterThan(2);
  });
});
