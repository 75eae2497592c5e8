/**
 * The HTTP client of the marketplace (../shared/CONTRACT.md) on undici: one keep-alive Agent
 * (10 connections, as the real service publishes), both auth headers and the instance id on
 * every request, connect/headers/body timeouts, a request budget shared by every caller, and
 * retries by error class (src/remote/retry.ts).
 *
 * Errors are thrown as SkillsyncError / RemoteHttpError with a code per class; their message
 * names the method, the path (never the query) and the status. The token goes only into the
 * two auth headers: never into a URL, a message, an event or a log line.
 */
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import {
  DEFAULT_BACKOFF,
  parseRetryAfterMs,
  type BackoffOptions,
  type RandomSource,
} from '../core/backoff.js';
import { systemClock, type Clock } from '../core/clock.js';
import { RemoteHttpError, SkillsyncError, type ErrorCode } from '../core/errors.js';
import { sha256Hex } from './canonical.js';
import {
  FEATURES,
  readCategories,
  readErrorBody,
  readHealth,
  readInstallAnswer,
  readRatingAnswer,
  readSkill,
  readSkillPage,
  type Category,
  type Feature,
  type Health,
  type InstallAnswer,
  type InstallRequest,
  type InvalidRecord,
  type RatingAnswer,
  type RatingRequest,
  type Result,
  type Skill,
  type SkillPage,
} from './contract.js';
import type { CallOptions, ListSkillsParams, MarketplaceApi } from './marketplace.js';
import { fillPath, resolvePaths, type MarketplacePaths, type PathLayout, type RouteName } from './paths.js';
import { RequestBudget } from './request-budget.js';
import { withRetry, type RetryPolicy } from './retry.js';

/** One attempt of one request, for metrics (requests by status, retries). Never has headers. */
export interface RemoteRequestEvent {
  readonly method: 'GET' | 'POST';
  readonly route: RouteName;
  /** Path without query string. */
  readonly path: string;
  /** 1-based attempt number within the call. */
  readonly attempt: number;
  /** HTTP status when an answer arrived. */
  readonly status: number | undefined;
  /** Error code when the attempt failed (an HTTP error, a timeout, a reset, a bad body). */
  readonly code: ErrorCode | undefined;
  readonly durationMs: number;
}

export interface MarketplaceClientSettings {
  /** Base URL; endpoint paths are appended to its path. */
  readonly baseUrl: string;
  /** API token; empty sends no auth headers (the server will answer 401). */
  readonly token: string;
  /** X-Instance-ID; undefined derives one from a sha256 of the token. */
  readonly instanceId: string | undefined;
  readonly paths: PathLayout | (Partial<MarketplacePaths> & { layout?: PathLayout });
  readonly connectTimeoutMs: number;
  /** Time to wait for the answer's headers. */
  readonly headersTimeoutMs: number;
  /** Longest silence while reading a body (undici's bodyTimeout is an idle timeout). */
  readonly bodyTimeoutMs: number;
  /** Request budget per minute; 0 = unlimited. Ignored when `budget` is given. */
  readonly requestsPerMinute: number;
  /** Attempts in all for transient failures. */
  readonly maxAttempts: number;
  readonly backoff: BackoffOptions;
  /** 429 retries on top of maxAttempts. */
  readonly maxRateLimitedRetries: number;
  /** Upper bound on a Retry-After wait. */
  readonly retryAfterCapMs: number;
  /** Larger answer bodies are refused. */
  readonly maxBodyBytes: number;
  /** Keep-alive connections to the origin. */
  readonly connections: number;
  readonly userAgent: string;
}

export const DEFAULT_MARKETPLACE_CLIENT: MarketplaceClientSettings = Object.freeze({
  baseUrl: 'https://atomagentos.com/api/v1/marketplace',
  token: '',
  instanceId: undefined,
  paths: 'skills' as const,
  connectTimeoutMs: 30_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  requestsPerMinute: 100,
  maxAttempts: 5,
  backoff: DEFAULT_BACKOFF,
  maxRateLimitedRetries: 10,
  retryAfterCapMs: 60_000,
  maxBodyBytes: 64 * 1024 * 1024,
  connections: 10,
  userAgent: 'skillsync/0.1 (undici)',
});

