/**
 * Builds the validated, frozen Config from the options table. Precedence, highest first:
 * CLI flags, environment, the `.env` file, the table's defaults. Runtime overrides (the admin
 * API, persisted in the store) are applied on top with `applyOverrides`, through the same
 * parsers, so a value is judged the same way wherever it comes from.
 *
 * A bad value throws ConfigError naming the variable and what it accepts; the value itself is
 * only echoed for non-secret settings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError } from '../core/errors.js';
import {
  CONFIG_KEYS,
  describeAllowed,
  flagName,
  optionSpec,
  type Config,
  type ConfigKey,
  type OptionSpec,
} from './options.js';

export interface LoadConfigOptions {
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Parsed CLI flags keyed by Config key (commander's opts()); unknown keys are ignored. */
  flags?: Record<string, unknown>;
  /** Path of a dotenv file; defaults to `.env` in the working directory when it exists; null = none. */
  envFile?: string | null;
}

/** Where a setting's effective value came from (for `skillsync config`). */
export type ConfigSource = 'default' | 'env-file' | 'env' | 'flag' | 'runtime';

export interface LoadedConfig {
  config: Config;
  sources: Readonly<Record<ConfigKey, ConfigSource>>;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function label(key: ConfigKey, origin: 'flag' | 'env'): string {
  const spec = optionSpec(key);
  return origin === 'flag' ? `--${flagName(key)}` : spec.env;
}

function shown(spec: OptionSpec, raw: unknown): string {
  if (spec.secret) return '';
  let text = (typeof raw === 'string' ? raw : JSON.stringify(raw)) ?? '';
  // A URL's password never shows, even in a URL too broken to parse.
  if (spec.type === 'url') text = text.replace(/^([^:/?#]*:\/\/[^/?#@:]*):[^/?#@]*@/, '$1:***@');
  return ` (got ${JSON.stringify(text.slice(0, 80))})`;
}

/** Parses one setting from text (env, flag) or a JSON value (runtime override). */
export function parseOptionValue(key: ConfigKey, raw: unknown, name = optionSpec(key).env): unknown {
  const spec = optionSpec(key);
  const fail = (): never => {
    throw new ConfigError(name, `must be ${describeAllowed(spec)}${shown(spec, raw)}`);
  };
  switch (spec.type) {
    case 'int': {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)) n = Number(raw.trim());
      else return fail();
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) return fail();
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase();
        if (TRUE.has(v)) return true;
        if (FALSE.has(v)) return false;
      }
      return fail();
    }
    case 'enum': {
      if (typeof raw === 'string' && spec.values.includes(raw.trim())) return raw.trim();
      return fail();
    }
    case 'string':
    case 'url': {
      if (typeof raw !== 'string') return fail();
      const v = raw.trim();
      if (v === '') return spec.optional ? '' : fail();
      if (spec.maxLength !== undefined && v.length > spec.maxLength) return fail();
      if (spec.type === 'url') {
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return fail();
        }
        if (spec.schemes && !spec.schemes.includes(url.protocol)) return fail();
        // Credentials in a URL would end up in logs; the token has its own setting.
        if (url.password !== '' && !url.protocol.startsWith('postgres')) return fail();
      }
      spec.check?.(v, name);
      return v;
    }
  }
}

export function readEnvFile(path: string): Record<string, string> {
  const parsed = parseEnv(readFileSync(path, 'utf8'));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) if (v !== undefined) out[k] = v;
  return out;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const envFilePath = options.envFile === undefined ? (existsSync('.env') ? '.env' : null) : options.envFile;
  const fileEnv = envFilePath === null ? {} : readEnvFile(envFilePath);

  const values: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const key of CONFIG_KEYS) {
    const spec = optionSpec(key);
    const flag = flags[key];
    if (flag !== undefined && flag !== null) {
      values[key] = parseOptionValue(key, typeof flag === 'string' ? flag : String(flag), label(key, 'flag'));
      sources[key] = 'flag';
    } else if (env[spec.env] !== undefined) {
      values[key] = parseOptionValue(key, env[spec.env], spec.env);
      sources[key] = 'env';
    } else if (fileEnv[spec.env] !== undefined) {
      values[key] = parseOptionValue(key, fileEnv[spec.env], `${spec.env} (in ${envFilePath})`);
      sources[key] = 'env-file';
    } else {
      values[key] = spec.default;
      sources[key] = 'default';
    }
  }
  return { config: Object.freeze(values) as unknown as Config, sources: Object.freeze(sources) as never };
}

/**
 * Applies runtime overrides (a subset of keys, JSON values) to a Config and returns a new frozen
 * Config. Only keys marked `runtime` in the table are accepted.
 */
export function applyOverrides(config: Config, overrides: Record<string, unknown>): Config {
  const next: Record<string, unknown> = { ...config };
  for (const [key, value] of Object.entries(overrides)) {
    if (!(CONFIG_KEYS as string[]).includes(key) || optionSpec(key as ConfigKey).runtime !== true) {
      throw new ConfigError(key, 'cannot be changed at run time');
    }
    next[key] = parseOptionValue(key as ConfigKey, value, key);
  }
  return Object.freeze(next) as unknown as Config;
}

/** The config with secrets replaced, safe to print or return from the API. */
export function redactConfig(config: Config): Record<ConfigKey, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const spec = optionSpec(key);
    const v = config[key];
    out[key] = spec.secret ? (v === '' ? '(not set)' : '[redacted]') : spec.type === 'url' ? redactUrl(v) : v;
  }
  return out as Record<ConfigKey, unknown>;
}

/** Removes a password from a URL (a Postgres URL may carry one). */
export function redactUrl(value: unknown): unknown {
  if (typeof value !== 'string' || value === '') return value;
  try {
    const url = new URL(value);
    if (url.password === '') return value;
    url.password = 'redacted';
    return url.toString();
  } catch {
    return value;
  }
}
