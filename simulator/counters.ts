/**
 * What the simulator counts so tests can assert effects: requests by route and status, and
 * every application of a rating or install, per Idempotency-Key, so "exactly once" is a
 * number a test reads rather than a belief.
 */
import type { RouteName } from './layouts.js';

export interface CountersSnapshot {
  /** requests[route][status]; status 0 = no answer (hang, reset, lost response). */
  requests: Record<string, Record<string, number>>;
  /** Requests by status over every route. */
  byStatus: Record<string, number>;
  ratingsApplied: number;
  installsApplied: number;
  /** Applications per Idempotency-Key (requests without a key are not listed). */
  applied: Record<string, number>;
  /** How many times a POST with this Idempotency-Key took effect. */
  appliedByKey(key: string): number;
  /** The rating values applied for (user, skill), in order of application. */
  ratingHistory(userId: string, skillId: string): number[];
  wsConnections: number;
  eventsEmitted: number;
}

export class Counters {
  #requests = new Map<string, Map<number, number>>();
  #byStatus = new Map<number, number>();
  ratingsApplied = 0;
  installsApplied = 0;
  wsConnections = 0;
  eventsEmitted = 0;
  #byKey = new Map<string, number>();
  #ratings = new Map<string, number[]>();

  request(route: RouteName | 'control' | 'unknown', status: number): void {
    let m = this.#requests.get(route);
    if (!m) this.#requests.set(route, (m = new Map()));
    m.set(status, (m.get(status) ?? 0) + 1);
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1);
  }

  rating(key: string | undefined, userId: string, skillId: string, rating: number): void {
    this.ratingsApplied++;
    if (key !== undefined) this.#byKey.set(key, (this.#byKey.get(key) ?? 0) + 1);
    const k = `${userId}\u0000${skillId}`;
    const list = this.#ratings.get(k);
    if (list) list.push(rating);
    else this.#ratings.set(k, [rating]);
  }

  install(key: string | undefined): void {
    this.installsApplied++;
    if (key !== undefined) this.#byKey.set(key, (this.#byKey.get(key) ?? 0) + 1);
  }

  snapshot(): CountersSnapshot {
    const requests: Record<string, Record<string, number>> = {};
    for (const [route, m] of this.#requests) requests[route] = Object.fromEntries(m);
    const byKey = new Map(this.#byKey);
    const ratings = new Map([...this.#ratings].map(([k, v]) => [k, [...v]]));
    return {
      requests,
      byStatus: Object.fromEntries(this.#byStatus),
      ratingsApplied: this.ratingsApplied,
      installsApplied: this.installsApplied,
      applied: Object.fromEntries(byKey),
      appliedByKey: (key) => byKey.get(key) ?? 0,
      ratingHistory: (userId, skillId) => [...(ratings.get(`${userId}\u0000${skillId}`) ?? [])],
      wsConnections: this.wsConnections,
      eventsEmitted: this.eventsEmitted,
    };
  }

  /** Request counts only (the effect counts stay: they are the exactly-once evidence). */
  resetRequests(): void {
    this.#requests.clear();
    this.#byStatus.clear();
  }
}
