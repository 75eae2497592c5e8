/**
 * The dashboard: a static page (src/api/dashboard, copied to dist by the build) that reads the
 * admin API with the token the operator enters once (kept in sessionStorage; the demo passes it
 * in the URL fragment, which never reaches the server or its logs).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type } from 'typebox';
import type { AppDeps } from '../deps.js';
import type { RouteApp } from '../route-app.js';
import { errors } from '../schemas.js';

const ASSETS = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/dashboard/style.css': ['style.css', 'text/css; charset=utf-8'],
} as const;

export function registerDashboardRoutes(app: RouteApp, deps: AppDeps): void {
  const dir = deps.dashboardDir ?? fileURLToPath(new URL('../dashboard/', import.meta.url));
  for (const [path, [file, type]] of Object.entries(ASSETS)) {
    const body = readFileSync(`${dir.replace(/\/?$/, '/')}${file}`, 'utf8');
    app.get(
      path,
      {
        schema: {
          summary: path === '/' ? 'The dashboard page.' : `Dashboard asset ${file}.`,
          tags: ['dashboard'],
          produces: [type.split(';')[0] ?? 'text/plain'],
          response: { 200: Type.String(), ...errors() },
        },
      },
      async (_request, reply) =>
        reply
          .type(type)
          .header('cache-control', 'no-cache')
          .header(
            'content-security-policy',
            "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
          )
          .header('referrer-policy', 'no-referrer')
          .send(body),
    );
  }
}
