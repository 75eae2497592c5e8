/**
 * `skillsync config`: prints the effective configuration (flags > env > .env > defaults) with
 * secrets redacted, and where each value came from. Exit code 2 on a bad value.
 * `--docs` prints docs/configuration.md as generated from the options table.
 */
import type { Command } from 'commander';
import { addConfigOptions } from '../../config/cli-options.js';
import { renderConfigurationDoc } from '../../config/docs.js';
import { loadConfig, redactConfig } from '../../config/load-config.js';
import { CONFIG_KEYS, optionSpec } from '../../config/options.js';
import { ConfigError } from '../../core/errors.js';

export function register(program: Command): void {
  const command = program
    .command('config')
    .description('Print the effective configuration (secrets redacted) and where each value comes from.')
    .option('--json', 'print JSON')
    .option('--docs', 'print the configuration reference (Markdown) generated from the options table');
  addConfigOptions(command);
  command.action((opts: Record<string, unknown>) => {
    if (opts['docs'] === true) {
      process.stdout.write(renderConfigurationDoc());
      return;
    }
    try {
      const { config, sources } = loadConfig({
        flags: opts,
        ...(typeof opts['envFile'] === 'string' ? { envFile: opts['envFile'] } : {}),
      });
      const shown = redactConfig(config);
      if (opts['json'] === true) {
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      const width = Math.max(...CONFIG_KEYS.map((k) => optionSpec(k).env.length));
      for (const key of CONFIG_KEYS) {
        const value = shown[key];
        const text = value === '' ? '(empty)' : String(value);
        process.stdout.write(`${optionSpec(key).env.padEnd(width)}  ${text}  [${sources[key]}]\n`);
      }
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`skillsync config: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw err;
    }
  });
}
