// Uploaded datasets: their records in Redis and their files under BERTH_DATA_DIR/datasets, as `app.datasets`.
import { DatasetStore } from '@berth/store';
import fp from 'fastify-plugin';
import { join, resolve } from 'node:path';
import { Datasets } from '../datasets/datasets.js';

declare module 'fastify' {
  interface FastifyInstance {
    datasets: Datasets;
  }
}

export const datasetsPlugin = fp(
  async (app) => {
    const { prefix, dataDir, datasetMaxBytes } = app.config;
    app.decorate(
      'datasets',
      new Datasets(new DatasetStore(app.redis, prefix, app.store), join(resolve(dataDir), 'datasets'), {
        maxBytes: datasetMaxBytes,
        maxFiles: 100_000,
        maxExpandedBytes: datasetMaxBytes * 4,
      }),
    );
  },
  { name: 'berth-datasets', dependencies: ['berth-config', 'berth-stores'] },
);
