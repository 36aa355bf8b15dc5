// One error handler: BerthError codes, Redis being away, schema violations and Fastify's own parse errors become
// stable bodies.
import { BerthError, type Issue } from '@berth/contracts';
import { asRedisUnavailable } from '@berth/store';
import type { FastifyError } from 'fastify';
import fp from 'fastify-plugin';
import type { Duplex } from 'node:stream';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

interface SchemaViolation {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: { keys?: unknown };
}

// One issue per offending field: an unknown key is reported at its own path, not at its parent's.
function toIssues(v: SchemaViolation): Issue[] {
  const base = (v.instancePath ?? '').split('/').filter(Boolean);
  const keys = v.params?.keys;
  if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
    return keys.map((k) => ({ path: [...base, String(k)].join('.'), message: 'unknown field' }));
  }
  return [{ path: base.join('.'), message: v.message ?? 'invalid' }];
}

export function toBerthError(err: FastifyError): BerthError {
  if (err instanceof BerthError) return err;
  // Routes call the stores directly: a command Redis could not answer (closed, offline, timed out, full) is 503 here.
  const unavailable = asRedisUnavailable(err);
  if (unavailable) return unavailable;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const part = err.validationContext ?? 'body';
    return new BerthError('VALIDATION_FAILED', `the request ${part} is invalid`, {
      part,
      issues: err.validation.flatMap(toIssues),
    });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BerthError('BODY_TOO_LARGE', 'the request body is larger than the limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BerthError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BerthError('INVALID_JSON', 'the request body is not valid JSON');
  }
  if (err.statusCode === 400 && err instanceof SyntaxError) {
    return new BerthError('INVALID_JSON', 'the request body is not valid JSON');
  }
  if (err.statusCode === 404) return new BerthError('NOT_FOUND', 'no such route');
  return new BerthError('INTERNAL', 'internal error');
}

/** On the root: every route's errors, and unknown routes, answer with berth's error body. */
export const errorsPlugin = fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      const e = toBerthError(err);
      if (e.code === 'INTERNAL') request.log.error({ err }, 'request failed');
      if (e.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer realm="berth"');
      return reply.code(e.status).type('application/json').send(e.toBody());
    });
    app.setNotFoundHandler((request, reply) => {
      const e = new BerthError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
      return reply.code(404).send(e.toBody());
    });
  },
  { name: 'berth-errors' },
);

/**
 * Requests Node's HTTP parser refuses never reach a route: answer them in the same error shape, then close.
 * (Fastify's default body has no `error.code`.)
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new BerthError('HEADERS_TOO_LARGE', 'the request line and headers are larger than 16 KiB')
      : new BerthError('MALFORMED_REQUEST', 'the HTTP request could not be parsed');
  const body = JSON.stringify(e.toBody());
  socket.end(
    `HTTP/1.1 ${e.status} ${e.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
}
