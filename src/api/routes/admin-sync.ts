/** Admin: sync status, trigger, history, runtime configuration, held deletions. */
import { Type, type TSchema } from 'typebox';
import { redactConfig } from '../../config/load-config.js';
import { RUNTIME_KEYS, optionSpec, type ConfigKey } from '../../config/options.js';
import { SkillsyncError } from '../../core/errors.js';
import type { AppDeps } from '../deps.js';
import { errorAnswer, sendError } from '../errors.js';
import type { RouteApp } from '../route-app.js';
import {
  CatalogFreshness,
  ErrorBody,
  JsonObject,
  Nullable,
  PageQuery,
  Paging,
  RunView,
  WsStatusView,
  adminErrors,
} from '../schemas.js';
import { catalogFreshness, isoOrNull, runView, totalPages, wsView } from '../views.js';

export const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The PUT body schema comes from the options table: same ranges as the environment. */
function runtimeConfigSchema(): TSchema {
  const props: Record<string, TSchema> = {};
  for (const key of RUNTIME_KEYS) {
    const spec = optionSpec(key);
    let s: TSchema;
    if (spec.type === 'int')
      s = Type.Integer({ minimum: spec.min, maximum: spec.max, description: spec.help });
    else if (spec.type === 'boolean') s = Type.Boolean({ description: spec.help });
    else if (spec.type === 'enum')
      s = Type.Union(
        spec.values.map((v) => Type.Literal(v)),
        { description: spec.help },
      );
    else s = Type.String({ maxLength: 500, description: spec.help });
    props[snake(key)] = Type.Optional(Type.Union([s, Type.Null()]));
  }
  return Type.Object(props, { additionalProperties: false, minProperties: 1 });
}

const ConfigAnswer = Type.Object(
  {
    effective: JsonObject,
    runtime: JsonObject,
    overrides: JsonObject,
  },
  { additionalProperties: false },
);

const InProgress = Type.Object(
  { ...ErrorBody.properties, run_id: Type.Union([Type.Integer(), Type.Null()]) },
  { additionalProperties: false },
);

