/**
 * Skill search on PostgreSQL: the generated tsvector (name, tags, description; 'simple'
 * configuration) with its GIN index, plus btree filters on category and type and the GIN
 * index on tags. Every word of the text must occur as a word prefix, as in the SQLite store
 * (the same tokenizer, textTokens, builds both queries). The total comes from a window count
 * in the same statement, so a page costs one round trip.
 */
import type { SkillPageResult, SkillQuery } from '../types.js';
import { textTokens } from '../sqlite/skill-columns.js';
import { toSkillRecord } from './pg-rows.js';
import type { Q } from './pg-sql.js';

/** `word1:* & word2:*`, or null when the text has no words. Tokens are letters and digits only. */
export function tsQueryText(text: string | undefined): string | null {
  const tokens = textTokens(text ?? '');
  return tokens.length === 0 ? null : tokens.map((t) => `${t}:*`).join(' & ');
}

export async function searchSkills(q: Q, query: SkillQuery): Promise<SkillPageResult> {
  const ts = tsQueryText(query.text);
  const pageSize = Math.max(1, Math.floor(query.pageSize));
  const offset = (Math.max(1, Math.floor(query.page)) - 1) * pageSize;
  const where = q`WHERE true
    ${ts !== null ? q`AND s.search @@ to_tsquery('simple', ${ts})` : q``}
    ${query.category !== undefined ? q`AND s.category = ${query.category}` : q``}
    ${query.skillType !== undefined ? q`AND s.skill_type = ${query.skillType}` : q``}
    ${query.tag !== undefined ? q`AND s.tags @> ARRAY[${query.tag.toLowerCase()}]::text[]` : q``}`;
  let order;
  switch (query.sort) {
    case 'rating':
      order = q`s.average_rating DESC NULLS LAST, s.rating_count DESC NULLS LAST, s.skill_id COLLATE "C"`;
      break;
    case 'installs':
      order = q`s.install_count DESC NULLS LAST, s.skill_id COLLATE "C"`;
      break;
    case 'updated':
      order = q`s.remote_updated_ms DESC NULLS LAST, s.skill_id COLLATE "C"`;
      break;
    case 'name':
      order = q`s.name COLLATE "C", s.skill_id COLLATE "C"`;
      break;
    default:
      order =
        ts !== null
          ? q`ts_rank(s.search, to_tsquery('simple', ${ts})) DESC, s.skill_id COLLATE "C"`
          : q`s.name COLLATE "C", s.skill_id COLLATE "C"`;
  }
  const rows = await q`
    SELECT s.*, count(*) OVER () AS total_count,
      EXISTS (SELECT 1 FROM conflicts c WHERE c.skill_id = s.skill_id AND c.status = 'open') AS has_open_conflict
    FROM skills s ${where}
    ORDER BY ${order}
    LIMIT ${pageSize} OFFSET ${offset}`;
  let total: number;
  if (rows.length > 0) total = Number(rows[0]?.['total_count']);
  else if (offset === 0) total = 0;
  else {
    // Past the last page: the window count saw no row, so count on its own.
    const [t] = await q`SELECT count(*) AS n FROM skills s ${where}`;
    total = Number(t?.['n'] ?? 0);
  }
  return { items: rows.map((r) => toSkillRecord(r, query.now)), total };
}
