/**
 * The ONE options table. Every setting skillsync reads is a row here: its environment variable,
 * CLI flag, type, default, allowed range or values, whether it is a secret, and its help text.
 * From this table come the validated Config (load-config.ts), the `--help` of `serve`, `demo`
 * and `config` (cli-options.ts), the redacted `skillsync config` output, and
 * docs/configuration.md (docs.ts, checked by a test). Adding a setting = adding a row.
 *
 * The `ATOM_SAAS_*` names are the original service's; the `SKILLSYNC_*` ones are the local side.
 */
import { ConfigError } from '../core/errors.js';
import { PATH_LAYOUTS, pathTemplateProblem, pathTemplateRule, type RouteName } from '../remote/paths.js';
import { parseDatabaseUrl } from '../store/open-store.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The marketplace path layouts. */
export const PATH_LAYOUT_VALUES = PATH_LAYOUTS;

export const CONFLICT_STRATEGY_VALUES = ['remote_wins', 'local_wins', 'merge', 'manual'] as const;

export interface Config {
  // remote marketplace
  readonly apiUrl: string;
  readonly apiToken: string;
  readonly instanceId: string;
  readonly apiTimeoutSeconds: number;
  readonly requestBudgetPerMinute: number;
  readonly pathLayout: (typeof PATH_LAYOUT_VALUES)[number];
  readonly pathSkills: string;
  readonly pathSkill: string;
  readonly pathCategories: string;
  readonly pathHealth: string;
  readonly pathRate: string;
  readonly pathInstall: string;
  // sync
  readonly syncIntervalMinutes: number;
  readonly autoSync: boolean;
  readonly syncOnStart: boolean;
  readonly pageSize: number;
  readonly conflictStrategy: (typeof CONFLICT_STRATEGY_VALUES)[number];
  readonly cacheTtlHours: number;
  readonly deleteGuardPercent: number;
  readonly deleteGuardMaxSkills: number;
  // websocket
  readonly wsUrl: string;
  readonly wsEnabled: boolean;
  readonly wsReconnectAttempts: number;
  readonly wsHeartbeatIntervalSeconds: number;
  readonly wsLegacyQueryToken: boolean;
  // outbox
  readonly ratingSyncIntervalMinutes: number;
  readonly outboxConcurrency: number;
  readonly outboxMaxAttempts: number;
  readonly outboxBackoffCapSeconds: number;
  // local service
  readonly databaseUrl: string;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string;
  readonly logLevel: LogLevel;
}

export type ConfigKey = keyof Config;
export type OptionGroup = 'remote' | 'sync' | 'websocket' | 'outbox' | 'service';

interface BaseSpec {
  readonly env: string;
  readonly group: OptionGroup;
  readonly help: string;
  /** Never printed, logged or returned by the API: shown as `[redacted]` (or `(not set)`). */
  readonly secret?: boolean;
  /** Can be changed while running through PUT /api/admin/sync/config (persisted in the store). */
  readonly runtime?: boolean;
}
export interface IntSpec extends BaseSpec {
  readonly type: 'int';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly unit?: string;
}
export interface BoolSpec extends BaseSpec {
  readonly type: 'boolean';
  readonly default: boolean;
}
export interface StringSpec extends BaseSpec {
  readonly type: 'string' | 'url';
  readonly default: string;
  /** For `url`: allowed schemes. Empty string is allowed when `optional`. */
  readonly schemes?: readonly string[];
  readonly optional?: boolean;
  readonly maxLength?: number;
  /**
   * What a value must be, in words, when the type alone does not say it (docs, --help, errors);
   * for a `url`, it follows the schemes ("a URL (http: https:) <allowed>").
   */
  readonly allowed?: string;
  /**
   * Checks a non-empty value beyond its type; throws a ConfigError naming `name` (the variable
   * or flag the value came from). Runs at start, so a bad value never reaches the service.
   */
  readonly check?: (value: string, name: string) => void;
}
export interface EnumSpec extends BaseSpec {
  readonly type: 'enum';
  readonly default: string;
  readonly values: readonly string[];
}
export type OptionSpec = IntSpec | BoolSpec | StringSpec | EnumSpec;

type SpecFor<V> = V extends number ? IntSpec : V extends boolean ? BoolSpec : StringSpec | EnumSpec;

