// The settings and the recipe catalog, as `app.config` and `app.manifests`: read once, before anything else is made.
import { loadManifests, type Manifest } from '@berth/manifests';
import fp from 'fastify-plugin';
import type { ApiConfig } from '../env.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: ApiConfig;
    /** The recipes jobs may run, by id. */
    manifests: ReadonlyMap<string, Manifest>;
  }
}

/** Throws ManifestError (file, path, reason) when a recipe is broken: the API does not start with a bad catalog. */
export const configPlugin = fp<{ config: ApiConfig }>(
  async (app, { config }) => {
    app.decorate('config', config);
    app.decorate('manifests', loadManifests(config.manifestsDir));
  },
  { name: 'berth-config' },
);
