import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigurationDoc, withReadmeTable } from '../src/config/docs.js';
import { applyOverrides, loadConfig, redactConfig } from '../src/config/load-config.js';
import { CONFIG_KEYS, optionSpec } from '../src/config/options.js';
import { ConfigError } from '../src/core/errors.js';

const load = (env: Record<string, string>, flags: Record<string, unknown> = {}) =>
  loadConfig({ env, flags, envFile: null }).config;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults match the original service', () => {
    const c = load({});
    expect(c.apiUrl).toBe('https://atomagentos.com/api/v1/marketplace');
    expect(c.syncIntervalMinutes).toBe(15);
    expect(c.ratingSyncIntervalMinutes).toBe(30);
    expect(c.conflictStrategy).toBe('remote_wins');
    expect(c.wsReconnectAttempts).toBe(10);
    expect(c.wsHeartbeatIntervalSeconds).toBe(30);
    expect(c.apiTimeoutSeconds).toBe(30);
    expect(c.pageSize).toBe(100);
    expect(c.cacheTtlHours).toBe(24);
    expect(c.requestBudgetPerMinute).toBe(100);
    expect(c.databaseUrl).toBe('sqlite:./data/skillsync.db');
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(8080);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    ['ATOM_SAAS_SYNC_INTERVAL_MINUTES', '4', '5 to 60'],
    ['ATOM_SAAS_SYNC_INTERVAL_MINUTES', '61', '5 to 60'],
    ['ATOM_SAAS_RATING_SYNC_INTERVAL_MINUTES', '9', '10 to 120'],
    ['ATOM_SAAS_RATING_SYNC_INTERVAL_MINUTES', '121', '10 to 120'],
    ['ATOM_SAAS_WS_RECONNECT_ATTEMPTS', '101', '0 to 100'],
    ['ATOM_SAAS_PAGE_SIZE', '1001', '5 to 1000'],
    ['ATOM_SAAS_PAGE_SIZE', '12.5', '5 to 1000'],
    ['ATOM_SAAS_CONFLICT_STRATEGY', 'newest', 'remote_wins, local_wins, merge, manual'],
    ['ATOM_SAAS_API_URL', 'ftp://x', 'http: https:'],
    ['ATOM_SAAS_WS_URL', 'http://x', 'ws: wss:'],
    ['SKILLSYNC_PORT', '65536', '0 to 65535'],
    ['SKILLSYNC_LOG_LEVEL', 'loud', 'one of fatal'],
    ['ATOM_SAAS_AUTO_SYNC', 'maybe', 'true or false'],
    ['ATOM_SAAS_PATH_SKILL', '/skills/one', 'must contain {skill_id}'],
    ['ATOM_SAAS_PATH_RATE', '/skills/rate', 'must contain {skill_id}'],
    ['ATOM_SAAS_PATH_HEALTH', 'health', 'must start with "/"'],
    ['ATOM_SAAS_PATH_SKILLS', '/skills?all=1', 'hold no query'],
    ['SKILLSYNC_DATABASE_URL', 'postgres://db.internal/skills?pool=0', 'pool "0" must be an integer'],
    ['SKILLSYNC_DATABASE_URL', 'postgres://db.internal/skills?schema=a-b', 'plain identifier'],
    ['SKILLSYNC_DATABASE_URL', 'sqlite:', 'no file path'],
  ])('%s=%s fails naming the variable and its range', (name, value, range) => {
    const err = configError(() => load({ [name]: value }));
    expect(err.code).toBe('SKILLSYNC_ERR_CONFIG_INVALID');
    expect(err.variable).toBe(name);
    expect(err.message).toContain(name);
    expect(err.message).toContain(range);
  });

  it('accepts the bounds of every integer range', () => {
    for (const key of CONFIG_KEYS) {
      const spec = optionSpec(key);
      if (spec.type !== 'int') continue;
      expect(load({ [spec.env]: String(spec.min) })[key]).toBe(spec.min);
      expect(load({ [spec.env]: String(spec.max) })[key]).toBe(spec.max);
    }
  });

  it('never echoes a secret in an error', () => {
    const err = configError(() => load({ SKILLSYNC_ADMIN_TOKEN: 'x'.repeat(5000) }));
    expect(err.message).not.toContain('xxxxxxxx');
    // Nor the password of a URL refused for another reason, parseable or not.
    for (const url of ['https://user:pa55word@host.example/api?v=1', 'https://user:pa55word@host:port/api']) {
      const bad = configError(() => load({ ATOM_SAAS_API_URL: url }));
      expect(bad.variable).toBe('ATOM_SAAS_API_URL');
      expect(bad.message).not.toContain('pa55word');
    }
  });

  it('precedence: flag > env > .env file > default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skillsync-config-'));
    const file = join(dir, '.env');
    writeFileSync(file, 'ATOM_SAAS_PAGE_SIZE=200\nATOM_SAAS_SYNC_INTERVAL_MINUTES=20\nSKILLSYNC_PORT=9000\n');
    const { config, sources } = loadConfig({
      env: { ATOM_SAAS_SYNC_INTERVAL_MINUTES: '30', SKILLSYNC_PORT: '9001' },
      flags: { port: '9002' },
      envFile: file,
    });
    expect(config.pageSize).toBe(200);
    expect(sources.pageSize).toBe('env-file');
    expect(config.syncIntervalMinutes).toBe(30);
    expect(sources.syncIntervalMinutes).toBe('env');
    expect(config.port).toBe(9002);
    expect(sources.port).toBe('flag');
    expect(sources.conflictStrategy).toBe('default');
  });

  it('accepts path overrides that fit their route, and empty ones (from the layout)', () => {
    const c = load({
      ATOM_SAAS_PATH_SKILL: '/v2/skill/{skill_id}',
      ATOM_SAAS_PATH_HEALTH: '/status',
      ATOM_SAAS_PATH_RATE: '',
    });
    expect(c.pathSkill).toBe('/v2/skill/{skill_id}');
    expect(c.pathHealth).toBe('/status');
    expect(c.pathRate).toBe('');
  });

  it('a bad flag names the flag', () => {
    const err = configError(() => load({}, { syncIntervalMinutes: '70' }));
    expect(err.variable).toBe('--sync-interval-minutes');
  });
});

