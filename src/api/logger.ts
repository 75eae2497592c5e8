/**
 * The service's pino logger. Secrets never reach a log line: the headers that carry tokens and
 * any field named like a token are redacted by path, and URLs are logged without their query
 * values for token-like parameters. Request ids come from Fastify (see app.ts).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/options.js';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-token"]',
  'token',
  'apiToken',
  'adminToken',
  '*.token',
  '*.apiToken',
  '*.adminToken',
  '*.authorization',
  '*["x-api-token"]',
];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'skillsync' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

const TOKEN_PARAM = /([?&](?:token|access_token|api_token|apitoken|key)=)[^&#]*/gi;

/** A URL safe to log: token-like query values replaced. */
export function safeUrl(url: string): string {
  return url.replace(TOKEN_PARAM, '$1[redacted]');
}
