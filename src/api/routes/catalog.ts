/**
 * The catalog, served from the local store whatever the remote's state: every answer says how
 * fresh it is (synced_at, age, stale) and that it came from the cache, so a caller can tell a
 * stale-but-available catalog from a fresh one.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { SORTS, type SkillQuery, type SyncState } from '../../store/types.js';
import type { AppDeps } from '../deps.js';
import { errorAnswer, sendError } from '../errors.js';
import type { RouteApp } from '../route-app.js';
import { CatalogFreshness, IdParams, PageQuery, Paging, SkillView, errors } from '../schemas.js';
import { catalogFreshness, skillViewJson, totalPages } from '../views.js';

/** Sends JSON text as it is: with a JSON content type Fastify runs no serializer on a string. */
function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(text);
}

const Filter = Type.String({ minLength: 1, maxLength: 200 });

const ListQuery = Type.Object(
  {
    query: Type.Optional(
      Type.String({ maxLength: 200, description: 'Text search over name, description and tags.' }),
    ),
    category: Type.Optional(Filter),
    skill_type: Type.Optional(Filter),
    tag: Type.Optional(Filter),
    sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)))),
    ...PageQuery,
  },
  { additionalProperties: false },
);

const CategoryView = Type.Object(
  {
    name: Type.String(),
    display_name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    icon_url: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    skill_count: Type.Integer({ description: 'Skills of this category in the local cache.' }),
    remote_skill_count: Type.Union([Type.Integer(), Type.Null()]),
    stale: Type.Boolean(),
    synced_at: Type.String(),
  },
  { additionalProperties: false },
);

export function registerCatalogRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;
  const ttlMs = (): number => deps.config.current.cacheTtlHours * 3_600_000;
  // The catalog-wide freshness changes once per run: read the sync state at most every 500 ms
  // instead of once per search (the hot read path then costs one query).
  let state: { at: number; value: Promise<SyncState> } | null = null;
  const syncState = (now: number): Promise<SyncState> => {
    if (state === null || now - state.at >= 500 || now < state.at) {
      const value = store.getSyncState();
      state = { at: now, value };
      value.catch(() => {
        state = null;
      });
    }
    return state.value;
  };

  app.get(
    '/api/marketplace/skills',
    {
      schema: {
        summary: 'Search the cached catalog.',
        tags: ['catalog'],
        querystring: ListQuery,
        response: {
          200: Type.Object(
            { items: Type.Array(SkillView), ...Paging, freshness: CatalogFreshness },
            { additionalProperties: false },
          ),
          ...errors(),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const now = clock.now();
      const page = q.page ?? 1;
      const pageSize = q.page_size ?? 20;
      const query: SkillQuery = { page, pageSize, now };
      const text = q.query?.trim();
      if (text) query.text = text;
      if (q.category !== undefined) query.category = q.category;
      if (q.skill_type !== undefined) query.skillType = q.skill_type;
      if (q.tag !== undefined) query.tag = q.tag;
      if (q.sort !== undefined) query.sort = q.sort;
      const [result, sync] = await Promise.all([store.searchSkills(query), syncState(now)]);
      // Written as JSON text (see skillViewJson): the schema above documents the answer.
      const items = result.items.map((r) => skillViewJson(r, now)).join(',');
      const freshness = JSON.stringify(catalogFreshness(sync, now, ttlMs()));
      return sendJsonText(
        reply,
        `{"items":[${items}],"page":${page},"page_size":${pageSize},"total":${result.total},` +
          `"total_pages":${totalPages(result.total, pageSize)},"freshness":${freshness}}`,
      );
    },
  );

  app.get(
    '/api/marketplace/skills/:id',
    {
      schema: {
        summary: 'One cached skill (local overrides applied) with its freshness.',
        tags: ['catalog'],
        params: IdParams,
        response: { 200: SkillView, ...errors(404) },
      },
    },
    async (request, reply) => {
      const now = clock.now();
      const record = await store.getSkill(request.params.id, now);
      if (record === null) {
        return sendError(
          reply,
          errorAnswer('SKILLSYNC_ERR_API_NOT_FOUND', 'No skill with that id in the catalog.'),
        );
      }
      return sendJsonText(reply, skillViewJson(record, now));
    },
  );

  app.get(
    '/api/marketplace/categories',
    {
      schema: {
        summary: 'Cached categories with their skill counts.',
        tags: ['catalog'],
        response: {
          200: Type.Object(
            { categories: Type.Array(CategoryView), freshness: CatalogFreshness },
            { additionalProperties: false },
          ),
          ...errors(),
        },
      },
    },
    async () => {
      const now = clock.now();
      const [categories, sync] = await Promise.all([store.listCategories(now), syncState(now)]);
      return {
        categories: categories.map((c) => ({
          name: c.name,
          display_name: c.data.display_name ?? null,
          description: c.data.description ?? null,
          icon_url: c.data.icon_url ?? null,
          skill_count: c.skillCount,
          remote_skill_count: typeof c.data.skill_count === 'number' ? c.data.skill_count : null,
          stale: c.stale,
          synced_at: new Date(c.fetchedAt).toISOString(),
        })),
        freshness: catalogFreshness(sync, now, ttlMs()),
      };
    },
  );
}
