/**
 * Scripted, seeded faults. A FaultSpec is a list of rules; each rule names one fault, the
 * routes it applies to, and how often (`rate`, `after`, `times`). Decisions are a pure hash of
 * (seed, rule position, k-th matching request), so the same seed and the same request
 * sequence give the same fault sequence, whatever other rules and routes do.
 *
 * HTTP faults act per request; `ws_*` faults act per WebSocket connection or event.
 */
import { ROUTES, type RouteName } from './layouts.js';
import { badSetting, checkInt, checkNumber, show } from './options.js';
import { hash4, unit } from './rng.js';

export const HTTP_FAULTS = [
  'error',
  'rate_limit',
  'latency',
  'hang',
  'reset',
  'truncate',
  'malformed',
  'invalid_records',
  'ignore_page',
  'gone',
  'empty_catalog',
  'lost_response',
  'poison',
  'reset_dataset',
] as const;
export const WS_FAULTS = [
  'ws_close_every',
  'ws_half_open',
  'ws_flap',
  'ws_duplicate',
  'ws_out_of_order',
  'ws_malformed',
  'ws_oversized',
  'ws_unknown_type',
  'ws_ping',
] as const;
export const FAULT_NAMES = [...HTTP_FAULTS, ...WS_FAULTS] as const;
export type HttpFaultName = (typeof HTTP_FAULTS)[number];
export type WsFaultName = (typeof WS_FAULTS)[number];
export type FaultName = HttpFaultName | WsFaultName;

export interface FaultRule {
  fault: FaultName;
  /** HTTP faults: the routes it applies to (default: every route the fault makes sense on). */
  route?: RouteName | RouteName[];
  /** Probability per matching request / connection / event, 0..1. Default 1. */
  rate?: number;
  /** Let the first N matching requests (or connections) pass. */
  after?: number;
  /** Fire at most N times, then stay quiet. */
  times?: number;
  /** `error`: 500, 502 or 503 (default 503). `poison`: 400, 409 or 422 (default 422). */
  status?: number;
  /** `rate_limit`: Retry-After in seconds (default 1). */
  retryAfterSeconds?: number;
  /** `rate_limit`: send Retry-After as seconds (default) or as an HTTP date. */
  retryAfterFormat?: 'seconds' | 'http_date';
  /** `latency`: added delay. */
  latencyMs?: number;
  /** `invalid_records`: fraction of the records in a page made invalid (default 0.1). */
  invalidRate?: number;
  /** `poison`: the skill and/or user that always fails. */
  skillId?: string;
  userId?: string;
  /** `ws_close_every`, `ws_ping`: period. */
  everyMs?: number;
  /** `ws_close_every`, `ws_flap`: close code 1000, 1001 or 1011 (default 1001 / 1011). */
  code?: number;
  /** `ws_half_open`: go half-open this long after the connection opens (default 0). */
  afterMs?: number;
}

export interface FaultSpec {
  /** Seed of the fault decisions; defaults to the simulator's seed. */
  seed?: number;
  rules: FaultRule[];
}

const COMMON = ['fault', 'route', 'rate', 'after', 'times'];
const ALLOWED: Record<FaultName, readonly string[]> = {
  error: [...COMMON, 'status'],
  rate_limit: [...COMMON, 'retryAfterSeconds', 'retryAfterFormat'],
  latency: [...COMMON, 'latencyMs'],
  hang: COMMON,
  reset: COMMON,
  truncate: COMMON,
  malformed: COMMON,
  invalid_records: [...COMMON, 'invalidRate'],
  ignore_page: COMMON,
  gone: COMMON,
  empty_catalog: COMMON,
  lost_response: COMMON,
  poison: [...COMMON, 'status', 'skillId', 'userId'],
  reset_dataset: COMMON,
  ws_close_every: ['fault', 'rate', 'after', 'times', 'everyMs', 'code'],
  ws_half_open: ['fault', 'rate', 'after', 'times', 'afterMs'],
  ws_flap: ['fault', 'rate', 'after', 'times', 'code'],
  ws_duplicate: ['fault', 'rate', 'after', 'times'],
  ws_out_of_order: ['fault', 'rate', 'after', 'times'],
  ws_malformed: ['fault', 'rate', 'after', 'times'],
  ws_oversized: ['fault', 'rate', 'after', 'times'],
  ws_unknown_type: ['fault', 'rate', 'after', 'times'],
  ws_ping: ['fault', 'everyMs'],
};

