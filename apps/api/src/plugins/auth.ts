// Who may call what: the auth hooks on the root (every route's rule is read as it is registered, so this comes
// before any route) and `app.auth`, the signer and token cache the auth routes use.
import { DatasetId, JobId, PipelineId } from '@berth/contracts';
import fp from 'fastify-plugin';
import { installAuth, type Auth } from '../auth/auth.js';

declare module 'fastify' {
  interface FastifyInstance {
    auth: Auth;
  }
}

export const authPlugin = fp(
  async (app) => {
    const { config, store, datasets, pipelines } = app;
    const auth = installAuth(app, {
      store: app.authStore,
      rateLimit: config.rateLimit,
      signedUrlTtlSeconds: config.signedUrlTtlSeconds,
      ownerOf: {
        job: (id) => (JobId.safeParse(id).success ? store.ownerOf(id) : Promise.resolve(null)),
        dataset: async (id) => (DatasetId.safeParse(id).success ? await datasets.records.get(id) : null)?.owner ?? null,
        pipeline: async (id) =>
          (PipelineId.safeParse(id).success ? await pipelines.store.get(id) : null)?.owner ?? null,
      },
    });
    app.decorate('auth', auth);
  },
  { name: 'berth-auth', dependencies: ['berth-config', 'berth-stores', 'berth-datasets', 'berth-pipelines'] },
);
