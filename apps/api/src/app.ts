// Builds the API as a Fastify instance; main.ts only listens. Tests call buildApp directly.
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { bullBoardRoutes } from './admin/bull-board.js';
import type { ApiConfig } from './env.js';
import { artifactsPlugin } from './plugins/artifacts.js';
import { authPlugin } from './plugins/auth.js';
import { bootstrapPlugin } from './plugins/bootstrap.js';
import { configPlugin } from './plugins/config.js';
import { datasetsPlugin } from './plugins/datasets.js';
import { clientErrorHandler, errorsPlugin } from './plugins/errors.js';
import { housekeepingPlugin } from './plugins/housekeeping.js';
import { apiLogging } from './plugins/logging.js';
import { openApiPlugin } from './plugins/openapi.js';
import { pipelinesPlugin } from './plugins/pipelines.js';
import { prometheusPlugin } from './plugins/prometheus.js';
import { storesPlugin } from './plugins/stores.js';
import { streamsPlugin } from './plugins/streams.js';
import { workersPlugin } from './plugins/workers.js';
import { artifactRoutes } from './routes/artifacts.js';
import { authRoutes } from './routes/auth.js';
import { datasetRoutes } from './routes/datasets.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { logRoutes } from './routes/logs.js';
import { manifestRoutes } from './routes/manifests.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { queueRoutes } from './routes/queue.js';
import { webRoutes } from './routes/web.js';

export const bodyLimit = 1024 * 1024;

/**
 * Throws ManifestError (file, path, reason) when a recipe is broken: the API does not start with a bad catalog.
 * Fastify closes the plugins in reverse order: the timers stop first, the followers end, Redis closes last.
 */
export async function buildApp(config: ApiConfig): Promise<FastifyInstance> {
  const app = Fastify({
    ...apiLogging(config),
    bodyLimit,
    // A request that stops moving is cut (slow clients, stalled uploads); one that keeps moving may take as long as
    // a 60 GB checkpoint upload needs — a whole-request deadline would cut those. Headers: Node's 60 s.
    connectionTimeout: config.idleTimeoutMs,
    clientErrorHandler,
    // Ids are ours (job_…), never a counter; keep request ids short and random.
    genReqId: () => Math.random().toString(36).slice(2, 10),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(errorsPlugin);
  // Bodies are JSON only: anything else is 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');

  // What the routes use, each as decorators.
  await app.register(configPlugin, { config });
  await app.register(storesPlugin);
  await app.register(streamsPlugin);
  await app.register(workersPlugin);
  await app.register(artifactsPlugin);
  await app.register(datasetsPlugin);
  await app.register(pipelinesPlugin);

  // Before any route is added: the auth hooks read every route's rules as it is registered.
  await app.register(authPlugin);
  await app.register(bootstrapPlugin);
  await app.register(openApiPlugin);

  await app.register(authRoutes);
  await app.register(prometheusPlugin);
  await app.register(healthRoutes);
  await app.register(jobRoutes);
  await app.register(manifestRoutes);
  await app.register(logRoutes);
  await app.register(queueRoutes);
  await app.register(artifactRoutes);
  await app.register(datasetRoutes);
  await app.register(pipelineRoutes);
  await app.register(bullBoardRoutes);
  await app.register(webRoutes);

  await app.register(housekeepingPlugin);
  return app;
}