/** The check of a marketplace path override (see resolvePaths, which applies the same rule). */
function checkPath(route: RouteName): (value: string, name: string) => void {
  return (value, name) => {
    const problem = pathTemplateProblem(route, value);
    if (problem !== null) throw new ConfigError(name, `${problem}; got "${value}"`);
  };
}

/**
 * The marketplace base URL: every path is appended to it and the token has its own setting, so
 * it carries no credentials, query or fragment (the marketplace client refuses them too).
 */
function checkApiUrl(value: string, name: string): void {
  const url = new URL(value);
  // The value itself is not echoed: a user name or a query may hold a secret.
  if (url.username !== '' || url.password !== '')
    throw new ConfigError(name, 'must not carry credentials (user@host); set ATOM_SAAS_API_TOKEN instead');
  if (url.search !== '')
    throw new ConfigError(name, 'must not have a query (?...); paths are appended to it');
  if (url.hash !== '') throw new ConfigError(name, 'must not have a fragment (#...)');
}

/** A WebSocket URL with a fragment can never connect (the ws library refuses it). */
function checkWsUrl(value: string, name: string): void {
  if (new URL(value).hash !== '') throw new ConfigError(name, 'must not have a fragment (#...)');
}

/** Light check of the listen address: a name or an IP literal, nothing that cannot resolve. */
function checkHost(value: string, name: string): void {
  if (!/^[A-Za-z0-9._:%-]+$/.test(value)) {
    throw new ConfigError(
      name,
      `must be a host name or IP address (letters, digits, . - _ : %); got ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
}

/** Keyed by Config key, so the compiler insists on one row per setting. Order = doc order. */
export const OPTIONS: { readonly [K in ConfigKey]: SpecFor<Config[K]> } = Object.freeze({
  apiUrl: {
    env: 'ATOM_SAAS_API_URL',
    group: 'remote',
    type: 'url',
    schemes: ['http:', 'https:'],
    default: 'https://atomagentos.com/api/v1/marketplace',
    allowed: 'without credentials, query or fragment',
    check: checkApiUrl,
    help: 'Base URL of the marketplace API; paths are relative to it.',
  },
  apiToken: {
    env: 'ATOM_SAAS_API_TOKEN',
    group: 'remote',
    type: 'string',
    optional: true,
    secret: true,
    default: '',
    maxLength: 4096,
    help: 'Marketplace API token, sent as Authorization: Bearer and X-API-Token. Never logged.',
  },
  instanceId: {
    env: 'ATOM_SAAS_INSTANCE_ID',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 200,
    help: 'X-Instance-ID sent to the marketplace; empty derives it from a hash of the token.',
  },
  apiTimeoutSeconds: {
    env: 'ATOM_SAAS_API_TIMEOUT_SECONDS',
    group: 'remote',
    type: 'int',
    default: 30,
    min: 1,
    max: 300,
    unit: 's',
    help: 'Timeout of each marketplace request (connect, headers and body).',
  },
  requestBudgetPerMinute: {
    env: 'ATOM_SAAS_REQUEST_BUDGET_PER_MINUTE',
    group: 'remote',
    type: 'int',
    default: 100,
    min: 0,
    max: 1_000_000,
    help: 'Requests per minute to the marketplace shared by every caller (0 = unlimited).',
  },
  pathLayout: {
    env: 'ATOM_SAAS_PATH_LAYOUT',
    group: 'remote',
    type: 'enum',
    values: PATH_LAYOUT_VALUES,
    default: 'skills',
    help: 'Path layout of the marketplace: /skills, /marketplace/skills or /skills/marketplace/skills.',
  },
  pathSkills: {
    env: 'ATOM_SAAS_PATH_SKILLS',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('skills'),
    check: checkPath('skills'),
    help: 'Override of the skills listing path (empty = from the layout).',
  },
  pathSkill: {
    env: 'ATOM_SAAS_PATH_SKILL',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('skill'),
    check: checkPath('skill'),
    help: 'Override of the single-skill path, with {skill_id} (empty = from the layout).',
  },
  pathCategories: {
    env: 'ATOM_SAAS_PATH_CATEGORIES',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('categories'),
    check: checkPath('categories'),
    help: 'Override of the categories path (empty = from the layout).',
  },
  pathHealth: {
    env: 'ATOM_SAAS_PATH_HEALTH',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('health'),
    check: checkPath('health'),
    help: 'Override of the health path (empty = from the layout).',
  },
  pathRate: {
    env: 'ATOM_SAAS_PATH_RATE',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('rate'),
    check: checkPath('rate'),
    help: 'Override of the rating upload path, with {skill_id} (empty = from the layout).',
  },
  pathInstall: {
    env: 'ATOM_SAAS_PATH_INSTALL',
    group: 'remote',
    type: 'string',
    optional: true,
    default: '',
    maxLength: 500,
    allowed: pathTemplateRule('install'),
    check: checkPath('install'),
    help: 'Override of the install upload path, with {skill_id} (empty = from the layout).',
  },
  syncIntervalMinutes: {
    env: 'ATOM_SAAS_SYNC_INTERVAL_MINUTES',
    group: 'sync',
    type: 'int',
    default: 15,
    min: 5,
    max: 60,
    unit: 'min',
    runtime: true,
    help: 'Interval of the scheduled skill sync.',
  },
  autoSync: {
    env: 'ATOM_SAAS_AUTO_SYNC',
    group: 'sync',
    type: 'boolean',
    default: true,
    runtime: true,
    help: 'Run the scheduled sync (false = only manual triggers).',
  },
  syncOnStart: {
    env: 'ATOM_SAAS_SYNC_ON_START',
    group: 'sync',
    type: 'boolean',
    default: true,
    help: 'Run a first sync when the service starts.',
  },
  pageSize: {
    env: 'ATOM_SAAS_PAGE_SIZE',
    group: 'sync',
    type: 'int',
    default: 100,
    min: 5,
    max: 1000,
    runtime: true,
    help: 'Skills asked per listing page (the server may cap it).',
  },
  conflictStrategy: {
    env: 'ATOM_SAAS_CONFLICT_STRATEGY',
    group: 'sync',
    type: 'enum',
    values: CONFLICT_STRATEGY_VALUES,
    default: 'remote_wins',
    runtime: true,
    help: 'How a remote update meets local overrides of the same skill.',
  },
  cacheTtlHours: {
    env: 'ATOM_SAAS_CACHE_TTL_HOURS',
    group: 'sync',
    type: 'int',
    default: 24,
    min: 1,
    max: 8760,
    unit: 'h',
    help: 'Time a cached record counts as fresh; stale records are still served.',
  },
  deleteGuardPercent: {
    env: 'ATOM_SAAS_DELETE_GUARD_PERCENT',
    group: 'sync',
    type: 'int',
    default: 25,
    min: 0,
    max: 100,
    help: 'A listing that would delete more than this share of the catalog is held for an operator.',
  },
  deleteGuardMaxSkills: {
    env: 'ATOM_SAAS_DELETE_GUARD_MAX_SKILLS',
    group: 'sync',
    type: 'int',
    default: 1000,
    min: 0,
    max: 10_000_000,
    help: 'A listing that would delete more than this many skills is held for an operator.',
  },
  wsUrl: {
    env: 'ATOM_SAAS_WS_URL',
    group: 'websocket',
    type: 'url',
    schemes: ['ws:', 'wss:'],
    optional: true,
    default: '',
    allowed: 'without a fragment',
    check: checkWsUrl,
    help: 'WebSocket URL for real-time updates (empty = no WebSocket, polling only).',
  },
  wsEnabled: {
    env: 'ATOM_SAAS_WS_ENABLED',
    group: 'websocket',
    type: 'boolean',
    default: true,
    runtime: true,
    help: 'Use the WebSocket when a URL is configured.',
  },
  wsReconnectAttempts: {
    env: 'ATOM_SAAS_WS_RECONNECT_ATTEMPTS',
    group: 'websocket',
    type: 'int',
    default: 10,
    min: 0,
    max: 100,
    help: 'Consecutive failed connects before falling back to polling (re-probed later; 0 = never fall back).',
  },
  wsHeartbeatIntervalSeconds: {
    env: 'ATOM_SAAS_WS_HEARTBEAT_INTERVAL',
    group: 'websocket',
    type: 'int',
    default: 30,
    min: 5,
    max: 600,
    unit: 's',
    help: 'Ping after this long without inbound traffic; no pong within 10 s terminates the socket.',
  },
  wsLegacyQueryToken: {
    env: 'ATOM_SAAS_WS_LEGACY_QUERY_TOKEN',
    group: 'websocket',
    type: 'boolean',
    default: false,
    help: 'Also put the token in the WebSocket URL query (?token=), for old servers. Off by default.',
  },
  ratingSyncIntervalMinutes: {
    env: 'ATOM_SAAS_RATING_SYNC_INTERVAL_MINUTES',
    group: 'outbox',
    type: 'int',
    default: 30,
    min: 10,
    max: 120,
    unit: 'min',
    help: 'Interval of the scheduled outbox upload (new actions also trigger it, debounced).',
  },
  outboxConcurrency: {
    env: 'ATOM_SAAS_OUTBOX_CONCURRENCY',
    group: 'outbox',
    type: 'int',
    default: 10,
    min: 1,
    max: 100,
    help: 'Outbox items uploaded at once (one per chain).',
  },
  outboxMaxAttempts: {
    env: 'ATOM_SAAS_OUTBOX_MAX_ATTEMPTS',
    group: 'outbox',
    type: 'int',
    default: 10,
    min: 1,
    max: 1000,
    help: 'Attempts before an outbox item is dead-lettered.',
  },
  outboxBackoffCapSeconds: {
    env: 'ATOM_SAAS_OUTBOX_BACKOFF_CAP_SECONDS',
    group: 'outbox',
    type: 'int',
    default: 3600,
    min: 1,
    max: 86_400,
    unit: 's',
    help: 'Upper bound of the per-item retry backoff.',
  },
  databaseUrl: {
    env: 'SKILLSYNC_DATABASE_URL',
    group: 'service',
    type: 'url',
    schemes: ['sqlite:', 'postgres:', 'postgresql:'],
    default: 'sqlite:./data/skillsync.db',
    // Its own parameters (?schema=, ?pool=) and the SQLite path are checked at start too.
    check: (value, name) => void parseDatabaseUrl(value, name),
    help: 'Local store: sqlite:<path> (embedded) or postgres://user@host/db.',
  },
  host: {
    env: 'SKILLSYNC_HOST',
    group: 'service',
    type: 'string',
    default: '127.0.0.1',
    maxLength: 255,
    allowed: 'a host name or IP address',
    check: checkHost,
    help: 'Address the HTTP server binds to.',
  },
  port: {
    env: 'SKILLSYNC_PORT',
    group: 'service',
    type: 'int',
    default: 8080,
    min: 0,
    max: 65535,
    help: 'Port of the HTTP server (0 = any free port).',
  },
  adminToken: {
    env: 'SKILLSYNC_ADMIN_TOKEN',
    group: 'service',
    type: 'string',
    optional: true,
    secret: true,
    default: '',
    maxLength: 4096,
    help: 'Bearer token of the admin API and dashboard actions; empty refuses every admin route.',
  },
  logLevel: {
    env: 'SKILLSYNC_LOG_LEVEL',
    group: 'service',
    type: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    help: 'Log level of the JSON logs (pino).',
  },
});

export const CONFIG_KEYS = Object.keys(OPTIONS) as ConfigKey[];

/** `syncIntervalMinutes` -> `sync-interval-minutes` (commander turns it back into the key). */
export function flagName(key: ConfigKey): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function optionSpec(key: ConfigKey): OptionSpec {
  return OPTIONS[key] as OptionSpec;
}

/** The keys PUT /api/admin/sync/config may change. */
export const RUNTIME_KEYS = CONFIG_KEYS.filter((k) => optionSpec(k).runtime === true);

/** Human description of what a setting accepts, used in errors, --help and the docs. */
export function describeAllowed(spec: OptionSpec): string {
  switch (spec.type) {
    case 'int':
      return `an integer from ${spec.min} to ${spec.max}${spec.unit ? ` (${spec.unit})` : ''}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'url':
      return (
        `a URL (${(spec.schemes ?? []).join(' ')})${spec.allowed !== undefined ? ` ${spec.allowed}` : ''}` +
        `${spec.optional ? `${spec.allowed !== undefined ? ',' : ''} or empty` : ''}`
      );
    case 'string':
      if (spec.allowed !== undefined) return `${spec.allowed}${spec.optional ? ' or empty' : ''}`;
      return spec.optional ? 'text or empty' : 'non-empty text';
  }
}
