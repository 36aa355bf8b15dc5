// The recipe catalog: what users may run, and each recipe's parameters (also as JSON Schema for forms).
import { BerthError } from '@berth/contracts';
import { paramsJsonSchema, type Manifest } from '@berth/manifests';
import { z } from 'zod';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const Summary = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  resources: z.object({ gpus: z.object({ default: z.number(), min: z.number(), max: z.number() }) }),
});

function summary(m: Manifest) {
  return { id: m.id, title: m.title, description: m.description, resources: { gpus: m.resources.gpus } };
}

export const manifestRoutes = routePlugin('berth-manifest-routes', ['manifests'], async (app, { manifests }) => {
  app.get(
    '/v1/manifests',
    {
      schema: {
        tags: ['manifests'],
        operationId: 'listManifests',
        summary: 'The recipes jobs can run',
        response: { 200: z.object({ manifests: z.array(Summary) }) },
      },
    },
    async () => ({ manifests: [...manifests.values()].map(summary) }),
  );

  app.get(
    '/v1/manifests/:id',
    {
      schema: {
        tags: ['manifests'],
        operationId: 'getManifest',
        summary: 'One recipe with its parameters, defaults and their JSON Schema',
        params: z.strictObject({ id: z.string().max(64) }),
        response: {
          200: Summary.extend({
            parameters: z.record(z.string(), z.unknown()),
            paramsSchema: z.record(z.string(), z.unknown()),
            mounts: z.array(z.unknown()),
          }),
          404: ErrorResponse,
        },
      },
    },
    async (request) => {
      const m = manifests.get(request.params.id);
      if (!m) throw new BerthError('MANIFEST_NOT_FOUND', `no recipe ${request.params.id}`);
      return { ...summary(m), parameters: m.parameters, paramsSchema: paramsJsonSchema(m), mounts: m.mounts };
    },
  );
});
