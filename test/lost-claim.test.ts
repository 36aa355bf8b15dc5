// A placement the worker never turned into an attempt (its reply lost, or the job re-claimed while the previous
// attempt was still cleaning up) is adopted on the worker's next heartbeat instead of sitting `queued` for ever.
import { connectRedis, type Redis } from '@berth/store';
import { claimAs } from './support/claim.js';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
let redis: Redis;

beforeAll(async () => {
  // One job at a time: the worker's own placement loop cannot take the second job while the first runs.
  stack = await startTestStack('lost-claim', { concurrency: 1 });
  redis = connectRedis(testRedisUrl());
});

afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

test('a job placed on the worker behind its back runs on its next heartbeat', async () => {
  const { body: first } = await submit(stack.alice, fixtureJob(['sleep', '3']));
  for (let i = 0; i < 100; i++) {
    const job = (await (await stack.alice.fetch(`/v1/jobs/${first.id}`)).json()) as { state: string };
    if (job.state !== 'queued') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const { body: second } = await submit(stack.alice, fixtureJob(['echo', 'adopted']));
  // The placement script run for this worker by someone else: Redis now says the worker holds the job, but the
  // worker's loop never saw the claim — exactly what a lost reply leaves behind.
  const claims = await claimAs(
    redis,
    stack.prefix,
    { id: stack.workerId, mode: 'whole-host', concurrency: 2, gpus: [] },
    8,
  );
  expect(claims.map((c) => c.jobId)).toEqual([second.id]);
  const ended = await waitForEnd(stack.alice, second.id, 20_000);
  expect(ended).toMatchObject({ state: 'succeeded', attempt: 1 });
  expect(ended.attempts).toHaveLength(1);
  const log = await (await stack.alice.fetch(`/v1/jobs/${second.id}/logs`)).text();
  expect(log).toBe('adopted\n');
  expect((await waitForEnd(stack.alice, first.id)).state).toBe('succeeded');
});
