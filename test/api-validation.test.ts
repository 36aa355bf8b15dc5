// Bad input gets one clear error with a code; listing pages newest first.
import { fixtureJob, startTestStack, submit, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('validation', { worker: false });
});
afterAll(async () => stack.close());

const post = (body: string, type = 'application/json') =>
  stack.alice.fetch(`/v1/jobs`, { method: 'POST', headers: { 'content-type': type }, body });

test('malformed JSON is 400 INVALID_JSON', async () => {
  const res = await post('{"manifest": ');
  expect(res.status).toBe(400);
  expect((await res.json()).error.code).toBe('INVALID_JSON');
});

test('every problem comes back in one 400, with its path', async () => {
  const res = await post(
    JSON.stringify({
      manifest: 'custom',
      params: { image: 'Not An Image', command: 'echo', env: { OK: 1 }, extra: true },
      resources: { gpus: -1 },
      surprise: 1,
    }),
  );
  expect(res.status).toBe(400);
  const { error } = await res.json();
  expect(error.code).toBe('VALIDATION_FAILED');
  expect(error.issues.map((i: { path: string }) => i.path).sort()).toEqual(
    ['params.command', 'params.env.OK', 'params.extra', 'params.image', 'resources.gpus', 'surprise'].sort(),
  );
});

test('an unknown manifest is named', async () => {
  const res = await post(JSON.stringify({ manifest: 'bert-magic', params: {} }));
  const { error } = await res.json();
  expect(res.status).toBe(400);
  expect(error.issues).toEqual([
    { path: 'manifest', message: expect.stringMatching(/^unknown manifest; available: .*bert-finetune-squad.*custom/) },
  ]);
});

test('a body over 1 MiB is 413 BODY_TOO_LARGE', async () => {
  const big = JSON.stringify(fixtureJob(['echo', 'x'.repeat(1024 * 1024 + 10)]));
  const res = await post(big);
  expect(res.status).toBe(413);
  expect((await res.json()).error.code).toBe('BODY_TOO_LARGE');
});

