/**
 * Admin authentication: `Authorization: Bearer <SKILLSYNC_ADMIN_TOKEN>`. The comparison runs
 * in constant time over sha256 digests (equal lengths whatever the input, so neither the
 * content nor the length of the token leaks through timing). Without a configured token the
 * admin routes are refused outright (403): an open admin API is never the default.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorAnswer, sendError } from './errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1] ?? null;
}

/** An onRequest hook: runs before body parsing and validation, so a stranger learns nothing. */
export function adminGuard(adminToken: () => string) {
  return async function guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const expected = adminToken();
    if (expected === '') {
      await sendError(
        reply,
        errorAnswer(
          'SKILLSYNC_ERR_API_ADMIN_DISABLED',
          'Admin API disabled: set SKILLSYNC_ADMIN_TOKEN to enable it.',
        ),
      );
      return;
    }
    const given = bearerToken(request.headers.authorization);
    if (given === null || !tokenMatches(given, expected)) {
      request.log.warn({ reason: given === null ? 'missing' : 'wrong' }, 'admin auth failed');
      void reply.header('www-authenticate', 'Bearer realm="skillsync-admin"');
      await sendError(reply, errorAnswer('SKILLSYNC_ERR_API_UNAUTHORIZED', 'Missing or wrong admin token.'));
    }
  };
}
