// Routes call the stores without a wrapper: every one that needs Redis answers 503 REDIS_UNAVAILABLE while it is
// down (the error handler's one mapping), quickly, and never 500 INTERNAL. Reads, writes, the auth hook's lookups.
import { startRedis, type TestRedis } from './support/redis-server.js';
import { fixtureJob, startTestStack, submit, type TestClient, type TestStack } from './support/stack.js';

let redis: TestRedis;
let stack: TestStack;
let job: string;
beforeAll(async () => {
  redis = await startRedis(6398);
  stack = await startTestStack('unavailable', { redisUrl: redis.url, worker: false });
  const res = await submit(stack.alice, fixtureJob(['true']));
  expect(res.status).toBe(201);
  job = res.body.id;
});
afterAll(async () => {
  await stack.close();
  await redis.destroy();
});

test('each route that needs Redis answers 503 REDIS_UNAVAILABLE within 2 s while it is down, never 500', async () => {
  await redis.stop();
  const post = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const asStranger = {
    ...stack.alice,
    fetch: (path: string, init: RequestInit = {}) =>
      fetch(stack.url + path, {
        ...init,
        headers: { ...init.headers, authorization: `Bearer berth_${'a'.repeat(43)}` },
      }),
  };
  const cases: [TestClient, string, RequestInit?][] = [
    [stack.alice, '/v1/jobs'],
    [stack.alice, `/v1/jobs/${job}`],
    [stack.alice, `/v1/jobs/${job}/events`],
    [stack.alice, `/v1/jobs/${job}/logs`],
    [stack.alice, `/v1/jobs/${job}/metrics`],
    [stack.alice, `/v1/jobs/${job}/artifacts`],
    [stack.alice, `/v1/jobs/${job}/cancel`, { method: 'POST' }],
    [stack.alice, '/v1/jobs', post(fixtureJob(['true']))],
    [stack.alice, '/v1/queue'],
    [stack.alice, '/v1/workers'],
    [stack.alice, '/v1/datasets'],
    [stack.alice, '/v1/pipelines'],
    [stack.alice, '/v1/tokens'],
    [stack.admin, '/v1/users'],
    [asStranger, '/v1/jobs'], // the auth hook's token lookup
    [stack.alice, '/readyz'],
  ];
  const answers: string[] = [];
  for (const [client, path, init] of cases) {
    const started = Date.now();
    const res = await client.fetch(path, init);
    const body = (await res.json()) as { error?: { code?: string } };
    answers.push(`${init?.method ?? 'GET'} ${path} ${res.status} ${body.error?.code} ${Date.now() - started < 2000}`);
  }
  expect(answers).toEqual(cases.map(([, path, init]) => `${init?.method ?? 'GET'} ${path} 503 REDIS_UNAVAILABLE true`));
  await redis.start();
  // Back by itself: the stack closes on a connected Redis.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await stack.alice.fetch('/readyz')).status !== 200) {
    await new Promise((r) => setTimeout(r, 100));
  }
});
