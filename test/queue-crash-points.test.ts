// berth's record and BullMQ's job are written in two steps. A real worker process is killed (BERTH_FAULT) between
// them, or the state a killed API leaves is made, and every time the job still runs exactly once and BullMQ ends
// agreeing with the record.
import { bullJobId, connectRedis, JobStore, type Redis } from '@berth/store';
import { newJobRecord } from '@berth/contracts';
import { Queue } from 'bullmq';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';
import { exited, kill, spawnWorker } from './support/worker-process.js';

let stack: TestStack;
let redis: Redis;
let queue: Queue;
beforeAll(async () => {
  stack = await startTestStack('queue-crash', { worker: false });
  redis = connectRedis(testRedisUrl());
  queue = new Queue('gpus-0', { connection: { url: testRedisUrl() }, prefix: stack.prefix });
});
afterAll(async () => {
  await queue.close();
  redis.disconnect();
  await stack.close();
});

/** The BullMQ state of a job's first attempt, polled until it is `want` (or the last one seen). */
async function bullState(jobId: string, want: string): Promise<string> {
  let state = '';
  for (let i = 0; i < 100 && state !== want; i++) {
    state = await queue.getJobState(bullJobId(jobId, 1));
    if (state !== want) await new Promise((r) => setTimeout(r, 50));
  }
  return state;
}

async function ranOnce(jobId: string, text: string): Promise<void> {
  const job = await waitForEnd(stack.alice, jobId, 30_000);
  expect(job).toMatchObject({ state: 'succeeded', attempt: 1 });
  expect(job.attempts).toHaveLength(1);
  expect(await (await stack.alice.fetch(`/v1/jobs/${jobId}/logs`)).text()).toBe(text);
  expect(await bullState(jobId, 'completed')).toBe('completed');
  expect(await queue.getJobCounts('active', 'prioritized', 'wait', 'delayed')).toEqual({
    active: 0,
    prioritized: 0,
    wait: 0,
    delayed: 0,
  });
}

/**
 * Submits `echo <word>`, runs a worker that kills itself at `fault`, checks what the crash left (`left`), then
 * restarts the worker without the fault and checks the job ran once.
 */
async function crashAndRestart(workerId: string, fault: string, word: string, left: (id: string) => Promise<void>) {
  const { body } = await submit(stack.alice, fixtureJob(['echo', word]));
  const first = spawnWorker(stack, workerId, { BERTH_FAULT: fault });
  expect(await exited(first)).toBe('SIGKILL');
  await left(body.id);
  const second = spawnWorker(stack, workerId);
  try {
    await ranOnce(body.id, `${word}\n`);
  } finally {
    await kill(second);
  }
}

test('a worker killed between taking a job from BullMQ and giving it GPUs puts it back when it restarts', async () => {
  await crashAndRestart('crash-fetch', 'after-fetch', 'once', async (id) => {
    // Taken in BullMQ, under the dead worker's lock, while the record still waits.
    expect(await queue.getJobState(bullJobId(id, 1))).toBe('active');
    expect(((await (await stack.alice.fetch(`/v1/jobs/${id}`)).json()) as { state: string }).state).toBe('queued');
  });
}, 60_000);

test('a worker killed between recording an end and finishing its BullMQ job finishes it when it restarts', async () => {
  await crashAndRestart('crash-end', 'after-end-record', 'ended', async (id) => {
    expect((await waitForEnd(stack.alice, id, 10_000)).state).toBe('succeeded');
    expect(await queue.getJobState(bullJobId(id, 1))).toBe('active');
  });
}, 60_000);

test('a job recorded by an API that died before its BullMQ add is added by the housekeeper and runs once', async () => {
  // What BERTH_FAULT=after-record leaves: the record and its indexes, no BullMQ job.
  const record = newJobRecord(stack.alice.user.id, {
    manifest: 'custom',
    params: { image: 'berth/fixture:dev', command: ['echo', 'healed'] },
    resources: {},
  });
  const created = await new JobStore(redis, stack.prefix).create(record, { gpus: 0 });
  expect('created' in created).toBe(true);
  expect(await queue.getJobState(bullJobId(record.id, 1))).toBe('unknown');
  const worker = spawnWorker(stack, 'heal');
  try {
    // The API's sweeps (every 500 ms here) find it in the outbox after its 2 s grace and add it.
    await ranOnce(record.id, 'healed\n');
  } finally {
    await kill(worker);
  }
}, 60_000);