/** Routes a rule may name beyond FAULT_ROUTES (used only when named). */
const EXTRA_ROUTES: Partial<Record<HttpFaultName, readonly RouteName[]>> = {
  invalid_records: ['categories'],
};

/** Routes a fault applies to when the rule names none, and (with EXTRA_ROUTES) the ones it may name. */
const FAULT_ROUTES: Partial<Record<HttpFaultName, readonly RouteName[]>> = {
  invalid_records: ['list_skills'],
  ignore_page: ['list_skills'],
  gone: ['list_skills'],
  empty_catalog: ['list_skills', 'categories'],
  lost_response: ['rate', 'install'],
  poison: ['get_skill', 'rate', 'install'],
};

export function isWsFault(name: FaultName): name is WsFaultName {
  return name.startsWith('ws_');
}

/** Validates a spec (or a bare rule list); throws SKILLSYNC_ERR_SIM_BAD_SETTING on any problem. */
export function validateFaultSpec(input: unknown): FaultSpec {
  const raw: unknown = Array.isArray(input) ? { rules: input } : input;
  if (typeof raw !== 'object' || raw === null)
    throw badSetting('faults', 'must be {seed?, rules: [...]} or a list of rules');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj))
    if (k !== 'seed' && k !== 'rules') throw badSetting(`faults.${k}`, 'unknown key (expected seed, rules)');
  const spec: FaultSpec = { rules: [] };
  if (obj['seed'] !== undefined) spec.seed = checkInt('faults.seed', obj['seed'], 0, 0xffff_ffff);
  const rules = obj['rules'];
  if (!Array.isArray(rules)) throw badSetting('faults.rules', 'must be a list of rules');
  rules.forEach((r, i) => spec.rules.push(validateRule(r, `faults.rules[${i}]`)));
  return spec;
}

