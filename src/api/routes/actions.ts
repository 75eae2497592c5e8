/**
 * Local actions on the catalog: ratings and installs go to the outbox (committed locally first,
 * uploaded exactly once later); local overrides customise an installed skill.
 */
import { Type } from 'typebox';
import { SkillsyncError } from '../../core/errors.js';
import type { AppDeps } from '../deps.js';
import { errorAnswer, sendError } from '../errors.js';
import type { RouteApp } from '../route-app.js';
import { IdParams, OutboxView, SkillView, errors, overrideTypeError } from '../schemas.js';
import { isoOrNull, outboxView, skillView } from '../views.js';

const RatingBody = Type.Object(
  {
    user_id: Type.String({ minLength: 1, maxLength: 200 }),
    rating: Type.Integer({ minimum: 1, maximum: 5 }),
    comment: Type.Optional(Type.Union([Type.String({ maxLength: 1000 }), Type.Null()])),
  },
  { additionalProperties: false },
);

const InstallBody = Type.Object(
  { agent_id: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);

const RatingView = Type.Object(
  {
    id: Type.Integer(),
    skill_id: Type.String(),
    user_id: Type.String(),
    rating: Type.Integer(),
    comment: Type.Union([Type.String(), Type.Null()]),
    upload_status: Type.String(),
    remote_rating_id: Type.Union([Type.String(), Type.Null()]),
    updated_at: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

/** Top-level skill fields a user may override; the identity of the skill is not one of them. */
const Overrides = Type.Record(
  Type.String({ minLength: 1, maxLength: 100, pattern: '^(?!skill_id$)[a-z_][a-z0-9_]*$' }),
  Type.Unknown(),
  {
    maxProperties: 50,
    minProperties: 1,
    additionalProperties: false,
  },
);

function unavailable(what: string) {
  return errorAnswer('SKILLSYNC_ERR_API_UNAVAILABLE', `${what} is not running in this process.`);
}

export function registerActionRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;

  app.post(
    '/api/marketplace/skills/:id/ratings',
    {
      schema: {
        summary: "Rate a skill (insert or edit the user's rating); uploaded through the outbox.",
        tags: ['actions'],
        params: IdParams,
        body: RatingBody,
        response: {
          202: Type.Object({ rating: RatingView, outbox: OutboxView }, { additionalProperties: false }),
          ...errors(404, 503),
        },
      },
    },
    async (request, reply) => {
      if (!deps.actions) return sendError(reply, unavailable('Local actions'));
      const body = request.body;
      const { rating, outbox } = await deps.actions.rate({
        skillId: request.params.id,
        userId: body.user_id,
        rating: body.rating,
        comment: body.comment ?? null,
      });
      return reply.code(202).send({
        rating: {
          id: rating.id,
          skill_id: rating.skillId,
          user_id: rating.userId,
          rating: rating.rating,
          comment: rating.comment,
          upload_status: rating.uploadStatus,
          remote_rating_id: rating.remoteRatingId,
          updated_at: isoOrNull(rating.updatedAt),
        },
        outbox: outboxView(outbox),
      });
    },
  );

  app.post(
    '/api/marketplace/skills/:id/install',
    {
      schema: {
        summary: 'Record an install of the skill by an agent; uploaded through the outbox.',
        tags: ['actions'],
        params: IdParams,
        body: InstallBody,
        response: {
          202: Type.Object({ outbox: OutboxView }, { additionalProperties: false }),
          ...errors(404, 503),
        },
      },
    },
    async (request, reply) => {
      if (!deps.actions) return sendError(reply, unavailable('Local actions'));
      const { outbox } = await deps.actions.install({
        skillId: request.params.id,
        agentId: request.body.agent_id,
      });
      return reply.code(202).send({ outbox: outboxView(outbox) });
    },
  );

  app.put(
    '/api/marketplace/skills/:id/local',
    {
      schema: {
        summary: 'Set the local overrides of a skill (top-level fields replacing the remote ones).',
        tags: ['actions'],
        params: IdParams,
        body: Overrides,
        response: { 200: SkillView, ...errors(404) },
      },
    },
    async (request, reply) => {
      const typeError = overrideTypeError(request.body, 'body');
      if (typeError !== null) {
        return sendError(reply, errorAnswer('SKILLSYNC_ERR_API_VALIDATION', typeError));
      }
      const now = clock.now();
      const ok = await store.setLocalOverrides(
        request.params.id,
        request.body as Record<string, unknown>,
        now,
      );
      const record = ok ? await store.getSkill(request.params.id, now) : null;
      if (record === null) {
        return sendError(
          reply,
          errorAnswer('SKILLSYNC_ERR_API_NOT_FOUND', 'No skill with that id in the catalog.'),
        );
      }
      return skillView(record, now);
    },
  );

  app.delete(
    '/api/marketplace/skills/:id/local',
    {
      schema: {
        summary: 'Drop the local overrides of a skill.',
        tags: ['actions'],
        params: IdParams,
        response: { 200: SkillView, ...errors(404) },
      },
    },
    async (request, reply) => {
      const now = clock.now();
      const existing = await store.getSkill(request.params.id, now);
      if (existing === null) {
        return sendError(
          reply,
          errorAnswer('SKILLSYNC_ERR_API_NOT_FOUND', 'No skill with that id in the catalog.'),
        );
      }
      await store.clearLocalOverrides(request.params.id, now);
      const record = await store.getSkill(request.params.id, now);
      if (record === null)
        throw new SkillsyncError('SKILLSYNC_ERR_API_NOT_FOUND', 'The skill was deleted meanwhile.');
      return skillView(record, now);
    },
  );
}
