/**
 * `buildApp(deps)`: the HTTP face of skillsync as a Fastify instance that never listens by
 * itself (service.ts listens; tests call `app.inject()`). Every route declares TypeBox schemas
 * for its request and its responses: they validate input, serialise output, and produce the
 * OpenAPI document at /docs/json.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import { adminGuard } from './auth.js';
import type { AppDeps } from './deps.js';
import type { RouteApp } from './route-app.js';
import { errorAnswer, errorHandler, scrub, sendError, toErrorAnswer } from './errors.js';
import { safeUrl } from './logger.js';
import { registerAdminConflictRoutes } from './routes/admin-conflicts.js';
import { registerAdminOutboxRoutes } from './routes/admin-outbox.js';
import { registerAdminSyncRoutes } from './routes/admin-sync.js';
import { registerAdminWebsocketRoutes } from './routes/admin-websocket.js';
import { registerAdminCacheRoutes } from './routes/admin-cache.js';
import { registerCatalogRoutes } from './routes/catalog.js';
import { registerActionRoutes } from './routes/actions.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerOpsRoutes } from './routes/ops.js';
import { validatorCompiler } from './validator.js';

export type TypedApp = ReturnType<typeof createFastify>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

function secretsOf(deps: AppDeps): string[] {
  const c = deps.config.current;
  return [c.adminToken, c.apiToken].filter((s) => s !== '');
}

function createFastify(deps: AppDeps) {
  return Fastify({
    // Errors the router raises before any route runs (bad URL encoding, a too-long parameter).
    frameworkErrors: (err, _request, reply) => {
      void sendError(reply, toErrorAnswer(err, secretsOf(deps)));
    },
    // Request lines: the URL with token-like query values and every known secret scrubbed.
    loggerInstance: deps.logger.child(
      {},
      {
        serializers: {
          req: (req: { method?: string; url?: string; host?: string; ip?: string }) => ({
            method: req.method,
            url: scrub(safeUrl(req.url ?? ''), secretsOf(deps)),
            host: req.host,
            remoteAddress: req.ip,
          }),
        },
      },
    ),
    bodyLimit: 1024 * 1024,
    // A caller's x-request-id is kept when it looks like an id (and is not one of our secrets),
    // so logs correlate across hops. requestIdHeader is off: with it, Fastify would take the
    // header as it came and call genReqId only when it is missing.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) && !secretsOf(deps).includes(given)
        ? given
        : randomUUID();
    },
    routerOptions: { maxParamLength: 500 },
  }).withTypeProvider<TypeBoxTypeProvider>();
}

export async function buildApp(deps: AppDeps): Promise<TypedApp> {
  const app = createFastify(deps);
  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(errorHandler(() => secretsOf(deps)));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      errorAnswer(
        'SKILLSYNC_ERR_API_NOT_FOUND',
        `Route ${request.method} ${safeUrl(request.url).split('?')[0]} not found`,
      ),
    ),
  );
  // Callback style: an async hook costs a promise and its resolution on every request.
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.recordHttp(request.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'skillsync',
        description:
          'Local cache of the Atom SaaS skill marketplace: catalog, local actions, and the admin API ' +
          '(Bearer SKILLSYNC_ADMIN_TOKEN). Errors are {statusCode, code, error, message}; codes in docs/errors.md.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: { admin: { type: 'http', scheme: 'bearer' } },
      },
    },
  });

  registerOpsRoutes(app, deps);
  registerCatalogRoutes(app, deps);
  registerActionRoutes(app, deps);
  registerDashboardRoutes(app, deps);

  await app.register(async (scope) => {
    // Same instance type as the root (encapsulated: the guard below applies only in here).
    const admin = scope as unknown as RouteApp;
    admin.addHook(
      'onRequest',
      adminGuard(() => deps.config.current.adminToken),
    );
    registerAdminSyncRoutes(admin, deps);
    registerAdminWebsocketRoutes(admin, deps);
    registerAdminConflictRoutes(admin, deps);
    registerAdminOutboxRoutes(admin, deps);
    registerAdminCacheRoutes(admin, deps);
  });

  await app.ready();
  return app;
}
