/**
 * The mutation engine's choices: which kind of change and which skill, from a seeded stream,
 * so a given seed replays the same sequence of changes.
 */
import { badSetting, show } from './options.js';
import type { Rng } from './rng.js';

export const MUTATION_KINDS = ['update', 'create', 'delete', 'rating', 'category'] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

/** Relative weights of each kind when the engine runs freely. */
const WEIGHTS: Record<MutationKind, number> = { update: 50, create: 15, delete: 10, rating: 20, category: 5 };

export interface MutationRecord {
  kind: MutationKind;
  /** skill_update / skill_delete / rating_update target, or the category name. */
  skillId?: string;
  category?: string;
  /** For category changes: what happened to it. */
  action?: 'update' | 'create' | 'delete';
}

export function checkKinds(kinds: unknown): MutationKind[] {
  if (kinds === undefined) return [...MUTATION_KINDS];
  if (!Array.isArray(kinds) || kinds.length === 0)
    throw badSetting('kinds', `must be a non-empty list of ${MUTATION_KINDS.join(', ')}`);
  for (const k of kinds)
    if (!(MUTATION_KINDS as readonly string[]).includes(k as string))
      throw badSetting('kinds', `unknown mutation kind ${show(k)}; known: ${MUTATION_KINDS.join(', ')}`);
  return kinds as MutationKind[];
}

export function pickKind(rng: Rng, kinds: readonly MutationKind[]): MutationKind {
  let total = 0;
  for (const k of kinds) total += WEIGHTS[k];
  let r = rng.next() * total;
  for (const k of kinds) {
    r -= WEIGHTS[k];
    if (r < 0) return k;
  }
  return kinds[kinds.length - 1] as MutationKind;
}
