// Submitting, listing and reading jobs.
import { BerthError, JobRecord, JobSpec, JobEvent, JobState } from '@berth/contracts';
import { z } from 'zod';
import { cancelJob, submitJob, submitValidSpec } from '../jobs/job-service.js';
import { loadJob, queuePlaces } from '../jobs/job-reads.js';
import { jobSpecSchema, previewLaunch, resolveSpec } from '../jobs/job-spec.js';
import { ownerFilter } from '../auth/auth.js';
import { ErrorResponse } from './schemas.js';
import { alreadyShapedSerializer } from './already-shaped-serializer.js';
import { routePlugin } from './route-plugin.js';

const JobParams = z.strictObject({ id: z.string().max(64) });
const idempotencyKey = /^[\x21-\x7e]{1,128}$/;

export const jobRoutes = routePlugin(
  'berth-job-routes',
  ['config', 'manifests', 'store', 'queues', 'placement', 'workers', 'datasets', 'artifacts', 'events'],
  async (app, uses) => {
    const { manifests, store, placement, workers, artifacts, events } = uses;
    const body = jobSpecSchema(manifests);

    app.post(
      '/v1/jobs/validate',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'validateJob',
          summary: 'Check a job spec and show the launch it renders to, without queueing it',
          body,
          response: {
            200: z.object({ spec: JobSpec, launch: z.record(z.string(), z.unknown()) }),
            400: ErrorResponse,
            413: ErrorResponse,
          },
        },
      },
      async (request) => {
        const resolved = resolveSpec(manifests, request.body);
        return { spec: resolved.spec, launch: { ...previewLaunch(resolved) } };
      },
    );

    app.post(
      '/v1/jobs',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'submitJob',
          summary: 'Submit a job',
          description:
            'With an `Idempotency-Key` header, sending the same body again under the same key (a retry after a ' +
            'dropped connection) answers 200 with the job made the first time; a different body under a used key ' +
            'is 409 IDEMPOTENCY_KEY_REUSED. Keys are kept a day, per user.',
          headers: z
            .object({ 'idempotency-key': z.string().regex(idempotencyKey, '1 to 128 printable characters').optional() })
            .passthrough(),
          body,
          response: {
            200: JobRecord,
            201: JobRecord,
            400: ErrorResponse,
            409: ErrorResponse,
            413: ErrorResponse,
            422: ErrorResponse,
            429: ErrorResponse,
            503: ErrorResponse,
          },
        },
        // Every answer here is a record submitValidSpec built or read back, or an error body: the schemas stay for
        // the docs and are not run again (already-shaped-serializer.ts says why that is safe).
        serializerCompiler: alreadyShapedSerializer,
      },
      async (request, reply) => {
        const key = request.headers['idempotency-key'];
        // The body passed the same spec schema as Fastify validated it: it is not checked twice.
        const { record, created, json } = await submitValidSpec(uses, request.body, request.caller.user, key);
        reply.code(created ? 201 : 200).header('location', `/v1/jobs/${record.id}`);
        // A new job's record goes out as the JSON just stored: Fastify sends a string with a JSON type as it is (the
        // typed send() only knows the record's shape, hence the cast).
        if (json) return reply.header('content-type', 'application/json; charset=utf-8').send(json as never);
        return reply.send(record);
      },
    );

    app.post(
      '/v1/jobs/:id/retry',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'retryJob',
          summary: 'Submit a job again: a new job with the same spec, labelled berth.retry-of',
          params: JobParams,
          response: { 201: JobRecord, 404: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        const spec = { ...job.spec, labels: { ...job.spec.labels, 'berth.retry-of': job.id } };
        const { record } = await submitJob(uses, spec, request.caller.user);
        return reply.code(201).header('location', `/v1/jobs/${record.id}`).send(record);
      },
    );

    app.post(
      '/v1/jobs/:id/resume',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'resumeJob',
          summary:
            'Continue a failed or cancelled job from its newest checkpoint: a new job with the same spec, whose ' +
            '/results starts with that checkpoint (inputs.resumeFrom), labelled berth.resume-of',
          params: JobParams,
          response: {
            201: JobRecord,
            404: ErrorResponse,
            409: ErrorResponse,
            422: ErrorResponse,
            429: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        const manifest = manifests.get(job.spec.manifest);
        if (job.state !== 'failed' && job.state !== 'cancelled') {
          throw new BerthError(
            'NOTHING_TO_RESUME',
            `job ${job.id} is ${job.state}: only a failed or cancelled job resumes`,
          );
        }
        if (!manifest?.retry.resumes) {
          throw new BerthError(
            'NOTHING_TO_RESUME',
            `recipe ${job.spec.manifest} does not resume from a checkpoint: berth retry starts it again`,
          );
        }
        if (!(await artifacts.exists(job.id, 'latest', job.attempt))) {
          throw new BerthError('NOTHING_TO_RESUME', `job ${job.id} left no checkpoint: berth retry starts it again`);
        }
        const spec = {
          ...job.spec,
          labels: { ...job.spec.labels, 'berth.resume-of': job.id },
          inputs: { ...job.spec.inputs, resumeFrom: job.id },
        };
        const { record } = await submitJob(uses, spec, request.caller.user);
        return reply.code(201).header('location', `/v1/jobs/${record.id}`).send(record);
      },
    );

    app.get(
      '/v1/jobs',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'listJobs',
          summary: 'List jobs, newest first',
          querystring: z.strictObject({
            state: JobState.optional(),
            limit: z.coerce.number().int().min(1).max(200).default(50),
            cursor: z
              .string()
              .regex(/^[0-9a-z]{1,12}$/)
              .optional(),
          }),
          response: {
            200: z.object({ jobs: z.array(JobRecord), next: z.string().nullable() }),
            400: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request) => {
        const owner = ownerFilter(request.caller);
        return store.list({ ...request.query, ...(owner ? { owner } : {}) });
      },
    );

    app.get(
      '/v1/jobs/:id',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'getJob',
          summary: 'One job with its attempts and state history; a queued job also says its place and why it waits',
          params: JobParams,
          response: { 200: JobRecord, 404: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request) => {
        const job = await loadJob(store, request.params.id);
        if (job.state !== 'queued') return job;
        const place = await queuePlaces(placement, workers).then((q) => q.places.get(job.id));
        return place ? { ...job, queue: place } : job;
      },
    );

    app.post(
      '/v1/jobs/:id/cancel',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'cancelJob',
          summary: 'Cancel a queued or running job',
          description:
            'A queued job is cancelled at once. A running job is stopped by the worker that runs it ' +
            '(SIGTERM, then SIGKILL after the grace period); the answer is 202 and the job becomes `cancelled`.',
          params: JobParams,
          response: { 200: JobRecord, 202: JobRecord, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        // An ended job is refused by cancelJob before it does anything.
        const done = await cancelJob(uses, job);
        if (done) return reply.code(200).send(done);
        return reply.code(202).send(await loadJob(store, job.id));
      },
    );

    app.get(
      '/v1/jobs/:id/events',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'getJobEvents',
          summary: "A job's events: pull progress, retries, cancel requests, timeouts",
          params: JobParams,
          querystring: z.strictObject({
            after: z
              .string()
              .regex(/^[0-9]+-[0-9]+$/)
              .default('0-0'),
            limit: z.coerce.number().int().min(1).max(1000).default(500),
          }),
          response: { 200: z.object({ events: z.array(JobEvent) }), 404: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request) => {
        const job = await loadJob(store, request.params.id);
        const { after, limit } = request.query;
        return { events: await events.read(job.id, after, limit) };
      },
    );
  },
);
