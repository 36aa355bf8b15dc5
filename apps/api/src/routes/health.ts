// Liveness (the process answers) and readiness (Redis reachable and the job store readable).
import { z } from 'zod';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

export const healthRoutes = routePlugin('berth-health-routes', ['redis', 'store'], async (app, { redis, store }) => {
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
      await redis.ping();
      const counts = await store.counts();
      return { status: 'ready' as const, queue: counts };
    },
  );
});
