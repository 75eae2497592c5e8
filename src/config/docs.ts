/**
 * Renders docs/configuration.md from the options table. `npm run docs:config` writes it;
 * test/config-docs.test.ts fails when the committed file differs from what the table renders.
 */
import { CONFIG_KEYS, describeAllowed, flagName, optionSpec, type OptionGroup } from './options.js';

const GROUP_TITLES: Record<OptionGroup, string> = {
  remote: 'Remote marketplace',
  sync: 'Sync',
  websocket: 'WebSocket',
  outbox: 'Outbox (ratings and installs)',
  service: 'Local service',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function defaultText(value: unknown, secret: boolean): string {
  if (secret) return '(none)';
  if (value === '') return '(empty)';
  return `\`${String(value)}\``;
}

/** The settings as Markdown table rows (also used by the README's table). */
export function renderOptionsTable(): string {
  const lines = [
    '| variable | CLI flag | default | allowed | runtime | description |',
    '|---|---|---|---|---|---|',
  ];
  for (const key of CONFIG_KEYS) {
    const spec = optionSpec(key);
    lines.push(
      `| \`${spec.env}\` | \`--${flagName(key)}\` | ${defaultText(spec.default, spec.secret === true)} | ` +
        `${cell(describeAllowed(spec))} | ${spec.runtime ? 'yes' : ''} | ` +
        `${cell(spec.help)}${spec.secret ? ' **Secret.**' : ''} |`,
    );
  }
  return lines.join('\n');
}

export function renderConfigurationDoc(): string {
  const parts: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/options.ts by `npm run docs:config`. Do not edit by hand. -->',
    '',
    'Every setting can come from, highest precedence first: a CLI flag of `skillsync serve` /',
    '`demo` / `config` / `sync`, an environment variable, a `.env` file in the working directory',
    '(or the one named by `--env-file`), and the default below. A value outside its allowed range',
    'stops the command at start (exit code 2) with a message naming the variable and the range.',
    '`skillsync config` prints the effective values, secrets redacted.',
    '',
    'Settings marked *runtime* can also be changed while running with',
    '`PUT /api/admin/sync/config`; such changes are validated by the same rules, persisted in the',
    'store and applied live. They survive restarts and win over the environment (`skillsync sync`',
    'applies them too, except where a flag of its own is given); clear one by sending `null`.',
    '',
  ];
  for (const group of Object.keys(GROUP_TITLES) as OptionGroup[]) {
    parts.push(`## ${GROUP_TITLES[group]}`, '');
    parts.push(
      '| variable | CLI flag | default | allowed | runtime | description |',
      '|---|---|---|---|---|---|',
    );
    for (const key of CONFIG_KEYS) {
      const spec = optionSpec(key);
      if (spec.group !== group) continue;
      parts.push(
        `| \`${spec.env}\` | \`--${flagName(key)}\` | ${defaultText(spec.default, spec.secret === true)} | ` +
          `${cell(describeAllowed(spec))} | ${spec.runtime ? 'yes' : ''} | ` +
          `${cell(spec.help)}${spec.secret ? ' **Secret.**' : ''} |`,
      );
    }
    parts.push('');
  }
  return parts.join('\n');
}

export const README_START = '<!-- config:start -->';
export const README_END = '<!-- config:end -->';

/** The README with the options table between its markers replaced. */
export function withReadmeTable(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start)
    throw new Error(`README.md lacks the ${README_START} / ${README_END} markers`);
  return `${readme.slice(0, start + README_START.length)}\n${renderOptionsTable()}\n${readme.slice(end)}`;
}
