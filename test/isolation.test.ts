// The isolation matrix, generated from the API's own route table: every route that is not on the short public list
// refuses a missing or bad token; every route naming someone else's job, dataset or pipeline answers 404 as if it did
// not exist; admin routes refuse members; signed URLs work for exactly what was signed, by whom, until they expire.
// A route added without thinking about any of this is caught here.
import { connectRedis, WorkerRegistry } from '@berth/store';
import { claimAs } from './support/claim.js';
import { testRedisUrl } from './support/env.js';
import { startTestStack, readEvents, submit, fixtureJob, type TestClient, type TestStack } from './support/stack.js';

let stack: TestStack;
/** Alice's objects, by the kind of id a route takes. */
const mine: Record<string, string> = {};

/** Routes anyone may call: health, the API description, and the dashboard's static files. */
const publicRoutes = [
  /^\/healthz$/,
  /^\/readyz$/,
  /^\/openapi\.json$/,
  /^\/docs(\/|$)/,
  /^\/$/,
  /^\/index\.html$/,
  /^\/assets\/\*$/,
  /^\/(jobs|submit|datasets|pipelines)(\/:id)?$/,
  // bull-board's page shell and bundled assets (no data; its API under /admin/queues/api/ is admin-only).
  /^\/admin\/queues(\/|\/metrics-history|\/job-schedulers|\/queue\/:queueName(\/:jobId)?|\/static\/\*)?$/,
];

const notFoundCode = { job: 'JOB_NOT_FOUND', dataset: 'DATASET_NOT_FOUND', pipeline: 'PIPELINE_NOT_FOUND' };

beforeAll(async () => {
  stack = await startTestStack('isolation', { worker: false });
  const { body: job } = await submit(stack.alice, fixtureJob(['true']));
  mine.job = job.id;
  const ds = await stack.alice.fetch('/v1/datasets?name=notes&format=corpus&filename=notes.txt', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: 'The first document.\nIt has two sentences.\n\nThe second document.\n',
  });
  expect(ds.status).toBe(201);
  mine.dataset = ((await ds.json()) as { id: string }).id;
  const pl = await post(stack.alice, '/v1/pipelines', {
    name: 'p',
    steps: [{ name: 'only', manifest: 'custom', params: { image: 'berth/fixture:dev', command: ['true'] } }],
  });
  expect(pl.status).toBe(201);
  mine.pipeline = ((await pl.json()) as { id: string }).id;
});

afterAll(async () => stack?.close());