describe('runtime overrides and redaction', () => {
  it('applyOverrides validates through the same table and only for runtime keys', () => {
    const base = load({});
    const next = applyOverrides(base, {
      syncIntervalMinutes: 5,
      conflictStrategy: 'merge',
      wsEnabled: false,
    });
    expect(next.syncIntervalMinutes).toBe(5);
    expect(next.conflictStrategy).toBe('merge');
    expect(next.wsEnabled).toBe(false);
    expect(base.syncIntervalMinutes).toBe(15);
    expect(() => applyOverrides(base, { syncIntervalMinutes: 61 })).toThrow(/5 to 60/);
    expect(() => applyOverrides(base, { adminToken: 'x' })).toThrow(ConfigError);
    expect(() => applyOverrides(base, { pageSize: '100' })).not.toThrow();
  });

  it('redactConfig hides secrets and URL passwords', () => {
    const c = load({
      ATOM_SAAS_API_TOKEN: 'api-secret-1',
      SKILLSYNC_ADMIN_TOKEN: 'admin-secret-2',
      SKILLSYNC_DATABASE_URL: 'postgres://u:pw-secret-3@db/x',
    });
    const text = JSON.stringify(redactConfig(c));
    expect(text).not.toMatch(/secret-\d/);
    expect(redactConfig(c).apiToken).toBe('[redacted]');
    expect(redactConfig(load({})).adminToken).toBe('(not set)');
  });
});

describe('docs/configuration.md', () => {
  it('is what the options table renders (run `npm run docs:config` after changing the table)', () => {
    const onDisk = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderConfigurationDoc());
  });

  it("the README's configuration table is the generated one", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toBe(withReadmeTable(readme));
    expect(readme.startsWith('# skillsync\n\n```sh\nnpm install && npm start\nnpm test\n```')).toBe(true);
  });

  it('lists every variable', () => {
    const doc = renderConfigurationDoc();
    for (const key of CONFIG_KEYS) expect(doc).toContain(`\`${optionSpec(key).env}\``);
  });
});
