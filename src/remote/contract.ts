/**
 * The marketplace contract (../shared/CONTRACT.md) as types and a tolerant reader.
 *
 * The reader never throws on remote data: it returns errors as values. Validation is per
 * record, so one bad skill in a page yields that record's error and every other record.
 * Aliases are normalised on the way in (`id` -> `skill_id`, `category` -> `name` for
 * categories), a missing `version` reads as `1.0.0`, and unknown fields are kept untouched.
 */
import { canonicalHash, sha256Hex } from './canonical.js';

// ---------------------------------------------------------------------------------------------
// Objects

export interface Skill {
  skill_id: string;
  name: string;
  /** Free-form, usually semver; `1.0.0` when the remote left it out. */
  version: string;
  description?: string | null;
  category?: string | null;
  skill_type?: string | null;
  author?: string | null;
  tags?: string[] | null;
  python_packages?: string[] | null;
  npm_packages?: string[] | null;
  examples?: string[] | null;
  code?: string | null;
  command?: string | null;
  local_files?: Record<string, unknown> | null;
  parameters?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
  env_vars?: Record<string, unknown> | null;
  content_hash?: string | null;
  average_rating?: number | null;
  rating_count?: number | null;
  install_count?: number | null;
  created_at?: string | null;
  updated_at?: string | null;
  /** Only in incremental listings: a tombstone. */
  deleted_at?: string | null;
  /** Unknown fields are kept, never dropped. */
  [extra: string]: unknown;
}

export interface Category {
  name: string;
  display_name?: string | null;
  description?: string | null;
  skill_count?: number | null;
  icon_url?: string | null;
  created_at?: string | null;
  updated_at?: string | null;
  [extra: string]: unknown;
}

export interface ValidationIssue {
  /** Where in the input: `skills[3].tags`, `data.skill_id`, `$`. */
  readonly path: string;
  readonly message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ValidationIssue };

export interface InvalidRecord {
  readonly index: number;
  /** The record's id when one could be read, for quarantine keys. */
  readonly key: string | null;
  readonly error: ValidationIssue;
  readonly raw: unknown;
}

export interface SkillPage {
  skills: Skill[];
  invalid: InvalidRecord[];
  /** Number of records the server sent (valid + invalid): the page length for end-of-list checks. */
  received: number;
  page: number | undefined;
  page_size: number | undefined;
  total: number | undefined;
  total_pages: number | undefined;
  has_more: boolean | undefined;
  /** `cursor` extension. */
  next_cursor: string | null | undefined;
  /** `updated_since` extension: the watermark to use next. */
  server_time: string | undefined;
}

export interface Health {
  status: string;
  timestamp: string | undefined;
  version: string | undefined;
  features: string[];
  epoch: string | undefined;
  [extra: string]: unknown;
}

export const FEATURES = ['cursor', 'updated_since', 'idempotency', 'ws_seq', 'epoch'] as const;
export type Feature = (typeof FEATURES)[number];

export interface ErrorBody {
  error: string;
  message?: string | undefined;
  retry_after?: number | string | undefined;
}

export interface RatingRequest {
  skill_id: string;
  user_id: string;
  rating: number;
  comment?: string;
}

export interface RatingAnswer {
  success: true;
  rating_id: string;
  skill_id: string;
  rating: number;
  average_rating: number;
  rating_count: number;
  created_at: string;
  [extra: string]: unknown;
}

export interface InstallRequest {
  agent_id: string;
  instance_id: string;
}

