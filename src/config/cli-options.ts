/**
 * Turns the options table into commander options, so `--help` of `serve`, `demo` and `config`
 * lists every setting with its variable, default and range, and parsed flags come back keyed
 * by Config key (commander camel-cases `--sync-interval-minutes` to `syncIntervalMinutes`).
 */
import { Option, type Command } from 'commander';
import { CONFIG_KEYS, describeAllowed, flagName, optionSpec } from './options.js';

export function addConfigOptions(command: Command): Command {
  for (const key of CONFIG_KEYS) {
    const spec = optionSpec(key);
    const def = spec.secret
      ? '; prefer the environment: flags show in the process list'
      : spec.default === ''
        ? ''
        : `; default ${String(spec.default)}`;
    const option = new Option(
      `--${flagName(key)} <value>`,
      `${spec.help} [${spec.env}; ${describeAllowed(spec)}${def}]`,
    );
    command.addOption(option);
  }
  command.option('--env-file <path>', 'read settings from this dotenv file instead of ./.env');
  return command;
}
