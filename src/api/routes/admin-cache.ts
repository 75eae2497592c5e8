/** Admin: cache maintenance and a record's story. */
import { Type } from 'typebox';
import type { AppDeps } from '../deps.js';
import { errorAnswer, sendError } from '../errors.js';
import type { RouteApp } from '../route-app.js';
import { ConflictView, IdParams, JsonObject, Nullable, OutboxView, adminErrors } from '../schemas.js';
import { conflictView, iso, isoOrNull, outboxView } from '../views.js';

export function registerAdminCacheRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;
  const common = { tags: ['admin'], security: [{ admin: [] }] };

  app.post(
    '/api/admin/cache/invalidate',
    {
      schema: {
        ...common,
        summary: 'Run the TTL sweep now (removes only expired entries a later complete listing did not see).',
        response: {
          200: Type.Object(
            { skills_removed: Type.Integer(), categories_removed: Type.Integer() },
            { additionalProperties: false },
          ),
          ...adminErrors(),
        },
      },
    },
    async (request) => {
      const removed = await store.sweepExpired(clock.now());
      request.log.info(removed, 'cache sweep');
      return { skills_removed: removed.skills, categories_removed: removed.categories };
    },
  );

  app.get(
    '/api/admin/skills/:id/explain',
    {
      schema: {
        ...common,
        summary:
          'The story of one cached skill: base version, arrival, overrides, conflicts, pending actions, TTL.',
        params: IdParams,
        response: {
          200: Type.Object(
            {
              skill_id: Type.String(),
              base_version: Type.String(),
              remote_updated_at: Nullable.String,
              content_hash: Type.String(),
              last_arrival: Type.Object({ at: Type.String(), source: Type.String(), epoch: Nullable.String }),
              ttl: Type.Object({
                expires_at: Type.String(),
                stale: Type.Boolean(),
                seconds_left: Type.Number(),
              }),
              local_overrides: Type.Union([JsonObject, Type.Null()]),
              overridden_fields: Type.Array(Type.String()),
              conflicts: Type.Array(ConflictView),
              pending_actions: Type.Array(OutboxView),
              ratings: Type.Array(
                Type.Object({
                  user_id: Type.String(),
                  rating: Type.Integer(),
                  upload_status: Type.String(),
                  updated_at: Type.String(),
                }),
              ),
              story: Type.Array(Type.String()),
            },
            { additionalProperties: false },
          ),
          ...adminErrors(404),
        },
      },
    },
    async (request, reply) => {
      const now = clock.now();
      const id = request.params.id;
      const record = await store.getSkill(id, now);
      if (record === null) {
        return sendError(
          reply,
          errorAnswer('SKILLSYNC_ERR_API_NOT_FOUND', 'No skill with that id in the catalog.'),
        );
      }
      // This skill's conflicts and unfinished outbox items, filtered by the store (indexed):
      // a window of the whole outbox (done items are never purged) missed them once it was full.
      const [open, resolved, pendingItems, inFlight, dead, ratings] = await Promise.all([
        store.listConflicts({ skillId: id, status: 'open', limit: 100, offset: 0 }),
        store.listConflicts({ skillId: id, status: 'resolved', limit: 100, offset: 0 }),
        store.listOutbox({ skillId: id, status: 'pending', limit: 1000, offset: 0 }),
        store.listOutbox({ skillId: id, status: 'in_flight', limit: 1000, offset: 0 }),
        store.listOutbox({ skillId: id, status: 'dead', limit: 1000, offset: 0 }),
        store.listRatings(id),
      ]);
      const conflicts = [...open.items, ...resolved.items];
      const pending = [...pendingItems.items, ...inFlight.items, ...dead.items].sort((a, b) => a.id - b.id);
      const overridden = record.local ? Object.keys(record.local) : [];
      const story = [
        `base version ${record.base.version} (remote updated_at ${record.remoteUpdatedAt ?? 'unknown'})`,
        `last arrived ${iso(record.fetchedAt)} via ${record.source}`,
        record.stale
          ? `past its TTL since ${iso(record.expiresAt)}: served as stale until a sync sees it again`
          : `fresh until ${iso(record.expiresAt)}`,
        overridden.length > 0 ? `local overrides on ${overridden.join(', ')}` : 'no local overrides',
        record.hasOpenConflict ? 'has an open conflict waiting for a decision' : 'no open conflict',
        `${pending.length} pending outbox item(s)`,
      ];
      return {
        skill_id: id,
        base_version: record.base.version,
        remote_updated_at: record.remoteUpdatedAt,
        content_hash: record.contentHash,
        last_arrival: { at: iso(record.fetchedAt), source: record.source, epoch: record.epoch },
        ttl: {
          expires_at: iso(record.expiresAt),
          stale: record.stale,
          seconds_left: Math.round((record.expiresAt - now) / 1000),
        },
        local_overrides: record.local,
        overridden_fields: overridden,
        conflicts: conflicts.map(conflictView),
        pending_actions: pending.map(outboxView),
        ratings: ratings.map((r) => ({
          user_id: r.userId,
          rating: r.rating,
          upload_status: r.uploadStatus,
          updated_at: isoOrNull(r.updatedAt) ?? '',
        })),
        story,
      };
    },
  );
}