export interface InstallAnswer {
  success: true;
  install_id: string;
  [extra: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// WebSocket messages

export interface RatingUpdate {
  skill_id: string;
  average_rating?: number;
  rating_count?: number;
  rating?: number;
}

interface Envelope {
  seq?: number | undefined;
  timestamp?: string | undefined;
}

export type WsMessage =
  | (Envelope & { type: 'skill_update'; data: Skill })
  | (Envelope & { type: 'skill_delete'; data: { skill_id: string } })
  | (Envelope & { type: 'category_update'; data: Category })
  | (Envelope & { type: 'category_delete'; data: { name: string } })
  | (Envelope & { type: 'rating_update'; data: RatingUpdate })
  | (Envelope & { type: 'ping' })
  | (Envelope & { type: 'pong' })
  | (Envelope & { type: 'reset'; data: { epoch: string } })
  /** A type this client does not know: counted and ignored, never an error. */
  | (Envelope & { type: 'unknown'; rawType: string });

export type WsMessageType = WsMessage['type'];

export type ClientWsMessage = { type: 'ping' } | { type: 'pong' } | { type: 'resume'; since_seq: number };

/** Frames larger than this are refused before parsing. */
export const WS_MAX_MESSAGE_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Field checks

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const fail = <T>(path: string, message: string): Result<T> => ({ ok: false, error: { path, message } });

const STRING_FIELDS = [
  'description',
  'category',
  'skill_type',
  'author',
  'code',
  'command',
  'content_hash',
] as const;
const STRING_ARRAY_FIELDS = ['tags', 'python_packages', 'npm_packages', 'examples'] as const;
const OBJECT_FIELDS = ['local_files', 'parameters', 'metadata', 'env_vars'] as const;
const COUNT_FIELDS = ['rating_count', 'install_count'] as const;
const TIME_FIELDS = ['created_at', 'updated_at', 'deleted_at'] as const;

function isIsoTime(v: string): boolean {
  // ISO 8601 date or date-time; Date.parse alone accepts too much ("1", "May 3").
  return (
    /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) &&
    !Number.isNaN(Date.parse(v))
  );
}

function checkString(o: Obj, key: string, path: string): ValidationIssue | null {
  const v = o[key];
  if (v === undefined || v === null || typeof v === 'string') return null;
  return { path: `${path}.${key}`, message: `must be a string, got ${typeName(v)}` };
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function nonEmptyId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 512;
}

/** Reads one skill. `path` prefixes error paths (`skills[3]`). */
export function readSkill(raw: unknown, path = '$'): Result<Skill> {
  if (!isObj(raw)) return fail(path, `a skill must be an object, got ${typeName(raw)}`);
  const out: Obj = { ...raw };
  // Alias: `id` -> `skill_id`. Normalising keeps hashes equal across server layouts.
  if (out['skill_id'] === undefined && out['id'] !== undefined) {
    out['skill_id'] = out['id'];
    delete out['id'];
  } else if (out['id'] !== undefined && out['id'] === out['skill_id']) {
    delete out['id'];
  }
  if (!nonEmptyId(out['skill_id'])) {
    return fail(
      `${path}.skill_id`,
      out['skill_id'] === undefined ? 'is required' : 'must be a non-empty string (at most 512 characters)',
    );
  }
  if (typeof out['name'] !== 'string' || out['name'].length === 0) {
    return fail(`${path}.name`, out['name'] === undefined ? 'is required' : 'must be a non-empty string');
  }
  if (out['version'] === undefined || out['version'] === null) out['version'] = '1.0.0';
  else if (typeof out['version'] !== 'string')
    return fail(`${path}.version`, `must be a string, got ${typeName(out['version'])}`);
  for (const key of STRING_FIELDS) {
    const issue = checkString(out, key, path);
    if (issue) return { ok: false, error: issue };
  }
  for (const key of STRING_ARRAY_FIELDS) {
    const v = out[key];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) return fail(`${path}.${key}`, `must be an array of strings, got ${typeName(v)}`);
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== 'string')
        return fail(`${path}.${key}[${i}]`, `must be a string, got ${typeName(v[i])}`);
    }
  }
  for (const key of OBJECT_FIELDS) {
    const v = out[key];
    if (v !== undefined && v !== null && !isObj(v))
      return fail(`${path}.${key}`, `must be an object, got ${typeName(v)}`);
  }
  const avg = out['average_rating'];
  if (avg !== undefined && avg !== null && (typeof avg !== 'number' || !(avg >= 0 && avg <= 5))) {
    return fail(`${path}.average_rating`, 'must be a number from 0 to 5');
  }
  for (const key of COUNT_FIELDS) {
    const v = out[key];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      return fail(`${path}.${key}`, 'must be an integer >= 0');
    }
  }
  for (const key of TIME_FIELDS) {
    const v = out[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !isIsoTime(v))
      return fail(`${path}.${key}`, 'must be an ISO 8601 timestamp');
  }
  return { ok: true, value: out as Skill };
}

