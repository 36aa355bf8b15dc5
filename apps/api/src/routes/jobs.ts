// Submitting, listing and reading jobs.
import {
  BerthError,
  JobId,
  JobRecord,
  JobSpec,
  JobState,
  newJobId,
  type JobRecord as JobRecordT,
} from '@berth/contracts';
import type { Manifest } from '@berth/manifests';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Services } from '../services.js';
import { jobSpecSchema, previewLaunch, resolveSpec } from './job-spec.js';
import { ErrorResponse } from './schemas.js';

const JobParams = z.strictObject({ id: z.string().max(64) });

export async function loadJob(services: Services, id: string): Promise<JobRecordT> {
  const job = JobId.safeParse(id).success ? await services.call(() => services.store.get(id)) : null;
  if (!job) throw new BerthError('JOB_NOT_FOUND', `no job ${id}`);
  return job;
}

export const jobRoutes =
  (services: Services, manifests: ReadonlyMap<string, Manifest>): FastifyPluginAsyncZod =>
  async (app) => {
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
          body,
          response: { 201: JobRecord, 400: ErrorResponse, 413: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const now = new Date().toISOString();
        const record: JobRecordT = {
          id: newJobId(),
          spec: resolveSpec(manifests, request.body).spec,
          state: 'queued',
          attempt: 0,
          createdAt: now,
          updatedAt: now,
          history: [{ state: 'queued', at: now, attempt: 0 }],
        };
        await services.call(() => services.store.create(record));
        try {
          await services.call(() =>
            services.queue.add(
              'run',
              { jobId: record.id },
              {
                jobId: record.id,
                attempts: 1,
                removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
                removeOnFail: { age: 30 * 24 * 3600, count: 10_000 },
              },
            ),
          );
        } catch (err) {
          // A job that is recorded but never queued would wait forever: take it back.
          await services.call(() => services.store.discard(record.id, record.state)).catch(() => {});
          throw err;
        }
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
      async (request) => services.call(() => services.store.list(request.query)),
    );

    app.get(
      '/v1/jobs/:id',
      {
        schema: {
          tags: ['jobs'],
          operationId: 'getJob',
          summary: 'One job with its state history',
          params: JobParams,
          response: { 200: JobRecord, 404: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request) => loadJob(services, request.params.id),
    );
  };
