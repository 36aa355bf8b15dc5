// berth's jobs seen through BullMQ's own classes, as a team's own service would see them: a QueueEvents listener
// hears each attempt complete or fail, and Queue.getJobCounts/getJobs see a waiting job until it is cancelled.
import { bullJobId } from '@berth/store';
import { Queue, QueueEvents } from 'bullmq';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

const stacks: TestStack[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
  for (const s of stacks) await s.close();
});

/** BullMQ's connection options for the test Redis, as a user's service would write them. */
const connection = () => ({ url: testRedisUrl() });

test('a QueueEvents listener hears completed for a succeeded job and failed, with why, for a failed one', async () => {
  const stack = await startTestStack('queue-events');
  stacks.push(stack);
  // Fixture jobs ask for no GPUs: they wait in, and are taken from, the gpus-0 queue.
  const events = new QueueEvents('gpus-0', { connection: connection(), prefix: stack.prefix });
  closers.push(() => events.close());
  await events.waitUntilReady();
  const heard: { event: string; jobId: string; detail: unknown }[] = [];
  events.on('completed', ({ jobId, returnvalue }) => heard.push({ event: 'completed', jobId, detail: returnvalue }));
  events.on('failed', ({ jobId, failedReason }) => heard.push({ event: 'failed', jobId, detail: failedReason }));

  const { body: ok } = await submit(stack.alice, fixtureJob(['true']));
  const { body: bad } = await submit(stack.alice, fixtureJob(['sh', '-c', 'exit 3']));
  expect((await waitForEnd(stack.alice, ok.id)).state).toBe('succeeded');
  expect((await waitForEnd(stack.alice, bad.id)).state).toBe('failed');
  for (let i = 0; i < 100 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 50));

  const okHeard = heard.find((h) => h.jobId === bullJobId(ok.id, 1));
  const badHeard = heard.find((h) => h.jobId === bullJobId(bad.id, 1));
  expect(okHeard?.event).toBe('completed');
  expect(okHeard?.detail).toEqual({ state: 'succeeded' });
  expect(badHeard?.event).toBe('failed');
  expect(String(badHeard?.detail)).toMatch(/3/);
  // Each attempt is one BullMQ job, heard once.
  expect(heard.filter((h) => h.jobId === okHeard?.jobId)).toHaveLength(1);
}, 60_000);

test("BullMQ's Queue sees a waiting job, and cancelling it takes it out of BullMQ at once", async () => {
  // No worker: the job stays waiting.
  const stack = await startTestStack('queue-events-wait', { worker: false });
  stacks.push(stack);
  const queue = new Queue('gpus-0', { connection: connection(), prefix: stack.prefix });
  closers.push(() => queue.close());

  const { body: job } = await submit(stack.alice, fixtureJob(['true'], { priority: 'high' }));
  const waiting = await queue.getJobs(['prioritized', 'wait']);
  expect(waiting.map((j) => j.id)).toEqual([bullJobId(job.id, 1)]);
  expect(waiting[0]?.priority).toBe(1);
  expect(waiting[0]?.data).toEqual({ id: job.id, attempt: 1, gpus: 0, priority: 1 });
  expect(await queue.getJobCounts('prioritized', 'wait', 'active')).toEqual({ prioritized: 1, wait: 0, active: 0 });

  const cancel = await stack.alice.fetch(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
  expect(cancel.status).toBe(200);
  expect(await queue.getJobCounts('prioritized', 'wait', 'active')).toEqual({ prioritized: 0, wait: 0, active: 0 });
  expect(await queue.getJob(bullJobId(job.id, 1))).toBeUndefined();
}, 60_000);