export function readCategory(raw: unknown, path = '$'): Result<Category> {
  if (!isObj(raw)) return fail(path, `a category must be an object, got ${typeName(raw)}`);
  const out: Obj = { ...raw };
  if (out['name'] === undefined && out['category'] !== undefined) {
    out['name'] = out['category'];
    delete out['category'];
  }
  if (!nonEmptyId(out['name']))
    return fail(`${path}.name`, out['name'] === undefined ? 'is required' : 'must be a non-empty string');
  for (const key of ['display_name', 'description', 'icon_url']) {
    const issue = checkString(out, key, path);
    if (issue) return { ok: false, error: issue };
  }
  const count = out['skill_count'];
  if (
    count !== undefined &&
    count !== null &&
    (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
  ) {
    return fail(`${path}.skill_count`, 'must be an integer >= 0');
  }
  for (const key of ['created_at', 'updated_at']) {
    const v = out[key];
    if (v !== undefined && v !== null && (typeof v !== 'string' || !isIsoTime(v)))
      return fail(`${path}.${key}`, 'must be an ISO 8601 timestamp');
  }
  return { ok: true, value: out as Category };
}

function recordKey(raw: unknown, ...keys: string[]): string | null {
  if (!isObj(raw)) return null;
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'string' && v.length > 0) return v.slice(0, 512);
  }
  return null;
}

function optNumber(o: Obj, key: string, path: string): Result<number | undefined> {
  const v = o[key];
  if (v === undefined || v === null) return { ok: true, value: undefined };
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    return fail(`${path}.${key}`, 'must be a number >= 0');
  return { ok: true, value: v };
}

/**
 * Reads a listing page. A body that is not the page shape is an error for the page as a
 * whole (transient, per the contract); records inside it are validated one by one.
 */
export function readSkillPage(raw: unknown): Result<SkillPage> {
  if (!isObj(raw)) return fail('$', `a listing page must be an object, got ${typeName(raw)}`);
  const list = raw['skills'];
  if (!Array.isArray(list)) return fail('$.skills', `must be an array, got ${typeName(list)}`);
  const nums: Partial<Record<'page' | 'page_size' | 'total' | 'total_pages', number | undefined>> = {};
  for (const key of ['page', 'page_size', 'total', 'total_pages'] as const) {
    const r = optNumber(raw, key, '$');
    if (!r.ok) return r;
    nums[key] = r.value;
  }
  const hasMore = raw['has_more'];
  if (hasMore !== undefined && hasMore !== null && typeof hasMore !== 'boolean')
    return fail('$.has_more', 'must be a boolean');
  const cursor = raw['next_cursor'];
  if (cursor !== undefined && cursor !== null && typeof cursor !== 'string')
    return fail('$.next_cursor', 'must be a string or null');
  const serverTime = raw['server_time'];
  if (
    serverTime !== undefined &&
    serverTime !== null &&
    (typeof serverTime !== 'string' || !isIsoTime(serverTime))
  ) {
    return fail('$.server_time', 'must be an ISO 8601 timestamp');
  }
  const skills: Skill[] = [];
  const invalid: InvalidRecord[] = [];
  for (let i = 0; i < list.length; i++) {
    const r = readSkill(list[i], `skills[${i}]`);
    if (r.ok) skills.push(r.value);
    else invalid.push({ index: i, key: recordKey(list[i], 'skill_id', 'id'), error: r.error, raw: list[i] });
  }
  return {
    ok: true,
    value: {
      skills,
      invalid,
      received: list.length,
      page: nums.page,
      page_size: nums.page_size,
      total: nums.total,
      total_pages: nums.total_pages,
      has_more: typeof hasMore === 'boolean' ? hasMore : undefined,
      next_cursor: cursor === null ? null : (cursor as string | undefined),
      server_time: typeof serverTime === 'string' ? serverTime : undefined,
    },
  };
}

/** Categories come bare (`Category[]`) or wrapped (`{categories: Category[]}`). */
export function readCategories(raw: unknown): Result<{ categories: Category[]; invalid: InvalidRecord[] }> {
  const list = Array.isArray(raw) ? raw : isObj(raw) ? raw['categories'] : undefined;
  if (!Array.isArray(list)) return fail('$', 'expected an array of categories or {categories: [...]}');
  const categories: Category[] = [];
  const invalid: InvalidRecord[] = [];
  for (let i = 0; i < list.length; i++) {
    const r = readCategory(list[i], `categories[${i}]`);
    if (r.ok) categories.push(r.value);
    else
      invalid.push({ index: i, key: recordKey(list[i], 'name', 'category'), error: r.error, raw: list[i] });
  }
  return { ok: true, value: { categories, invalid } };
}