function post(client: TestClient, path: string, body: unknown): Promise<Response> {
  return client.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A concrete URL for a route pattern: alice's object for `:id`, a file path for `*`. */
function concrete(url: string, owns: string | undefined): string {
  const id = owns ? mine[owns]! : url.startsWith('/v1/users') ? stack.alice.user.id : 'custom';
  return url.replace(':id', id).replace('*', 'model/weights.bin');
}

async function call(method: string, url: string, headers: Record<string, string>): Promise<Response> {
  const hasBody = ['POST', 'PUT', 'PATCH'].includes(method);
  return fetch(`${stack.url}${url}`, {
    method,
    headers: { ...headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
    ...(hasBody ? { body: '{}' } : {}),
  });
}

const guarded = () =>
  stack.app.routeRules.filter((r) => r.method !== 'HEAD' && !publicRoutes.some((p) => p.test(r.url)));

test('the route table has the routes this matrix is about, and every non-public route is guarded', () => {
  const rules = stack.app.routeRules;
  expect(rules.length).toBeGreaterThan(30);
  // Nothing outside the public list is public.
  for (const r of rules) {
    if (!publicRoutes.some((p) => p.test(r.url)))
      expect({ ...r, access: r.access === 'public' }).toMatchObject({ access: false });
  }
  const owned = rules.filter((r) => r.owns).map((r) => `${r.method} ${r.url}`);
  expect(owned).toEqual(
    expect.arrayContaining([
      'GET /v1/jobs/:id',
      'GET /v1/jobs/:id/logs',
      'GET /v1/jobs/:id/artifacts/*',
      'PUT /v1/jobs/:id/artifacts/*',
      'GET /v1/datasets/:id/content',
      'POST /v1/pipelines/:id/cancel',
    ]),
  );
});

test('no token, a malformed one or an unknown one: 401 with WWW-Authenticate on every guarded route', async () => {
  const unknown = `berth_${'A'.repeat(43)}`;
  for (const r of guarded()) {
    const url = concrete(r.url, r.owns);
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Bearer ${unknown}` },
      { authorization: `Basic ${unknown}` },
    ]) {
      const res = await call(r.method, url, headers);
      const body = (await res.json()) as { error: { code: string } };
      expect({ route: `${r.method} ${r.url}`, status: res.status, code: body.error.code }).toEqual({
        route: `${r.method} ${r.url}`,
        status: 401,
        code: 'UNAUTHENTICATED',
      });
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
    }
  }
});

test("another member's token: every route naming alice's job, dataset or pipeline answers 404 as if it did not exist", async () => {
  const owned = guarded().filter((r) => r.owns);
  expect(owned.length).toBeGreaterThanOrEqual(15);
  for (const r of owned) {
    const url = concrete(r.url, r.owns);
    const res = await call(r.method, url, { authorization: `Bearer ${stack.bob.token}` });
    const expected = r.access === 'worker' ? 403 : 404;
    const body = (await res.json()) as { error: { code: string } };
    expect({ route: `${r.method} ${r.url}`, status: res.status }).toEqual({
      route: `${r.method} ${r.url}`,
      status: expected,
    });
    if (expected === 404) expect(body.error.code).toBe(notFoundCode[r.owns!]);
    // The owner and admins get past the ownership check (whatever the route then says about the path); reads only,
    // so the objects stay for the next routes.
    if (r.method !== 'GET') continue;
    for (const who of [stack.alice, stack.admin]) {
      const own = await call(r.method, url, { authorization: `Bearer ${who.token}` });
      expect({
        route: `${r.method} ${r.url}`,
        code: own.status === 404 ? ((await own.json()) as { error: { code: string } }).error.code : 'ok',
      }).not.toEqual({
        route: `${r.method} ${r.url}`,
        code: notFoundCode[r.owns!],
      });
    }
  }
});

test('admin routes refuse members (403); member routes refuse the worker account (403)', async () => {
  const worker = { authorization: `Bearer ${stack.workerApi.token}` };
  for (const r of guarded()) {
    const url = concrete(r.url, r.owns);
    if (r.access === 'admin') {
      expect({
        route: r.url,
        status: (await call(r.method, url, { authorization: `Bearer ${stack.alice.token}` })).status,
      }).toEqual({ route: r.url, status: 403 });
    }
    if (r.access === 'users' && !r.owns) {
      expect({ route: `${r.method} ${r.url}`, status: (await call(r.method, url, worker)).status }).toEqual({
        route: `${r.method} ${r.url}`,
        status: 403,
      });
    }
  }
});

test('listings show a member only their own; an admin sees everyone', async () => {
  const ids = async (client: TestClient, path: string, key: string) =>
    ((await (await client.fetch(path)).json()) as Record<string, { id: string }[]>)[key]!.map((o) => o.id);
  expect(await ids(stack.bob, '/v1/jobs', 'jobs')).not.toContain(mine.job);
  expect(await ids(stack.bob, '/v1/jobs?state=queued', 'jobs')).not.toContain(mine.job);
  expect(await ids(stack.alice, '/v1/jobs?state=queued', 'jobs')).toContain(mine.job);
  expect(await ids(stack.admin, '/v1/jobs', 'jobs')).toContain(mine.job);
  expect(await ids(stack.bob, '/v1/datasets', 'datasets')).not.toContain(mine.dataset);
  expect(await ids(stack.admin, '/v1/datasets', 'datasets')).toContain(mine.dataset);
  expect(await ids(stack.bob, '/v1/pipelines', 'pipelines')).not.toContain(mine.pipeline);
  expect(await ids(stack.alice, '/v1/pipelines', 'pipelines')).toContain(mine.pipeline);
  expect(await ids(stack.bob, '/v1/queue', 'waiting')).not.toContain(mine.job);
  expect(await ids(stack.alice, '/v1/queue', 'waiting')).toContain(mine.job);
  // Bob cannot start from alice's job or mount her dataset either.
  const theft = await post(stack.bob, '/v1/jobs', {
    manifest: 'bert-finetune-squad',
    params: {},
    resources: { gpus: 0 },
    inputs: { dataset: mine.dataset, initFrom: { job: mine.job, artifact: 'model' } },
  });
  expect(theft.status).toBe(400);
  const issues = ((await theft.json()) as { error: { issues: { path: string; message: string }[] } }).error.issues;
  expect(issues).toEqual(
    expect.arrayContaining([
      { path: 'inputs.dataset', message: `no dataset ${mine.dataset}` },
      { path: 'inputs.initFrom', message: `no job ${mine.job}` },
    ]),
  );
});

test("the state-change feed carries a member's own jobs only", async () => {
  const bobsFeed = readEvents(stack.bob, '/v1/events', {}, { count: 'state', after: 1 });
  const alicesFeed = readEvents(stack.alice, '/v1/events', {}, { count: 'state', after: 1 });
  await new Promise((r) => setTimeout(r, 300));
  const { body: hers } = await submit(stack.alice, fixtureJob(['true']));
  await stack.alice.fetch(`/v1/jobs/${hers.id}/cancel`, { method: 'POST' });
  const { body: his } = await submit(stack.bob, fixtureJob(['true']));
  await stack.bob.fetch(`/v1/jobs/${his.id}/cancel`, { method: 'POST' });
  const [bobs, alices] = await Promise.all([bobsFeed, alicesFeed]);
  expect(bobs.map((e) => JSON.parse(e.data).job)).toEqual([his.id]);
  expect(alices.map((e) => JSON.parse(e.data).job)).toEqual([hers.id]);
});

test('signed URLs: the signed path works without a header, as its signer, until it expires; nothing else does', async () => {
  const sign = async (client: TestClient, path: string) =>
    (await (await post(client, '/v1/signed-urls', { path })).json()) as { url: string; expiresAt: string };
  const logs = `/v1/jobs/${mine.job}/logs`;
  const signed = await sign(stack.alice, logs);
  expect(signed.url).toMatch(/\?sig=tok_[a-z2-7]{20}\.\d+\.[\w-]{43}$/);
  expect(signed.url).not.toContain(stack.alice.token);
  expect(Date.parse(signed.expiresAt) - Date.now()).toBeGreaterThan(500_000);
  expect((await fetch(`${stack.url}${signed.url}`)).status).toBe(200);

  // Another path, a changed query, a forged signature: refused.
  const other = signed.url.replace('/logs', '/metrics');
  const tampered = signed.url.replace('/logs?', '/logs?tail=1&');
  const forged = signed.url.slice(0, -3) + (signed.url.endsWith('AAA') ? 'BBB' : 'AAA');
  for (const url of [other, tampered, forged]) {
    const res = await fetch(`${stack.url}${url}`);
    expect({ url, status: res.status }).toEqual({ url, status: 401 });
  }
  // Only for reading: a signed URL does not cancel a job.
  const cancel = await sign(stack.alice, `/v1/jobs/${mine.job}/cancel`);
  expect((await fetch(`${stack.url}${cancel.url}`, { method: 'POST' })).status).toBe(401);
  // Bob can sign alice's path, but the URL acts as bob: 404.
  expect((await fetch(`${stack.url}${(await sign(stack.bob, logs)).url}`)).status).toBe(404);
  // The token never goes in a query string.
  expect((await fetch(`${stack.url}${logs}?access_token=${stack.alice.token}`)).status).toBe(401);
});

test('a revoked token stops working at once, and so do the URLs it signed', async () => {
  const made = await post(stack.admin, '/v1/tokens', { name: 'short', user: stack.alice.user.id });
  const { id, token } = (await made.json()) as { id: string; token: string };
  const auth = { authorization: `Bearer ${token}` };
  expect((await fetch(`${stack.url}/v1/me`, { headers: auth })).status).toBe(200);
  const signed = (await (
    await fetch(`${stack.url}/v1/signed-urls`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/v1/jobs' }),
    })
  ).json()) as { url: string };
  expect((await fetch(`${stack.url}${signed.url}`)).status).toBe(200);
  // Bob cannot revoke alice's token (it does not exist for him); alice can.
  expect((await stack.bob.fetch(`/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(404);
  expect((await stack.alice.fetch(`/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
  expect((await fetch(`${stack.url}/v1/me`, { headers: auth })).status).toBe(401);
  expect((await fetch(`${stack.url}${signed.url}`)).status).toBe(401);
  // Listing tokens never shows a secret.
  const listed = await (await stack.admin.fetch('/v1/tokens')).text();
  expect(listed).not.toContain(stack.alice.token);
  expect(listed).not.toContain('berth_');
});

test("no listing a member can call carries another member's job, dataset or pipeline id, in any field", async () => {
  // Alice's job placed on a worker, so the listings that say where jobs run have her id to leak.
  const redis = connectRedis(testRedisUrl());
  try {
    const worker = { id: 'w-isolation', mode: 'slots' as const, concurrency: 4, gpus: [] };
    await new WorkerRegistry(redis, stack.prefix).register({
      ...worker,
      host: 'isolation',
      gpuSource: 'none',
      startedAt: new Date().toISOString(),
    });
    const claims = await claimAs(redis, stack.prefix, worker, 10);
    expect(claims.map((c) => c.jobId)).toContain(mine.job);
  } finally {
    redis.disconnect();
  }
  // Every GET listing from the route table (no :id, no path, not admin-only, not a stream), walked as text: a new
  // field that names jobs, datasets or pipelines is caught without this test knowing its name.
  const listings = guarded().filter(
    (r) => r.method === 'GET' && !/[:*]/.test(r.url) && r.access !== 'admin' && r.url !== '/v1/events',
  );
  expect(listings.map((r) => r.url)).toEqual(
    expect.arrayContaining(['/v1/jobs', '/v1/queue', '/v1/workers', '/v1/datasets', '/v1/pipelines']),
  );
  const secrets = [mine.job!, mine.dataset!, mine.pipeline!];
  const walk = async (client: TestClient) => {
    let text = '';
    for (const r of listings) {
      const res = await client.fetch(r.url);
      expect({ route: r.url, status: res.status }).toEqual({ route: r.url, status: 200 });
      text += await res.text();
    }
    return text;
  };
  const asBob = await walk(stack.bob);
  for (const id of secrets) expect({ id, leaked: asBob.includes(id) }).toEqual({ id, leaked: false });
  // The walk does see these ids where they may be seen: by their owner and by admins (in the workers listing too).
  const workers = async (client: TestClient) => (await (await client.fetch('/v1/workers')).text()).includes(mine.job!);
  expect([await workers(stack.alice), await workers(stack.admin), await workers(stack.bob)]).toEqual([
    true,
    true,
    false,
  ]);
  const asAlice = await walk(stack.alice);
  for (const id of secrets) expect({ id, seen: asAlice.includes(id) }).toEqual({ id, seen: true });
});
