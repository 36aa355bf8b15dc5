// What jobs leave behind: the index in Redis and the files under BERTH_DATA_DIR/artifacts, as `app.artifacts`.
import { ArtifactIndex } from '@berth/store';
import fp from 'fastify-plugin';
import { join, resolve } from 'node:path';
import { FsArtifactStore } from '../artifacts/artifact-store.js';
import { Artifacts } from '../artifacts/artifacts.js';

declare module 'fastify' {
  interface FastifyInstance {
    artifacts: Artifacts;
  }
}

export const artifactsPlugin = fp(
  async (app) => {
    const { prefix, dataDir, keepCheckpoints, artifactMaxBytes } = app.config;
    app.decorate(
      'artifacts',
      new Artifacts(new ArtifactIndex(app.redis, prefix), new FsArtifactStore(join(resolve(dataDir), 'artifacts')), {
        keepCheckpoints,
        maxBytes: artifactMaxBytes,
      }),
    );
  },
  { name: 'berth-artifacts', dependencies: ['berth-config', 'berth-stores'] },
);
