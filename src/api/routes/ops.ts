/** Operations: /healthz (process up), /readyz (store + usable cache), /metrics, /docs/json. */
import { Type } from 'typebox';
import type { AppDeps } from '../deps.js';
import type { RouteApp } from '../route-app.js';
import { errors } from '../schemas.js';
import { remoteHealth } from '../views.js';

const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    store: Type.Union([Type.Literal('ok'), Type.Literal('unreachable')]),
    store_kind: Type.String(),
    cache_usable: Type.Boolean({ description: 'A sync succeeded once, or the store holds cached data.' }),
    skills_cached: Type.Integer(),
    remote: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unknown')], {
      description: 'Reported, not fatal: a degraded remote does not make the service unready.',
    }),
    reason: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export function registerOpsRoutes(app: RouteApp, deps: AppDeps): void {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'The process is up.',
        tags: ['ops'],
        response: {
          200: Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false }),
          ...errors(),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Ready to serve: store reachable and the cache usable.',
        tags: ['ops'],
        response: { 200: Readiness, 503: Readiness, ...errors() },
      },
    },
    async (_request, reply) => {
      const { store, clock } = deps;
      let reachable: boolean;
      try {
        reachable = await store.ping();
      } catch {
        reachable = false;
      }
      if (!reachable) {
        return reply.code(503).send({
          status: 'not_ready' as const,
          store: 'unreachable' as const,
          store_kind: store.kind,
          cache_usable: false,
          skills_cached: 0,
          remote: 'unknown' as const,
          reason: 'the store does not answer',
        });
      }
      const [state, stats] = await Promise.all([store.getSyncState(), store.stats(clock.now())]);
      const usable = state.lastSuccessAt !== null || stats.skills > 0;
      return reply.code(usable ? 200 : 503).send({
        status: usable ? ('ready' as const) : ('not_ready' as const),
        store: 'ok' as const,
        store_kind: store.kind,
        cache_usable: usable,
        skills_cached: stats.skills,
        remote: remoteHealth(state),
        reason: usable ? null : 'no successful sync yet and the cache is empty',
      });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics.',
        tags: ['ops'],
        produces: ['text/plain'],
        response: { 200: Type.String(), ...errors() },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await deps.metrics.render();
      return reply.type(contentType).send(body);
    },
  );

  app.get(
    '/docs/json',
    {
      schema: {
        summary: 'The OpenAPI document of this API.',
        tags: ['ops'],
        response: { 200: Type.Object({}, { additionalProperties: true }), ...errors() },
      },
    },
    async () => app.swagger() as unknown as Record<string, unknown>,
  );
}
