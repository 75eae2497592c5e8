/**
 * The service as people run it: `skillsync serve` as a child process (bad configuration,
 * graceful SIGTERM, a second signal exiting at once), and the WebSocket admin routes acting on
 * the live client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { startSimulator, type SimulatorHandle } from '../simulator/index.js';
import { createLogger } from '../src/api/logger.js';
import { loadConfig } from '../src/config/load-config.js';
import { createService } from '../src/service.js';
import { startTestService, type TestService } from './helpers/service-fixture.js';

const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  out: string[];
  err: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function serve(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const err: string[] = [];
  proc.stdout!.on('data', (b: Buffer) => out.push(...b.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (b: Buffer) => err.push(b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, out, err, exit };
}

async function waitForLine(child: Child, text: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const line = child.out.find((l) => l.includes(text));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    if (child.proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no "${text}" line; stdout: ${child.out.join('\n')} stderr: ${child.err.join('')}`);
}

describe('skillsync serve (child process)', () => {
  let sim: SimulatorHandle;
  let dir: string;
  const token = 'serve-test-api-token';

  beforeAll(async () => {
    sim = await startSimulator({ skills: 300, token });
    dir = mkdtempSync(join(tmpdir(), 'skillsync-serve-'));
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) => ({
    ATOM_SAAS_API_URL: sim.url,
    ATOM_SAAS_API_TOKEN: token,
    ATOM_SAAS_WS_URL: sim.wsUrl,
    ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
    SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
    SKILLSYNC_PORT: '0',
    SKILLSYNC_ADMIN_TOKEN: 'serve-test-admin',
    ...extra,
  });

  it('refuses a value out of range with exit code 2, naming the variable and its range', async () => {
    const child = serve(env({ ATOM_SAAS_SYNC_INTERVAL_MINUTES: '90' }));
    const { code } = await child.exit;
    expect(code).toBe(2);
    expect(child.err.join('')).toContain('ATOM_SAAS_SYNC_INTERVAL_MINUTES');
    expect(child.err.join('')).toContain('5 to 60');
    // A path override that cannot be a route fails the same way, before anything starts.
    const path = serve(env({ ATOM_SAAS_PATH_INSTALL: '/skills/install' }));
    expect((await path.exit).code).toBe(2);
    expect(path.err.join('')).toContain('ATOM_SAAS_PATH_INSTALL: must contain {skill_id}');
    expect(path.err.join('')).not.toContain('    at ');
  }, 60_000);

  it('refuses a marketplace URL with a query, a user name or a fragment, and a host with spaces (exit 2)', async () => {
    for (const [name, value] of [
      ['ATOM_SAAS_API_URL', `${sim.url}?v=1`],
      ['ATOM_SAAS_API_URL', sim.url.replace('http://', 'http://someone@')],
      ['ATOM_SAAS_API_URL', `${sim.url}#top`],
      ['ATOM_SAAS_WS_URL', `${sim.wsUrl}#top`],
      ['SKILLSYNC_HOST', 'no such host'],
    ] as const) {
      const child = serve(env({ [name]: value }));
      const { code } = await child.exit;
      const err = child.err.join('');
      expect(code, `${name}=${value}: ${err}`).toBe(2);
      expect(err).toMatch(new RegExp(`^skillsync serve: ${name}: must`));
      expect(err).not.toContain('    at ');
      expect(err).not.toContain('someone');
    }
  }, 60_000);

  it('a service that cannot start prints one line (code: message) and exits 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const child = serve(env({ SKILLSYNC_PORT: String(port) }));
      const { code } = await child.exit;
      const err = child.err.join('');
      expect(code, err).toBe(1);
      expect(err).toMatch(/^skillsync serve: EADDRINUSE: .*\n$/);
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).not.toContain('    at ');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    // A store that cannot be opened (its directory would be a file) fails the same way.
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const child = serve(env({ SKILLSYNC_DATABASE_URL: `sqlite:${join(file, 'x.db')}` }));
    const { code } = await child.exit;
    const err = child.err.join('');
    expect(code, err).toBe(1);
    expect(err).toMatch(/^skillsync serve: SKILLSYNC_ERR_STORE_UNAVAILABLE: .+\n$/);
    expect(err).not.toContain('    at ');
  }, 60_000);

  it('serves, syncs at start, and stops gracefully on SIGTERM', async () => {
    const child = serve(env());
    const listening = await waitForLine(child, 'skillsync listening');
    await waitForLine(child, 'sync run finished');
    const res = await fetch(`${String(listening['url'])}/api/marketplace/skills?page_size=1`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { total: number }).total).toBe(300);
    child.proc.kill('SIGTERM');
    const { code } = await child.exit;
    expect(code).toBe(0);
    expect(child.out.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(child.out.join('\n')).not.toContain(token);
  }, 60_000);

  it('a second signal exits at once while the graceful stop waits for an upload', async () => {
    // A rating upload that never gets an answer holds the graceful stop (the uploader gives
    // in-flight uploads a grace period), so the second signal surely lands while it stops.
    sim.control.setFaults({ rules: [{ fault: 'hang', route: 'rate' }] });
    try {
      const child = serve(env({ ATOM_SAAS_SYNC_ON_START: 'true' }));
      const listening = await waitForLine(child, 'skillsync listening');
      await waitForLine(child, 'sync run finished');
      const base = String(listening['url']);
      const list = (await (await fetch(`${base}/api/marketplace/skills?page_size=1`)).json()) as {
        items: { skill: { skill_id: string } }[];
      };
      const skillId = list.items[0]!.skill.skill_id;
      const rated = await fetch(`${base}/api/marketplace/skills/${encodeURIComponent(skillId)}/ratings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'u-signal', rating: 4 }),
      });
      expect(rated.status).toBe(202);
      const end = Date.now() + 20_000;
      for (;;) {
        const res = await fetch(`${base}/api/admin/outbox?status=in_flight`, {
          headers: { authorization: 'Bearer serve-test-admin' },
        });
        if (((await res.json()) as { total: number }).total > 0) break;
        if (Date.now() > end) throw new Error('the upload never went in flight');
        await new Promise((r) => setTimeout(r, 50));
      }
      child.proc.kill('SIGINT');
      await waitForLine(child, 'signal received');
      child.proc.kill('SIGINT');
      const { code } = await child.exit;
      expect(code).toBe(130);
      expect(child.out.some((l) => l.includes('second signal'))).toBe(true);
    } finally {
      sim.control.clearFaults();
    }
  }, 60_000);
});

describe('websocket admin routes act on the live client', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ websocket: true, start: true });
  });
  afterAll(async () => {
    await t.close();
  });

  async function status(): Promise<Record<string, unknown>> {
    const res = await t.service.app.inject({
      method: 'GET',
      url: '/api/admin/websocket/status',
      headers: t.auth,
    });
    return res.json();
  }
  async function until(check: () => Promise<boolean>): Promise<void> {
    const end = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('disable closes the socket (persisted), enable and reconnect connect again', async () => {
    await until(async () => (await status())['connected'] === true);
    const connectionsBefore = t.sim.control.counters().wsConnections;

    const disabled = await t.service.app.inject({
      method: 'POST',
      url: '/api/admin/websocket/disable',
      headers: t.auth,
    });
    expect(disabled.statusCode).toBe(200);
    expect(t.service.ws!.status().enabled).toBe(false);
    await until(async () => (await status())['connected'] === false);
    expect((await t.service.store.getWsState()).enabled).toBe(false);
    expect(t.service.config.current.wsEnabled).toBe(false);
    const refused = await t.service.app.inject({
      method: 'POST',
      url: '/api/admin/websocket/reconnect',
      headers: t.auth,
    });
    expect(refused.json()).toMatchObject({ statusCode: 409, code: 'SKILLSYNC_ERR_WS_DISABLED' });

    const enabled = await t.service.app.inject({
      method: 'POST',
      url: '/api/admin/websocket/enable',
      headers: t.auth,
    });
    expect(enabled.statusCode).toBe(200);
    await until(async () => (await status())['connected'] === true);
    expect(t.service.config.current.wsEnabled).toBe(true);

    const reconnect = await t.service.app.inject({
      method: 'POST',
      url: '/api/admin/websocket/reconnect',
      headers: t.auth,
    });
    expect(reconnect.statusCode).toBe(200);
    await until(async () => t.sim.control.counters().wsConnections >= connectionsBefore + 2);
    await until(async () => (await status())['connected'] === true);
  });

  it('PUT /sync/config websocket_enabled=false applies to the live client', async () => {
    const res = await t.service.app.inject({
      method: 'PUT',
      url: '/api/admin/sync/config',
      headers: t.auth,
      payload: { ws_enabled: false },
    });
    expect(res.statusCode).toBe(200);
    expect(t.service.ws!.status().enabled).toBe(false);
    await t.service.app.inject({
      method: 'PUT',
      url: '/api/admin/sync/config',
      headers: t.auth,
      payload: { ws_enabled: null },
    });
    expect(t.service.ws!.status().enabled).toBe(true);
  });
});

describe('ATOM_SAAS_WS_ENABLED at start wins over the persisted client state', () => {
  let sim: SimulatorHandle;
  let dir: string;
  const token = 'ws-enabled-test-token';
  beforeAll(async () => {
    sim = await startSimulator({ skills: 20, token });
    dir = mkdtempSync(join(tmpdir(), 'skillsync-ws-enabled-'));
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(
    wsEnabled: 'true' | 'false',
    check: (s: Awaited<ReturnType<typeof createService>>) => Promise<void>,
  ) {
    const { config } = loadConfig({
      envFile: null,
      env: {
        ATOM_SAAS_API_URL: sim.url,
        ATOM_SAAS_API_TOKEN: token,
        ATOM_SAAS_WS_URL: sim.wsUrl,
        ATOM_SAAS_WS_ENABLED: wsEnabled,
        ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
        ATOM_SAAS_SYNC_ON_START: 'false',
        SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'skillsync.db')}`,
        SKILLSYNC_PORT: '0',
      },
    });
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    const service = await createService({ config, logger: createLogger('silent', quiet) });
    try {
      await service.start();
      await check(service);
    } finally {
      await service.stop();
    }
  }

  it('false then true: the second start enables and connects the client', async () => {
    await run('false', async (s) => {
      expect(s.ws!.status().enabled).toBe(false);
      expect((await s.store.getWsState()).enabled).toBe(false);
    });
    await run('true', async (s) => {
      expect(s.ws!.status().enabled).toBe(true);
      expect((await s.store.getWsState()).enabled).toBe(true);
      const end = Date.now() + 10_000;
      while (!s.ws!.status().connected) {
        if (Date.now() > end) throw new Error('the client never connected');
        await new Promise((r) => setTimeout(r, 25));
      }
    });
    await run('false', async (s) => {
      expect(s.ws!.status().enabled).toBe(false);
      expect(s.ws!.status().connected).toBe(false);
    });
  });
});
