/**
 * The simulated catalog: a few numbers per skill in typed arrays (content version, timestamps,
 * deletion, rating and install aggregates), content rebuilt on demand from content.ts, and the
 * orders the listings need (by id through a Fenwick tree over live flags; by
 * (updated_at, skill_id) through an append-only time index).
 *
 * Skill ids are `skill-` plus an 8-digit index, so index order is id order (code-unit order)
 * and a keyset cursor is an index. The catalog is deterministic from its seed: timestamps of
 * the initial skills come from the seed and a fixed base time, not from the wall clock.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { Category, Skill } from '../src/remote/contract.js';
import { catalogDigest, categoryContentHash } from '../src/remote/contract.js';
import type { Clock } from '../src/core/clock.js';
import {
  baseCategory,
  categoryDescription,
  MAX_BASE_CATEGORIES,
  skillCanonicalJson,
  skillCategory,
  skillContentFragment,
  skillName,
} from './content.js';
import { Fenwick } from './fenwick.js';
import { hash4 } from './rng.js';
import { isoTime } from './iso-time.js';

/** Initial timestamps fall in the two years before this instant. */
export const CATALOG_BASE_TIME_MS = Date.UTC(2025, 0, 1);
const SPAN_MS = 2 * 365 * 24 * 3600 * 1000;
const ID_PREFIX = 'skill-';
const ID_DIGITS = 8;
export const MAX_SKILLS = 10 ** ID_DIGITS - 1;
/** Above this many live skills the digest is computed line by line (same value, no big arrays). */
const STREAMING_DIGEST_FROM = 100_000;

export interface CatalogOptions {
  seed: number;
  skills: number;
  categories: number;
  clock: Clock;
}

interface CategoryState {
  name: string;
  displayName: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  deletedAt: number;
  /** Base categories hold skills; extra ones (added by the mutation engine) never do. */
  base: boolean;
}

export type IdKey = 'skill_id' | 'id';

export function skillIdOf(index: number): string {
  return ID_PREFIX + String(index).padStart(ID_DIGITS, '0');
}

const iso = isoTime;

export class Catalog {
  readonly seed: number;
  readonly baseCategoryCount: number;
  readonly #clock: Clock;
  #n: number;
  #cap: number;
  version!: Uint32Array;
  createdAt!: Float64Array;
  updatedAt!: Float64Array;
  /** 0 = live. */
  deletedAt!: Float64Array;
  ratingCount!: Uint32Array;
  ratingSum!: Uint32Array;
  installCount!: Uint32Array;
  /** Cached content hashes (32 bytes a skill), allocated on the first digest. */
  #hashSlab: Buffer | null = null;
  #hashValid: Uint8Array | null = null;
  #live: Fenwick;
  #liveCount: number;
  #lastClockMs = 0;
  /** Bumped by every change of skills or categories. */
  generation = 0;
  #digest: { generation: number; value: string } | null = null;
  readonly #categories: CategoryState[] = [];
  readonly #categorySkillCount: Int32Array;
  /** `${index}\u0000${user}` -> that user's current rating. */
  readonly #userRatings = new Map<string, number>();
  // Time index: entries (index, at) sorted by (at, index); an entry is current when
  // updatedAt[index] === at. Built lazily on the first incremental listing.
  #timeIdx: Uint32Array | null = null;
  #timeAt: Float64Array | null = null;
  #timeLen = 0;
  #timeStale = 0;

