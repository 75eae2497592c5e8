/**
 * The marketplace API on the wire (node:http, no framework: the listing is the hot path and
 * faults need the raw socket). Order per request: route -> auth -> rate limit -> faults ->
 * handler -> body faults.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { skillIdOf, type IdKey } from './catalog.js';
import { skillTypeOf } from './content.js';
import type { FiredRule } from './faults.js';
import { LAYOUTS, SIMULATOR_BASE_PATH, type RouteName } from './layouts.js';
import type { Simulator } from './simulator.js';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };
const MAX_BODY_BYTES = 1024 * 1024;

export interface Answer {
  status: number;
  body: string | Buffer;
  /** Listings: the query of the page after this one (for read-ahead), when there is one. */
  nextQuery?: URLSearchParams;
  headers?: Record<string, string>;
}

const err = (status: number, error: string, message: string, extra?: Record<string, unknown>): Answer => ({
  status,
  body: JSON.stringify({ error, message, ...extra }),
});

interface Matched {
  route: RouteName;
  skillId?: string;
}

export function matchRoute(sim: Simulator, method: string, path: string): Matched | null {
  if (!path.startsWith(SIMULATOR_BASE_PATH)) return null;
  const rel = path.slice(SIMULATOR_BASE_PATH.length);
  const paths = LAYOUTS[sim.options.layout];
  if (method === 'GET' && rel === paths.health) return { route: 'health' };
  if (method === 'GET' && rel === paths.categories) return { route: 'categories' };
  if (method === 'GET' && (rel === paths.skills || rel === `${paths.skills}/`))
    return { route: 'list_skills' };
  if (!rel.startsWith(`${paths.skills}/`)) return null;
  const parts = rel.slice(paths.skills.length + 1).split('/');
  let id: string;
  try {
    id = decodeURIComponent(parts[0] ?? '');
  } catch {
    return null;
  }
  if (id === '') return null;
  if (parts.length === 1 && method === 'GET') return { route: 'get_skill', skillId: id };
  if (parts.length === 2 && method === 'POST' && parts[1] === 'rate') return { route: 'rate', skillId: id };
  if (parts.length === 2 && method === 'POST' && parts[1] === 'install')
    return { route: 'install', skillId: id };
  return null;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function authorized(sim: Simulator, req: IncomingMessage): boolean {
  const token = sim.options.token;
  if (token === undefined) return true;
  const auth = header(req, 'authorization');
  const bearer = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
  return sameSecret(bearer, token) || sameSecret(header(req, 'x-api-token'), token);
}

/** Fixed one-minute windows per instance (X-Instance-ID), like the published limit. */
export class RateLimiter {
  #windows = new Map<string, { start: number; count: number }>();

  /** Seconds to wait, or 0 when the request may pass. */
  check(instance: string, limit: number, now: number): number {
    if (limit <= 0) return 0;
    let w = this.#windows.get(instance);
    if (!w || now - w.start >= 60_000) {
      w = { start: now, count: 0 };
      this.#windows.set(instance, w);
    }
    if (w.count >= limit) return Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000));
    w.count++;
    return 0;
  }
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// Listing

interface CursorKey {
  /** 'i': id order (index of the last skill); 't': time order (updated_at, index). */
  m: 'i' | 't';
  i: number;
  a?: number;
  s?: number;
  d?: boolean;
  e: string;
}

function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(text: string): CursorKey | null {
  try {
    const k = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as CursorKey;
    if ((k.m !== 'i' && k.m !== 't') || !Number.isSafeInteger(k.i) || typeof k.e !== 'string') return null;
    if (k.m === 't' && (typeof k.a !== 'number' || typeof k.s !== 'number')) return null;
    return k;
  } catch {
    return null;
  }
}

const INVALID_VARIANTS = [
  (id: string) => `{"skill_id":"${id}","name":42}`,
  (id: string) => `{"skill_id":"${id}","name":"broken","tags":"not-a-list"}`,
  (id: string) => `{"skill_id":"${id}","name":"broken","average_rating":9.5}`,
  () => `{"name":"no id"}`,
];

function parsePositiveInt(v: string | null, name: string): number | Answer | undefined {
  if (v === null) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1)
    return err(400, 'bad_request', `${name} must be a positive integer`);
  return Number(v);
}

