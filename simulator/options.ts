/**
 * Simulator settings: one table of defaults, validated once. A bad value is rejected with
 * SKILLSYNC_ERR_SIM_BAD_SETTING naming the setting and its allowed range.
 */
import { SkillsyncError } from '../src/core/errors.js';
import { systemClock, type Clock } from '../src/core/clock.js';
import { FEATURES, type Feature } from '../src/remote/contract.js';
import { MAX_BASE_CATEGORIES } from './content.js';
import { MAX_SKILLS } from './catalog.js';
import { LAYOUT_NAMES, LAYOUTS, type LayoutName } from './layouts.js';
import type { FaultRule, FaultSpec } from './faults.js';

export type FeatureSwitches = Record<Feature, boolean>;

export interface SimulatorOptions {
  /** Seed of the catalog, the mutation engine and (by default) the faults. Default 1. */
  seed?: number;
  /** Initial number of skills. Default 10,000; up to 1,000,000 and more. */
  skills?: number;
  /** Number of base categories (1..30). Default 30. */
  categories?: number;
  /** Extensions on/off; all on by default. */
  features?: Partial<FeatureSwitches>;
  layout?: LayoutName;
  /** `/categories` answers `{categories: [...]}` instead of a bare array. */
  categoriesWrapped?: boolean;
  /** Skills carry `id` instead of `skill_id`. */
  idAlias?: boolean;
  /** Largest page the server serves (1..1000). Default 1000. */
  pageSizeCap?: number;
  /** When set, every API request needs `Authorization: Bearer <token>` or `X-API-Token`. */
  token?: string | undefined;
  /** Requests per minute per instance before 429 (0 = no limit). */
  rateLimitPerMinute?: number;
  /** Live mutations per second (0 = paused). Default 0. */
  changesPerSecond?: number;
  /** false: changes happen without WebSocket events ("change without emitting"). */
  emitEvents?: boolean;
  /** Events kept for `resume` (ws_seq). Default 10,000. */
  wsBufferSize?: number;
  faults?: FaultSpec | FaultRule[];
  port?: number;
  host?: string;
  clock?: Clock;
}

export interface ResolvedOptions {
  seed: number;
  skills: number;
  categories: number;
  features: FeatureSwitches;
  layout: LayoutName;
  categoriesWrapped: boolean;
  idAlias: boolean;
  pageSizeCap: number;
  token: string | undefined;
  rateLimitPerMinute: number;
  changesPerSecond: number;
  emitEvents: boolean;
  wsBufferSize: number;
  port: number;
  host: string;
  clock: Clock;
}

export const DEFAULT_SIMULATOR_OPTIONS = Object.freeze({
  seed: 1,
  skills: 10_000,
  categories: MAX_BASE_CATEGORIES,
  layout: 'skills' as LayoutName,
  categoriesWrapped: false,
  idAlias: false,
  pageSizeCap: 1000,
  rateLimitPerMinute: 0,
  changesPerSecond: 0,
  emitEvents: true,
  wsBufferSize: 10_000,
  port: 0,
  host: '127.0.0.1',
});

export function badSetting(setting: string, message: string): SkillsyncError {
  return new SkillsyncError('SKILLSYNC_ERR_SIM_BAD_SETTING', `${setting}: ${message}`, {
    details: { setting },
  });
}

export function checkInt(setting: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw badSetting(setting, `must be an integer from ${min} to ${max}, got ${show(v)}`);
  return v;
}

export function checkNumber(setting: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw badSetting(setting, `must be a number from ${min} to ${max}, got ${show(v)}`);
  return v;
}

export function checkBool(setting: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw badSetting(setting, `must be true or false, got ${show(v)}`);
  return v;
}

export function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}

export function resolveFeatures(v: unknown, base?: FeatureSwitches): FeatureSwitches {
  const out = { ...(base ?? (Object.fromEntries(FEATURES.map((f) => [f, true])) as FeatureSwitches)) };
  if (v === undefined) return out;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw badSetting('features', `must be an object of {${FEATURES.join(', ')}} booleans`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!(FEATURES as readonly string[]).includes(k))
      throw badSetting(`features.${k}`, `unknown feature; known: ${FEATURES.join(', ')}`);
    out[k as Feature] = checkBool(`features.${k}`, val);
  }
  return out;
}

export function checkLayout(v: unknown): LayoutName {
  if (typeof v !== 'string' || !(v in LAYOUTS))
    throw badSetting('layout', `must be one of ${LAYOUT_NAMES.join(', ')}, got ${show(v)}`);
  return v as LayoutName;
}

export function checkToken(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 512 || /[\s]/.test(v))
    throw badSetting('token', 'must be a non-empty string without spaces (at most 512 characters)');
  return v;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'seed',
  'skills',
  'categories',
  'features',
  'layout',
  'categoriesWrapped',
  'idAlias',
  'pageSizeCap',
  'token',
  'rateLimitPerMinute',
  'changesPerSecond',
  'emitEvents',
  'wsBufferSize',
  'faults',
  'port',
  'host',
  'clock',
]);

export function resolveOptions(options: SimulatorOptions = {}): ResolvedOptions {
  for (const k of Object.keys(options))
    if (!KNOWN_OPTIONS.has(k)) throw badSetting(k, 'unknown simulator setting');
  const d = DEFAULT_SIMULATOR_OPTIONS;
  const o = options;
  const host = o.host ?? d.host;
  if (typeof host !== 'string' || host.length === 0)
    throw badSetting('host', 'must be a host name or address');
  return {
    seed: checkInt('seed', o.seed ?? d.seed, 0, 0xffff_ffff),
    skills: checkInt('skills', o.skills ?? d.skills, 0, MAX_SKILLS),
    categories: checkInt('categories', o.categories ?? d.categories, 1, MAX_BASE_CATEGORIES),
    features: resolveFeatures(o.features),
    layout: checkLayout(o.layout ?? d.layout),
    categoriesWrapped: checkBool('categoriesWrapped', o.categoriesWrapped ?? d.categoriesWrapped),
    idAlias: checkBool('idAlias', o.idAlias ?? d.idAlias),
    pageSizeCap: checkInt('pageSizeCap', o.pageSizeCap ?? d.pageSizeCap, 1, 1000),
    token: checkToken(o.token),
    rateLimitPerMinute: checkInt(
      'rateLimitPerMinute',
      o.rateLimitPerMinute ?? d.rateLimitPerMinute,
      0,
      1_000_000,
    ),
    changesPerSecond: checkNumber('changesPerSecond', o.changesPerSecond ?? d.changesPerSecond, 0, 100_000),
    emitEvents: checkBool('emitEvents', o.emitEvents ?? d.emitEvents),
    wsBufferSize: checkInt('wsBufferSize', o.wsBufferSize ?? d.wsBufferSize, 0, 10_000_000),
    port: checkInt('port', o.port ?? d.port, 0, 65535),
    host,
    clock: o.clock ?? systemClock,
  };
}
