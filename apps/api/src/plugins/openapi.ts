// The OpenAPI document at /openapi.json (and /docs/json) and Swagger UI at /docs, made from the routes' zod schemas.
// Registered before the routes: it reads each one as it is added.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

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

export const openApiPlugin = fp(
  async (app) => {
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
          {
            name: 'pipelines',
            description: 'Steps that pass artifacts along: pretrain → fine-tune → export → TensorRT',
          },
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
  },
  { name: 'berth-openapi' },
);
