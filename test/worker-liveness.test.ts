// The liveness clock of the queue client: a worker whose BullMQ fetches hand over nothing while a job that fits
// waits is reported stuck, and stays stuck through the watchdog's renewals, until a fetch succeeds.
import { queueName } from '@berth/store';
import { Redis } from 'ioredis';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
let redis: Redis;
beforeAll(async () => {
  // A short watchdog, so that several renewals happen while the test watches.
  stack = await startTestStack('liveness', { timings: { watchdogMs: 400 } });
  redis = new Redis(testRedisUrl());
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fitting jobs that BullMQ hands over none of make the worker stuck, renewals or not, until a fetch works', async () => {
  const worker = stack.worker!;
  // BullMQ's own global concurrency, set to 0: its fetch hands over nothing, and the job stays at the head of the
  // queue where the placement sees it — the shape of a BullMQ worker that stopped fetching.
  const meta = `${stack.prefix}:${queueName(0)}:meta`;
  await redis.hset(meta, 'concurrency', '0');
  expect(worker.queueStuckSince()).toBeUndefined();

  const { status, body } = await submit(stack.alice, fixtureJob(['true']));
  expect(status).toBe(201);
  const deadline = Date.now() + 10_000;
  while (worker.queueStuckSince() === undefined && Date.now() < deadline) await sleep(50);
  const since = worker.queueStuckSince();
  expect(since).toBeDefined();
  expect(since!).toBeLessThanOrEqual(Date.now() - 400);

  // Several watchdog periods: each renews the BullMQ workers and restarts the watchdog's own clock, not this one.
  await sleep(2500);
  expect(worker.queueStuckSince()).toBe(since);
  expect((await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()).state).toBe('queued');

  await redis.hdel(meta, 'concurrency');
  const job = await waitForEnd(stack.alice, body.id);
  expect(job.state).toBe('succeeded');
  expect(worker.queueStuckSince()).toBeUndefined();
});
