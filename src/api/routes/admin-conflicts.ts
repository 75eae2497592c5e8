/** Admin: conflicts between local overrides and remote updates. */
import { Type } from 'typebox';
import { SkillsyncError } from '../../core/errors.js';
import { CONFLICT_TYPES, SEVERITIES, type ConflictRecord } from '../../store/types.js';
import { decide, diffConflict, type Decision } from '../conflict-resolution.js';
import type { AppDeps } from '../deps.js';
import type { RouteApp } from '../route-app.js';
import {
  ConflictView,
  FieldDiff,
  JsonObject,
  NumericIdParams,
  PageQuery,
  Paging,
  adminErrors,
  overrideTypeError,
} from '../schemas.js';
import { conflictView, totalPages } from '../views.js';

const Strategy = Type.Union([Type.Literal('remote_wins'), Type.Literal('local_wins'), Type.Literal('merge')]);
const ResolveBody = Type.Union([
  Type.Object({ strategy: Strategy }, { additionalProperties: false }),
  Type.Object(
    {
      data: Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        minProperties: 1,
        maxProperties: 100,
      }),
    },
    { additionalProperties: false },
  ),
]);
const RESOLVED_BY = 'admin';

const ConflictDetail = Type.Object(
  {
    ...ConflictView.properties,
    diff: Type.Array(FieldDiff),
    base: JsonObject,
    local: JsonObject,
    remote: JsonObject,
  },
  { additionalProperties: false },
);

export function registerAdminConflictRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;
  const common = { tags: ['admin'], security: [{ admin: [] }] };

  async function mustGet(id: number): Promise<ConflictRecord> {
    const c = await store.getConflict(id);
    if (c === null)
      throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_NOT_FOUND', `No conflict with id ${id}.`);
    return c;
  }
  async function currentLocal(c: ConflictRecord) {
    return (await store.getSkill(c.skillId, clock.now()))?.local ?? null;
  }

  app.get(
    '/api/admin/conflicts',
    {
      schema: {
        ...common,
        summary: 'Conflicts, filtered (default: open), paginated, with the true total.',
        querystring: Type.Object(
          {
            status: Type.Optional(
              Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')]),
            ),
            severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
            type: Type.Optional(Type.Union(CONFLICT_TYPES.map((t) => Type.Literal(t)))),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(ConflictView), ...Paging }, { additionalProperties: false }),
          ...adminErrors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = q.page ?? 1;
      const pageSize = q.page_size ?? 20;
      const status = q.status ?? 'open';
      const { items, total } = await store.listConflicts({
        ...(status === 'all' ? {} : { status }),
        ...(q.severity ? { severity: q.severity } : {}),
        ...(q.type ? { type: q.type } : {}),
        limit: pageSize,
        offset: (page - 1) * pageSize,
      });
      return {
        items: items.map(conflictView),
        page,
        page_size: pageSize,
        total,
        total_pages: totalPages(total, pageSize),
      };
    },
  );

  app.get(
    '/api/admin/conflicts/:id',
    {
      schema: {
        ...common,
        summary: 'One conflict with a field-by-field diff of base, local and remote.',
        params: NumericIdParams,
        response: { 200: ConflictDetail, ...adminErrors(404) },
      },
    },
    async (request) => {
      const c = await mustGet(request.params.id);
      return { ...conflictView(c), diff: diffConflict(c), base: c.base, local: c.local, remote: c.remote };
    },
  );

  app.post(
    '/api/admin/conflicts/:id/resolve',
    {
      schema: {
        ...common,
        summary: 'Resolve a conflict with a strategy or explicit field values; updates the store.',
        params: NumericIdParams,
        body: ResolveBody,
        response: { 200: ConflictView, ...adminErrors(404, 409) },
      },
    },
    async (request) => {
      const c = await mustGet(request.params.id);
      if (c.status !== 'open')
        throw new SkillsyncError('SKILLSYNC_ERR_CONFLICT_RESOLVED', `Conflict ${c.id} is already resolved.`);
      const typeError = 'data' in request.body ? overrideTypeError(request.body.data, 'body/data') : null;
      if (typeError !== null) throw new SkillsyncError('SKILLSYNC_ERR_API_VALIDATION', typeError);
      const { local, resolution } = decide(c, await currentLocal(c), request.body as Decision);
      const resolved = await store.resolveConflict(c.id, {
        local,
        resolution,
        resolvedBy: RESOLVED_BY,
        now: clock.now(),
      });
      request.log.info({ conflict: c.id, resolution }, 'conflict resolved');
      return conflictView(resolved);
    },
  );

  app.post(
    '/api/admin/conflicts/bulk-resolve',
    {
      schema: {
        ...common,
        summary: 'Resolve several conflicts with one strategy: all or nothing.',
        body: Type.Object(
          {
            ids: Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), {
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
            }),
            strategy: Strategy,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ resolved: Type.Array(ConflictView) }, { additionalProperties: false }),
          ...adminErrors(404, 409),
        },
      },
    },
    async (request) => {
      const { ids, strategy } = request.body;
      const items = [];
      for (const id of ids) {
        const c = await mustGet(id);
        if (c.status !== 'open')
          throw new SkillsyncError(
            'SKILLSYNC_ERR_CONFLICT_RESOLVED',
            `Conflict ${id} is already resolved; nothing was changed.`,
          );
        const { local, resolution } = decide(c, await currentLocal(c), { strategy });
        items.push({ id, local, resolution });
      }
      const resolved = await store.resolveConflicts(items, { resolvedBy: RESOLVED_BY, now: clock.now() });
      request.log.info({ count: resolved.length, strategy }, 'conflicts resolved in bulk');
      return { resolved: resolved.map(conflictView) };
    },
  );
}
