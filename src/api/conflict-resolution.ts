/**
 * Operator decisions on open conflicts, computed with the same pure rules the engine uses
 * (src/core/conflicts.ts). A conflict holds the base, the overrides and the remote version at
 * detection; the store's base is already the remote one, so a decision only says what the
 * overrides become:
 *   remote_wins  drop the overrides of the conflicting fields
 *   local_wins   keep the overrides
 *   merge        dependency lists take the union; any other field changed on both sides keeps
 *                the local value (the operator asked for a decision, so nothing stays open)
 *   explicit     `data` gives the final value of fields: equal to remote -> no override,
 *                otherwise an override
 */
import { jsonEqual, resolveIncoming } from '../core/conflicts.js';
import type { ConflictRecord, SkillOverrides } from '../store/types.js';

export type Decision =
  { strategy: 'remote_wins' | 'local_wins' | 'merge' } | { data: Record<string, unknown> };

const IGNORED = new Set(['skill_id', 'content_hash', 'created_at', 'updated_at', 'deleted_at']);

/** The overrides a decision leaves (null = none). `currentLocal` is the skill's overrides now. */
export function decide(
  conflict: ConflictRecord,
  currentLocal: SkillOverrides | null,
  decision: Decision,
): { local: SkillOverrides | null; resolution: 'remote_wins' | 'local_wins' | 'merge' | 'explicit' } {
  const local: SkillOverrides = { ...(currentLocal ?? conflict.local) };
  if ('data' in decision) {
    for (const [field, value] of Object.entries(decision.data)) {
      if (IGNORED.has(field)) continue;
      if (jsonEqual(value, conflict.remote[field])) delete local[field];
      else local[field] = value;
    }
    return { local: Object.keys(local).length === 0 ? null : local, resolution: 'explicit' };
  }
  const state = { skillId: conflict.skillId, base: conflict.base, local, contentHash: '' };
  // 'merge' leaves non-dependency fields pending with their local value: exactly "keep local".
  const result = resolveIncoming(conflict.remote, '', state, decision.strategy);
  return { local: result.nextLocal, resolution: decision.strategy };
}

export interface FieldDiff {
  field: string;
  base: unknown;
  local: unknown;
  remote: unknown;
  changed_locally: boolean;
  changed_remotely: boolean;
  conflicting: boolean;
}

/** Field-by-field view of base, local (effective) and remote: only fields where something differs. */
export function diffConflict(conflict: ConflictRecord): FieldDiff[] {
  const { base, local, remote } = conflict;
  const keys = new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)]);
  const out: FieldDiff[] = [];
  for (const field of [...keys].sort()) {
    if (IGNORED.has(field)) continue;
    const b = base[field];
    const hasLocal = Object.prototype.hasOwnProperty.call(local, field);
    const l = hasLocal ? local[field] : b;
    const r = remote[field];
    const changedLocally = hasLocal && !jsonEqual(l, b);
    const changedRemotely = !jsonEqual(r, b);
    if (!changedLocally && !changedRemotely) continue;
    out.push({
      field,
      base: b ?? null,
      local: l ?? null,
      remote: r ?? null,
      changed_locally: changedLocally,
      changed_remotely: changedRemotely,
      conflicting: changedLocally && changedRemotely && !jsonEqual(l, r),
    });
  }
  return out;
}
