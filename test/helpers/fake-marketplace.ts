/**
 * An in-memory marketplace for sync engine tests that need exact control over what each page
 * request sees: a catalog the test mutates between (or during) requests, page-numbered
 * listings (full: by skill_id; incremental: by (updated_at, skill_id) with tombstones), and a
 * hook before every listing request (to change the catalog or throw a fault).
 *
 * Time comes from a TickClock shared with the engine: every now() moves one second on, so
 * every update, server_time and run time is distinct and ordered.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { SkillsyncError } from '../../src/core/errors.js';
import type { Category, Health, Skill, SkillPage } from '../../src/remote/contract.js';
import type { ListSkillsParams, MarketplaceApi } from '../../src/remote/marketplace.js';

export class TickClock implements Clock {
  #now: number;
  constructor(
    startMs = Date.UTC(2026, 0, 1),
    readonly stepMs = 1_000,
  ) {
    this.#now = startMs;
  }
  now(): number {
    this.#now += this.stepMs;
    return this.#now;
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return setTimeout(fn, delayMs) as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

interface Row {
  id: string;
  version: number;
  updatedMs: number;
  deletedMs: number | null;
}

export interface ListCall {
  n: number;
  page: number | undefined;
  updatedSince: string | undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class FakeMarketplace implements MarketplaceApi {
  readonly #rows = new Map<string, Row>();
  readonly calls: ListCall[] = [];
  /** Runs before each listing request is answered; may mutate the catalog or throw. */
  beforeList: ((call: ListCall) => void | Promise<void>) | null = null;

  constructor(
    readonly clock: Clock,
    readonly features: string[],
    ids: readonly string[],
  ) {
    const t = clock.now();
    for (const id of ids) this.#rows.set(id, { id, version: 1, updatedMs: t, deletedMs: null });
  }

  static ids(n: number): string[] {
    return Array.from({ length: n }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  }

  update(id: string): void {
    const r = this.#rows.get(id);
    if (r === undefined || r.deletedMs !== null) throw new Error(`no live skill ${id}`);
    r.version++;
    r.updatedMs = this.clock.now();
  }

  delete(id: string): void {
    const r = this.#rows.get(id);
    if (r === undefined || r.deletedMs !== null) throw new Error(`no live skill ${id}`);
    r.deletedMs = this.clock.now();
    r.updatedMs = r.deletedMs;
  }

  liveIds(): string[] {
    return [...this.#rows.values()]
      .filter((r) => r.deletedMs === null)
      .map((r) => r.id)
      .sort();
  }

  versionOf(id: string): string {
    return `${this.#rows.get(id)?.version ?? 0}.0.0`;
  }

  #skill(r: Row): Skill {
    const s: Skill = {
      skill_id: r.id,
      name: `Skill ${r.id}`,
      version: `${r.version}.0.0`,
      description: `${r.id} at version ${r.version}`,
      updated_at: iso(r.updatedMs),
    };
    if (r.deletedMs !== null) s.deleted_at = iso(r.deletedMs);
    return s;
  }

  health(): Promise<Health> {
    return Promise.resolve({
      status: 'ok',
      timestamp: undefined,
      version: 'fake',
      features: this.features,
      epoch: undefined,
    });
  }

  async listSkills(params: ListSkillsParams): Promise<SkillPage> {
    const call: ListCall = { n: this.calls.length + 1, page: params.page, updatedSince: params.updatedSince };
    this.calls.push(call);
    await this.beforeList?.(call);
    if (params.cursor !== undefined) throw new Error('the fake marketplace has no cursor');
    const since = params.updatedSince === undefined ? null : Date.parse(params.updatedSince);
    const rows = [...this.#rows.values()]
      .filter((r) => (since === null ? r.deletedMs === null : r.updatedMs >= since))
      .sort((a, b) =>
        since === null ? a.id.localeCompare(b.id) : a.updatedMs - b.updatedMs || a.id.localeCompare(b.id),
      );
    const page = params.page ?? 1;
    const size = params.pageSize;
    const skills = rows.slice((page - 1) * size, page * size).map((r) => this.#skill(r));
    return {
      skills,
      invalid: [],
      received: skills.length,
      page,
      page_size: size,
      total: rows.length,
      total_pages: Math.ceil(rows.length / size),
      has_more: undefined,
      next_cursor: undefined,
      server_time: this.features.includes('updated_since') ? iso(this.clock.now()) : undefined,
    };
  }

  getSkill(skillId: string): Promise<Skill | null> {
    const r = this.#rows.get(skillId);
    return Promise.resolve(r === undefined || r.deletedMs !== null ? null : this.#skill(r));
  }

  listCategories(): Promise<{ categories: Category[]; invalid: [] }> {
    return Promise.resolve({ categories: [], invalid: [] });
  }

  rate(): never {
    throw new Error('not in the fake marketplace');
  }

  install(): never {
    throw new Error('not in the fake marketplace');
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A retryable 5xx as the real client throws it after its own retries. */
export function unavailable(): SkillsyncError {
  return new SkillsyncError('SKILLSYNC_ERR_REMOTE_UNAVAILABLE', 'HTTP 503 (fake)');
}
