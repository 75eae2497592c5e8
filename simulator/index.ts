/**
 * The marketplace simulator: a real HTTP + WebSocket server on loopback implementing
 * ../shared/CONTRACT.md (base and every extension, switchable), the layout and shape variants
 * real servers show, live changes, scripted seeded faults and a control API.
 *
 *   const sim = await startSimulator({ skills: 1000, seed: 7 });
 *   // sim.url -> ATOM_SAAS_API_URL, sim.wsUrl -> ATOM_SAAS_WS_URL
 *   sim.control.mutate(10); sim.control.digest(); await sim.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Skill } from '../src/remote/contract.js';
import type { CountersSnapshot } from './counters.js';
import { validateFaultSpec, type FaultEvent, type FaultRule, type FaultSpec } from './faults.js';
import { authorized, handleApi, RateLimiter, ReadAhead, type PipelineContext } from './http-api.js';
import { handleControl } from './control-api.js';
import {
  CONTROL_PREFIX,
  LAYOUTS,
  SIMULATOR_BASE_PATH,
  WS_PATH,
  type LayoutName,
  type LayoutPaths,
} from './layouts.js';
import type { MutationKind, MutationRecord } from './mutations.js';
import { checkBool, resolveOptions, type SimulatorOptions } from './options.js';
import { Simulator, type LiveSettings } from './simulator.js';
import { WsHub } from './ws-hub.js';

export type { SimulatorOptions, FeatureSwitches } from './options.js';
export { DEFAULT_SIMULATOR_OPTIONS } from './options.js';
export type { FaultRule, FaultSpec, FaultEvent, FaultName } from './faults.js';
export { FAULT_NAMES, HTTP_FAULTS, WS_FAULTS, validateFaultSpec, parseFaultArg } from './faults.js';
export { LAYOUTS, LAYOUT_NAMES, ROUTES, SIMULATOR_BASE_PATH, CONTROL_PREFIX, WS_PATH } from './layouts.js';
export type { LayoutName, LayoutPaths, RouteName } from './layouts.js';
export type { MutationKind, MutationRecord } from './mutations.js';
export { MUTATION_KINDS } from './mutations.js';
export type { CountersSnapshot } from './counters.js';
export type { LiveSettings } from './simulator.js';
import { skillIdOf } from './catalog.js';
export { skillIdOf };

export interface SimulatorStats {
  liveSkills: number;
  totalSkills: number;
  categories: number;
  epoch: string;
  seq: number;
  paused: boolean;
  emitEvents: boolean;
  wsConnections: number;
  generation: number;
}

export interface SimulatorControl {
  /** catalogDigest over the live catalog (skills and categories). */
  digest(): string;
  /** Applies n changes now; `kinds` restricts what is picked. */
  mutate(n?: number, kinds?: MutationKind[]): MutationRecord[];
  /** Updates one named live skill now (new content version and updated_at, skill_update event). */
  updateSkill(skillId: string): MutationRecord;
  /** Deletes one named live skill now (a tombstone, skill_delete event). */
  deleteSkill(skillId: string): MutationRecord;
  pauseChanges(): void;
  resumeChanges(): void;
  setFaults(spec: FaultSpec | FaultRule[]): void;
  clearFaults(): void;
  /** The active fault spec. */
  faults(): FaultSpec;
  /** Faults that fired, in order (bounded). */
  faultLog(): FaultEvent[];
  counters(): CountersSnapshot;
  /** Re-seeds the catalog (new epoch, `reset` event); returns the new epoch. */
  resetDataset(seed?: number): string;
  setEmitEvents(enabled: boolean): void;
  configure(settings: LiveSettings): void;
  /** Direct read of one skill (no auth, no faults); a deleted one comes with deleted_at. */
  getSkill(skillId: string): Skill | null;
  /** Ids of live skills in id order (small catalogs; tests). */
  liveSkillIds(): string[];
  stats(): SimulatorStats;
  epoch(): string;
  closeWebSockets(code?: number): void;
}

export interface SimulatorHandle {
  /** Marketplace base URL (ATOM_SAAS_API_URL), e.g. http://127.0.0.1:PORT/api/v1/marketplace. */
  readonly url: string;
  readonly wsUrl: string;
  readonly controlUrl: string;
  readonly port: number;
  /** Paths relative to `url` for this simulator's layout. */
  readonly paths: LayoutPaths;
  readonly layout: LayoutName;
  readonly control: SimulatorControl;
  close(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const resolved = resolveOptions(options);
  const faults = options.faults === undefined ? undefined : validateFaultSpec(options.faults);
  const sim = new Simulator(resolved, faults);
  const hub = new WsHub(
    {
      clock: resolved.clock,
      faults: () => sim.faults,
      resumeEnabled: () => sim.options.features.ws_seq,
      onConnection: () => sim.counters.wsConnections++,
    },
    resolved.wsBufferSize,
  );
  sim.hub = hub;

  const control: SimulatorControl = {
    digest: () => sim.catalog.digest(),
    mutate: (n, kinds) => sim.mutate(n, kinds),
    updateSkill: (id) => sim.changeSkill('update', id),
    deleteSkill: (id) => sim.changeSkill('delete', id),
    pauseChanges: () => sim.pause(),
    resumeChanges: () => sim.resume(),
    setFaults: (spec) => sim.setFaults(spec),
    clearFaults: () => sim.clearFaults(),
    faults: () => structuredClone(sim.faults.spec),
    faultLog: () => [...sim.faults.log],
    counters: () => sim.counters.snapshot(),
    resetDataset: (seed) => sim.resetDataset(seed),
    setEmitEvents: (enabled) => {
      sim.options.emitEvents = checkBool('emitEvents', enabled);
    },
    configure: (settings) => sim.configure(settings),
    getSkill: (id) => sim.readSkill(id),
    liveSkillIds: () => {
      const c = sim.catalog;
      const out: string[] = [];
      for (let i = 0; i < c.size; i++) if (c.isLive(i)) out.push(skillIdOf(i));
      return out;
    },
    stats: () => ({
      liveSkills: sim.catalog.liveCount,
      totalSkills: sim.catalog.size,
      categories: sim.catalog.categories().length,
      epoch: sim.epoch,
      seq: sim.lastSeq,
      paused: sim.paused,
      emitEvents: sim.options.emitEvents,
      wsConnections: hub.connectionCount,
      generation: sim.catalog.generation,
    }),
    epoch: () => sim.epoch,
    closeWebSockets: (code) => hub.closeAll(code),
  };

  const ctx: PipelineContext = { limiter: new RateLimiter(), hanging: new Set(), readAhead: new ReadAhead() };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://sim');
    const work = url.pathname.startsWith(CONTROL_PREFIX + '/')
      ? handleControl(control, req, res, url)
      : handleApi(sim, ctx, req, res, url);
    work.catch((e: unknown) => {
      if (!res.headersSent)
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: 'internal', message: e instanceof Error ? e.message : String(e) }));
      else res.destroy();
    });
  };
  const server = createServer({ keepAliveTimeout: 60_000 }, onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    if (path !== WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (!authorized(sim, req)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    hub.handleUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  sim.schedule();

  let closed: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}${SIMULATOR_BASE_PATH}`,
    wsUrl: `ws://${host}:${port}${WS_PATH}`,
    controlUrl: `http://${host}:${port}${CONTROL_PREFIX}`,
    port,
    paths: LAYOUTS[resolved.layout],
    layout: resolved.layout,
    control,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        sim.stop();
        hub.terminate();
        for (const res of ctx.hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