function validateRule(raw: unknown, at: string): FaultRule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw badSetting(at, 'a rule must be an object');
  const r = raw as Record<string, unknown>;
  const name = r['fault'];
  if (typeof name !== 'string' || !(FAULT_NAMES as readonly string[]).includes(name))
    throw badSetting(`${at}.fault`, `unknown fault ${show(name)}; known: ${FAULT_NAMES.join(', ')}`);
  const fault = name as FaultName;
  const allowed = ALLOWED[fault];
  for (const k of Object.keys(r))
    if (!allowed.includes(k))
      throw badSetting(`${at}.${k}`, `not a setting of fault ${fault}; allowed: ${allowed.join(', ')}`);
  const out: FaultRule = { fault };
  if (r['route'] !== undefined) {
    const list = Array.isArray(r['route']) ? (r['route'] as unknown[]) : [r['route']];
    const defaults = FAULT_ROUTES[fault as HttpFaultName];
    const permitted = defaults ? [...defaults, ...(EXTRA_ROUTES[fault as HttpFaultName] ?? [])] : ROUTES;
    for (const route of list) {
      if (typeof route !== 'string' || !(permitted as readonly string[]).includes(route))
        throw badSetting(
          `${at}.route`,
          `fault ${fault} applies to ${permitted.join(', ')}; got ${show(route)}`,
        );
    }
    out.route = list as RouteName[];
  }
  if (r['rate'] !== undefined) out.rate = checkNumber(`${at}.rate`, r['rate'], 0, 1);
  if (r['after'] !== undefined) out.after = checkInt(`${at}.after`, r['after'], 0, 1e9);
  if (r['times'] !== undefined) out.times = checkInt(`${at}.times`, r['times'], 0, 1e9);
  if (r['status'] !== undefined) {
    const ok = fault === 'error' ? [500, 502, 503] : [400, 409, 422];
    if (!ok.includes(r['status'] as number))
      throw badSetting(`${at}.status`, `must be one of ${ok.join(', ')}, got ${show(r['status'])}`);
    out.status = r['status'] as number;
  }
  if (r['retryAfterSeconds'] !== undefined)
    out.retryAfterSeconds = checkInt(`${at}.retryAfterSeconds`, r['retryAfterSeconds'], 0, 86_400);
  if (r['retryAfterFormat'] !== undefined) {
    if (r['retryAfterFormat'] !== 'seconds' && r['retryAfterFormat'] !== 'http_date')
      throw badSetting(
        `${at}.retryAfterFormat`,
        `must be seconds or http_date, got ${show(r['retryAfterFormat'])}`,
      );
    out.retryAfterFormat = r['retryAfterFormat'];
  }
  if (r['latencyMs'] !== undefined) out.latencyMs = checkInt(`${at}.latencyMs`, r['latencyMs'], 0, 600_000);
  if (r['invalidRate'] !== undefined)
    out.invalidRate = checkNumber(`${at}.invalidRate`, r['invalidRate'], 0, 1);
  for (const k of ['skillId', 'userId'] as const) {
    if (r[k] === undefined) continue;
    if (typeof r[k] !== 'string' || r[k].length === 0)
      throw badSetting(`${at}.${k}`, 'must be a non-empty string');
    out[k] = r[k];
  }
  if (fault === 'poison' && out.skillId === undefined && out.userId === undefined)
    throw badSetting(at, 'fault poison needs skillId and/or userId');
  if (r['everyMs'] !== undefined) out.everyMs = checkInt(`${at}.everyMs`, r['everyMs'], 1, 86_400_000);
  if ((fault === 'ws_close_every' || fault === 'ws_ping') && out.everyMs === undefined)
    throw badSetting(`${at}.everyMs`, `fault ${fault} needs everyMs (1..86400000)`);
  if (r['code'] !== undefined) {
    if (![1000, 1001, 1011].includes(r['code'] as number))
      throw badSetting(`${at}.code`, `must be 1000, 1001 or 1011, got ${show(r['code'])}`);
    out.code = r['code'] as number;
  }
  if (r['afterMs'] !== undefined) out.afterMs = checkInt(`${at}.afterMs`, r['afterMs'], 0, 86_400_000);
  return out;
}

/**
 * CLI form: `name[:key=value,...]`, e.g. `error:status=503,rate=0.1`,
 * `rate_limit:retryAfterSeconds=2,retryAfterFormat=http_date`, `latency:latencyMs=50,route=list_skills|get_skill`.
 */
export function parseFaultArg(text: string): FaultRule {
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  const rule: Record<string, unknown> = { fault: name.trim() };
  if (colon >= 0) {
    for (const part of text.slice(colon + 1).split(',')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq < 0) throw badSetting(`fault ${name}`, `expected key=value, got ${show(part)}`);
      const key = part.slice(0, eq).trim();
      const value = part.slice(eq + 1).trim();
      if (key === 'route') rule[key] = value.split('|');
      else if (/^-?\d+(\.\d+)?$/.test(value)) rule[key] = Number(value);
      else rule[key] = value;
    }
  }
  return validateRule(rule, `fault ${name}`);
}

export interface FaultEvent {
  /** Position in the fault log. */
  n: number;
  fault: FaultName;
  rule: number;
  route?: RouteName;
  connection?: number;
}

export interface RequestFacts {
  route: RouteName;
  /** A listing with `cursor` or `updated_since`. */
  keyed: boolean;
  skillId?: string | undefined;
  userId?: string | undefined;
}

export interface FiredRule {
  index: number;
  rule: FaultRule;
  /** Per-rule decision counter, for further seeded choices (which records to spoil). */
  k: number;
}