export function listSkills(sim: Simulator, q: URLSearchParams, fired: FiredRule[]): Answer {
  const o = sim.options;
  const c = sim.catalog;
  const has = (f: string): FiredRule | undefined => fired.find((x) => x.rule.fault === f);
  const page0 = parsePositiveInt(q.get('page'), 'page');
  if (typeof page0 === 'object') return page0;
  const size0 = parsePositiveInt(q.get('page_size'), 'page_size');
  if (typeof size0 === 'object') return size0;
  const pageSize = Math.min(size0 ?? 100, o.pageSizeCap);
  let page = has('ignore_page') ? 1 : (page0 ?? 1);
  const idKey: IdKey = o.idAlias ? 'id' : 'skill_id';
  const nowIso = new Date(Math.max(o.clock.now(), c.lastChangeMs)).toISOString();

  let since: number | undefined;
  const sinceText = o.features.updated_since ? q.get('updated_since') : null;
  if (sinceText !== null) {
    since = Date.parse(sinceText);
    if (Number.isNaN(since)) return err(400, 'bad_request', 'updated_since must be an ISO 8601 time');
  }
  const includeDeleted = q.get('include_deleted') === 'true' || q.get('include_deleted') === '1';
  const cursorText = o.features.cursor ? q.get('cursor') : null;
  let cursor: CursorKey | null = null;
  if (cursorText !== null && cursorText !== '') {
    cursor = decodeCursor(cursorText);
    if (!cursor) return err(400, 'bad_request', 'cursor is not valid');
    if (cursor.e !== sim.epoch) return err(410, 'gone', 'cursor expired (the dataset was reset)');
    if (cursor.m === 't') {
      since = cursor.s;
    }
  }
  const category = q.get('category');
  const skillType = q.get('skill_type');
  const query = q.get('query')?.toLowerCase() ?? null;
  const filtered = category !== null || skillType !== null || (query !== null && query !== '');
  const keep = (i: number): boolean =>
    (category === null || c.categoryOf(i) === category) &&
    (skillType === null || skillTypeOf(c.seed, i) === skillType) &&
    (query === null || query === '' || c.nameOf(i).toLowerCase().includes(query));

  const picked: number[] = [];
  let total: number;
  let last: { at: number; index: number } | null = null;
  let hasMore: boolean;
  const useCursor = cursorText !== null;
  if (has('empty_catalog')) {
    total = 0;
    hasMore = false;
  } else if (since !== undefined) {
    const push = (i: number): void => {
      picked.push(i);
    };
    const only = filtered ? keep : undefined;
    if (useCursor) {
      const after = cursor && cursor.m === 't' ? { at: cursor.a as number, index: cursor.i } : null;
      last = c.scanSince(since, includeDeleted, after, 0, pageSize, push, only);
      total = c.countSince(since, includeDeleted, only);
      hasMore =
        last !== null && c.scanSince(since, includeDeleted, last, 0, 1, () => undefined, only) !== null;
    } else {
      last = c.scanSince(since, includeDeleted, null, (page - 1) * pageSize, pageSize, push, only);
      total = c.countSince(since, includeDeleted, only);
      hasMore = page * pageSize < total;
    }
  } else if (filtered) {
    // Filters are rare: a linear scan in id order.
    let start = 0;
    if (useCursor && cursor) start = cursor.i + 1;
    let skip = useCursor ? 0 : (page - 1) * pageSize;
    total = 0;
    for (let i = 0; i < c.size; i++) if (c.isLive(i) && keep(i)) total++;
    let i = start;
    for (; i < c.size && picked.length < pageSize; i++) {
      if (!c.isLive(i) || !keep(i)) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      picked.push(i);
      last = { at: 0, index: i };
    }
    let more = false;
    for (; i < c.size; i++)
      if (c.isLive(i) && keep(i)) {
        more = true;
        break;
      }
    hasMore = more;
  } else {
    total = c.liveCount;
    let i: number;
    if (useCursor) i = cursor ? cursor.i + 1 : 0;
    else i = c.kthLive((page - 1) * pageSize);
    if (i >= 0) {
      for (; i < c.size && picked.length < pageSize; i++) {
        if (c.deletedAt[i] !== 0) continue;
        picked.push(i);
        last = { at: 0, index: i };
      }
    }
    hasMore = last !== null && c.liveCount - c.liveBefore(last.index + 1) > 0;
  }

  const spoil = has('invalid_records');
  const spoilRate = spoil ? (spoil.rule.invalidRate ?? 0.1) : 0;
  const nextQuery = hasMore ? new URLSearchParams(q) : undefined;
  if (nextQuery && !useCursor) nextQuery.set('page', String(page + 1));
  if (useCursor) page = 1;
  let tail = `],"page":${page},"page_size":${pageSize},"total":${total},"total_pages":${Math.ceil(total / pageSize)},"has_more":${hasMore}`;
  if (o.features.cursor) {
    let next: string | null = null;
    if (hasMore && last) {
      next = encodeCursor(
        since !== undefined
          ? { m: 't', i: last.index, a: last.at, s: since, d: includeDeleted, e: sim.epoch }
          : { m: 'i', i: last.index, e: sim.epoch },
      );
    }
    tail += `,"next_cursor":${next === null ? 'null' : `"${next}"`}`;
    if (useCursor && nextQuery && next !== null) nextQuery.set('cursor', next);
  }
  if (o.features.updated_since) tail += `,"server_time":"${nowIso}"`;
  // Skills are written straight into one buffer: cheaper than joining a thousand strings
  // and encoding the result (bench/simulator-listing).
  const w = new PageWriter(picked.length * 2300 + tail.length * 3 + 64);
  w.write('{"skills":[');
  const incremental = since !== undefined;
  for (let j = 0; j < picked.length; j++) {
    const i = picked[j] as number;
    if (j > 0) w.comma();
    if (spoil && sim.faults.unit(spoil, j) < spoilRate)
      w.write((INVALID_VARIANTS[j % INVALID_VARIANTS.length] as (id: string) => string)(skillIdOf(i)));
    else w.write(c.skillJson(i, idKey, incremental));
  }
  w.write(tail);
  w.write('}');
  return nextQuery ? { status: 200, body: w.done(), nextQuery } : { status: 200, body: w.done() };
}

