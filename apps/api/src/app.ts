// Builds the API as a Fastify instance; main.ts only listens. Tests call buildApp directly.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { loadManifests } from '@berth/manifests';
import type { ApiConfig } from './env.js';
import { DatasetId, JobId, maskUrl, PipelineId } from '@berth/contracts';
import { mountBullBoard } from './admin/bull-board.js';
import { installAuth } from './auth/auth.js';
import { bootstrapAdmin } from './auth/bootstrap.js';
import { clientErrorHandler, registerErrorHandler } from './plugins/errors.js';
import { authRoutes } from './routes/auth.js';
import { webRoutes } from './routes/web.js';
import { artifactRoutes } from './routes/artifacts.js';
import { datasetRoutes } from './routes/datasets.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { Pipelines } from './pipelines/pipelines.js';
import { PipelineStore, redisReady } from '@berth/store';
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

/**
 * Every request logged at info is hundreds of lines an hour of a dashboard left open: requests are logged at debug
 * (LOG_LEVEL=debug shows them, with the same serializers and redaction); a request that errored stays at error.
 */
class QuietRequests extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** Throws ManifestError (file, path, reason) when a recipe is broken: the API does not start with a bad catalog. */
export async function buildApp(config: ApiConfig): Promise<FastifyInstance> {
  const manifests = loadManifests(config.manifestsDir);
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Secrets by path, wherever a log line might carry them. Logged URLs lose a signed URL's sig, a token sent as
      // access_token (refused with 401, but the request line is logged before the refusal) and any other
      // secret-looking parameter (maskUrl).
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-registry-auth"]',
          '*.token',
          '*.secret',
          '*.password',
          '*.NGC_API_KEY',
          '*.BERTH_API_TOKEN',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method: string; url: string; hostname?: string; ip?: string }) => ({
          method: req.method,
          url: maskUrl(req.url),
          host: req.hostname,
          remoteAddress: req.ip,
        }),
      },
    },
    bodyLimit,
    logController: new QuietRequests(),
    // A request that stops moving is cut (slow clients, stalled uploads); one that keeps moving may take as long as
    // a 60 GB checkpoint upload needs — a whole-request deadline would cut those. Headers: Node's 60 s.
    connectionTimeout: config.idleTimeoutMs,
    clientErrorHandler,
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
  const pipelineStore = new PipelineStore(services.redis, config.prefix);

  // Before any route is added: the auth hooks read every route's rules as it is registered.
  const auth = installAuth(app, {
    store: services.auth,
    rateLimit: config.rateLimit,
    signedUrlTtlSeconds: config.signedUrlTtlSeconds,
    ownerOf: {
      job: (id) => (JobId.safeParse(id).success ? services.store.ownerOf(id) : Promise.resolve(null)),
      dataset: async (id) =>
        (DatasetId.safeParse(id).success ? await services.datasets.records.get(id) : null)?.owner ?? null,
      pipeline: async (id) => (PipelineId.safeParse(id).success ? await pipelineStore.get(id) : null)?.owner ?? null,
    },
  });
  // The first admin is made as soon as Redis answers (now, or when it comes back); one try at a time.
  let bootstrapping: Promise<void> | undefined;
  const bootstrap = () =>
    (bootstrapping ??= bootstrapAdmin(services.auth, config.bootstrapTokenFile)
      .then((made) => {
        if (made)
          app.log.warn({ file: config.bootstrapTokenFile }, 'created the admin user; its token is in this file');
      })
      .catch((err: unknown) => app.log.error({ err }, 'could not make the first admin'))
      .finally(() => (bootstrapping = undefined)));
  services.redis.on('ready', () => void bootstrap());
  if (await redisReady(services.redis, 3000)) await bootstrap();
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
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API token (berth_…) from POST /v1/tokens' },
        },
      },
      // Every operation but health and this document; browsers may use a signed URL (POST /v1/signed-urls) instead.
      security: [{ bearer: [] }],
      tags: [
        { name: 'jobs', description: 'Submit and inspect jobs' },
        { name: 'manifests', description: 'The recipe catalog' },
        { name: 'logs', description: 'Job output' },
        { name: 'queue', description: 'The queue and the workers' },
        { name: 'pipelines', description: 'Steps that pass artifacts along: pretrain → fine-tune → export → TensorRT' },
        { name: 'datasets', description: 'Domain data brought in: uploaded, checked, mounted at /data' },
        { name: 'artifacts', description: 'Checkpoints, models and logs jobs leave behind' },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'auth', description: 'Users, API tokens, signed URLs' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (doc) =>
      nameWildcards(('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as OpenApiDoc),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(
    authRoutes({
      store: services.auth,
      auth,
      memberQuotas: config.memberQuotas,
      signedUrlTtlSeconds: config.signedUrlTtlSeconds,
    }),
  );
  installPrometheus(app, services);
  await app.register(healthRoutes(services));
  await app.register(jobRoutes(services, manifests));
  await app.register(manifestRoutes(manifests));
  await app.register(logRoutes(services));
  await app.register(queueRoutes(services));
  await app.register(artifactRoutes(services));
  await app.register(datasetRoutes(services));
  const pipelines = new Pipelines(services, manifests, pipelineStore);
  await app.register(pipelineRoutes(pipelines));
  await mountBullBoard(app, services);
  await app.register(webRoutes(config.webDir));
  // Steps advance as jobs end; any API process may do it (one at a time per pipeline).
  const advancing = setInterval(() => void pipelines.sweep().catch(() => {}), config.sweepMs);
  advancing.unref();
  app.addHook('onClose', async () => clearInterval(advancing));
  return app;
}