test('a non-JSON content type is 415', async () => {
  const res = await post('manifest=custom', 'text/plain');
  expect(res.status).toBe(415);
  expect((await res.json()).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
});

test('unknown and malformed job ids are 404 JOB_NOT_FOUND', async () => {
  for (const id of ['job_aaaaaaaaaaaaaaaaaaaa', '1', 'nope']) {
    const res = await stack.alice.fetch(`/v1/jobs/${id}`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('JOB_NOT_FOUND');
  }
});

test('listing is newest first, paginated by cursor, filterable by state; unknown query fields are rejected', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await submit(stack.alice, fixtureJob(['echo', String(i)]))).body.id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { jobs: { id: string }[]; next: string | null } = await (
      await stack.alice.fetch(`/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
    ).json();
    expect(page.jobs.length).toBeLessThanOrEqual(2);
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.next;
  } while (cursor);
  expect(seen).toEqual([...ids].reverse());

  const queued = await (await stack.alice.fetch(`/v1/jobs?state=queued&limit=200`)).json();
  expect(queued.jobs).toHaveLength(5);
  const running = await (await stack.alice.fetch(`/v1/jobs?state=running`)).json();
  expect(running.jobs).toHaveLength(0);

  const bad = await stack.alice.fetch(`/v1/jobs?colour=red&state=asleep`);
  expect(bad.status).toBe(400);
  expect((await bad.json()).error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['colour', 'state']);
});

test('health, readiness, OpenAPI and Swagger UI answer', async () => {
  expect((await stack.alice.fetch(`/healthz`)).status).toBe(200);
  expect(await (await stack.alice.fetch(`/readyz`)).json()).toMatchObject({ status: 'ready' });
  const doc = await (await stack.alice.fetch(`/openapi.json`)).json();
  expect(doc.openapi).toMatch(/^3\./);
  expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/logs']));
  expect((await stack.alice.fetch(`/docs/`)).status).toBe(200);
});

test('the recipe catalog lists every manifest and serves each with its parameters as JSON Schema', async () => {
  const list = await (await stack.alice.fetch(`/v1/manifests`)).json();
  const ids = list.manifests.map((m: { id: string }) => m.id);
  expect(ids).toEqual(
    expect.arrayContaining(['custom', 'bert-pretrain', 'bert-finetune-squad', 'dle-bert-squad', 'tensorrt-build']),
  );
  const squad = await (await stack.alice.fetch(`/v1/manifests/bert-finetune-squad`)).json();
  expect(squad.parameters.doc_stride).toMatchObject({ type: 'int', min: 16, max: 512, default: 128 });
  expect(squad.paramsSchema.properties.doc_stride).toMatchObject({ type: 'integer', minimum: 16, maximum: 512 });
  const missing = await stack.alice.fetch(`/v1/manifests/nope`);
  expect(missing.status).toBe(404);
  expect((await missing.json()).error.code).toBe('MANIFEST_NOT_FOUND');
});

test('a recipe checks its parameters, GPU range and inputs, all in one 400', async () => {
  const res = await post(
    JSON.stringify({
      manifest: 'bert-finetune-squad',
      params: { doc_stride: 4, precision: 'fp64', colour: 'red', env: { NVIDIA_VISIBLE_DEVICES: 'all' } },
      resources: { gpus: 9 },
    }),
  );
  expect(res.status).toBe(400);
  const issues: { path: string; message: string }[] = (await res.json()).error.issues;
  const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
  expect(byPath['params.doc_stride']).toMatch(/between 16 and 512/);
  expect(byPath['params.precision']).toMatch(/fp32.*bf16.*fp16/);
  expect(byPath['params.colour']).toMatch(/unknown parameter/);
  expect(Object.keys(byPath)).toContain('params.env.NVIDIA_VISIBLE_DEVICES');
  expect(byPath['resources.gpus']).toBe('bert-finetune-squad runs on 0 to 8 GPUs');
  expect(byPath['inputs.dataset']).toBe(
    'bert-finetune-squad needs a dataset at /data: choose one of yours (berth submit --dataset, inputs.dataset)',
  );
  expect(byPath['inputs.initFrom']).toMatch(/needs a model to start from at \/init: choose a finished job/);
});

test('a dry run renders the launch without queueing it, hiding host paths and environment values', async () => {
  const res = await stack.alice.fetch(`/v1/jobs/validate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ...fixtureJob(['echo', 'hi; rm -rf /']),
      params: { image: 'berth/fixture:dev', command: ['echo', 'hi; rm -rf /'], env: { TOKEN: 's3cret' } },
    }),
  });
  expect(res.status).toBe(200);
  const { spec, launch } = await res.json();
  expect(spec.resources.gpus).toBe(0);
  expect(launch).toMatchObject({
    image: 'berth/fixture:dev',
    command: ['echo', 'hi; rm -rf /'],
    gpus: 'none',
    env: { TOKEN: '(hidden)' },
  });
  expect(JSON.stringify(launch)).not.toContain('s3cret');
  expect(launch.mounts).toEqual([{ hostPath: '(host)', containerPath: '/results', readOnly: false }]);
  const listed = await (await stack.alice.fetch(`/v1/jobs?limit=200`)).json();
  expect(listed.jobs.filter((j: { spec: { params: { env?: unknown } } }) => j.spec.params.env)).toHaveLength(0);
});

test('initFrom without an artifact, from a job with no model or checkpoint yet, says what to name', async () => {
  // A job that never ran has neither: the answer says so and how to go on.
  const { body: source } = await submit(stack.alice, fixtureJob(['true']));
  const res = await post(JSON.stringify({ ...fixtureJob(['ls', '/init']), inputs: { initFrom: { job: source.id } } }));
  expect(res.status).toBe(400);
  const issues: { path: string; message: string }[] = (await res.json()).error.issues;
  expect(issues).toEqual([
    {
      path: 'inputs.initFrom',
      message: `job ${source.id} has no model folder or checkpoint (yet); name one of its artifacts in inputs.initFrom.artifact`,
    },
  ]);
});