export type MarketplaceClientOptions = {
  readonly [K in keyof MarketplaceClientSettings]?: MarketplaceClientSettings[K] | undefined;
} & {
  /** A budget shared with other clients; by default each client has its own. */
  readonly budget?: RequestBudget | undefined;
  /** Random source for backoff jitter (tests pass a constant). */
  readonly random?: RandomSource | undefined;
  /** Called after every attempt; must be cheap. Exceptions from it are swallowed. */
  readonly onRequest?: ((event: RemoteRequestEvent) => void) | undefined;
};

export interface DetectedFeatures {
  readonly health: Health;
  readonly features: ReadonlySet<Feature>;
  readonly epoch: string | undefined;
}

export interface MarketplaceClient extends MarketplaceApi {
  readonly instanceId: string;
  readonly paths: MarketplacePaths;
  readonly budget: RequestBudget;
  /** Features from the last health() / detectFeatures(); empty before the first. */
  readonly features: ReadonlySet<Feature>;
  /** Calls /health and remembers its features and epoch. */
  detectFeatures(options?: CallOptions): Promise<DetectedFeatures>;
  has(feature: Feature): boolean;
}

/** The features of a health answer that this client knows (unknown names are dropped). */
export function featureSet(health: Pick<Health, 'features'>): Set<Feature> {
  const known = new Set<string>(FEATURES);
  return new Set(health.features.filter((f): f is Feature => known.has(f)));
}

