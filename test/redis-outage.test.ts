// With Redis gone the API answers 503 with a code within 2 s — never a hang — and recovers by itself.
import { startRedis, type TestRedis } from './support/redis-server.js';
import { fixtureJob, startTestStack, submit, type TestStack } from './support/stack.js';

let redis: TestRedis;
let stack: TestStack;
beforeAll(async () => {
  redis = await startRedis(6392);
  stack = await startTestStack('outage', { redisUrl: redis.url, worker: false });
});
afterAll(async () => {
  await stack.close();
  await redis.destroy();
});

test('POST answers 503 REDIS_UNAVAILABLE within 2 s while Redis is down, and works again after it returns', async () => {
  expect((await submit(stack.alice, fixtureJob(['true']))).status).toBe(201);

  await redis.stop();
  for (const path of ['/v1/jobs', '/readyz']) {
    const started = Date.now();
    const res =
      path === '/v1/jobs'
        ? await stack.alice.fetch(`${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(fixtureJob(['true'])),
          })
        : await stack.alice.fetch(`${path}`);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('REDIS_UNAVAILABLE');
  }
  expect((await stack.alice.fetch(`/healthz`)).status).toBe(200);

  await redis.start();
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < deadline && status !== 201) {
    status = (await submit(stack.alice, fixtureJob(['true']))).status;
    if (status !== 201) await new Promise((r) => setTimeout(r, 200));
  }
  expect(status).toBe(201);
  const listed = await (await stack.alice.fetch(`/v1/jobs`)).json();
  // AOF kept the job from before the outage; the failed submit left nothing behind.
  expect(listed.jobs).toHaveLength(2);
});
