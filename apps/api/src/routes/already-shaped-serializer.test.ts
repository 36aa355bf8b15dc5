// The bypassed serializer of POST /v1/jobs: what it sends must be what the route's response schemas would have
// written. Each answer the route can give goes out both ways here, and the two must be the same JSON.
import { BerthError, errorStatus, JobRecord, newJobRecord, type ErrorCode } from '@berth/contracts';
import { loadManifests } from '@berth/manifests';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { join } from 'node:path';
import type { z } from 'zod';
import { jobSpecSchema, resolveSpec } from '../jobs/job-spec.js';
import { errorsPlugin } from '../plugins/errors.js';
import { alreadyShapedSerializer } from './already-shaped-serializer.js';
import { ErrorResponse } from './schemas.js';

const manifests = loadManifests(join(__dirname, '../../../../ngc-manifests'));
const owner = 'usr_aaaaaaaaaaaaaaaaaaaa';
const route = { method: 'POST', url: '/v1/jobs' };

/** The answer as the schema serializer writes it, and as the bypass does, both read back as JSON. */
function bothWays(schema: z.ZodType, answer: unknown): { schema: unknown; bypass: unknown } {
  return {
    schema: JSON.parse(serializerCompiler({ schema, ...route })(answer)),
    bypass: JSON.parse(alreadyShapedSerializer({ schema, ...route })(answer)),
  };
}

/** A spec with every optional field set, as the spec schema and resolveSpec leave it. */
function fullSpec() {
  const spec = jobSpecSchema(manifests).parse({
    manifest: 'custom',
    name: '  squad run  ',
    notes: 'why',
    params: { image: 'berth/fixture:dev', command: ['true'], env: { A: '1' } },
    resources: { gpus: 0, nodes: 1, memory: '512m' },
    labels: { team: 'nlp' },
    inputs: {
      dataset: 'ds_aaaaaaaaaaaaaaaaaaaa',
      initFrom: { job: 'job_aaaaaaaaaaaaaaaaaaaa' },
      resumeFrom: 'job_bbbbbbbbbbbbbbbbbbbb',
    },
    maxRuntime: 60,
    priority: 'high',
    queueTtl: 30,
    retries: { onOom: 1 },
  });
  const { spec: resolved } = resolveSpec(manifests, spec);
  // What submitValidSpec's input check writes down where the submit left the artifact out.
  return {
    ...resolved,
    inputs: { ...resolved.inputs, initFrom: { job: 'job_aaaaaaaaaaaaaaaaaaaa', artifact: 'model' } },
  };
}

test("a new job's record, as newJobRecord builds it and the store writes it, is what the schema would write", () => {
  const record = newJobRecord(owner, fullSpec());
  const { schema, bypass } = bothWays(JobRecord, record);
  expect(bypass).toStrictEqual(schema);
  // The 201 answer is the JSON the store wrote: JSON.stringify of this same record.
  expect(JSON.parse(JSON.stringify(record))).toStrictEqual(schema);
});

test('a record read back through JobRecord.parse, attempts and all, is what the schema would write', () => {
  const stored = {
    ...newJobRecord(owner, fullSpec()),
    state: 'failed',
    attempt: 2,
    startedAt: '2026-11-27T01:02:03.456Z',
    finishedAt: '2026-11-27T01:03:03.456Z',
    reason: 'EXIT_NONZERO',
    message: 'exit 1',
    exitCode: 1,
    worker: 'w1',
    summary: { final_loss: 0.5 },
    attempts: [
      {
        attempt: 1,
        worker: 'w1',
        gpus: ['GPU-1'],
        startedAt: '2026-11-27T01:02:03.456Z',
        finishedAt: '2026-11-27T01:02:33.456Z',
        state: 'failed',
        reason: 'OOM_KILLED',
        exitCode: 137,
        members: [{ rank: 0, worker: 'w1', gpus: ['GPU-1'], address: '10.0.0.1', container: 'c1', state: 'failed' }],
      },
    ],
  };
  const earlier = JobRecord.parse(JSON.parse(JSON.stringify(stored)));
  const { schema, bypass } = bothWays(JobRecord, earlier);
  expect(bypass).toStrictEqual(schema);
});

test('every error body, issues and details and all, is what ErrorResponse would write', () => {
  for (const code of Object.keys(errorStatus) as ErrorCode[]) {
    const body = new BerthError(code, `refused: ${code}`, {
      issues: [{ path: 'params.command.0', message: 'must be a string' }],
      job: 'job_aaaaaaaaaaaaaaaaaaaa',
      quota: { limit: 'gpus', max: 1, current: 1 },
    }).toBody();
    const { schema, bypass } = bothWays(ErrorResponse, body);
    expect(bypass).toStrictEqual(schema);
    const bare = bothWays(ErrorResponse, new BerthError(code, 'refused').toBody());
    expect(bare.bypass).toStrictEqual(bare.schema);
  }
});

test('through Fastify: the bodies the error handler makes of bad specs, and a new record, match their schemas', async () => {
  const app = Fastify().withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(errorsPlugin);
  app.removeContentTypeParser('text/plain');
  // POST /v1/jobs's body schema and answers, with the route's serializer.
  app.post(
    '/v1/jobs',
    {
      schema: { body: jobSpecSchema(manifests), response: { 201: JobRecord, 400: ErrorResponse, 415: ErrorResponse } },
      serializerCompiler: alreadyShapedSerializer,
    },
    async (request, reply) => reply.code(201).send(newJobRecord(owner, resolveSpec(manifests, request.body).spec)),
  );
  const bodies = [
    { manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['true'] } },
    { manifest: 'custom', params: { image: 'berth/fixture:dev', command: 'true', extra: 1 }, stray: true },
    { manifest: 'custom', params: {}, resources: { gpus: -1, memory: '1k' }, inputs: { initFrom: {} } },
    { manifest: 'bert-magic' },
    'not json',
  ];
  try {
    const codes: number[] = [];
    for (const body of bodies) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
      codes.push(res.statusCode);
      const { schema, bypass } = bothWays(res.statusCode === 201 ? JobRecord : ErrorResponse, res.json());
      expect(bypass).toStrictEqual(schema);
    }
    expect(codes).toEqual([201, 400, 400, 400, 415]);
  } finally {
    await app.close();
  }
});
