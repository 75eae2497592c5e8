/** `skillsync sync` as a process: exit codes 0 / 1 / 2, the one-line summary, --json. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../simulator/index.js';
import { openStore } from '../src/store/open-store.js';

const TOKEN = 'cli-test-token-0123456789';
const ROOT = resolve(import.meta.dirname, '..');
let sim: SimulatorHandle;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator({ skills: 250, token: TOKEN });
  dir = mkdtempSync(join(tmpdir(), 'skillsync-cli-'));
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'sync', ...args], {
    cwd: ROOT,
    env: { ...process.env, ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((res) => child.once('exit', (code) => res({ code, out, err })));
}

describe('skillsync sync', () => {
  it('exit 0 and a one-line summary off a terminal; --json prints the run record', async () => {
    const env = {
      ATOM_SAAS_API_URL: sim.url,
      ATOM_SAAS_API_TOKEN: TOKEN,
      SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'a.db')}`,
    };
    const first = await run([], env);
    expect(first.code).toBe(0);
    expect(first.out.trim().split('\n')).toHaveLength(1);
    expect(first.out).toMatch(/^sync success, run 1, full, \d+ pages, 250 upserted/);
    expect(first.out).not.toContain(TOKEN);
    const second = await run(['--json', '--full'], env);
    expect(second.code).toBe(0);
    const record = JSON.parse(second.out) as { id: number; trigger: string; mode: string; unchanged: number };
    expect(record).toMatchObject({ id: 2, trigger: 'cli', mode: 'full', unchanged: 250 });
  }, 120_000);

  it('applies the runtime overrides persisted in the store; a flag of the command wins', async () => {
    const path = join(dir, 'overrides.db');
    const store = await openStore(`sqlite:${path}`);
    await store.setConfigOverrides({ pageSize: 10 });
    await store.close();
    const env = {
      ATOM_SAAS_API_URL: sim.url,
      ATOM_SAAS_API_TOKEN: TOKEN,
      ATOM_SAAS_PAGE_SIZE: '100',
      SKILLSYNC_DATABASE_URL: `sqlite:${path}`,
    };
    const overridden = await run(['--json', '--full'], env);
    expect(overridden.code).toBe(0);
    expect(JSON.parse(overridden.out)).toMatchObject({ pages: 25, upserted: 250 });
    const flagged = await run(['--json', '--full', '--page-size', '50'], env);
    expect(flagged.code).toBe(0);
    expect(JSON.parse(flagged.out)).toMatchObject({ pages: 5, unchanged: 250 });
  }, 120_000);

  it('exit 1 when the run fails (credentials refused), without leaking the token', async () => {
    const res = await run([], {
      ATOM_SAAS_API_URL: sim.url,
      ATOM_SAAS_API_TOKEN: 'wrong-secret-token-42',
      SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'b.db')}`,
    });
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/^sync failed/);
    expect(res.out).toMatch(/SKILLSYNC_ERR_REMOTE_AUTH/);
    expect(res.out + res.err).not.toContain('wrong-secret-token-42');
  }, 120_000);

  it('follows ATOM_SAAS_PATH_LAYOUT (a server on /skills/marketplace/skills)', async () => {
    const nested = await startSimulator({ skills: 40, token: TOKEN, layout: 'skills-marketplace' });
    try {
      const env = {
        ATOM_SAAS_API_URL: nested.url,
        ATOM_SAAS_API_TOKEN: TOKEN,
        SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'layout.db')}`,
      };
      const wrong = await run([], env);
      expect(wrong.code).toBe(1);
      const right = await run([], { ...env, ATOM_SAAS_PATH_LAYOUT: 'skills-marketplace' });
      expect(right.code).toBe(0);
      expect(right.out).toMatch(/40 upserted/);
    } finally {
      await nested.close();
    }
  }, 120_000);

  it('exit 2 on a bad configuration, naming the variable', async () => {
    const res = await run([], {
      ATOM_SAAS_PAGE_SIZE: '3',
      SKILLSYNC_DATABASE_URL: `sqlite:${join(dir, 'c.db')}`,
    });
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/ATOM_SAAS_PAGE_SIZE/);
    const db = await run([], { SKILLSYNC_DATABASE_URL: 'mysql://nope' });
    expect(db.code).toBe(2);
    expect(db.err).toMatch(/SKILLSYNC_DATABASE_URL/);
  }, 120_000);
});
