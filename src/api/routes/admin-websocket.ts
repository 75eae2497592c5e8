/** Admin: the WebSocket client, acted on live (not only a flag in the database). */
import type { AppDeps } from '../deps.js';
import { errorAnswer, sendError } from '../errors.js';
import type { RouteApp } from '../route-app.js';
import { WsStatusView, adminErrors } from '../schemas.js';
import { wsView } from '../views.js';

export function registerAdminWebsocketRoutes(app: RouteApp, deps: AppDeps): void {
  const status = async () =>
    wsView(await deps.store.getWsState(), deps.config.current.wsUrl !== '', deps.ws?.status() ?? null);
  const common = { tags: ['admin'], security: [{ admin: [] }] };

  app.get(
    '/api/admin/websocket/status',
    {
      schema: {
        ...common,
        summary: 'WebSocket client state.',
        response: { 200: WsStatusView, ...adminErrors() },
      },
    },
    async () => status(),
  );

  const actions = [
    ['reconnect', 'Drop the connection (if any) and connect again now, resetting the backoff.'],
    ['enable', 'Enable the WebSocket client (persisted) and connect.'],
    ['disable', 'Disable the WebSocket client (persisted) and close the socket; polling continues.'],
  ] as const;
  for (const [action, summary] of actions) {
    app.post(
      `/api/admin/websocket/${action}`,
      { schema: { ...common, summary, response: { 200: WsStatusView, ...adminErrors(409) } } },
      async (request, reply) => {
        const ws = deps.ws;
        if (!ws) {
          // A state of the service, not a failure: 409, like a disabled client.
          return sendError(
            reply,
            errorAnswer(
              'SKILLSYNC_ERR_WS_DISABLED',
              'No WebSocket client: ATOM_SAAS_WS_URL is not configured.',
            ),
          );
        }
        if (action === 'reconnect') await ws.reconnectNow();
        else {
          if (action === 'enable') await ws.enable();
          else await ws.disable();
          await deps.config.update({ wsEnabled: action === 'enable' });
        }
        request.log.info({ action }, 'websocket admin action');
        return status();
      },
    );
  }
}
