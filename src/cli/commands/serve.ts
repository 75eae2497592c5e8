/**
 * `skillsync serve`: the service — background sync, WebSocket, outbox uploads, and the HTTP
 * API + dashboard — until SIGTERM/SIGINT (graceful; a second signal exits at once).
 * Exit code 2 on a bad configuration value (the message names the variable and its range).
 */
import type { Command } from 'commander';
import { addConfigOptions } from '../../config/cli-options.js';
import { loadConfig } from '../../config/load-config.js';
import { ConfigError } from '../../core/errors.js';

export function register(program: Command): void {
  const command = program
    .command('serve')
    .description('Run the service: background sync, real-time updates, outbox, HTTP API and dashboard.');
  addConfigOptions(command);
  command.action(async (opts: Record<string, unknown>) => {
    let config;
    try {
      config = loadConfig({
        flags: opts,
        ...(typeof opts['envFile'] === 'string' ? { envFile: opts['envFile'] } : {}),
      }).config;
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`skillsync serve: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw err;
    }
    // Loaded when the command runs: other commands do not carry the server's modules.
    const { createService, installSignalHandlers } = await import('../../service.js');
    const service = await createService({ config });
    installSignalHandlers(service);
    await service.start();
    if (config.adminToken === '') {
      service.logger.warn(
        'SKILLSYNC_ADMIN_TOKEN is not set: the admin API and dashboard actions are refused',
      );
    }
  });
}
