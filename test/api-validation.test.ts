// Bad input gets one clear error with a code; listing pages newest first.
import { fixtureJob, startTestStack, submit, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('validation', { worker: false });
});
afterAll(async () => stack.close());

const post = (body: string, type = 'application/json') =>
  fetch(`${stack.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': type }, body });

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
  expect(error.issues).toContainEqual({ path: 'manifest', message: 'unknown manifest; available: custom' });
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
    const res = await fetch(`${stack.url}/v1/jobs/${id}`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('JOB_NOT_FOUND');
  }
});

test('listing is newest first, paginated by cursor, filterable by state; unknown query fields are rejected', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await submit(stack.url, fixtureJob(['echo', String(i)]))).body.id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { jobs: { id: string }[]; next: string | null } = await (
      await fetch(`${stack.url}/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
    ).json();
    expect(page.jobs.length).toBeLessThanOrEqual(2);
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.next;
  } while (cursor);
  expect(seen).toEqual([...ids].reverse());

  const queued = await (await fetch(`${stack.url}/v1/jobs?state=queued&limit=200`)).json();
  expect(queued.jobs).toHaveLength(5);
  const running = await (await fetch(`${stack.url}/v1/jobs?state=running`)).json();
  expect(running.jobs).toHaveLength(0);

  const bad = await fetch(`${stack.url}/v1/jobs?colour=red&state=asleep`);
  expect(bad.status).toBe(400);
  expect((await bad.json()).error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['colour', 'state']);
});

test('health, readiness, OpenAPI and Swagger UI answer', async () => {
  expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
  expect(await (await fetch(`${stack.url}/readyz`)).json()).toMatchObject({ status: 'ready' });
  const doc = await (await fetch(`${stack.url}/openapi.json`)).json();
  expect(doc.openapi).toMatch(/^3\./);
  expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/logs']));
  expect((await fetch(`${stack.url}/docs/`)).status).toBe(200);
});