/** A growable byte buffer for one answer body. */
class PageWriter {
  #buf: Buffer;
  #off = 0;

  constructor(estimate: number) {
    this.#buf = Buffer.allocUnsafe(Math.max(256, estimate));
  }

  write(text: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (this.#buf.length - this.#off < text.length * 3) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#off + text.length * 3));
      this.#buf.copy(next, 0, 0, this.#off);
      this.#buf = next;
    }
    this.#off += this.#buf.write(text, this.#off, 'utf8');
  }

  comma(): void {
    if (this.#off >= this.#buf.length) this.write(',');
    else this.#buf[this.#off++] = 0x2c;
  }

  done(): Buffer {
    return this.#buf.subarray(0, this.#off);
  }
}

// ---------------------------------------------------------------------------------------------
// Other routes

export function health(sim: Simulator): Answer {
  const o = sim.options;
  const out: Record<string, unknown> = {
    status: 'ok',
    timestamp: new Date(o.clock.now()).toISOString(),
    version: 'simulator-1.0.0',
    features: sim.enabledFeatures(),
  };
  if (o.features.epoch) out['epoch'] = sim.epoch;
  return { status: 200, body: JSON.stringify(out) };
}

export function getSkill(sim: Simulator, skillId: string): Answer {
  const i = sim.catalog.indexOf(skillId);
  if (!sim.catalog.isLive(i)) return err(404, 'not_found', 'no such skill');
  return { status: 200, body: sim.catalog.skillJson(i, sim.options.idAlias ? 'id' : 'skill_id') };
}

export function categories(sim: Simulator, fired: FiredRule[]): Answer {
  let list: unknown[] = fired.some((f) => f.rule.fault === 'empty_catalog') ? [] : sim.catalog.categories();
  const spoil = fired.find((f) => f.rule.fault === 'invalid_records');
  if (spoil) {
    // A spoiled category keeps its name, so a client can tell which one it could not read.
    const rate = spoil.rule.invalidRate ?? 0.1;
    list = list.map((c, j) =>
      sim.faults.unit(spoil, j) < rate ? { ...(c as object), skill_count: 'many' } : c,
    );
  }
  return { status: 200, body: JSON.stringify(sim.options.categoriesWrapped ? { categories: list } : list) };
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function rate(sim: Simulator, skillId: string, text: string, key: string | undefined): Answer {
  const body = parseJsonObject(text);
  if (!body) return err(400, 'bad_request', 'body must be a JSON object');
  const userId = body['user_id'];
  const rating = body['rating'];
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256)
    return err(400, 'bad_request', 'user_id must be a non-empty string');
  if (typeof rating !== 'number' || !Number.isInteger(rating) || rating < 1 || rating > 5)
    return err(400, 'bad_request', 'rating must be an integer from 1 to 5');
  if (body['skill_id'] !== undefined && body['skill_id'] !== skillId)
    return err(400, 'bad_request', 'skill_id in the body does not match the path');
  if (body['comment'] !== undefined && body['comment'] !== null && typeof body['comment'] !== 'string')
    return err(400, 'bad_request', 'comment must be a string');
  const i = sim.catalog.indexOf(skillId);
  if (!sim.catalog.isLive(i)) return err(404, 'not_found', 'no such skill');
  return { status: 200, body: sim.applyRating(i, userId, rating, key) };
}

export function install(sim: Simulator, skillId: string, text: string, key: string | undefined): Answer {
  const body = parseJsonObject(text);
  if (!body) return err(400, 'bad_request', 'body must be a JSON object');
  for (const f of ['agent_id', 'instance_id']) {
    const v = body[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > 256)
      return err(400, 'bad_request', `${f} must be a non-empty string`);
  }
  const i = sim.catalog.indexOf(skillId);
  if (!sim.catalog.isLive(i)) return err(404, 'not_found', 'no such skill');
  return { status: 200, body: sim.applyInstall(i, key) };
}

// ---------------------------------------------------------------------------------------------
// The request pipeline

export interface PipelineContext {
  limiter: RateLimiter;
  /** Responses that hang forever; close() destroys them. */
  hanging: Set<ServerResponse>;
  readAhead: ReadAhead;
}

/**
 * Listing read-ahead: after answering a page, the next page is built while the client is
 * still reading this one, so a paging client and the simulator work in parallel (like a
 * database prefetching the next rows). A prefetched page is served only if nothing changed
 * since it was built (same catalog generation, epoch and settings) and no fault fired for
 * the request; otherwise the page is built fresh. At most two pages are kept.
 */
export class ReadAhead {
  #pages = new Map<string, { answer: Answer; generation: number; epoch: string; settings: number }>();
  #pending = 0;