/** X-Instance-ID derived from the token: a salted, truncated hash that does not reveal it. */
export function deriveInstanceId(token: string): string {
  return `skillsync-${sha256Hex(`skillsync-instance-id:${token}`).slice(0, 20)}`;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
/** Errors that say the request itself is wrong; retrying cannot help. */
const PROGRAMMING_CODES = new Set(['UND_ERR_INVALID_ARG', 'ERR_INVALID_URL', 'UND_ERR_NOT_SUPPORTED']);
const ERROR_BODY_CAP = 64 * 1024;

interface RequestSpec<T> {
  readonly method: 'GET' | 'POST';
  readonly route: RouteName;
  readonly skillId?: string;
  readonly query?: URLSearchParams;
  readonly body?: unknown;
  readonly idempotencyKey?: string;
  readonly read: (raw: unknown) => Result<T>;
  /** Answer for a 404 instead of an error (getSkill). */
  readonly notFound?: () => T;
}

class UndiciMarketplaceClient implements MarketplaceClient {
  readonly instanceId: string;
  readonly paths: MarketplacePaths;
  readonly budget: RequestBudget;
  readonly #settings: MarketplaceClientSettings;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #onRequest: ((event: RemoteRequestEvent) => void) | undefined;
  readonly #agent: Agent;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #headers: Record<string, string>;
  readonly #policy: RetryPolicy;
  #features: ReadonlySet<Feature> = new Set();

  constructor(options: MarketplaceClientOptions, clock: Clock) {
    const s = mergeSettings(options);
    this.#settings = s;
    this.#clock = clock;
    this.#random = options.random ?? Math.random;
    this.#onRequest = options.onRequest;
    this.paths = resolvePaths(s.paths);
    const url = new URL(s.baseUrl);
    if (url.username !== '' || url.password !== '') {
      throw new TypeError('the marketplace base URL must not carry credentials; configure the token');
    }
    if (url.search !== '' || url.hash !== '') {
      throw new TypeError('the marketplace base URL must not have a query or fragment');
    }
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.instanceId =
      s.instanceId !== undefined && s.instanceId !== '' ? s.instanceId : deriveInstanceId(s.token);
    this.#headers = {
      accept: 'application/json',
      'user-agent': s.userAgent,
      'x-instance-id': this.instanceId,
    };
    if (s.token !== '') {
      this.#headers['authorization'] = `Bearer ${s.token}`;
      this.#headers['x-api-token'] = s.token;
    }
    this.budget = options.budget ?? new RequestBudget({ requestsPerMinute: s.requestsPerMinute }, clock);
    this.#policy = {
      maxAttempts: s.maxAttempts,
      backoff: s.backoff,
      maxRateLimitedRetries: s.maxRateLimitedRetries,
    };
    this.#agent = new Agent({
      connections: s.connections,
      connect: { timeout: s.connectTimeoutMs },
      headersTimeout: s.headersTimeoutMs,
      bodyTimeout: s.bodyTimeoutMs,
    });
  }

  get features(): ReadonlySet<Feature> {
    return this.#features;
  }

  has(feature: Feature): boolean {
    return this.#features.has(feature);
  }

  async health(options: CallOptions = {}): Promise<Health> {
    const health = await this.#call({ method: 'GET', route: 'health', read: readHealth }, options);
    this.#features = featureSet(health);
    return health;
  }

  async detectFeatures(options: CallOptions = {}): Promise<DetectedFeatures> {
    const health = await this.health(options);
    return { health, features: this.#features, epoch: health.epoch };
  }

  listSkills(params: ListSkillsParams): Promise<SkillPage> {
    const query = new URLSearchParams();
    if (params.cursor !== undefined) query.set('cursor', params.cursor);
    else if (params.page !== undefined) query.set('page', String(params.page));
    query.set('page_size', String(params.pageSize));
    if (params.updatedSince !== undefined) {
      query.set('updated_since', params.updatedSince);
      query.set('include_deleted', 'true');
    }
    return this.#call({ method: 'GET', route: 'skills', query, read: readSkillPage }, params);
  }

  getSkill(skillId: string, options: CallOptions = {}): Promise<Skill | null> {
    return this.#call<Skill | null>(
      { method: 'GET', route: 'skill', skillId, read: (raw) => readSkill(raw), notFound: () => null },
      options,
    );
  }

  listCategories(options: CallOptions = {}): Promise<{ categories: Category[]; invalid: InvalidRecord[] }> {
    return this.#call({ method: 'GET', route: 'categories', read: readCategories }, options);
  }

  rate(request: RatingRequest, idempotencyKey: string, options: CallOptions = {}): Promise<RatingAnswer> {
    return this.#call(
      {
        method: 'POST',
        route: 'rate',
        skillId: request.skill_id,
        body: request,
        idempotencyKey,
        read: readRatingAnswer,
      },
      options,
    );
  }

  install(
    skillId: string,
    request: InstallRequest,
    idempotencyKey: string,
    options: CallOptions = {},
  ): Promise<InstallAnswer> {
    return this.#call(
      { method: 'POST', route: 'install', skillId, body: request, idempotencyKey, read: readInstallAnswer },
      options,
    );
  }

  async close(): Promise<void> {
    if (!this.#agent.closed) await this.#agent.close();
  }

  // -------------------------------------------------------------------------------------------

  #call<T>(spec: RequestSpec<T>, options: CallOptions): Promise<T> {
    const path = this.#basePath + fillPath(this.paths[spec.route], spec.skillId);
    const signal = options.signal;
    const aborted = (): SkillsyncError =>
      new SkillsyncError('SKILLSYNC_ERR_REMOTE_ABORTED', `${spec.method} ${path} aborted`, {
        details: { method: spec.method, path },
      });
    return withRetry((attempt) => this.#attempt(spec, path, attempt, signal, aborted), {
      policy: this.#policy,
      clock: this.#clock,
      random: this.#random,
      signal,
      retry: options.retry,
      abortError: aborted,
    });
  }

  async #attempt<T>(
    spec: RequestSpec<T>,
    path: string,
    attempt: number,
    signal: AbortSignal | undefined,
    aborted: () => SkillsyncError,
  ): Promise<T> {
    try {
      await this.budget.acquire(signal);
    } catch {
      throw aborted();
    }
    const started = performance.now();
    let status: number | undefined;
    try {
      const headers: Record<string, string> = { ...this.#headers };
      let body: string | undefined;
      if (spec.body !== undefined) {
        body = JSON.stringify(spec.body);
        headers['content-type'] = 'application/json';
      }
      if (spec.idempotencyKey !== undefined) headers['idempotency-key'] = spec.idempotencyKey;
      const query = spec.query?.toString() ?? '';
      const res = await this.#agent.request({
        origin: this.#origin,
        path: query === '' ? path : `${path}?${query}`,
        method: spec.method,
        headers,
        body: body ?? null,
        signal: signal ?? null,
        // POSTs carry an Idempotency-Key, so a retry on a fresh connection is safe.
        idempotent: true,
      });
      status = res.statusCode;
      if (status >= 200 && status < 300) {
        const value = await this.#readAnswer(spec, path, res);
        this.#emit(spec, path, attempt, status, undefined, started);
        return value;
      }
      if (status === 404 && spec.notFound) {
        await discard(res.body);
        this.#emit(spec, path, attempt, status, undefined, started);
        return spec.notFound();
      }
      throw await this.#statusError(spec, path, res);
    } catch (err) {
      const error = signal?.aborted ? aborted() : this.#toError(err, spec, path, status);
      if (error.code === 'SKILLSYNC_ERR_REMOTE_RATE_LIMITED' && error instanceof RemoteHttpError) {
        // Every caller of this budget waits out the Retry-After, not just this request.
        this.budget.pauseFor(error.retryAfterMs ?? this.#settings.backoff.baseMs);
      }
      this.#emit(spec, path, attempt, status, error.code, started);
      throw error;
    }
  }

  async #readAnswer<T>(spec: RequestSpec<T>, path: string, res: Dispatcher.ResponseData): Promise<T> {
    const buf = await readCapped(res, this.#settings.maxBodyBytes);
    if (buf === null) {
      throw new RemoteHttpError(
        'SKILLSYNC_ERR_REMOTE_MALFORMED',
        `${spec.method} ${path}: answer larger than ${this.#settings.maxBodyBytes} bytes`,
        res.statusCode,
        { retryable: false, details: { method: spec.method, path, status: res.statusCode } },
      );
    }
    let raw: unknown;
    try {
      raw = JSON.parse(buf.toString('utf8'));
    } catch {
      throw malformed(spec, path, res.statusCode, 'answer is not valid JSON');
    }
    const r = spec.read(raw);
    if (!r.ok) throw malformed(spec, path, res.statusCode, `${r.error.path} ${r.error.message}`);
    return r.value;
  }

  async #statusError<T>(
    spec: RequestSpec<T>,
    path: string,
    res: Dispatcher.ResponseData,
  ): Promise<RemoteHttpError> {
    const status = res.statusCode;
    let errorBody: ReturnType<typeof readErrorBody>;
    try {
      const buf = await readCapped(res, ERROR_BODY_CAP);
      if (buf !== null && buf.length > 0) errorBody = readErrorBody(JSON.parse(buf.toString('utf8')));
    } catch {
      // An unreadable error body changes nothing: the status decides.
    }
    const now = this.#clock.now();
    const cap = this.#settings.retryAfterCapMs;
    const header = res.headers['retry-after'];
    const retryAfterMs =
      parseRetryAfterMs(Array.isArray(header) ? header[0] : header, now, cap) ??
      parseRetryAfterMs(errorBody?.retry_after, now, cap);
    const code = codeForStatus(status);
    let message = `${spec.method} ${path} answered ${status}`;
    if (errorBody !== undefined) message += ` (${truncate(errorBody.error, 100)})`;
    const details = { method: spec.method, path, status, remoteError: errorBody?.error };
    // Other statuses (3xx, 405, 413, ...) will not change by retrying.
    return code === 'SKILLSYNC_ERR_REMOTE_HTTP'
      ? new RemoteHttpError(code, message, status, { retryAfterMs, retryable: false, details })
      : new RemoteHttpError(code, message, status, { retryAfterMs, details });
  }

  #toError<T>(err: unknown, spec: RequestSpec<T>, path: string, status: number | undefined): SkillsyncError {
    if (err instanceof SkillsyncError) return err;
    const undiciCode =
      typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
    const details = { method: spec.method, path, status, cause: undiciCode || undefined };
    const phase = status === undefined ? '' : ` after ${status} while reading the body`;
    if (TIMEOUT_CODES.has(undiciCode)) {
      return new SkillsyncError(
        'SKILLSYNC_ERR_REMOTE_TIMEOUT',
        `${spec.method} ${path} timed out${phase} (${undiciCode})`,
        {
          cause: err,
          details,
        },
      );
    }
    const retryable = !PROGRAMMING_CODES.has(undiciCode);
    return new SkillsyncError(
      'SKILLSYNC_ERR_REMOTE_NETWORK',
      `${spec.method} ${path} failed${phase}: ${undiciCode || 'connection error'}`,
      { cause: err, details, retryable },
    );
  }

  #emit<T>(
    spec: RequestSpec<T>,
    path: string,
    attempt: number,
    status: number | undefined,
    code: ErrorCode | undefined,
    started: number,
  ): void {
    if (!this.#onRequest) return;
    try {
      this.#onRequest({
        method: spec.method,
        route: spec.route,
        path,
        attempt,
        status,
        code,
        durationMs: performance.now() - started,
      });
    } catch {
      // A metrics hook must never break a request.
    }
  }
}

