/**
 * `skillsync simulate`: flag parsing and validation, and the real command as a child process
 * (prints its URLs, serves, stops cleanly on SIGTERM; exits 2 naming a bad setting).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseFeatures, simulatorOptionsFromFlags } from '../src/cli/commands/simulate.js';
import { startSimulator } from '../simulator/index.js';

const DEFAULT_FLAGS = {
  port: '0',
  host: '127.0.0.1',
  seed: '1',
  skills: '50',
  categories: '30',
  changesPerSecond: '0',
  features: 'all',
  layout: 'skills',
  pageSizeCap: '1000',
  rateLimit: '0',
  fault: [] as string[],
  events: true,
};

function runCli(args: string[]): {
  lines: AsyncIterator<string>;
  exit: Promise<number | null>;
  stderr: () => string;
  kill: () => void;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'simulate', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    lines: createInterface({ input: child.stdout })[Symbol.asyncIterator](),
    exit,
    stderr: () => err,
    kill: () => child.kill('SIGTERM'),
  };
}

describe('skillsync simulate', () => {
  it('parses --features', () => {
    expect(parseFeatures('all')).toEqual({
      cursor: true,
      updated_since: true,
      idempotency: true,
      ws_seq: true,
      epoch: true,
    });
    expect(parseFeatures('none')).toEqual({
      cursor: false,
      updated_since: false,
      idempotency: false,
      ws_seq: false,
      epoch: false,
    });
    expect(parseFeatures('cursor, ws_seq')).toMatchObject({ cursor: true, ws_seq: true, epoch: false });
    expect(() => parseFeatures('cursor,teleport')).toThrow(/unknown feature "teleport"/);
  });

  it('maps flags to simulator options, faults and the token from the environment', async () => {
    const options = simulatorOptionsFromFlags(
      {
        ...DEFAULT_FLAGS,
        layout: 'marketplace',
        idAlias: true,
        fault: ['error:status=500,rate=0.5', 'ws_ping:everyMs=1000'],
        faultSeed: '9',
        events: false,
      },
      { SKILLSYNC_SIM_TOKEN: 'tkn' },
    );
    expect(options).toMatchObject({
      layout: 'marketplace',
      idAlias: true,
      emitEvents: false,
      token: 'tkn',
      faults: {
        seed: 9,
        rules: [
          { fault: 'error', status: 500, rate: 0.5 },
          { fault: 'ws_ping', everyMs: 1000 },
        ],
      },
    });
    const sim = await startSimulator(options);
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/marketplace$/);
    await sim.close();
    expect(() => simulatorOptionsFromFlags({ ...DEFAULT_FLAGS, skills: 'many' }, {})).toThrow(
      /--skills: must be an integer/,
    );
    expect(() => simulatorOptionsFromFlags({ ...DEFAULT_FLAGS, fault: ['error:rate=7'] }, {})).toThrow(
      /rate: must be a number from 0 to 1/,
    );
    await expect(
      startSimulator(simulatorOptionsFromFlags({ ...DEFAULT_FLAGS, pageSizeCap: '0' }, {})),
    ).rejects.toThrow(/pageSizeCap: must be an integer from 1 to 1000/);
  });

  it('runs as a process: prints its URLs, serves, and stops on SIGTERM', async () => {
    const cli = runCli([
      '--port',
      '0',
      '--skills',
      '40',
      '--changes-per-second',
      '0',
      '--layout',
      'skills-marketplace',
    ]);
    const printed: string[] = [];
    for (;;) {
      const r = await cli.lines.next();
      if (r.done) throw new Error(`exited early: ${cli.stderr()}`);
      printed.push(r.value);
      if (r.value.includes('Ctrl-C')) break;
    }
    const api = /ATOM_SAAS_API_URL\):\s+(\S+)/.exec(printed.join('\n'))?.[1] as string;
    expect(printed.join('\n')).toMatch(/ws:\/\/127\.0\.0\.1:\d+\/ws/);
    expect(printed.join('\n')).toMatch(/_control/);
    const r = await request(`${api}/skills/marketplace/health`);
    expect(((await r.body.json()) as { status: string }).status).toBe('ok');
    cli.kill();
    expect(await cli.exit).toBe(0);
  });

  it('exits 2 with a clear message on a bad setting', async () => {
    const cli = runCli(['--port', '0', '--fault', 'earthquake']);
    expect(await cli.exit).toBe(2);
    expect(cli.stderr()).toMatch(/unknown fault "earthquake"; known: error, rate_limit/);
    const bad = runCli(['--port', '0', '--layout', 'sideways']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/layout: must be one of skills, marketplace, skills-marketplace/);
  });
});