  static key(q: URLSearchParams): string {
    return [...q].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1)).join('&');
  }

  take(sim: Simulator, q: URLSearchParams): Answer | undefined {
    if (this.#pages.size === 0) return undefined;
    const key = ReadAhead.key(q);
    const hit = this.#pages.get(key);
    if (!hit) return undefined;
    this.#pages.delete(key);
    const fresh =
      hit.generation === sim.catalog.generation &&
      hit.epoch === sim.epoch &&
      hit.settings === sim.settingsVersion;
    return fresh ? hit.answer : undefined;
  }

  schedule(sim: Simulator, next: URLSearchParams): void {
    if (this.#pending > 0) return;
    this.#pending++;
    setImmediate(() => {
      this.#pending--;
      const generation = sim.catalog.generation;
      const answer = listSkills(sim, next, []);
      if (answer.status !== 200) return;
      if (this.#pages.size >= 2) this.#pages.clear();
      this.#pages.set(ReadAhead.key(next), {
        answer,
        generation,
        epoch: sim.epoch,
        settings: sim.settingsVersion,
      });
    });
  }

  clear(): void {
    this.#pages.clear();
  }
}

function destroyHard(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else res.destroy();
}

function send(sim: Simulator, route: RouteName, res: ServerResponse, a: Answer, fired: FiredRule[]): void {
  const has = (f: string): boolean => fired.some((x) => x.rule.fault === f);
  let bytes = typeof a.body === 'string' ? Buffer.from(a.body) : a.body;
  if (a.status === 200 && has('malformed'))
    bytes = Buffer.from('{"skills":[{"skill_id":"x",]]} <html>502</html>');
  if (a.status === 200 && has('truncate'))
    bytes = bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2)));
  res.writeHead(a.status, { ...JSON_HEADERS, 'content-length': bytes.length, ...a.headers });
  if (a.status === 200 && has('reset')) {
    sim.counters.request(route, 0);
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => destroyHard(res));
    return;
  }
  sim.counters.request(route, a.status);
  res.end(bytes);
}

