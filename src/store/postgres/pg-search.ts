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

/**
 * ORDER BY of a sort over the rows of `alias` (skills `s` when browsing, the matches `m` and
 * the page `p` of a filtered search, which carry the sort columns and `rank`). Ties by
 * skill_id in code-unit (C) order; text searches rank by relevance unless a sort is asked.
 */
function orderBy(q: Q, sort: SkillQuery['sort'], ranked: boolean, alias: 's' | 'm' | 'p') {
  const a = alias;
  switch (sort) {
    case 'rating':
      return q.unsafe(
        `${a}.average_rating DESC NULLS LAST, ${a}.rating_count DESC NULLS LAST, ${a}.skill_id COLLATE "C"`,
      );
    case 'installs':
      return q.unsafe(`${a}.install_count DESC NULLS LAST, ${a}.skill_id COLLATE "C"`);
    case 'updated':
      return q.unsafe(`${a}.remote_updated_ms DESC NULLS LAST, ${a}.skill_id COLLATE "C"`);
    case 'name':
      return q.unsafe(`${a}.name COLLATE "C", ${a}.skill_id COLLATE "C"`);
    default:
      return ranked
        ? q.unsafe(`${a}.rank DESC, ${a}.skill_id COLLATE "C"`)
        : q.unsafe(`${a}.name COLLATE "C", ${a}.skill_id COLLATE "C"`);
  }
}

export async function searchSkills(q: Q, rawQuery: SkillQuery): Promise<SkillPageResult> {
  // An empty tag is no tag filter, as in the SQLite store.
  const query: SkillQuery = { ...rawQuery };
  if (query.tag === '') delete query.tag;
  const ts = tsQueryText(query.text);
  const tagTs = tagTsQuery(query.tag);
  const categoryTs = query.category !== undefined ? `'${categoryLexeme(query.category)}'` : null;
  const filterParts = [ts, tagTs, categoryTs].filter((p): p is string => p !== null);
  const filterTs = filterParts.length > 0 ? filterParts.join(' & ') : null;
  const pageSize = Math.max(1, Math.floor(query.pageSize));
  const offset = (Math.max(1, Math.floor(query.page)) - 1) * pageSize;
  // The tsquery goes in as `(SELECT $n)`, a value the planner cannot see. The plan then never
  // depends on the words searched: with them visible, a prefix the planner guessed common made
  // a search sorted by rating walk the rating index testing every row (0.3-0.5 s for a rare
  // word on 100,000 skills, against ~5 ms through the GIN index). And a plan that is the same
  // for every search is prepared once (generic) instead of planned again per search (~10%).
  const where = q`WHERE true
    ${filterTs !== null ? q`AND s.search @@ (SELECT ${filterTs}::tsquery)` : q``}
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
  const ranked = ts !== null && query.sort === undefined;
  const filtered =
    filterTs !== null ||
    query.category !== undefined ||
    query.skillType !== undefined ||
    query.tag !== undefined;
  if (filtered) {
    // A filtered page evaluates its whole match set before sorting anyway (the text search
    // has to find every match to rank them, the total counts them): the matches are collected
    // first (MATERIALIZED: the sort can never turn the scan into a walk of a sort index), with
    // the sort columns only; the page is sorted and counted from them, and only its rows are
    // joined with their sync rows and read in full (joining every match cost more than the
    // search itself).
    const rows = await q`
      WITH m AS MATERIALIZED (
        SELECT s.skill_id, s.name, s.average_rating, s.rating_count, s.install_count, s.remote_updated_ms,
          ${ranked ? q`ts_rank(s.search, (SELECT ${ts}::tsquery))` : q`0`} AS rank
        FROM skills s ${where}
      )
      SELECT ${q.unsafe(SKILL_COLUMNS)}, p.total_count
      FROM (SELECT m.*, count(*) OVER () AS total_count FROM m
        ORDER BY ${orderBy(q, query.sort, ranked, 'm')} LIMIT ${pageSize} OFFSET ${offset}) p
      JOIN skills s ON s.skill_id = p.skill_id JOIN skill_sync f ON f.skill_id = s.skill_id
      ORDER BY ${orderBy(q, query.sort, ranked, 'p')}`;
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
    q`SELECT ${q.unsafe(SKILL_COLUMNS)} FROM ${q.unsafe(SKILL_FROM)}
      ORDER BY ${orderBy(q, query.sort, false, 's')} LIMIT ${pageSize} OFFSET ${offset}`,
    q`SELECT count(*) AS n FROM skills s`,
  ]);
  return { items: rows.map((r) => toSkillRecord(r, query.now)), total: Number(t?.['n'] ?? 0) };
}
