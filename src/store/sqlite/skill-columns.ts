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
  /** The FTS document: words of name, description and tags, then the facet tokens. */
  ftsBody: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function skillColumns(effective: Skill): SkillColumns {
  const tags = Array.isArray(effective.tags) ? effective.tags.filter((t) => typeof t === 'string') : [];
  const name = typeof effective.name === 'string' ? effective.name : String(effective.name ?? '');
  const category = str(effective.category);
  const skillType = str(effective.skill_type);
  let body = `${name} ${str(effective.description) ?? ''} ${tags.join(' ')}`;
  if (category !== null && category !== '') body += ` ${facetToken('c', category)}`;
  if (skillType !== null && skillType !== '') body += ` ${facetToken('t', skillType)}`;
  for (const t of tags) if (t !== '') body += ` ${facetToken('g', t.toLowerCase())}`;
  return {
    name,
    category,
    skillType,
    version: str(effective.version),
    averageRating: num(effective.average_rating),
    ratingCount: num(effective.rating_count),
    installCount: num(effective.install_count),
    ftsBody: body,
  };
}

/** Facet tokens start with this; user words that could prefix-match them are matched whole. */
const FACET_PREFIX = 'qqf';

/**
 * One FTS token standing for an exact facet value (c: category, t: skill type, g: tag,
 * lower-cased): a marker and the value's UTF-8 in hex, letters and digits only, so the
 * tokenizer keeps it whole and no word of a text can equal it.
 */
export function facetToken(kind: 'c' | 't' | 'g', value: string): string {
  const key = kind + value;
  let token = facetTokens.get(key);
  if (token === undefined) {
    token = FACET_PREFIX + kind + Buffer.from(value, 'utf8').toString('hex');
    // Categories, types and tags repeat across a catalog: a small memo saves two buffer
    // conversions per facet on the write path. Bounded so odd data cannot grow it forever.
    if (facetTokens.size >= 20_000) facetTokens.clear();
    facetTokens.set(key, token);
  }
  return token;
}
const facetTokens = new Map<string, string>();

/** Words of user text as the FTS tokenizer sees them (letters and digits). */
export function textTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * FTS5 query for a search: every word of `text` must occur (as a word prefix) in the name,
 * description or tags; `tag`, category and skill type are exact facet tokens. Returns null
 * when there is neither a word nor a tag (category / type alone use the category index).
 */
export function ftsQuery(
  filter: {
    text?: string;
    tag?: string;
    category?: string;
    skillType?: string;
  },
  /**
   * Optional: the indexed terms starting with an ASCII word, or null when unknown (too many,
   * or not looked up). A short list replaces the prefix query by an OR of whole terms, which
   * FTS5 evaluates without building the prefix's merged posting list (about 3x cheaper).
   */
  prefixTerms?: (word: string) => readonly string[] | null,
): string | null {
  const parts: string[] = [];
  for (const w of textTokens(filter.text ?? '')) {
    // "q"* would match every facet token: such words must match whole.
    const whole = FACET_PREFIX.startsWith(w) || w.startsWith(FACET_PREFIX);
    if (whole) {
      parts.push(`"${w}"`);
      continue;
    }
    // Only plain ASCII words: the tokenizer folds diacritics in a query term, which a lookup
    // of the raw word would not.
    const terms = prefixTerms !== undefined && /^[a-z0-9]+$/.test(w) ? prefixTerms(w) : null;
    if (terms === null || terms.length === 0) parts.push(`"${w}"*`);
    else parts.push(`(${terms.map((t) => `"${t.replaceAll('"', '""')}"`).join(' OR ')})`);
  }
  if (filter.tag !== undefined && filter.tag !== '')
    parts.push(`"${facetToken('g', filter.tag.toLowerCase())}"`);
  if (parts.length === 0) return null;
  if (filter.category !== undefined && filter.category !== '')
    parts.push(`"${facetToken('c', filter.category)}"`);
  if (filter.skillType !== undefined && filter.skillType !== '')
    parts.push(`"${facetToken('t', filter.skillType)}"`);
  return parts.join(' AND ');
}
