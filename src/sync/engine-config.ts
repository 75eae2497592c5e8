/**
 * From the validated Config (src/config) to the options of the marketplace client and the sync
 * engine, so the CLI and the service build them the same way.
 */
import type { Config } from '../config/options.js';
import type { MarketplaceClientOptions } from '../remote/marketplace-client.js';
import type { MarketplacePaths } from '../remote/paths.js';
import type { SyncEngineOptions } from './sync-engine.js';

/** The path layout and every per-route override that is set (empty means "from the layout"). */
export function pathsFromConfig(
  config: Config,
): Partial<MarketplacePaths> & { layout: Config['pathLayout'] } {
  const out: { -readonly [K in keyof MarketplacePaths]?: string } & { layout: Config['pathLayout'] } = {
    layout: config.pathLayout,
  };
  const overrides: [keyof MarketplacePaths, string][] = [
    ['skills', config.pathSkills],
    ['skill', config.pathSkill],
    ['categories', config.pathCategories],
    ['health', config.pathHealth],
    ['rate', config.pathRate],
    ['install', config.pathInstall],
  ];
  for (const [route, path] of overrides) if (path !== '') out[route] = path;
  return out;
}

export function clientOptionsFromConfig(config: Config): MarketplaceClientOptions {
  const timeoutMs = config.apiTimeoutSeconds * 1000;
  return {
    baseUrl: config.apiUrl,
    token: config.apiToken,
    instanceId: config.instanceId === '' ? undefined : config.instanceId,
    paths: pathsFromConfig(config),
    connectTimeoutMs: timeoutMs,
    headersTimeoutMs: timeoutMs,
    bodyTimeoutMs: timeoutMs,
    requestsPerMinute: config.requestBudgetPerMinute,
  };
}

export function engineOptionsFromConfig(config: Config): Partial<SyncEngineOptions> {
  return {
    pageSize: config.pageSize,
    ttlMs: config.cacheTtlHours * 3_600_000,
    // A full listing at least twice per TTL keeps unchanged skills fresh.
    fullListingMaxAgeMs: (config.cacheTtlHours * 3_600_000) / 2,
    strategy: config.conflictStrategy,
    deleteGuard: { maxFraction: config.deleteGuardPercent / 100, maxCount: config.deleteGuardMaxSkills },
    authRetryIntervalMs: config.syncIntervalMinutes * 60_000,
  };
}
