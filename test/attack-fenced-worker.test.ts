// A worker whose attempt was written off while its container still runs (its heartbeats were late, say) must stop
// that container and record nothing more for it. Two paths see the write-off: the worker's own look at Redis, and
// the API's 409 ATTEMPT_FENCED to the attempt's next upload (the one left to a worker that reaches the API but not
// Redis, which this test does not stage; uploader.test.ts covers the uploader's side of it).
import { connectRedis, JobStore, type Redis } from '@berth/store';
import { testRedisUrl } from './support/env.js';
import { docker, fixtureJob, startTestStack, submit, type TestStack } from './support/stack.js';

let stack: TestStack;
let redis: Redis;
beforeAll(async () => {
  stack = await startTestStack('fenced-worker');
  redis = connectRedis(testRedisUrl());
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.close();
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an attempt written off under a running container is stopped within seconds, and nothing more is recorded', async () => {
  // A new checkpoint every 0.3 s for a minute: every scan of /results has something to upload.
  const writer =
    'i=0; while [ $i -lt 200 ]; do d=/results/checkpoints/.tmp-$i; mkdir -p $d; echo $i > $d/state.pt; ' +
    'mv $d /results/checkpoints/step-$i; i=$((i+1)); sleep 0.3; done';
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', writer]));
  const name = `berth-${body.id}-a1`;
  for (let i = 0; i < 200; i++) {
    const job = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as { state: string };
    if (job.state === 'running') break;
    await tick(50);
  }
  // Written off as the housekeeper would, and kept queued (a later retry) so no second attempt muddies the picture.
  const t = await new JobStore(redis, stack.prefix).transition(
    body.id,
    { state: 'queued', reason: 'WORKER_LOST' },
    { owner: `${stack.workerId}|1`, release: stack.workerId, requeueAt: Date.now() + 600_000 },
  );
  expect(t.ok).toBe(true);
  let running = true;
  for (let i = 0; i < 100 && running; i++) {
    await tick(100);
    running =
      (
        await docker
          .getContainer(name)
          .inspect()
          .catch(() => undefined)
      )?.State.Running ?? false;
  }
  // Stopped within 10 s (a scan every 0.3 s, a stop grace of 2 s), not after its minute of work.
  expect(running).toBe(false);
  const job = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as { state: string; attempts: unknown[] };
  expect(job.state).toBe('queued');
  expect(job.attempts).toHaveLength(1);
}, 60_000);
