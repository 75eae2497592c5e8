/**
 * Pure helpers shared by the store's write and read paths: the effective skill, the version
 * guard's time comparison, the indexed read columns and the FTS5 query built from user text.
 * No I/O here (PostgreSQL may reuse effectiveSkill / isOlderRemote).
 */
import type { Skill } from '../../remote/contract.js';
import type { SkillOverrides } from '../types.js';

/** Base with the local overrides' top-level keys on top. The id always stays the base's. */
export function effectiveSkill(base: Skill, local: SkillOverrides | null): Skill {
  if (local === null) return base;
  return { ...base, ...local, skill_id: base.skill_id, name: pickName(local, base) };
}

function pickName(local: SkillOverrides, base: Skill): string {
  const n = local['name'];
  return typeof n === 'string' ? n : base.name;
}

/** Epoch ms of a remote ISO timestamp, or null when absent or unreadable. */
export function remoteTimeMs(iso: unknown): number | null {
  if (typeof iso !== 'string' || iso === '') return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The version guard: true when the incoming remote time is strictly older than the stored one.
 * Equal times are not older (the later arrival wins a tie); a missing time on either side
 * never counts as older, so the write goes ahead.
 */
export function isOlderRemote(incoming: unknown, stored: unknown): boolean {
  const a = remoteTimeMs(incoming);
  const b = remoteTimeMs(stored);
  return a !== null && b !== null && a < b;
}

export interface SkillColumns {
  name: string;
  category: string | null;
  skillType: string | null;
  version: string | null;
  averageRating: number | null;
  ratingCount: number | null;
  installCount: number | null;
  /** FTS columns. */
  ftsDescription: string;
  ftsTags: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function skillColumns(effective: Skill): SkillColumns {
  const tags = Array.isArray(effective.tags) ? effective.tags.filter((t) => typeof t === 'string') : [];
  return {
    name: typeof effective.name === 'string' ? effective.name : String(effective.name ?? ''),
    category: str(effective.category),
    skillType: str(effective.skill_type),
    version: str(effective.version),
    averageRating: num(effective.average_rating),
    ratingCount: num(effective.rating_count),
    installCount: num(effective.install_count),
    ftsDescription: str(effective.description) ?? '',
    // A separator keeps one tag's last word and the next tag's first word from forming a phrase.
    ftsTags: tags.join(' ; '),
  };
}

/** Words of user text as the FTS tokenizer sees them (letters and digits). */
export function textTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * FTS5 query for a search: every word of `text` must occur (as a prefix) in name, description
 * or tags, and the `tag` words must occur as a phrase in tags (the exact tag is then checked
 * on the JSON). Returns null when there is nothing to match on.
 */
export function ftsQuery(text: string | undefined, tag: string | undefined): string | null {
  const parts: string[] = [];
  for (const t of textTokens(text ?? '')) parts.push(`"${t}"*`);
  const tagTokens = textTokens(tag ?? '');
  if (tagTokens.length > 0) parts.push(`tags : "${tagTokens.join(' ')}"`);
  return parts.length === 0 ? null : parts.join(' AND ');
}
