// Builds the API as a Fastify instance; main.ts only listens. Tests call buildApp directly.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { loadManifests } from '@berth/manifests';
import type { ApiConfig } from './env.js';
import { registerErrorHandler } from './plugins/errors.js';
import { artifactRoutes } from './routes/artifacts.js';
import { datasetRoutes } from './routes/datasets.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { Pipelines } from './pipelines/pipelines.js';
import { PipelineStore } from '@berth/store';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { logRoutes } from './routes/logs.js';
import { manifestRoutes } from './routes/manifests.js';
import { installPrometheus } from './routes/prometheus.js';
import { queueRoutes } from './routes/queue.js';
import { buildServices } from './services.js';

export const bodyLimit = 1024 * 1024;

interface OpenApiDoc {
  paths?: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
}

/** Fastify's wildcard (`*`) becomes a named OpenAPI path parameter, `{path}`: a file path under /results. */
function nameWildcards(doc: OpenApiDoc): Record<string, unknown> {
  const paths: NonNullable<OpenApiDoc['paths']> = {};
  for (const [url, ops] of Object.entries(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      for (const p of op.parameters ?? []) if (p.in === 'path' && p.name === '*') p.name = 'path';
    }
    paths[url.replace('{*}', '{path}')] = ops;
  }
  return { ...doc, paths };
}

/** Throws ManifestError (file, path, reason) when a recipe is broken: the API does not start with a bad catalog. */
export async function buildApp(config: ApiConfig): Promise<FastifyInstance> {
  const manifests = loadManifests(config.manifestsDir);
  const app = Fastify({
    logger: { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie'] },
    bodyLimit,
    requestTimeout: 30_000,
    // Ids are ours (job_…), never a counter; keep request ids short and random.
    genReqId: () => Math.random().toString(36).slice(2, 10),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);
  // Bodies are JSON only: anything else is 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');

  const services = buildServices(config);
  app.addHook('onClose', async () => services.close());

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'berth',
        version: '0.1.0',
        description: 'Train and fine-tune BERT on GPU hosts by running NVIDIA NGC containers.',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      servers: [{ url: '/' }],
      // No authentication yet: bearer tokens arrive with the tenancy issue.
      security: [],
      tags: [
        { name: 'jobs', description: 'Submit and inspect jobs' },
        { name: 'manifests', description: 'The recipe catalog' },
        { name: 'logs', description: 'Job output' },
        { name: 'queue', description: 'The queue and the workers' },
        { name: 'pipelines', description: 'Steps that pass artifacts along: pretrain → fine-tune → export → TensorRT' },
        { name: 'datasets', description: 'Domain data brought in: uploaded, checked, mounted at /data' },
        { name: 'artifacts', description: 'Checkpoints, models and logs jobs leave behind' },
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (doc) =>
      nameWildcards(('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as OpenApiDoc),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  installPrometheus(app, services);
  await app.register(healthRoutes(services));
  await app.register(jobRoutes(services, manifests));
  await app.register(manifestRoutes(manifests));
  await app.register(logRoutes(services));
  await app.register(queueRoutes(services));
  await app.register(artifactRoutes(services));
  await app.register(datasetRoutes(services));
  const pipelines = new Pipelines(services, manifests, new PipelineStore(services.redis, config.prefix));
  await app.register(pipelineRoutes(pipelines));
  // Steps advance as jobs end; any API process may do it (one at a time per pipeline).
  const advancing = setInterval(() => void pipelines.sweep().catch(() => {}), config.sweepMs);
  advancing.unref();
  app.addHook('onClose', async () => clearInterval(advancing));
  return app;
}