  constructor(options: CatalogOptions) {
    this.seed = options.seed;
    this.#clock = options.clock;
    this.baseCategoryCount = Math.min(options.categories, MAX_BASE_CATEGORIES);
    this.#n = options.skills;
    this.#cap = 0;
    // Headroom for new skills without reallocating every array soon after start.
    this.#grow(Math.max(16, options.skills + Math.max(1024, Math.ceil(options.skills / 8))));
    this.#categorySkillCount = new Int32Array(this.baseCategoryCount);
    const seed = this.seed;
    for (let i = 0; i < this.#n; i++) {
      const h = hash4(seed, i, 0, 21);
      const created = CATALOG_BASE_TIME_MS - SPAN_MS + (h % SPAN_MS);
      const h2 = hash4(seed, i, 0, 22);
      const updated = created + (h2 % Math.max(1, CATALOG_BASE_TIME_MS - created));
      this.version[i] = 1 + (h2 % 3);
      this.createdAt[i] = created;
      this.updatedAt[i] = updated;
      const count = h % 200;
      this.ratingCount[i] = count;
      this.ratingSum[i] = count + (count === 0 ? 0 : hash4(seed, i, 0, 23) % (4 * count + 1));
      this.installCount[i] = h2 % 10000;
      const cat = skillCategory(seed, i, this.baseCategoryCount);
      this.#categorySkillCount[cat] = (this.#categorySkillCount[cat] as number) + 1;
    }
    this.#live = Fenwick.from(this.#cap, (i) => i < this.#n);
    this.#liveCount = this.#n;
    for (let c = 0; c < this.baseCategoryCount; c++) {
      const info = baseCategory(c);
      const h = hash4(seed, c, 0, 31);
      const created = CATALOG_BASE_TIME_MS - SPAN_MS + (h % (SPAN_MS / 4));
      this.#categories.push({
        name: info.name,
        displayName: info.displayName,
        version: 1,
        createdAt: created,
        updatedAt: created + (h % 1000) * 1000,
        deletedAt: 0,
        base: true,
      });
    }
    this.#lastClockMs = CATALOG_BASE_TIME_MS;
  }

  #grow(minCap: number): void {
    // Grow by a quarter: at a million skills, each reallocation briefly holds old and new arrays.
    const cap = Math.max(minCap, this.#cap + Math.max(1024, Math.ceil(this.#cap / 4)));
    const copy = <T extends Uint32Array | Float64Array | Uint8Array>(
      old: T | undefined,
      make: (n: number) => T,
    ): T => {
      const next = make(cap);
      if (old) next.set(old);
      return next;
    };
    this.version = copy(this.version as Uint32Array | undefined, (n) => new Uint32Array(n));
    this.createdAt = copy(this.createdAt as Float64Array | undefined, (n) => new Float64Array(n));
    this.updatedAt = copy(this.updatedAt as Float64Array | undefined, (n) => new Float64Array(n));
    this.deletedAt = copy(this.deletedAt as Float64Array | undefined, (n) => new Float64Array(n));
    this.ratingCount = copy(this.ratingCount as Uint32Array | undefined, (n) => new Uint32Array(n));
    this.ratingSum = copy(this.ratingSum as Uint32Array | undefined, (n) => new Uint32Array(n));
    this.installCount = copy(this.installCount as Uint32Array | undefined, (n) => new Uint32Array(n));
    if (this.#hashSlab) {
      this.#hashValid = copy(this.#hashValid ?? undefined, (n) => new Uint8Array(n));
      const slab = Buffer.alloc(cap * 32);
      this.#hashSlab.copy(slab);
      this.#hashSlab = slab;
    }
    const hadLive = this.#cap > 0;
    this.#cap = cap;
    if (hadLive) this.#live = Fenwick.from(cap, (i) => i < this.#n && this.deletedAt[i] === 0);
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  /** Number of indices ever allocated (live and deleted). */
  get size(): number {
    return this.#n;
  }

  get liveCount(): number {
    return this.#liveCount;
  }

  /** The last logical time handed out (ms). */
  get lastChangeMs(): number {
    return this.#lastClockMs;
  }

  indexOf(skillId: string): number {
    if (skillId.length !== ID_PREFIX.length + ID_DIGITS || !skillId.startsWith(ID_PREFIX)) return -1;
    const digits = skillId.slice(ID_PREFIX.length);
    if (!/^\d+$/.test(digits)) return -1;
    const i = Number(digits);
    return i < this.#n ? i : -1;
  }

  isLive(i: number): boolean {
    return i >= 0 && i < this.#n && this.deletedAt[i] === 0;
  }

  categoryOf(i: number): string {
    return baseCategory(skillCategory(this.seed, i, this.baseCategoryCount)).name;
  }

  nameOf(i: number): string {
    return skillName(this.seed, i);
  }

  averageRating(i: number): number {
    const c = this.ratingCount[i] as number;
    return c === 0 ? 0 : Math.round(((this.ratingSum[i] as number) / c) * 100) / 100;
  }

  /**
   * One skill as JSON text. `tombstone`: a deleted skill in an incremental listing
   * (`deleted_at` set); `incremental`: live skills carry `deleted_at: null`.
   */
  skillJson(i: number, idKey: IdKey = 'skill_id', incremental = false): string {
    const del = this.deletedAt[i] as number;
    return (
      `{"${idKey}":"${skillIdOf(i)}"` +
      skillContentFragment(this.seed, i, this.version[i] as number, this.baseCategoryCount) +
      `,"average_rating":${this.averageRating(i)},"rating_count":${this.ratingCount[i]}` +
      `,"install_count":${this.installCount[i]},"created_at":"${iso(this.createdAt[i] as number)}"` +
      `,"updated_at":"${iso(this.updatedAt[i] as number)}"` +
      (incremental ? (del === 0 ? ',"deleted_at":null' : `,"deleted_at":"${iso(del)}"`) : '') +
      '}'
    );
  }

  skill(i: number): Skill {
    return JSON.parse(this.skillJson(i)) as Skill;
  }

  /** Canonical JSON of a skill's hashed content (equals canonicalJson of the parsed skill minus timestamps). */
  skillCanonical(i: number): string {
    return skillCanonicalJson(
      this.seed,
      i,
      this.version[i] as number,
      this.baseCategoryCount,
      `"${skillIdOf(i)}"`,
      {
        averageRating: this.averageRating(i),
        ratingCount: this.ratingCount[i] as number,
        installCount: this.installCount[i] as number,
      },
    );
  }

  /**
   * Content hash of a skill as a client store sees it (skill_id key, no deleted_at): the same
   * value as skillContentHash(readSkill(listing JSON)), computed from the canonical builder.
   */
  skillHash(i: number): string {
    const off = i * 32;
    if (!this.#hashSlab || !this.#hashValid) {
      this.#hashSlab = Buffer.alloc(this.#cap * 32);
      this.#hashValid = new Uint8Array(this.#cap);
    }
    if (this.#hashValid[i] === 1) return this.#hashSlab.toString('hex', off, off + 32);
    // One-shot hashing (same sha256 hex as canonical.ts sha256Hex), cheaper per call.
    const hex = oneShotHash('sha256', this.skillCanonical(i), 'hex');
    this.#hashSlab.write(hex, off, 32, 'hex');
    this.#hashValid[i] = 1;
    return hex;
  }

  categories(includeDeleted = false): Category[] {
    const out: Category[] = [];
    for (let c = 0; c < this.#categories.length; c++) {
      const st = this.#categories[c] as CategoryState;
      if (st.deletedAt !== 0 && !includeDeleted) continue;
      out.push(this.#categoryObject(c));
    }
    return out;
  }

  #categoryObject(c: number): Category {
    const st = this.#categories[c] as CategoryState;
    return {
      name: st.name,
      display_name: st.version > 1 ? `${st.displayName} (rev ${st.version})` : st.displayName,
      description: categoryDescription(st.name, st.version),
      skill_count: st.base ? (this.#categorySkillCount[c] as number) : 0,
      icon_url: `https://example.com/icons/${st.name}.svg`,
      created_at: iso(st.createdAt),
      updated_at: iso(st.updatedAt),
    };
  }

  category(name: string): Category | undefined {
    const c = this.#categories.findIndex((s) => s.name === name && s.deletedAt === 0);
    return c < 0 ? undefined : this.#categoryObject(c);
  }

  /** Catalog digest over live skills and categories (src/remote/contract.ts catalogDigest). */
  digest(): string {
    if (this.#digest && this.#digest.generation === this.generation) return this.#digest.value;
    const cats: [string, string][] = this.categories().map((c) => [c.name, categoryContentHash(c)]);
    let value: string;
    if (this.#liveCount <= STREAMING_DIGEST_FROM) {
      const skills: [string, string][] = [];
      for (let i = 0; i < this.#n; i++)
        if (this.deletedAt[i] === 0) skills.push([skillIdOf(i), this.skillHash(i)]);
      value = catalogDigest(skills, cats);
    } else {
      value = this.#streamingDigest(cats);
    }
    this.#digest = { generation: this.generation, value };
    return value;
  }

  /**
   * catalogDigest's exact algorithm (sha256 over `s\tid\thash` then `c\tname\thash` lines,
   * sorted, joined by newlines) fed line by line: skills are already in id order here, so a
   * million-skill digest needs no million-entry arrays. Equality with catalogDigest is tested.
   */
  #streamingDigest(cats: [string, string][]): string {
    const h = createHash('sha256');
    let first = true;
    for (let i = 0; i < this.#n; i++) {
      if (this.deletedAt[i] !== 0) continue;
      h.update((first ? 's\t' : '\ns\t') + skillIdOf(i) + '\t' + this.skillHash(i));
      first = false;
    }
    cats.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [name, hash] of cats) {
      h.update((first ? 'c\t' : '\nc\t') + name + '\t' + hash);
      first = false;
    }
    return h.digest('hex');
  }

  /** For tests: the streaming digest regardless of size. */
  streamingDigestForTest(): string {
    return this.#streamingDigest(this.categories().map((c) => [c.name, categoryContentHash(c)]));
  }

  // -------------------------------------------------------------------------------------------
  // Id order (base listing, cursor extension)

  /** Index of the k-th live skill in id order, or -1. */
  kthLive(k: number): number {
    if (k < 0 || k >= this.#liveCount) return -1;
    return this.#live.kth(k);
  }

  /** Number of live skills with an index below `i`. */
  liveBefore(i: number): number {
    return this.#live.prefix(i);
  }

  // -------------------------------------------------------------------------------------------
  // Time order (updated_since extension)

  #ensureTimeIndex(): void {
    if (this.#timeIdx) return;
    const n = this.#n;
    const idx = new Uint32Array(Math.max(16, n + Math.max(1024, Math.ceil(n / 16))));
    for (let i = 0; i < n; i++) idx[i] = i;
    const upd = this.updatedAt;
    idx.subarray(0, n).sort((a, b) => (upd[a] as number) - (upd[b] as number) || a - b);
    const at = new Float64Array(idx.length);
    for (let k = 0; k < n; k++) at[k] = upd[idx[k] as number] as number;
    this.#timeIdx = idx;
    this.#timeAt = at;
    this.#timeLen = n;
    this.#timeStale = 0;
  }

  #timeAppend(i: number, at: number): void {
    if (!this.#timeIdx || !this.#timeAt) return;
    this.#timeStale++;
    if (this.#timeStale > 1024 && this.#timeStale > this.#timeLen / 2) this.#timeCompact();
    if (this.#timeLen === this.#timeIdx.length) {
      const cap = this.#timeIdx.length + Math.max(1024, Math.ceil(this.#timeIdx.length / 4));
      const idx = new Uint32Array(cap);
      idx.set(this.#timeIdx);
      const ats = new Float64Array(cap);
      ats.set(this.#timeAt);
      this.#timeIdx = idx;
      this.#timeAt = ats;
    }
    this.#timeIdx[this.#timeLen] = i;
    this.#timeAt[this.#timeLen] = at;
    this.#timeLen++;
  }

  #timeCompact(): void {
    const idx = this.#timeIdx as Uint32Array;
    const at = this.#timeAt as Float64Array;
    let w = 0;
    for (let r = 0; r < this.#timeLen; r++) {
      const i = idx[r] as number;
      // A touched skill's newest entry is not appended yet when compaction runs from
      // #timeAppend, so its old entries are stale either way.
      if (this.updatedAt[i] === at[r]) {
        idx[w] = i;
        at[w] = at[r] as number;
        w++;
      }
    }
    this.#timeLen = w;
    this.#timeStale = 0;
  }

  /**
   * Position of the first time-index entry strictly after (atMs, index) (or at/after atMs
   * when index is -1).
   */
  #timeSeek(atMs: number, index: number): number {
    const at = this.#timeAt as Float64Array;
    const idx = this.#timeIdx as Uint32Array;
    let lo = 0;
    let hi = this.#timeLen;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const a = at[mid] as number;
      const before = a < atMs || (a === atMs && index >= 0 && (idx[mid] as number) <= index);
      if (before) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Walks skills with updated_at >= sinceMs in (updated_at, skill_id) order, starting after
   * the key (afterAt, afterIndex) when given, skipping `skip` matches, and calls `visit` for
   * at most `limit` matches. Returns the last visited key.
   */
  scanSince(
    sinceMs: number,
    includeDeleted: boolean,
    after: { at: number; index: number } | null,
    skip: number,
    limit: number,
    visit: (i: number) => void,
    keep?: (i: number) => boolean,
  ): { at: number; index: number } | null {
    this.#ensureTimeIndex();
    const idx = this.#timeIdx as Uint32Array;
    const at = this.#timeAt as Float64Array;
    let pos =
      after && after.at >= sinceMs ? this.#timeSeek(after.at, after.index) : this.#timeSeek(sinceMs, -1);
    let last: { at: number; index: number } | null = null;
    let taken = 0;
    for (; pos < this.#timeLen && taken < limit; pos++) {
      const i = idx[pos] as number;
      const a = at[pos] as number;
      if (this.updatedAt[i] !== a) continue;
      if (!includeDeleted && this.deletedAt[i] !== 0) continue;
      if (keep && !keep(i)) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      visit(i);
      last = { at: a, index: i };
      taken++;
    }
    return last;
  }

  countSince(sinceMs: number, includeDeleted: boolean, keep?: (i: number) => boolean): number {
    let n = 0;
    this.scanSince(sinceMs, includeDeleted, null, 0, Number.MAX_SAFE_INTEGER, () => n++, keep);
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Changes

  /** Logical clock: strictly increasing, never behind the wall clock. */
  nextTime(): number {
    const t = Math.max(Math.floor(this.#clock.now()), this.#lastClockMs + 1);
    this.#lastClockMs = t;
    return t;
  }

  #touch(i: number): number {
    const t = this.nextTime();
    this.updatedAt[i] = t;
    if (this.#hashValid) this.#hashValid[i] = 0;
    this.#timeAppend(i, t);
    this.generation++;
    return t;
  }

  updateSkill(i: number): number {
    this.version[i] = (this.version[i] as number) + 1;
    return this.#touch(i);
  }

  createSkill(): number {
    if (this.#n >= MAX_SKILLS) return -1;
    if (this.#n >= this.#cap) this.#grow(this.#n + 1);
    const i = this.#n++;
    this.version[i] = 1;
    const t = this.#touch(i);
    this.createdAt[i] = t;
    this.deletedAt[i] = 0;
    this.ratingCount[i] = 0;
    this.ratingSum[i] = 0;
    this.installCount[i] = 0;
    this.#live.add(i, 1);
    this.#liveCount++;
    const cat = skillCategory(this.seed, i, this.baseCategoryCount);
    this.#categorySkillCount[cat] = (this.#categorySkillCount[cat] as number) + 1;
    return i;
  }

  deleteSkill(i: number): number {
    if (!this.isLive(i)) return 0;
    const t = this.#touch(i);
    this.deletedAt[i] = t;
    this.#live.add(i, -1);
    this.#liveCount--;
    const cat = skillCategory(this.seed, i, this.baseCategoryCount);
    this.#categorySkillCount[cat] = (this.#categorySkillCount[cat] as number) - 1;
    return t;
  }

  /** An anonymous rating (the mutation engine). */
  addRating(i: number, rating: number): number {
    this.ratingCount[i] = (this.ratingCount[i] as number) + 1;
    this.ratingSum[i] = (this.ratingSum[i] as number) + rating;
    return this.#touch(i);
  }

  /** A user's rating: a later one replaces the earlier. */
  rateByUser(i: number, user: string, rating: number): number {
    const key = `${i}\u0000${user}`;
    const prev = this.#userRatings.get(key);
    if (prev === undefined) {
      this.ratingCount[i] = (this.ratingCount[i] as number) + 1;
      this.ratingSum[i] = (this.ratingSum[i] as number) + rating;
    } else {
      this.ratingSum[i] = (this.ratingSum[i] as number) - prev + rating;
    }
    this.#userRatings.set(key, rating);
    return this.#touch(i);
  }

  addInstall(i: number): number {
    this.installCount[i] = (this.installCount[i] as number) + 1;
    return this.#touch(i);
  }

  /** Number of categories ever created (live and deleted). */
  get categorySlots(): number {
    return this.#categories.length;
  }

  categoryAt(c: number): { name: string; live: boolean; base: boolean } | undefined {
    const st = this.#categories[c];
    return st && { name: st.name, live: st.deletedAt === 0, base: st.base };
  }

  updateCategory(c: number): Category | undefined {
    const st = this.#categories[c];
    if (!st || st.deletedAt !== 0) return undefined;
    st.version++;
    st.updatedAt = this.nextTime();
    this.generation++;
    return this.#categoryObject(c);
  }

  addCategory(): Category {
    const n = this.#categories.length;
    const t = this.nextTime();
    this.#categories.push({
      name: `extra-${n}`,
      displayName: `Extra ${n}`,
      version: 1,
      createdAt: t,
      updatedAt: t,
      deletedAt: 0,
      base: false,
    });
    this.generation++;
    return this.#categoryObject(n);
  }

  /** Deletes an extra category (base ones hold skills and stay). */
  deleteCategory(c: number): string | undefined {
    const st = this.#categories[c];
    if (!st || st.deletedAt !== 0 || st.base) return undefined;
    st.deletedAt = this.nextTime();
    st.updatedAt = st.deletedAt;
    this.generation++;
    return st.name;
  }
}
