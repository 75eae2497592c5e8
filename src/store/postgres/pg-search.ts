/**
 * Skill search on PostgreSQL: the tsvector column (name, tags, description and a category
 * facet; built in JS by searchVector) with its GIN index. Text, category and tag become one
 * tsquery, so a filtered search is one GIN scan. The category lexeme is a hash, so the
 * category column is still compared exactly; the tag filter narrows rows through the tag words
 * in the vector, then checks the exact tag on the effective JSON (as the SQLite store does).
 * Every word of the text must occur as a word prefix, as in the SQLite store (the same
 * tokenizer, textTokens, builds both queries). The total comes from a window count in the
 * same statement, so a page costs one round trip.
 */
import type { SkillPageResult, SkillQuery } from '../types.js';
import { textTokens } from '../sqlite/skill-columns.js';
import { SKILL_COLUMNS, SKILL_FROM, categoryLexeme, toSkillRecord } from './pg-rows.js';
import type { Q } from './pg-sql.js';

/**
 * A tsquery literal `'word1':* & 'word2':*`, or null when the text has no words. Built with the
 * tokenizer that built the index (textTokens: letters and digits, lower-cased) and cast with
 * ::tsquery, so no text-search parser stands between the two sides. Tokens hold only letters
 * and digits, so they need no escaping.
 */
export function tsQueryText(text: string | undefined): string | null {
  const tokens = textTokens(text ?? '').filter((t) => t.length <= 200);
  return tokens.length === 0 ? null : tokens.map((t) => `'${t}':*`).join(' & ');
}

/** The tag's words as tag lexemes (weight B, whole words): narrows the rows the exact check reads. */
function tagTsQuery(tag: string | undefined): string | null {
  const tokens = textTokens(tag ?? '').filter((t) => t.length <= 200);
  return tokens.length === 0 ? null : tokens.map((t) => `'${t}':B`).join(' & ');
}

export async function searchSkills(q: Q, query: SkillQuery): Promise<SkillPageResult> {
  const ts = tsQueryText(query.text);
  const tagTs = tagTsQuery(query.tag);
  const categoryTs = query.category !== undefined ? `'${categoryLexeme(query.category)}'` : null;
  const filterParts = [ts, tagTs, categoryTs].filter((p): p is string => p !== null);
  const filterTs = filterParts.length > 0 ? filterParts.join(' & ') : null;
  const pageSize = Math.max(1, Math.floor(query.pageSize));
  const offset = (Math.max(1, Math.floor(query.page)) - 1) * pageSize;
  const where = q`WHERE true
    ${filterTs !== null ? q`AND s.search @@ ${filterTs}::tsquery` : q``}
    ${query.category !== undefined ? q`AND s.category = ${query.category}` : q``}
    ${query.skillType !== undefined ? q`AND s.skill_type = ${query.skillType}` : q``}
    ${
      query.tag !== undefined
        ? // Exact tag, case-insensitive, among the effective tags (the overrides' when they set tags).
          q`AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE
              WHEN s.local ? 'tags' THEN CASE WHEN jsonb_typeof(s.local->'tags') = 'array' THEN s.local->'tags' END
              WHEN jsonb_typeof(s.base->'tags') = 'array' THEN s.base->'tags' END) AS e(v)
            WHERE jsonb_typeof(e.v) = 'string' AND lower(e.v #>> '{}') = lower(${query.tag}))`
        : q``
    }`;
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
          ? q`ts_rank(s.search, ${ts}::tsquery) DESC, s.skill_id COLLATE "C"`
          : q`s.name COLLATE "C", s.skill_id COLLATE "C"`;
  }
  const filtered =
    filterTs !== null ||
    query.category !== undefined ||
    query.skillType !== undefined ||
    query.tag !== undefined;
  if (filtered) {
    // A filtered page evaluates its whole match set before sorting anyway (the text search
    // has to find every match to rank them): the window count adds nothing, and one
    // statement scans the index once instead of twice. The matches are ranked and counted
    // from the skills rows alone; only the page's rows are joined with their sync rows and
    // read in full (joining every match cost more than the search itself).
    const rows = await q`SELECT ${q.unsafe(SKILL_COLUMNS)}, m.total_count
      FROM (SELECT s.skill_id, count(*) OVER () AS total_count FROM skills s ${where}
        ORDER BY ${order} LIMIT ${pageSize} OFFSET ${offset}) m
      JOIN skills s ON s.skill_id = m.skill_id JOIN skill_sync f ON f.skill_id = s.skill_id
      ORDER BY ${order}`;
    if (rows.length > 0 || offset === 0) {
      return {
        items: rows.map((r) => toSkillRecord(r, query.now)),
        total: rows.length > 0 ? Number(rows[0]?.['total_count']) : 0,
      };
    }
    // Past the last page the window saw no row: count on its own.
    const [t] = await q`SELECT count(*) AS n FROM skills s ${where}`;
    return { items: [], total: Number(t?.['n'] ?? 0) };
  }
  // Browsing everything: the page walks a sort index and stops after a page; the total is a
  // separate count, sent in the same round trip.
  const [rows, [t]] = await Promise.all([
    q`SELECT ${q.unsafe(SKILL_COLUMNS)} FROM ${q.unsafe(SKILL_FROM)} ORDER BY ${order} LIMIT ${pageSize} OFFSET ${offset}`,
    q`SELECT count(*) AS n FROM skills s`,
  ]);
  return { items: rows.map((r) => toSkillRecord(r, query.now)), total: Number(t?.['n'] ?? 0) };
}
