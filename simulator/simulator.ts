/**
 * The simulator's state and behaviour, independent of sockets: the catalog, the event stream,
 * the mutation engine, client ratings and installs, faults, settings that can change while it
 * runs. http-api.ts, ws-hub.ts and control-api.ts put it on the wire.
 */
import type { TimerHandle } from '../src/core/clock.js';
import type { Category, Feature, Skill } from '../src/remote/contract.js';
import { FEATURES } from '../src/remote/contract.js';
import { Catalog, skillIdOf } from './catalog.js';
import { Counters } from './counters.js';
import { FaultEngine, validateFaultSpec, type FaultRule, type FaultSpec } from './faults.js';
import { checkKinds, pickKind, type MutationKind, type MutationRecord } from './mutations.js';
import {
  badSetting,
  checkBool,
  checkInt,
  checkNumber,
  checkToken,
  resolveFeatures,
  show,
  type FeatureSwitches,
  type ResolvedOptions,
} from './options.js';
import { hash4, Rng } from './rng.js';
import { isoTime } from './iso-time.js';
import type { WsHub } from './ws-hub.js';

/** Settings that may change while the simulator runs (control `configure`). */
export interface LiveSettings {
  features?: Partial<FeatureSwitches>;
  categoriesWrapped?: boolean;
  idAlias?: boolean;
  pageSizeCap?: number;
  token?: string | null;
  rateLimitPerMinute?: number;
  changesPerSecond?: number;
  emitEvents?: boolean;
}

const LIVE_KEYS: ReadonlySet<string> = new Set([
  'features',
  'categoriesWrapped',
  'idAlias',
  'pageSizeCap',
  'token',
  'rateLimitPerMinute',
  'changesPerSecond',
  'emitEvents',
]);

const iso = isoTime;

export class Simulator {
  readonly options: ResolvedOptions;
  catalog: Catalog;
  readonly counters = new Counters();
  faults: FaultEngine;
  hub: WsHub | null = null;
  epoch: string;
  #resets = 0;
  #seq = 0;
  #rng: Rng;
  #timer: TimerHandle | null = null;
  #paused = false;
  #lastTickMs = 0;
  #carry = 0;
  /** Idempotency-Key -> first answer. */
  readonly idempotent = new Map<string, { status: number; body: string }>();
  #ratingIds = 0;
  /** Bumped when a setting that shapes answers changes (read-ahead freshness). */
  settingsVersion = 0;
  #installIds = 0;

  constructor(options: ResolvedOptions, faults?: FaultSpec) {
    this.options = options;
    this.catalog = this.#newCatalog(options.seed);
    this.epoch = this.#epochId();
    this.#rng = new Rng(hash4(options.seed, 0x6d75));
    this.faults = new FaultEngine(faults ?? { rules: [] }, options.seed);
  }