export async function handleApi(
  sim: Simulator,
  ctx: PipelineContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const matched = matchRoute(sim, req.method ?? 'GET', url.pathname);
  if (!matched) {
    sim.counters.request('unknown' as RouteName, 404);
    res.writeHead(404, JSON_HEADERS).end(JSON.stringify({ error: 'not_found', message: 'no such route' }));
    return;
  }
  const { route, skillId } = matched;
  if (!authorized(sim, req)) {
    send(sim, route, res, err(401, 'unauthorized', 'missing or wrong API token'), []);
    return;
  }
  const o = sim.options;
  const wait = ctx.limiter.check(
    header(req, 'x-instance-id') ?? 'anonymous',
    o.rateLimitPerMinute,
    o.clock.now(),
  );
  if (wait > 0) {
    send(
      sim,
      route,
      res,
      {
        ...err(429, 'rate_limited', 'too many requests', { retry_after: wait }),
        headers: { 'retry-after': String(wait) },
      },
      [],
    );
    return;
  }
  const isPost = route === 'rate' || route === 'install';
  const text = isPost ? await readBody(req) : '';
  if (text === null) {
    send(sim, route, res, err(413, 'too_large', 'request body over 1 MB'), []);
    return;
  }
  let userId: string | undefined;
  if (route === 'rate') {
    const b = parseJsonObject(text);
    userId = typeof b?.['user_id'] === 'string' ? b['user_id'] : undefined;
  }
  const fired = sim.faults.empty
    ? []
    : sim.faults.forRequest({
        route,
        keyed:
          route === 'list_skills' &&
          ((o.features.cursor && url.searchParams.has('cursor')) ||
            (o.features.updated_since && url.searchParams.has('updated_since'))),
        skillId,
        userId,
      });
  if (fired.length > 0) {
    const latency = fired.reduce(
      (sum, f) => sum + (f.rule.fault === 'latency' ? (f.rule.latencyMs ?? 0) : 0),
      0,
    );
    if (latency > 0) {
      await new Promise<void>((resolve) => o.clock.setTimeout(resolve, latency));
      // The client may have given up, or the simulator closed, while the answer was delayed.
      if (res.destroyed) return;
    }
    if (fired.some((f) => f.rule.fault === 'reset_dataset')) sim.resetDataset();
    if (fired.some((f) => f.rule.fault === 'hang')) {
      sim.counters.request(route, 0);
      ctx.hanging.add(res);
      res.on('close', () => ctx.hanging.delete(res));
      return;
    }
    const terminal = fired.find((f) => ['error', 'rate_limit', 'gone', 'poison'].includes(f.rule.fault));
    if (terminal) {
      const r = terminal.rule;
      let a: Answer;
      if (r.fault === 'error') a = err(r.status ?? 503, 'server_error', 'simulated failure');
      else if (r.fault === 'gone') a = err(410, 'gone', 'cursor or watermark expired');
      else if (r.fault === 'poison')
        a = err(r.status ?? 422, 'unprocessable', 'this request can never succeed');
      else {
        const secs = r.retryAfterSeconds ?? 1;
        const value =
          r.retryAfterFormat === 'http_date'
            ? new Date(o.clock.now() + secs * 1000).toUTCString()
            : String(secs);
        a = {
          ...err(429, 'rate_limited', 'too many requests', { retry_after: secs }),
          headers: { 'retry-after': value },
        };
      }
      send(sim, route, res, a, []);
      return;
    }
  }

  let answer: Answer;
  const key = header(req, 'idempotency-key');
  switch (route) {
    case 'health':
      answer = health(sim);
      break;
    case 'categories':
      answer = categories(sim, fired);
      break;
    case 'list_skills': {
      const ahead = fired.length === 0 ? ctx.readAhead.take(sim, url.searchParams) : undefined;
      answer = ahead ?? listSkills(sim, url.searchParams, fired);
      if (fired.length === 0 && answer.nextQuery) ctx.readAhead.schedule(sim, answer.nextQuery);
      break;
    }
    case 'get_skill':
      answer = getSkill(sim, skillId as string);
      break;
    case 'rate':
    case 'install': {
      const scoped = key === undefined ? undefined : `${route}\u0000${key}`;
      const first = scoped !== undefined && o.features.idempotency ? sim.idempotent.get(scoped) : undefined;
      if (first) {
        answer = { status: first.status, body: first.body, headers: { 'idempotent-replayed': 'true' } };
        break;
      }
      answer =
        route === 'rate'
          ? rate(sim, skillId as string, text, key)
          : install(sim, skillId as string, text, key);
      if (scoped !== undefined && answer.status === 200)
        sim.idempotent.set(scoped, { status: answer.status, body: String(answer.body) });
      if (answer.status === 200 && fired.some((f) => f.rule.fault === 'lost_response')) {
        sim.counters.request(route, 0);
        destroyHard(res);
        return;
      }
      break;
    }
  }
  send(sim, route, res, answer, fired);
}

export { skillIdOf };
