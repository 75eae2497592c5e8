/** Admin: the outbox of local actions (ratings, installs) waiting to be uploaded. */
import { Type } from 'typebox';
import { SkillsyncError } from '../../core/errors.js';
import { OUTBOX_STATUSES } from '../../store/types.js';
import type { AppDeps } from '../deps.js';
import type { RouteApp } from '../route-app.js';
import { NumericIdParams, OutboxView, PageQuery, Paging, adminErrors } from '../schemas.js';
import { outboxView, totalPages } from '../views.js';

export function registerAdminOutboxRoutes(app: RouteApp, deps: AppDeps): void {
  const { store, clock } = deps;
  const common = { tags: ['admin'], security: [{ admin: [] }] };

  app.get(
    '/api/admin/outbox',
    {
      schema: {
        ...common,
        summary: 'Outbox items by status, paginated.',
        querystring: Type.Object(
          { status: Type.Optional(Type.Union(OUTBOX_STATUSES.map((s) => Type.Literal(s)))), ...PageQuery },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(OutboxView), ...Paging }, { additionalProperties: false }),
          ...adminErrors(),
        },
      },
    },
    async (request) => {
      const page = request.query.page ?? 1;
      const pageSize = request.query.page_size ?? 20;
      const { items, total } = await store.listOutbox({
        ...(request.query.status ? { status: request.query.status } : {}),
        limit: pageSize,
        offset: (page - 1) * pageSize,
      });
      return {
        items: items.map(outboxView),
        page,
        page_size: pageSize,
        total,
        total_pages: totalPages(total, pageSize),
      };
    },
  );

  app.post(
    '/api/admin/outbox/:id/retry',
    {
      schema: {
        ...common,
        summary: 'Retry a dead item now with the same idempotency key.',
        params: NumericIdParams,
        response: { 200: OutboxView, ...adminErrors(404, 409) },
      },
    },
    async (request) => {
      // Through the uploader when there is one: it resets its probe wait and sends the item now.
      const item = deps.outbox
        ? await deps.outbox.retry(request.params.id)
        : await store.retryOutbox(request.params.id, clock.now());
      request.log.info({ outbox: item.id }, 'outbox item retried by operator');
      return outboxView(item);
    },
  );

  app.delete(
    '/api/admin/outbox/:id',
    {
      schema: {
        ...common,
        summary: 'Discard a dead or pending item.',
        params: NumericIdParams,
        response: {
          200: Type.Object({ discarded: Type.Integer() }, { additionalProperties: false }),
          ...adminErrors(404, 409),
        },
      },
    },
    async (request) => {
      const id = request.params.id;
      if ((await store.getOutboxItem(id)) === null) {
        throw new SkillsyncError('SKILLSYNC_ERR_OUTBOX_NOT_FOUND', `No outbox item with id ${id}.`);
      }
      await store.discardOutbox(id, clock.now());
      request.log.info({ outbox: id }, 'outbox item discarded by operator');
      return { discarded: id };
    },
  );
}
