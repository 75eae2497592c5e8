/**
 * `skillsync demo` (what `npm start` runs): the marketplace simulator with a seeded catalog
 * and live changes, plus the service on SQLite under ./data, with a generated admin token.
 * Prints the dashboard URL (the token rides in the URL fragment, which browsers never send to
 * the server, so it never reaches a log), the API URL and the token.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { addConfigOptions } from '../../config/cli-options.js';
import { loadConfig } from '../../config/load-config.js';
import type { Service } from '../../service.js';
import { reportStartFailure } from './serve.js';

interface DemoFlags extends Record<string, unknown> {
  skills: string;
  changesPerSecond: string;
  envFile?: string;
}

export function register(program: Command): void {
  const command = program
    .command('demo')
    .description(
      'Run the simulator and the service together (SQLite under ./data) and print the dashboard URL.',
    )
    .option('--skills <n>', 'skills in the simulated catalog', '2000')
    .option('--changes-per-second <n>', 'live changes the simulator makes per second', '1');
  addConfigOptions(command);
  command.action(async (opts: DemoFlags) => {
    const skills = Number(opts.skills);
    const changes = Number(opts.changesPerSecond);
    if (!Number.isInteger(skills) || skills < 1 || skills > 1_000_000 || !(changes >= 0 && changes <= 1000)) {
      process.stderr.write('skillsync demo: --skills must be 1..1000000 and --changes-per-second 0..1000\n');
      process.exitCode = 2;
      return;
    }
    const apiToken = `demo-${randomBytes(16).toString('hex')}`;
    const adminToken = randomBytes(24).toString('base64url');
    // Loaded when the command runs: other commands (a `sync` run) do not carry the server's
    // and the simulator's modules in memory.
    const { startSimulator } = await import('../../../simulator/index.js');
    const { createService, installSignalHandlers } = await import('../../service.js');
    let sim: Awaited<ReturnType<typeof startSimulator>>;
    try {
      sim = await startSimulator({ skills, seed: 7, token: apiToken, changesPerSecond: changes });
    } catch (err) {
      reportStartFailure('demo', err);
      return;
    }

    let config;
    try {
      config = loadConfig({
        flags: opts,
        ...(typeof opts.envFile === 'string' ? { envFile: opts.envFile } : {}),
        env: {
          SKILLSYNC_DATABASE_URL: 'sqlite:./data/demo.db',
          SKILLSYNC_LOG_LEVEL: 'warn',
          ...process.env,
          // The demo always talks to its own simulator with its own credentials.
          ATOM_SAAS_API_URL: sim.url,
          ATOM_SAAS_WS_URL: sim.wsUrl,
          ATOM_SAAS_API_TOKEN: apiToken,
          ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE: '0',
          SKILLSYNC_ADMIN_TOKEN: adminToken,
        },
      }).config;
    } catch (err) {
      await sim.close();
      reportStartFailure('demo', err);
      return;
    }

    let service: Service | null = null;
    try {
      service = await createService({ config });
      try {
        await service.start();
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
        // The default port is taken (another demo?): take any free port instead.
        await service.stop();
        service = null;
        service = await createService({ config: Object.freeze({ ...config, port: 0 }) });
        await service.start();
      }
    } catch (err) {
      // One line, no stack (exit 1; 2 for a bad configuration value), after closing what started.
      await service?.stop().catch(() => undefined);
      await sim.close();
      reportStartFailure('demo', err);
      return;
    }
    const stopService = service.stop.bind(service);
    service.stop = async () => {
      await stopService();
      await sim.close();
    };
    installSignalHandlers(service);

    const url = service.url ?? '';
    process.stdout.write(
      [
        '',
        'skillsync demo is running',
        `  dashboard    ${url}/#token=${encodeURIComponent(adminToken)}`,
        `  catalog API  ${url}/api/marketplace/skills`,
        `  OpenAPI      ${url}/docs/json`,
        `  metrics      ${url}/metrics`,
        `  admin token  ${adminToken}`,
        `  simulator    ${sim.url} (${skills} skills, ${changes} change(s)/s, WebSocket ${sim.wsUrl})`,
        `  store        ${config.databaseUrl}`,
        '',
        `  try: curl -H "Authorization: Bearer ${adminToken}" ${url}/api/admin/sync/status`,
        '  Ctrl-C stops (twice: at once).',
        '',
      ].join('\n'),
    );
  });
}
