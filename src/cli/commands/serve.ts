/**
 * `skillsync serve`: the service — background sync, WebSocket, outbox uploads, and the HTTP
 * API + dashboard — until SIGTERM/SIGINT (graceful; a second signal exits at once).
 * Exit code 2 on a bad configuration value (the message names the variable and its range);
 * exit code 1 when the service cannot start (store unreachable, address in use or not
 * resolvable, ...), with one line `skillsync serve: <code>: <message>` and no stack trace.
 */
import type { Command } from 'commander';
import { addConfigOptions } from '../../config/cli-options.js';
import { loadConfig } from '../../config/load-config.js';
import { ConfigError } from '../../core/errors.js';
import type { Service } from '../../service.js';

/** `<code>: <message>` on one line: the error's own code (SKILLSYNC_ERR_*, ENOTFOUND, ...) or name. */
export function describeStartFailure(err: unknown): string {
  if (!(err instanceof Error)) return `Error: ${String(err)}`;
  const code = (err as { code?: unknown }).code;
  const label = typeof code === 'string' && code !== '' ? code : err.name;
  let message = err.message;
  // A connect to every address of a name failing gives an AggregateError with no message.
  if (message === '' && err instanceof AggregateError)
    message = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  return `${label}: ${message.replace(/\s+/g, ' ').trim() || 'failed'}`;
}

/** Reports a start-up failure on stderr and sets the exit code: 2 for a ConfigError, else 1. */
export function reportStartFailure(command: string, err: unknown): void {
  if (err instanceof ConfigError) {
    process.stderr.write(`skillsync ${command}: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`skillsync ${command}: ${describeStartFailure(err)}\n`);
  process.exitCode = 1;
}

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
      reportStartFailure('serve', err);
      return;
    }
    // Loaded when the command runs: other commands do not carry the server's modules.
    const { createService, installSignalHandlers } = await import('../../service.js');
    let service: Service | null = null;
    let removeHandlers: (() => void) | null = null;
    try {
      service = await createService({ config });
      removeHandlers = installSignalHandlers(service);
      await service.start();
    } catch (err) {
      removeHandlers?.();
      // Close what did start (store, timers) so the process can exit on its own.
      await service?.stop().catch(() => undefined);
      reportStartFailure('serve', err);
      return;
    }
    if (config.adminToken === '') {
      service.logger.warn(
        'SKILLSYNC_ADMIN_TOKEN is not set: the admin API and dashboard actions are refused',
      );
    }
  });
}
