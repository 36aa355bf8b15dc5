// The API's logger: secrets redacted by path, URLs masked, requests at debug. Fastify takes these when it is made.
import { maskUrl } from '@berth/contracts';
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { ApiConfig } from '../env.js';

/**
 * Every request logged at info is hundreds of lines an hour of a dashboard left open: requests are logged at debug
 * (LOG_LEVEL=debug shows them, with the same serializers and redaction); a request that errored stays at error.
 */
class QuietRequests extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

export function apiLogging(
  config: Pick<ApiConfig, 'logLevel'>,
): Pick<FastifyServerOptions, 'logger' | 'logController'> {
  return {
    logger: {
      level: config.logLevel,
      // Secrets by path, wherever a log line might carry them. Logged URLs lose a signed URL's sig, a token sent as
      // access_token (refused with 401, but the request line is logged before the refusal) and any other
      // secret-looking parameter (maskUrl).
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-registry-auth"]',
          '*.token',
          '*.secret',
          '*.password',
          '*.NGC_API_KEY',
          '*.BERTH_API_TOKEN',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method: string; url: string; hostname?: string; ip?: string }) => ({
          method: req.method,
          url: maskUrl(req.url),
          ...(req.hostname !== undefined ? { host: req.hostname } : {}),
          ...(req.ip !== undefined ? { remoteAddress: req.ip } : {}),
        }),
      },
    },
    logController: new QuietRequests(),
  };
}
