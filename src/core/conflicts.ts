/**
 * Conflict detection and resolution between a user's local overrides and an incoming remote
 * skill: pure, no I/O, no clock.
 *
 * Detection is three-way against the base (the last remote payload applied). For each
 * overridden field:
 *   - the local side "changed" it when the override differs from the base;
 *   - the remote side "changed" it when the incoming value differs from the base.
 * Only a field changed on both sides to different values is a conflict. A plain upstream update
 * of a skill without overrides, or one whose overridden fields the remote left alone, is not
 * (the original service logged every upstream version bump as a conflict).
 *
 * Whatever the strategy, the incoming payload always becomes the new base (the store's digest
 * is over bases, so the cache stays equal to the remote); strategies only decide what happens to
 * the overrides layered on top:
 *   remote_wins  drop the overlapping overrides (the conflict is resolved by the strategy)
 *   local_wins   keep them (the base advances under them)
 *   merge        per field: one-sided changes take that side; dependency lists changed on both
 *                sides take the union; any other field changed on both sides stays local and
 *                becomes a manual conflict
 *   manual       keep every override and record (or update in place) the skill's open conflict
 *
 * Overrides that equal the incoming value are dropped: they no longer change what readers see,
 * and three-way detection would treat them as "unchanged locally" anyway, so dropping them
 * changes no later decision.
 */
import type { Skill } from '../remote/contract.js';
import type {
  ConflictStrategy,
  ConflictType,
  LocalSkillState,
  Severity,
  SkillOverrides,
  SkillUpsert,
} from '../store/types.js';

/** Fields an override never conflicts on: identity, server timestamps and the server's hash. */
const NEVER_CONFLICT: ReadonlySet<string> = new Set([
  'skill_id',
  'content_hash',
  'created_at',
  'updated_at',
  'deleted_at',
]);

export const DEPENDENCY_FIELDS: ReadonlySet<string> = new Set(['python_packages', 'npm_packages']);
const CRITICAL_FIELDS: ReadonlySet<string> = new Set(['code', 'command', 'local_files']);
const MEDIUM_FIELDS: ReadonlySet<string> = new Set(['parameters', 'metadata', 'env_vars']);

const SEVERITY_RANK: Record<Severity, number> = { LOW: 0, MEDIUM: 1, HIGH: 2, CRITICAL: 3 };
const TYPE_RANK: Record<ConflictType, number> = {
  VERSION_MISMATCH: 0,
  DEPENDENCY_CONFLICT: 1,
  CONTENT_MISMATCH: 2,
};

/** Who closes conflicts that a strategy resolved during a sync. */
export const SYNC_RESOLVER = 'sync';

export function fieldSeverity(field: string): Severity {
  if (CRITICAL_FIELDS.has(field)) return 'CRITICAL';
  if (field === 'version' || DEPENDENCY_FIELDS.has(field)) return 'HIGH';
  if (MEDIUM_FIELDS.has(field)) return 'MEDIUM';
  return 'LOW';
}

export function fieldConflictType(field: string): ConflictType {
  if (field === 'version') return 'VERSION_MISMATCH';
  if (DEPENDENCY_FIELDS.has(field)) return 'DEPENDENCY_CONFLICT';
  // content_hash, code (when no hash tells) and every other content field.
  return 'CONTENT_MISMATCH';
}

/**
 * The conflict's type and severity from the fields in conflict: severity is the highest of
 * the fields'; the type is the most severe field's, ties going version, dependencies, content.
 */
export function classifyConflict(fields: readonly string[]): { type: ConflictType; severity: Severity } {
  let best: string | undefined;
  for (const f of fields) {
    if (best === undefined) {
      best = f;
      continue;
    }
    const ds = SEVERITY_RANK[fieldSeverity(f)] - SEVERITY_RANK[fieldSeverity(best)];
    const dt = TYPE_RANK[fieldConflictType(best)] - TYPE_RANK[fieldConflictType(f)];
    if (ds > 0 || (ds === 0 && (dt > 0 || (dt === 0 && f < best)))) best = f;
  }
  if (best === undefined) return { type: 'CONTENT_MISMATCH', severity: 'LOW' };
  return { type: fieldConflictType(best), severity: fieldSeverity(best) };
}

/** Structural equality of JSON values (key order does not matter; undefined equals absent). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // Absent and null mean the same for a field.
  if (a === undefined || a === null) return b === undefined || b === null;
  if (b === undefined || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!jsonEqual(ao[k], bo[k])) return false;
  return true;
}

/**
 * Union of two dependency lists in a deterministic order: the remote list first (its order),
 * then the local entries it lacks (their order), without duplicates. Deterministic for given
 * inputs, and equal to the remote list exactly when the local side adds nothing.
 */
export function unionDependencies(remote: unknown, local: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const list of [remote, local]) {
    if (!Array.isArray(list)) continue;
    for (const v of list) {
      if (typeof v !== 'string' || seen.has(v)) continue;
      seen.add(v);
      out.push(v);
    }
  }
  return out;
}