export function readHealth(raw: unknown): Result<Health> {
  if (!isObj(raw)) return fail('$', `health must be an object, got ${typeName(raw)}`);
  if (typeof raw['status'] !== 'string') return fail('$.status', 'must be a string');
  const features = raw['features'];
  if (features !== undefined && (!Array.isArray(features) || !features.every((f) => typeof f === 'string'))) {
    return fail('$.features', 'must be an array of strings');
  }
  const epoch = raw['epoch'];
  if (epoch !== undefined && epoch !== null && typeof epoch !== 'string' && typeof epoch !== 'number') {
    return fail('$.epoch', 'must be a string');
  }
  return {
    ok: true,
    value: {
      ...raw,
      status: raw['status'],
      timestamp: typeof raw['timestamp'] === 'string' ? raw['timestamp'] : undefined,
      version: typeof raw['version'] === 'string' ? raw['version'] : undefined,
      features: (features as string[] | undefined) ?? [],
      epoch: epoch === undefined || epoch === null ? undefined : String(epoch),
    },
  };
}

export function readErrorBody(raw: unknown): ErrorBody | undefined {
  if (!isObj(raw)) return undefined;
  const error = raw['error'];
  if (typeof error !== 'string') return undefined;
  const message = raw['message'];
  const retryAfter = raw['retry_after'];
  return {
    error,
    message: typeof message === 'string' ? message : undefined,
    retry_after: typeof retryAfter === 'number' || typeof retryAfter === 'string' ? retryAfter : undefined,
  };
}

export function readRatingAnswer(raw: unknown): Result<RatingAnswer> {
  if (!isObj(raw)) return fail('$', 'must be an object');
  if (raw['success'] !== true) return fail('$.success', 'must be true');
  if (typeof raw['rating_id'] !== 'string' && typeof raw['rating_id'] !== 'number')
    return fail('$.rating_id', 'is required');
  for (const key of ['average_rating', 'rating_count', 'rating'] as const) {
    if (typeof raw[key] !== 'number') return fail(`$.${key}`, 'must be a number');
  }
  return { ok: true, value: { ...raw, rating_id: String(raw['rating_id']) } as RatingAnswer };
}

export function readInstallAnswer(raw: unknown): Result<InstallAnswer> {
  if (!isObj(raw)) return fail('$', 'must be an object');
  if (raw['success'] !== true) return fail('$.success', 'must be true');
  if (typeof raw['install_id'] !== 'string' && typeof raw['install_id'] !== 'number')
    return fail('$.install_id', 'is required');
  return { ok: true, value: { ...raw, install_id: String(raw['install_id']) } as InstallAnswer };
}

