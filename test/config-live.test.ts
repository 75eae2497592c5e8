import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveConfig } from '../src/config/live-config.js';
import { loadConfig } from '../src/config/load-config.js';
import type { Config } from '../src/config/options.js';
import { ConfigError } from '../src/core/errors.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LiveConfig (runtime overrides on a real SQLite store)', () => {
  it('validates, persists, notifies, survives a restart, and clears with null', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skillsync-live-'));
    dirs.push(dir);
    const path = join(dir, 'db.sqlite');
    const base = loadConfig({ env: {}, envFile: null }).config;

    const store = await openSqliteStore({ path });
    const live = new LiveConfig(base, store);
    await live.init();
    const seen: [Config, Config][] = [];
    live.onChange((next, previous) => {
      seen.push([next, previous]);
    });
    await live.update({ syncIntervalMinutes: 7, conflictStrategy: 'manual' });
    expect(live.current.syncIntervalMinutes).toBe(7);
    expect(seen).toHaveLength(1);
    expect(seen[0]![1].syncIntervalMinutes).toBe(15);
    await expect(live.update({ syncIntervalMinutes: 3 })).rejects.toThrow(ConfigError);
    await expect(live.update({ port: 1 })).rejects.toThrow(/cannot be changed at run time/);
    expect(live.current.syncIntervalMinutes).toBe(7);
    expect(seen).toHaveLength(1);
    await store.close();

    const reopened = await openSqliteStore({ path });
    const again = new LiveConfig(base, reopened);
    await again.init();
    expect(again.current.syncIntervalMinutes).toBe(7);
    expect(again.current.conflictStrategy).toBe('manual');
    await again.update({ syncIntervalMinutes: null });
    expect(again.current.syncIntervalMinutes).toBe(15);
    expect(again.overrides).toEqual({ conflictStrategy: 'manual' });
    // A persisted value the table no longer accepts is dropped at start, not fatal.
    await reopened.setConfigOverrides({ pageSize: 5000 });
    const third = new LiveConfig(base, reopened);
    await third.init();
    expect(third.current.pageSize).toBe(100);
    await reopened.close();
  });
});