export function registerAdminSyncRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;
  const configAnswer = () => {
    const c = deps.config.current;
    const runtime: Record<string, unknown> = {};
    for (const key of RUNTIME_KEYS) runtime[snake(key)] = c[key];
    const overrides: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(deps.config.overrides)) overrides[snake(k)] = v;
    return { effective: redactConfig(c) as Record<string, unknown>, runtime, overrides };
  };

  app.get(
    '/api/admin/sync/status',
    {
      schema: {
        summary: 'Sync state, counts, WebSocket, next run and staleness.',
        tags: ['admin'],
        security: [{ admin: [] }],
        response: {
          200: Type.Object(
            {
              status: Type.String(),
              running_run_id: Nullable.Integer,
              last_sync_at: Nullable.String,
              last_success_at: Nullable.String,
              last_error: Nullable.String,
              consecutive_errors: Type.Integer(),
              total_syncs: Type.Integer(),
              successful_syncs: Type.Integer(),
              failed_syncs: Type.Integer(),
              auto_sync: Type.Boolean(),
              next_run_at: Nullable.String,
              watermark: Nullable.String,
              epoch: Nullable.String,
              held_deletions: Type.Object({ count: Type.Integer(), held_at: Nullable.String }),
              conflicts_detected_total: Type.Integer(),
              conflicts_resolved_total: Type.Integer(),
              counts: Type.Object({
                skills: Type.Integer(),
                stale_skills: Type.Integer(),
                categories: Type.Integer(),
                local_overrides: Type.Integer(),
                open_conflicts: Type.Integer(),
                quarantined: Type.Integer(),
                pending_actions: Type.Integer(),
                outbox: Type.Record(Type.String(), Type.Integer()),
              }),
              oldest_synced_at: Nullable.String,
              websocket: WsStatusView,
              freshness: CatalogFreshness,
            },
            { additionalProperties: false },
          ),
          ...adminErrors(),
        },
      },
    },
    async () => {
      const now = clock.now();
      const [state, stats, ws] = await Promise.all([
        store.getSyncState(),
        store.stats(now),
        store.getWsState(),
      ]);
      const cfg = deps.config.current;
      return {
        status: state.status,
        running_run_id: deps.sync?.runningRunId() ?? null,
        last_sync_at: isoOrNull(state.lastSyncAt),
        last_success_at: isoOrNull(state.lastSuccessAt),
        last_error: state.lastError,
        consecutive_errors: state.consecutiveErrors,
        total_syncs: state.totalSyncs,
        successful_syncs: state.successfulSyncs,
        failed_syncs: state.failedSyncs,
        auto_sync: cfg.autoSync,
        next_run_at: isoOrNull(deps.sync?.nextRunAt() ?? state.nextRunAt),
        watermark: state.watermark,
        epoch: state.epoch,
        held_deletions: { count: state.heldDeletions, held_at: isoOrNull(state.heldDeletionsAt) },
        conflicts_detected_total: state.conflictsDetectedTotal,
        conflicts_resolved_total: state.conflictsResolvedTotal,
        counts: {
          skills: stats.skills,
          stale_skills: stats.staleSkills,
          categories: stats.categories,
          local_overrides: stats.localOverrides,
          open_conflicts: stats.openConflicts,
          quarantined: stats.quarantined,
          pending_actions: stats.outbox.pending + stats.outbox.in_flight,
          outbox: { ...stats.outbox },
        },
        oldest_synced_at: isoOrNull(stats.oldestFetchedAt),
        websocket: wsView(ws, cfg.wsUrl !== '', deps.ws?.status() ?? null),
        freshness: catalogFreshness(state, now, cfg.cacheTtlHours * 3_600_000),
      };
    },
  );

  app.post(
    '/api/admin/sync/trigger',
    {
      schema: {
        summary: "Start a sync run now (202 with its id; 409 with the running run's id).",
        tags: ['admin'],
        security: [{ admin: [] }],
        body: Type.Optional(
          Type.Object(
            { mode: Type.Optional(Type.Union([Type.Literal('full'), Type.Literal('incremental')])) },
            { additionalProperties: false },
          ),
        ),
        response: {
          202: Type.Object({ run_id: Type.Integer(), mode: Type.String() }, { additionalProperties: false }),
          409: InProgress,
          ...adminErrors(503),
        },
      },
    },
    async (request, reply) => {
      if (!deps.sync)
        return sendError(
          reply,
          errorAnswer('SKILLSYNC_ERR_API_UNAVAILABLE', 'The sync engine is not running.'),
        );
      const mode = request.body?.mode ?? 'incremental';
      try {
        const { runId } = await deps.sync.trigger(mode);
        return reply.code(202).send({ run_id: runId, mode });
      } catch (err) {
        if (err instanceof SkillsyncError && err.code === 'SKILLSYNC_ERR_SYNC_IN_PROGRESS') {
          const runId = err.details?.['runId'];
          return reply.code(409).send({
            ...errorAnswer('SKILLSYNC_ERR_SYNC_IN_PROGRESS', 'A sync run is already in progress.'),
            run_id: typeof runId === 'number' ? runId : (deps.sync.runningRunId() ?? null),
          });
        }
        throw err;
      }
    },
  );

  app.get(
    '/api/admin/sync/runs',
    {
      schema: {
        summary: 'Run history, newest first.',
        tags: ['admin'],
        security: [{ admin: [] }],
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: {
          200: Type.Object({ items: Type.Array(RunView), ...Paging }, { additionalProperties: false }),
          ...adminErrors(),
        },
      },
    },
    async (request) => {
      const page = request.query.page ?? 1;
      const pageSize = request.query.page_size ?? 20;
      const { items, total } = await store.listRuns({ limit: pageSize, offset: (page - 1) * pageSize });
      return {
        items: items.map(runView),
        page,
        page_size: pageSize,
        total,
        total_pages: totalPages(total, pageSize),
      };
    },
  );

  app.get(
    '/api/admin/sync/config',
    {
      schema: {
        summary: 'Effective configuration (secrets redacted) and the runtime-adjustable part.',
        tags: ['admin'],
        security: [{ admin: [] }],
        response: { 200: ConfigAnswer, ...adminErrors() },
      },
    },
    async () => configAnswer(),
  );

  app.put(
    '/api/admin/sync/config',
    {
      schema: {
        summary: 'Change runtime settings: validated, persisted, applied live (null clears an override).',
        tags: ['admin'],
        security: [{ admin: [] }],
        body: runtimeConfigSchema(),
        response: { 200: ConfigAnswer, ...adminErrors() },
      },
    },
    async (request) => {
      const patch: Record<string, unknown> = {};
      const body = request.body as Record<string, unknown>;
      for (const key of RUNTIME_KEYS as ConfigKey[]) {
        const v = body[snake(key)];
        if (v !== undefined) patch[key] = v;
      }
      await deps.config.update(patch);
      request.log.info({ changed: Object.keys(patch) }, 'runtime configuration changed');
      return configAnswer();
    },
  );

  app.post(
    '/api/admin/sync/deletions/confirm',
    {
      schema: {
        summary: 'Confirm the deletions the delete guard held.',
        tags: ['admin'],
        security: [{ admin: [] }],
        response: {
          200: Type.Object({ deleted: Type.Integer() }, { additionalProperties: false }),
          ...adminErrors(409),
        },
      },
    },
    async () => {
      const deleted = deps.sync
        ? await deps.sync.confirmHeldDeletions()
        : await store.confirmHeldDeletions(clock.now());
      return { deleted };
    },
  );
}
