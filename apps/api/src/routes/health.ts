// Liveness (the process answers) and readiness (Redis reachable and the job store readable).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Services } from '../services.js';
import { ErrorResponse } from './schemas.js';

export const healthRoutes =
  (services: Services): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          tags: ['health'],
          operationId: 'healthz',
          summary: 'Liveness: the process answers',
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          tags: ['health'],
          operationId: 'readyz',
          summary: 'Readiness: Redis reachable and the job store readable',
          response: {
            200: z.object({ status: z.literal('ready'), queue: z.record(z.string(), z.number()) }),
            503: ErrorResponse,
          },
        },
      },
      async () => {
        await services.redis.ping();
        const counts = await services.store.counts();
        return { status: 'ready' as const, queue: counts };
      },
    );
  };
