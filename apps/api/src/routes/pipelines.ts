// Pipelines: submit steps that pass artifacts along (or the domain-adapt template), watch each step, cancel them all.
import { Pipeline, PipelineSpec } from '@berth/contracts';
import { z } from 'zod';
import { ownerFilter } from '../auth/auth.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const Params = z.strictObject({ id: z.string().max(64) });

export const pipelineRoutes = routePlugin('berth-pipeline-routes', ['pipelines'], async (app, { pipelines }) => {
  app.post(
    '/v1/pipelines',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'createPipeline',
        summary: 'Submit a pipeline: steps with dependencies, or the domain-adapt template',
        description:
          'A step starts once the steps it depends on (dependsOn, or the step its inputs.initFrom names) ' +
          'succeeded, with that step’s artifact mounted at /init. A failed step skips the steps after it, with the ' +
          'reason. A step whose submit is refused for a reason that may pass (a full quota, no live worker big ' +
          'enough yet, the store unreachable) waits and is tried again with a growing delay, its reason saying ' +
          'why; after an hour of that it fails with the last error. ' +
          'domain-adapt: pretrain on a corpus → SQuAD fine-tune → ONNX export → TensorRT build → perf ' +
          '(the TensorRT steps are skipped, with the reason, where no GPU worker is live).',
        body: PipelineSpec,
        response: { 201: Pipeline, 400: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const pipeline = await pipelines.create(request.body, request.caller.user.id);
      return reply.code(201).header('location', `/v1/pipelines/${pipeline.id}`).send(pipeline);
    },
  );

  app.get(
    '/v1/pipelines',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'listPipelines',
        summary: "The caller's pipelines (an admin's: everyone's), newest first",
        response: { 200: z.object({ pipelines: z.array(Pipeline) }), 503: ErrorResponse },
      },
    },
    async (request) => ({ pipelines: await pipelines.list(ownerFilter(request.caller)) }),
  );

  app.get(
    '/v1/pipelines/:id',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'getPipeline',
        summary: 'A pipeline with the state, job and reason of each step',
        params: Params,
        response: { 200: Pipeline, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => pipelines.load(request.params.id),
  );

  app.post(
    '/v1/pipelines/:id/cancel',
    {
      schema: {
        tags: ['pipelines'],
        operationId: 'cancelPipeline',
        summary: 'Cancel every step not yet ended, including one being submitted right now',
        params: Params,
        response: { 200: Pipeline, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => pipelines.cancel(request.params.id),
  );
});
