// The pipeline coordinator, as `app.pipelines`: it submits and cancels steps' jobs through the same stores as the
// jobs routes. Its sweep runs in the housekeeping plugin.
import { PipelineStore } from '@berth/store';
import fp from 'fastify-plugin';
import { Pipelines } from '../pipelines/pipelines.js';

declare module 'fastify' {
  interface FastifyInstance {
    pipelines: Pipelines;
  }
}

export const pipelinesPlugin = fp(
  async (app) => {
    const { config, manifests, store, queues, placement, workers, datasets, artifacts, events, authStore } = app;
    const deps = { config, manifests, store, queues, placement, workers, datasets, artifacts, events, authStore };
    app.decorate('pipelines', new Pipelines(deps, new PipelineStore(app.redis, config.prefix)));
  },
  {
    name: 'berth-pipelines',
    dependencies: ['berth-config', 'berth-stores', 'berth-workers', 'berth-datasets', 'berth-artifacts'],
  },
);