/** A detected conflict (both sides changed these fields to different values). */
export interface DetectedConflict {
  type: ConflictType;
  severity: Severity;
  /** Every field changed on both sides, sorted. */
  fields: string[];
}

export interface Resolution {
  /** What to write: the incoming payload as the new base, and the overrides' fate. */
  upsert: SkillUpsert;
  /** The conflict found, or null. */
  detected: DetectedConflict | null;
  /**
   * 'none' no conflict; 'resolved' the strategy settled every conflicting field;
   * 'manual' at least one field awaits a decision (an open conflict is recorded or updated).
   */
  outcome: 'none' | 'resolved' | 'manual';
  /** The overrides after this resolution (null = none), for folding several updates of one skill. */
  nextLocal: SkillOverrides | null;
}

/** Compares incoming against the base for the overridden fields, and resolves. */
export function resolveIncoming(
  incoming: Skill,
  contentHash: string,
  state: LocalSkillState | undefined,
  strategy: ConflictStrategy,
): Resolution {
  if (state === undefined || Object.keys(state.local).length === 0) {
    return { upsert: { skill: incoming, contentHash }, detected: null, outcome: 'none', nextLocal: null };
  }
  const { base, local } = state;
  const next: SkillOverrides = {};
  const both: string[] = [];
  let changed = false;
  for (const key of Object.keys(local).sort()) {
    const mine = local[key];
    if (NEVER_CONFLICT.has(key)) {
      next[key] = mine;
      continue;
    }
    const theirs = incoming[key];
    if (jsonEqual(mine, theirs)) {
      changed = true; // redundant now: readers see the same value without it
      continue;
    }
    const localChanged = !jsonEqual(mine, base[key]);
    const remoteChanged = !jsonEqual(theirs, base[key]);
    if (!localChanged && remoteChanged) {
      // The override only restated the old base: the upstream change flows through.
      changed = true;
      continue;
    }
    if (localChanged && remoteChanged) both.push(key);
    next[key] = mine;
  }

  if (both.length === 0) {
    const nextLocal = Object.keys(next).length === 0 ? null : next;
    const upsert: SkillUpsert = { skill: incoming, contentHash };
    if (changed) upsert.local = nextLocal;
    return { upsert, detected: null, outcome: 'none', nextLocal };
  }

  const detected: DetectedConflict = { ...classifyConflict(both), fields: both };
  let pending: string[] = [];
  switch (strategy) {
    case 'remote_wins':
      for (const key of both) delete next[key];
      break;
    case 'local_wins':
      break;
    case 'merge':
      for (const key of both) {
        if (DEPENDENCY_FIELDS.has(key)) {
          const union = unionDependencies(incoming[key], local[key]);
          if (jsonEqual(union, incoming[key])) delete next[key];
          else next[key] = union;
        } else {
          pending.push(key);
        }
      }
      break;
    case 'manual':
      pending = both;
      break;
  }
  const nextLocal = Object.keys(next).length === 0 ? null : next;
  const upsert: SkillUpsert = { skill: incoming, contentHash };
  if (!jsonEqual(nextLocal, local)) upsert.local = nextLocal;
  if (pending.length === 0) {
    upsert.resolveOpenConflict = { resolution: strategy, resolvedBy: SYNC_RESOLVER };
    return { upsert, detected, outcome: 'resolved', nextLocal };
  }
  const { type, severity } = classifyConflict(pending);
  upsert.conflict = { type, severity, base, local, remote: incoming, strategy, fields: pending };
  return { upsert, detected: { type, severity, fields: pending }, outcome: 'manual', nextLocal };
}

export interface IncomingSkill {
  skill: Skill;
  contentHash: string;
}

export interface BatchResolution {
  items: SkillUpsert[];
  detected: number;
  resolved: number;
  manual: number;
}

/**
 * Resolves a batch (one listing page) against the local states read before it. A skill that
 * appears more than once is resolved against the outcome of its previous appearance, so one
 * batch gives exactly what the same updates applied one at a time give.
 */
export function resolveBatch(
  incoming: readonly IncomingSkill[],
  states: ReadonlyMap<string, LocalSkillState>,
  strategy: ConflictStrategy,
): BatchResolution {
  const out: BatchResolution = { items: [], detected: 0, resolved: 0, manual: 0 };
  // States after an earlier appearance in this batch; null = no overrides any more.
  let folded: Map<string, LocalSkillState | null> | null = null;
  for (const { skill, contentHash } of incoming) {
    const id = skill.skill_id;
    const prior = folded?.get(id);
    const state = prior === undefined ? states.get(id) : (prior ?? undefined);
    const r = resolveIncoming(skill, contentHash, state, strategy);
    out.items.push(r.upsert);
    if (r.detected) out.detected++;
    if (r.outcome === 'resolved') out.resolved++;
    else if (r.outcome === 'manual') out.manual++;
    if (state !== undefined || r.nextLocal !== null) {
      folded ??= new Map();
      folded.set(
        id,
        r.nextLocal === null ? null : { skillId: id, base: skill, local: r.nextLocal, contentHash },
      );
    }
  }
  return out;
}
