/**
 * From the validated Config (src/config) to the options of the marketplace client and the sync
 * engine, so the CLI and the service build them the same way.
 */
import type { Config } from '../config/options.js';
import type { MarketplaceClientOptions } from '../remote/marketplace-client.js';
import type { SyncEngineOptions } from './sync-engine.js';

export function clientOptionsFromConfig(config: Config): MarketplaceClientOptions {
  const timeoutMs = config.apiTimeoutSeconds * 1000;
  const paths: Record<string, string> = {};
  if (config.pathSkills !== '') paths['skills'] = config.pathSkills;
  if (config.pathCategories !== '') paths['categories'] = config.pathCategories;
  if (config.pathHealth !== '') paths['health'] = config.pathHealth;
  return {
    baseUrl: config.apiUrl,
    token: config.apiToken,
    instanceId: config.instanceId === '' ? undefined : config.instanceId,
    paths,
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