  #newCatalog(seed: number): Catalog {
    const o = this.options;
    return new Catalog({ seed, skills: o.skills, categories: o.categories, clock: o.clock });
  }

  #epochId(): string {
    return `ep-${hash4(this.catalog.seed, this.#resets, 0x65).toString(16).padStart(8, '0')}`;
  }

  feature(f: Feature): boolean {
    return this.options.features[f];
  }

  enabledFeatures(): Feature[] {
    return FEATURES.filter((f) => this.options.features[f]);
  }

  get lastSeq(): number {
    return this.#seq;
  }

  // -------------------------------------------------------------------------------------------
  // Events

  /** Emits one event (unless events are off): seq when ws_seq is on, into the ring buffer. */
  emit(type: string, dataJson: string, atMs: number): void {
    if (!this.options.emitEvents) return;
    const seq = ++this.#seq;
    this.counters.eventsEmitted++;
    const frame =
      `{"type":"${type}","data":${dataJson},"timestamp":"${iso(atMs)}"` +
      (this.feature('ws_seq') ? `,"seq":${seq}}` : '}');
    this.hub?.broadcast(seq, frame);
  }

  emitSkill(i: number): void {
    this.emit(
      'skill_update',
      this.catalog.skillJson(i, this.options.idAlias ? 'id' : 'skill_id'),
      this.catalog.updatedAt[i] as number,
    );
  }

  emitRating(i: number, rating: number): void {
    const c = this.catalog;
    this.emit(
      'rating_update',
      `{"skill_id":"${skillIdOf(i)}","average_rating":${c.averageRating(i)},"rating_count":${c.ratingCount[i]},"rating":${rating}}`,
      c.updatedAt[i] as number,
    );
  }

  emitCategory(cat: Category): void {
    this.emit(
      'category_update',
      JSON.stringify(cat),
      Date.parse(cat.updated_at ?? '') || this.options.clock.now(),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Mutations

  #randomLive(): number {
    const c = this.catalog;
    if (c.liveCount === 0) return -1;
    for (let tries = 0; tries < 32; tries++) {
      const i = this.#rng.int(c.size);
      if (c.isLive(i)) return i;
    }
    return c.kthLive(this.#rng.int(c.liveCount));
  }

  /** Applies n changes now (kinds: restrict the kinds picked). */
  mutate(n = 1, kinds?: MutationKind[]): MutationRecord[] {
    checkInt('n', n, 0, 1_000_000);
    const allowed = checkKinds(kinds);
    const out: MutationRecord[] = [];
    for (let k = 0; k < n; k++) {
      const rec = this.#mutateOne(pickKind(this.#rng, allowed));
      if (rec) out.push(rec);
    }
    return out;
  }

  #mutateOne(kind: MutationKind): MutationRecord | null {
    const c = this.catalog;
    switch (kind) {
      case 'update': {
        const i = this.#randomLive();
        if (i < 0) return this.#mutateOne('create');
        this.#updateSkill(i);
        return { kind, skillId: skillIdOf(i) };
      }
      case 'create': {
        const i = c.createSkill();
        if (i < 0) return null;
        this.emitSkill(i);
        return { kind, skillId: skillIdOf(i) };
      }
      case 'delete': {
        const i = this.#randomLive();
        if (i < 0) return null;
        this.#deleteSkill(i);
        return { kind, skillId: skillIdOf(i) };
      }
      case 'rating': {
        const i = this.#randomLive();
        if (i < 0) return null;
        const r = 1 + this.#rng.int(5);
        c.addRating(i, r);
        this.emitRating(i, r);
        return { kind, skillId: skillIdOf(i) };
      }
      case 'category': {
        const roll = this.#rng.int(3);
        const extras: number[] = [];
        for (let k = 0; k < c.categorySlots; k++) {
          const info = c.categoryAt(k);
          if (info && info.live && !info.base) extras.push(k);
        }
        if (roll === 2 && extras.length > 0) {
          const slot = extras[this.#rng.int(extras.length)] as number;
          const name = c.deleteCategory(slot);
          if (name !== undefined) {
            this.emit('category_delete', JSON.stringify({ name }), c.lastChangeMs);
            return { kind, category: name, action: 'delete' };
          }
        }
        if (roll === 1 || roll === 2) {
          const cat = c.addCategory();
          this.emitCategory(cat);
          return { kind, category: cat.name, action: 'create' };
        }
        for (let tries = 0; tries < 8; tries++) {
          const cat = c.updateCategory(this.#rng.int(c.categorySlots));
          if (cat) {
            this.emitCategory(cat);
            return { kind, category: cat.name, action: 'update' };
          }
        }
        return null;
      }
    }
  }

  #updateSkill(i: number): void {
    this.catalog.updateSkill(i);
    this.emitSkill(i);
  }

  #deleteSkill(i: number): void {
    const t = this.catalog.deleteSkill(i);
    this.emit('skill_delete', `{"skill_id":"${skillIdOf(i)}"}`, t);
  }

  /**
   * Updates or deletes one named live skill now, with its event, as the mutation engine does
   * (control: tests that need a given record to change at a given moment).
   */
  changeSkill(kind: 'update' | 'delete', skillId: string): MutationRecord {
    const i = this.catalog.indexOf(skillId);
    if (!this.catalog.isLive(i)) throw badSetting('skillId', `no live skill ${show(skillId)}`);
    if (kind === 'update') this.#updateSkill(i);
    else this.#deleteSkill(i);
    return { kind, skillId };
  }

  /** Starts (or restarts) the live change timer per changesPerSecond and pause state. */
  schedule(): void {
    const clock = this.options.clock;
    if (this.#timer) clock.clearTimeout(this.#timer);
    this.#timer = null;
    const cps = this.options.changesPerSecond;
    if (cps <= 0 || this.#paused) return;
    const periodMs = Math.max(20, Math.min(1000, 1000 / cps));
    this.#lastTickMs = clock.now();
    this.#carry = 0;
    const tick = (): void => {
      const now = clock.now();
      const due = this.#carry + ((now - this.#lastTickMs) * this.options.changesPerSecond) / 1000;
      this.#lastTickMs = now;
      const n = Math.floor(due);
      this.#carry = due - n;
      if (n > 0) this.mutate(n);
      this.#timer = clock.setTimeout(tick, periodMs);
    };
    this.#timer = clock.setTimeout(tick, periodMs);
  }

  pause(): void {
    this.#paused = true;
    this.schedule();
  }

  resume(): void {
    this.#paused = false;
    this.schedule();
  }

  get paused(): boolean {
    return this.#paused || this.options.changesPerSecond === 0;
  }

  stop(): void {
    if (this.#timer) this.options.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  // -------------------------------------------------------------------------------------------
  // Client actions

  /** Applies a user's rating; returns the answer body. */
  applyRating(i: number, userId: string, rating: number, key: string | undefined): string {
    const c = this.catalog;
    const t = c.rateByUser(i, userId, rating);
    this.counters.rating(key, userId, skillIdOf(i), rating);
    this.emitRating(i, rating);
    return JSON.stringify({
      success: true,
      rating_id: `rt-${++this.#ratingIds}`,
      skill_id: skillIdOf(i),
      rating,
      average_rating: c.averageRating(i),
      rating_count: c.ratingCount[i],
      created_at: iso(t),
    });
  }

  applyInstall(i: number, key: string | undefined): string {
    this.catalog.addInstall(i);
    this.counters.install(key);
    this.emitSkill(i);
    return JSON.stringify({ success: true, install_id: `in-${++this.#installIds}` });
  }

  // -------------------------------------------------------------------------------------------
  // Control

  setFaults(spec: FaultSpec | FaultRule[] | unknown): void {
    this.faults = new FaultEngine(validateFaultSpec(spec), this.options.seed);
  }

  clearFaults(): void {
    this.faults = new FaultEngine({ rules: [] }, this.options.seed);
  }

  /** New dataset (re-seeded), new epoch; emits `reset` when the epoch extension is on. */
  resetDataset(seed?: number): string {
    this.#resets++;
    const next =
      seed === undefined
        ? hash4(this.catalog.seed, this.#resets, 0x7273)
        : checkInt('seed', seed, 0, 0xffff_ffff);
    this.catalog = this.#newCatalog(next);
    this.epoch = this.#epochId();
    this.hub?.clearBuffer();
    if (this.feature('epoch'))
      this.emit('reset', JSON.stringify({ epoch: this.epoch }), this.options.clock.now());
    return this.epoch;
  }

  configure(patch: LiveSettings | unknown): void {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
      throw badSetting('settings', 'must be an object');
    const p = patch as Record<string, unknown>;
    for (const k of Object.keys(p))
      if (!LIVE_KEYS.has(k)) throw badSetting(k, 'unknown or not changeable while running');
    // Validate everything first, then apply, so a bad patch changes nothing.
    const o = this.options;
    const next = {
      features: p['features'] === undefined ? o.features : resolveFeatures(p['features'], o.features),
      categoriesWrapped:
        p['categoriesWrapped'] === undefined
          ? o.categoriesWrapped
          : checkBool('categoriesWrapped', p['categoriesWrapped']),
      idAlias: p['idAlias'] === undefined ? o.idAlias : checkBool('idAlias', p['idAlias']),
      pageSizeCap:
        p['pageSizeCap'] === undefined ? o.pageSizeCap : checkInt('pageSizeCap', p['pageSizeCap'], 1, 1000),
      token: p['token'] === undefined ? o.token : p['token'] === null ? undefined : checkToken(p['token']),
      rateLimitPerMinute:
        p['rateLimitPerMinute'] === undefined
          ? o.rateLimitPerMinute
          : checkInt('rateLimitPerMinute', p['rateLimitPerMinute'], 0, 1_000_000),
      changesPerSecond:
        p['changesPerSecond'] === undefined
          ? o.changesPerSecond
          : checkNumber('changesPerSecond', p['changesPerSecond'], 0, 100_000),
      emitEvents: p['emitEvents'] === undefined ? o.emitEvents : checkBool('emitEvents', p['emitEvents']),
    };
    const rescheduled = next.changesPerSecond !== o.changesPerSecond;
    Object.assign(o, next);
    this.settingsVersion++;
    if (rescheduled) this.schedule();
  }

  /** Direct read of one skill, bypassing faults and auth; deleted -> tombstone with deleted_at. */
  readSkill(skillId: string): Skill | null {
    const i = this.catalog.indexOf(skillId);
    if (i < 0) return null;
    return JSON.parse(this.catalog.skillJson(i, 'skill_id', !this.catalog.isLive(i))) as Skill;
  }
}