function envelope(o: Obj): Result<Envelope> {
  const seq = o['seq'];
  if (
    seq !== undefined &&
    seq !== null &&
    (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
  ) {
    return fail('$.seq', 'must be an integer >= 0');
  }
  const ts = o['timestamp'];
  if (ts !== undefined && ts !== null && (typeof ts !== 'string' || !isIsoTime(ts)))
    return fail('$.timestamp', 'must be an ISO 8601 timestamp');
  const env: Envelope = {};
  if (typeof seq === 'number') env.seq = seq;
  if (typeof ts === 'string') env.timestamp = ts;
  return { ok: true, value: env };
}

/**
 * Parses and validates one WebSocket frame. Unknown types come back as `{type: 'unknown'}`
 * (counted and ignored by the caller), never as errors.
 */
export function readWsMessage(frame: string | Buffer): Result<WsMessage> {
  const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
  if (size > WS_MAX_MESSAGE_BYTES)
    return fail('$', `frame of ${size} bytes exceeds the ${WS_MAX_MESSAGE_BYTES}-byte limit`);
  let raw: unknown;
  try {
    raw = JSON.parse(typeof frame === 'string' ? frame : frame.toString('utf8'));
  } catch {
    return fail('$', 'not valid JSON');
  }
  if (!isObj(raw)) return fail('$', `a message must be an object, got ${typeName(raw)}`);
  const type = raw['type'];
  if (typeof type !== 'string') return fail('$.type', 'must be a string');
  const env = envelope(raw);
  if (!env.ok) return env;
  const data = raw['data'];
  switch (type) {
    case 'ping':
    case 'pong':
      return { ok: true, value: { ...env.value, type } };
    case 'skill_update': {
      const r = readSkill(data, '$.data');
      return r.ok ? { ok: true, value: { ...env.value, type, data: r.value } } : r;
    }
    case 'skill_delete': {
      const id = isObj(data) ? (data['skill_id'] ?? data['id']) : undefined;
      if (!nonEmptyId(id)) return fail('$.data.skill_id', 'is required');
      return { ok: true, value: { ...env.value, type, data: { skill_id: id } } };
    }
    case 'category_update': {
      const r = readCategory(data, '$.data');
      return r.ok ? { ok: true, value: { ...env.value, type, data: r.value } } : r;
    }
    case 'category_delete': {
      const name = isObj(data) ? (data['name'] ?? data['category']) : undefined;
      if (!nonEmptyId(name)) return fail('$.data.name', 'is required');
      return { ok: true, value: { ...env.value, type, data: { name } } };
    }
    case 'rating_update': {
      if (!isObj(data)) return fail('$.data', 'must be an object');
      const id = data['skill_id'] ?? data['id'];
      if (!nonEmptyId(id)) return fail('$.data.skill_id', 'is required');
      const out: RatingUpdate = { skill_id: id };
      const avg = data['average_rating'];
      if (avg !== undefined && avg !== null) {
        if (typeof avg !== 'number' || !(avg >= 0 && avg <= 5))
          return fail('$.data.average_rating', 'must be a number from 0 to 5');
        out.average_rating = avg;
      }
      const count = data['rating_count'];
      if (count !== undefined && count !== null) {
        if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
          return fail('$.data.rating_count', 'must be an integer >= 0');
        out.rating_count = count;
      }
      const rating = data['rating'];
      if (rating !== undefined && rating !== null) {
        if (typeof rating !== 'number' || !Number.isInteger(rating) || rating < 1 || rating > 5)
          return fail('$.data.rating', 'must be an integer from 1 to 5');
        out.rating = rating;
      }
      return { ok: true, value: { ...env.value, type, data: out } };
    }
    case 'reset': {
      const epoch = isObj(data) ? data['epoch'] : undefined;
      if (typeof epoch !== 'string' && typeof epoch !== 'number') return fail('$.data.epoch', 'is required');
      return { ok: true, value: { ...env.value, type, data: { epoch: String(epoch) } } };
    }
    default:
      return { ok: true, value: { ...env.value, type: 'unknown', rawType: type.slice(0, 100) } };
  }
}

// ---------------------------------------------------------------------------------------------
// Content hashing and digests

/**
 * Fields left out of a skill's content hash: the server's own hash and the timestamps. Two
 * payloads with the same hash carry the same content, whichever order their keys came in and
 * whatever the server stamped on them. Rating aggregates are content (they change what a
 * reader sees), so they are in.
 */
const SKILL_HASH_OMIT: ReadonlySet<string> = new Set([
  'content_hash',
  'created_at',
  'updated_at',
  'deleted_at',
]);
/** A category's skill_count is derived data; skillsync counts skills itself. */
const CATEGORY_HASH_OMIT: ReadonlySet<string> = new Set(['skill_count', 'created_at', 'updated_at']);

/** Canonical content hash of a (normalised) skill: sha256 hex. */
export function skillContentHash(skill: Skill): string {
  return canonicalHash(skill, SKILL_HASH_OMIT);
}

export function categoryContentHash(category: Category): string {
  return canonicalHash(category, CATEGORY_HASH_OMIT);
}

/**
 * The catalog digest: one hash over every live skill (id and content hash) and every category
 * (name and content hash), sorted by id in code-unit order. The simulator and the stores
 * compute it with this same function, so "store equals remote" is one string comparison.
 */
export function catalogDigest(
  skills: Iterable<readonly [skillId: string, contentHash: string]>,
  categories: Iterable<readonly [name: string, contentHash: string]>,
): string {
  const s = [...skills].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const c = [...categories].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const lines: string[] = [];
  for (const [id, h] of s) lines.push(`s\t${id}\t${h}`);
  for (const [name, h] of c) lines.push(`c\t${name}\t${h}`);
  return sha256Hex(lines.join('\n'));
}