function mergeSettings(options: MarketplaceClientOptions): MarketplaceClientSettings {
  const out: Record<string, unknown> = { ...DEFAULT_MARKETPLACE_CLIENT };
  for (const key of Object.keys(DEFAULT_MARKETPLACE_CLIENT) as (keyof MarketplaceClientSettings)[]) {
    const v = options[key];
    if (v !== undefined) out[key] = v;
  }
  if (options.backoff !== undefined) out['backoff'] = { ...DEFAULT_BACKOFF, ...options.backoff };
  const s = out as unknown as MarketplaceClientSettings;
  for (const key of [
    'connectTimeoutMs',
    'headersTimeoutMs',
    'bodyTimeoutMs',
    'retryAfterCapMs',
    'maxBodyBytes',
  ] as const) {
    if (!(s[key] > 0)) throw new RangeError(`${key} must be > 0, got ${s[key]}`);
  }
  if (!Number.isSafeInteger(s.maxAttempts) || s.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be an integer >= 1, got ${s.maxAttempts}`);
  }
  if (!Number.isSafeInteger(s.connections) || s.connections < 1) {
    throw new RangeError(`connections must be an integer >= 1, got ${s.connections}`);
  }
  return Object.freeze(s);
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'SKILLSYNC_ERR_REMOTE_AUTH';
  if (status === 400 || status === 422) return 'SKILLSYNC_ERR_REMOTE_BAD_REQUEST';
  if (status === 404) return 'SKILLSYNC_ERR_REMOTE_NOT_FOUND';
  if (status === 409) return 'SKILLSYNC_ERR_REMOTE_CONFLICT';
  if (status === 410) return 'SKILLSYNC_ERR_REMOTE_GONE';
  if (status === 429) return 'SKILLSYNC_ERR_REMOTE_RATE_LIMITED';
  if (status >= 500) return 'SKILLSYNC_ERR_REMOTE_UNAVAILABLE';
  if (status === 408) return 'SKILLSYNC_ERR_REMOTE_TIMEOUT';
  return 'SKILLSYNC_ERR_REMOTE_HTTP';
}

function malformed<T>(spec: RequestSpec<T>, path: string, status: number, why: string): RemoteHttpError {
  return new RemoteHttpError(
    'SKILLSYNC_ERR_REMOTE_MALFORMED',
    `${spec.method} ${path}: ${truncate(why, 200)}`,
    status,
    {
      details: { method: spec.method, path, status },
    },
  );
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}...`;
}

/** Reads a body up to `cap` bytes; null (and the stream destroyed) when it is larger. */
async function readCapped(res: Dispatcher.ResponseData, cap: number): Promise<Buffer | null> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    dropBody(res.body);
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) {
      dropBody(res.body);
      return null;
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/** Closes a body we will not read; its abort error has nobody to tell. */
function dropBody(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: ERROR_BODY_CAP });
  } catch {
    // The answer is already decided; a broken body only costs the connection.
  }
}

/**
 * Creates the marketplace client. `clock` drives backoff sleeps, the request budget and
 * Retry-After dates; undici's own socket timeouts run on real time.
 */
export function createMarketplaceClient(
  options: MarketplaceClientOptions = {},
  clock: Clock = systemClock,
): MarketplaceClient {
  return new UndiciMarketplaceClient(options, clock);
}
