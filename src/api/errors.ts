/**
 * One error shape for every route: `{statusCode, code, error, message}` with a stable code
 * from src/core/errors.ts. Validation failures become SKILLSYNC_ERR_API_VALIDATION (400).
 * Unknown errors become SKILLSYNC_ERR_API_INTERNAL with a fixed message: the details (and the
 * stack) go to the log only. Known secrets are scrubbed from every message that leaves.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError, ERROR_CODES, SkillsyncError, type ErrorCode } from '../core/errors.js';

export interface ErrorAnswer {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
}

export function errorAnswer(
  code: ErrorCode,
  message: string,
  statusCode: number = ERROR_CODES[code].status,
): ErrorAnswer {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** Replaces every occurrence of a secret (tokens) in text. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[redacted]');
  return out.length > 1000 ? `${out.slice(0, 1000)}…` : out;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SKILLSYNC_ERR_API_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SKILLSYNC_ERR_API_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_NOT_FOUND: 'SKILLSYNC_ERR_API_NOT_FOUND',
};

export function toErrorAnswer(err: unknown, secrets: readonly string[]): ErrorAnswer {
  if (err instanceof ConfigError) {
    return errorAnswer('SKILLSYNC_ERR_API_VALIDATION', scrub(err.message, secrets));
  }
  if (err instanceof SkillsyncError) {
    const status = err.status;
    // A failure of a dependency (store, remote) keeps its code; its status is what the code says.
    return errorAnswer(err.code, scrub(err.message, secrets), status >= 400 && status < 600 ? status : 500);
  }
  const fe = err as Partial<FastifyError> | undefined;
  if (fe && typeof fe === 'object') {
    if (Array.isArray(fe.validation)) {
      return errorAnswer('SKILLSYNC_ERR_API_VALIDATION', scrub(String(fe.message), secrets));
    }
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
    if (status >= 400 && status < 500) {
      const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
      const code: ErrorCode =
        mapped ?? (status === 404 ? 'SKILLSYNC_ERR_API_NOT_FOUND' : 'SKILLSYNC_ERR_API_VALIDATION');
      // Every client error answers with its code's documented status (a too-long URL is a 400).
      return errorAnswer(code, scrub(String(fe.message ?? 'Bad request'), secrets));
    }
  }
  return errorAnswer('SKILLSYNC_ERR_API_INTERNAL', 'Internal error; the service log has the details.');
}

export function sendError(reply: FastifyReply, answer: ErrorAnswer): FastifyReply {
  return reply.code(answer.statusCode).type('application/json; charset=utf-8').send(answer);
}

export function errorHandler(secrets: () => readonly string[]) {
  return function handle(
    this: unknown,
    err: unknown,
    request: FastifyRequest,
    reply: FastifyReply,
  ): FastifyReply {
    const answer = toErrorAnswer(err, secrets());
    if (answer.statusCode >= 500) {
      const e = err instanceof Error ? err : new Error(String(err));
      const list = secrets();
      request.log.error(
        {
          err: {
            type: e.name,
            code: (e as { code?: unknown }).code,
            message: scrub(e.message, list),
            stack: scrub(e.stack ?? '', list),
          },
        },
        'request failed',
      );
    } else request.log.info({ code: answer.code, statusCode: answer.statusCode }, 'request refused');
    return sendError(reply, answer);
  };
}
