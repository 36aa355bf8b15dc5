// The workers and the placement of queued jobs on them, as the API sees them.
import type { WorkerInfo } from '@berth/contracts';
import { Placement, WorkerRegistry } from '@berth/store';
import fp from 'fastify-plugin';

/** Every worker that has registered, each live or lost (silent longer than BERTH_LOST_AFTER_MS). */
export interface Workers {
  list(): Promise<WorkerInfo[]>;
}

declare module 'fastify' {
  interface FastifyInstance {
    workers: Workers;
    /** The queued jobs, and the wake-up workers listen for when one is added. */
    placement: Placement;
  }
}

export const workersPlugin = fp(
  async (app) => {
    const { prefix, lostAfterMs } = app.config;
    const registry = new WorkerRegistry(app.redis, prefix);
    app.decorate('workers', { list: () => registry.list(lostAfterMs) } satisfies Workers);
    app.decorate('placement', new Placement(app.redis, prefix));
  },
  { name: 'berth-workers', dependencies: ['berth-config', 'berth-stores'] },
);