/** The live fault state: rules, their counters, the log. */
export class FaultEngine {
  readonly spec: FaultSpec;
  readonly seed: number;
  readonly #matches: number[];
  readonly #fired: number[];
  readonly log: FaultEvent[] = [];
  #logged = 0;
  static readonly LOG_LIMIT = 10_000;

  constructor(spec: FaultSpec, defaultSeed: number) {
    this.spec = spec;
    this.seed = spec.seed ?? defaultSeed;
    this.#matches = spec.rules.map(() => 0);
    this.#fired = spec.rules.map(() => 0);
  }

  get empty(): boolean {
    return this.spec.rules.length === 0;
  }

  #record(e: Omit<FaultEvent, 'n'>): void {
    if (this.log.length < FaultEngine.LOG_LIMIT) this.log.push({ n: this.#logged, ...e });
    this.#logged++;
  }

  /** One seeded yes/no for rule `index` on its next matching occasion. */
  #decide(index: number, rule: FaultRule): { fire: boolean; k: number } {
    const k = this.#matches[index] as number;
    this.#matches[index] = k + 1;
    if (rule.after !== undefined && k < rule.after) return { fire: false, k };
    if (rule.times !== undefined && (this.#fired[index] as number) >= rule.times) return { fire: false, k };
    const rate = rule.rate ?? 1;
    const fire = rate >= 1 || unit(hash4(this.seed, index, k, 0x51)) < rate;
    if (fire) this.#fired[index] = (this.#fired[index] as number) + 1;
    return { fire, k };
  }

  /** Rules that fire for this request, in rule order. Every matching rule's counter advances. */
  forRequest(facts: RequestFacts): FiredRule[] {
    const out: FiredRule[] = [];
    this.spec.rules.forEach((rule, index) => {
      if (isWsFault(rule.fault)) return;
      const routes = rule.route ?? FAULT_ROUTES[rule.fault as HttpFaultName];
      if (routes && !(routes as readonly string[]).includes(facts.route)) return;
      if (rule.fault === 'gone' && !facts.keyed) return;
      if (rule.fault === 'poison') {
        const hit =
          (rule.skillId === undefined || rule.skillId === facts.skillId) &&
          (rule.userId === undefined || rule.userId === facts.userId);
        if (!hit) return;
      }
      const d = this.#decide(index, rule);
      if (!d.fire) return;
      this.#record({ fault: rule.fault, rule: index, route: facts.route });
      out.push({ index, rule, k: d.k });
    });
    return out;
  }

  /** Connection-level WS faults that fire for a new connection (flap, half-open, close-every). */
  forConnection(connection: number): FiredRule[] {
    const out: FiredRule[] = [];
    this.spec.rules.forEach((rule, index) => {
      if (rule.fault !== 'ws_flap' && rule.fault !== 'ws_half_open' && rule.fault !== 'ws_close_every')
        return;
      const d = this.#decide(index, rule);
      if (!d.fire) return;
      this.#record({ fault: rule.fault, rule: index, connection });
      out.push({ index, rule, k: d.k });
    });
    return out;
  }

  /** Event-level WS faults for one event sent on one connection. */
  forEvent(connection: number): FiredRule[] {
    const out: FiredRule[] = [];
    this.spec.rules.forEach((rule, index) => {
      switch (rule.fault) {
        case 'ws_duplicate':
        case 'ws_out_of_order':
        case 'ws_malformed':
        case 'ws_oversized':
        case 'ws_unknown_type': {
          const d = this.#decide(index, rule);
          if (!d.fire) return;
          this.#record({ fault: rule.fault, rule: index, connection });
          out.push({ index, rule, k: d.k });
          return;
        }
        default:
          return;
      }
    });
    return out;
  }

  /** Server ping period, if a ws_ping rule is set. */
  pingEveryMs(): number | undefined {
    return this.spec.rules.find((r) => r.fault === 'ws_ping')?.everyMs;
  }

  /** Seeded choice in [0,1) for sub-decisions of a fired rule (which records to spoil). */
  unit(fired: FiredRule, j: number): number {
    return unit(hash4(this.seed, fired.index, fired.k, 0x1000 + j));
  }
}
