/**
 * A real skillsync service (SQLite in a temp dir, real marketplace client, engine, outbox and
 * WebSocket client) against a real simulator on port 0, with every log line captured so tests
 * can assert what was (never) logged. Used by the API, service and dashboard tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../../simulator/index.js';
import { createLogger } from '../../src/api/logger.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createService, type Service } from '../../src/service.js';

export interface TestService {
  service: Service;
  sim: SimulatorHandle;
  adminToken: string;
  apiToken: string;
  /** Every log line written so far (JSON text). */
  logs: string[];
  auth: { authorization: string };
  close(): Promise<void>;
}

export interface TestServiceOptions {
  simulator?: SimulatorOptions;
  env?: Record<string, string>;
  /** Use the WebSocket (default false: inject tests need no socket). */
  websocket?: boolean;
  /** Call service.start() (listen + background work). Default false. */
  start?: boolean;
  /** Run one full sync before returning. Default true. */
  sync?: boolean;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const apiToken = `api-${randomBytes(12).toString('hex')}`;
  const adminToken = `admin-${randomBytes(12).toString('hex')}`;
  const sim = await startSimulator({ skills: 200, seed: 11, token: apiToken, ...options.simulator });
  const dir = mkdtempSync(join(tmpdir(), 'skillsync-svc-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(line);
      done();
    },
  });
  const { config } = loadConfig({
    envFile: null,
    env: {
      ATOM_SAAS_API_URL: sim.url,
      ATOM_SAAS_API_TOKEN: apiToken,
      ATOM_SAAS_WS_URL: options.websocket ? sim.wsUrl : '',
      ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
      ATOM_SAAS_SYNC_ON_START: 'false',
      ATOM_SAAS_PAGE_SIZE: '100',
      SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'skillsync.db')}`,
      SKILLSYNC_PORT: '0',
      SKILLSYNC_ADMIN_TOKEN: adminToken,
      SKILLSYNC_LOG_LEVEL: 'debug',
      ...options.env,
    },
  });
  const service = await createService({ config, logger: createLogger(config.logLevel, sink) });
  if (options.sync !== false) {
    const result = await service.engine.syncAll({ trigger: 'cli', mode: 'full' });
    if (result.status !== 'success')
      throw new Error(`fixture sync ${result.status}: ${result.error?.message}`);
  }
  if (options.start) await service.start();
  return {
    service,
    sim,
    adminToken,
    apiToken,
    logs,
    auth: { authorization: `Bearer ${adminToken}` },
    async close() {
      await service.stop();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
