// Workers killed with SIGKILL mid-job. Coming back, a worker re-attaches to its container and finishes the job once
// with a complete log; a container that exited meanwhile is judged by its real exit code; a worker that never comes
// back is written off and its job retried elsewhere, and its leftover container is removed. BullMQ agrees: the
// re-attached attempt is one BullMQ job, completed under the lock its worker took back.
import { bullJobId, queueName } from '@berth/store';
import { Queue } from 'bullmq';
import { testPrefix, testRedisUrl } from './support/env.js';
import { kill, spawnWorker } from './support/worker-process.js';
import {
  createdContainers,
  docker,
  fixtureJob,
  startTestStack,
  startTestWorker,
  submit,
  waitForEnd,
  type TestStack,
  type TestClient,
} from './support/stack.js';

const stacks: TestStack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.close();
});

async function waitForLog(client: TestClient, id: string, needle: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await (await client.fetch(`/v1/jobs/${id}/logs`)).text()).includes(needle)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${needle} never appeared in the log of ${id}`);
}

const ticks = (n: number, sleep: string) =>
  fixtureJob(['sh', '-c', `i=1; while [ $i -le ${n} ]; do echo tick $i; i=$((i+1)); sleep ${sleep}; done`]);

test('killed mid-job and restarted, a worker re-attaches: one container, one completion, the whole log in order', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const prefix = testPrefix('crash-back');
  const stack = await startTestStack('crash-back', { prefix, worker: false });
  stacks.push(stack);
  const first = spawnWorker(stack, 'phoenix');
  const { body } = await submit(stack.alice, ticks(80, '0.1'));
  await waitForLog(stack.alice, body.id, 'tick 5\n');
  await kill(first);

  const second = spawnWorker(stack, 'phoenix');
  const job = await waitForEnd(stack.alice, body.id, 60_000).finally(() => kill(second));

  expect(job).toMatchObject({ state: 'succeeded', attempt: 1, exitCode: 0, worker: 'phoenix' });
  expect(job.attempts).toHaveLength(1);
  expect(job.history.filter((h) => h.state === 'succeeded')).toHaveLength(1);
  const text = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text();
  expect(text).toBe(Array.from({ length: 80 }, (_, i) => `tick ${i + 1}\n`).join(''));
  expect(await createdContainers(since, `berth.job=${body.id}`)).toEqual([body.id]);
  // The restarted worker took over its own BullMQ lock (its id is the token): one BullMQ job, completed, no other.
  const queue = new Queue(queueName(0), { connection: { url: testRedisUrl() }, prefix });
  try {
    // The record ends first and the BullMQ job is completed right after it: wait a moment for the second step.
    const states = async () => {
      const jobs = await queue.getJobs(['completed', 'failed', 'active', 'waiting', 'prioritized', 'delayed']);
      return Promise.all(jobs.map(async (j) => [j.id, await j.getState()]));
    };
    let seen = await states();
    for (let i = 0; i < 100 && seen.some(([, state]) => state === 'active'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await states();
    }
    expect(seen).toEqual([[bullJobId(body.id, 1), 'completed']]);
  } finally {
    await queue.close();
  }
});

test('a container that exits while its worker is down is reported with its real exit code', async () => {
  const prefix = testPrefix('crash-exit');
  const stack = await startTestStack('crash-exit', { prefix, worker: false });
  stacks.push(stack);
  const first = spawnWorker(stack, 'sleeper');
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'echo started; sleep 1; echo done; exit 7']));
  await waitForLog(stack.alice, body.id, 'started\n');
  await kill(first);
  // The container finishes on its own while nobody watches it.
  const container = docker.getContainer(`berth-${body.id}-a1`);
  await container.wait();
  expect((await container.inspect()).State.ExitCode).toBe(7);

  const second = spawnWorker(stack, 'sleeper');
  const job = await waitForEnd(stack.alice, body.id, 30_000).finally(() => kill(second));
  expect(job).toMatchObject({ state: 'failed', reason: 'EXIT_NONZERO', exitCode: 7, attempt: 1 });
  expect(await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text()).toBe('started\ndone\n');
});

test('a worker that never returns is written off: its job is retried elsewhere and its container removed', async () => {
  const prefix = testPrefix('crash-lost');
  const lostAfterMs = 1500;
  const stack = await startTestStack('crash-lost', { prefix, worker: false, lostAfterMs });
  stacks.push(stack);
  const doomed = spawnWorker(stack, 'doomed', { BERTH_LOST_AFTER_MS: String(lostAfterMs) });
  const { body } = await submit(stack.alice, ticks(30, '0.1'));
  await waitForLog(stack.alice, body.id, 'tick 3\n');
  await kill(doomed);

  const rescuer = startTestWorker(prefix, { workerId: 'rescuer', timings: { lostAfterMs }, api: stack.workerApi });
  try {
    const job = await waitForEnd(stack.alice, body.id, 60_000);
    expect(job).toMatchObject({ state: 'succeeded', attempt: 2, worker: 'rescuer' });
    expect(job.attempts.map((a) => [a.attempt, a.worker, a.reason ?? a.state])).toEqual([
      [1, 'doomed', 'WORKER_LOST'],
      [2, 'rescuer', 'succeeded'],
    ]);
    const workers = (await (await stack.alice.fetch(`/v1/workers`)).json()) as {
      workers: { id: string; status: string }[];
    };
    expect(workers.workers.find((w) => w.id === 'doomed')?.status).toBe('lost');
    // The written-off worker's container is nobody's: it is stopped and removed after the grace period.
    for (let i = 0; i < 100; i++) {
      const left = await docker.listContainers({ all: true, filters: { name: [`berth-${body.id}-a1`] } });
      if (left.length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the lost attempt’s container was never removed');
  } finally {
    await rescuer.close();
  }
});

test('a container gone while its worker was away during the upload is INFRA_ERROR, never run again as the same attempt', async () => {
  const prefix = testPrefix('crash-upload');
  const stack = await startTestStack('crash-upload', { prefix, worker: false });
  stacks.push(stack);
  // No API answers this worker: the attempt's end waits in `uploading`, its container kept for the exit code.
  const first = spawnWorker(stack, 'uploader', { BERTH_API_URL: 'http://127.0.0.1:9' });
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', 'echo ran']));
  for (let i = 0; i < 300; i++) {
    const job = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as { state: string };
    if (job.state === 'uploading') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await kill(first);
  await docker.getContainer(`berth-${body.id}-a1`).remove({ force: true });

  const second = spawnWorker(stack, 'uploader');
  const job = await waitForEnd(stack.alice, body.id, 60_000).finally(() => kill(second));
  expect(job.attempts.map((a) => [a.attempt, a.reason ?? a.state])).toEqual([
    [1, 'INFRA_ERROR'],
    [2, 'succeeded'],
  ]);
  expect(job.attempts[0]!.message).toMatch(/disappeared while its worker was away \(the attempt was uploading\)/);
  // Attempt 1 ran once: its log is the one line, not two.
  expect(await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?attempt=1`)).text()).toBe('ran\n');
}, 120_000);

test('re-attached after the engine rotated its log, a worker goes on from the stored position: nothing lost or twice', async () => {
  const prefix = testPrefix('crash-rotate');
  const stack = await startTestStack('crash-rotate', { prefix, worker: false });
  stacks.push(stack);
  // The engine keeps two files of 1 MiB: the flood below is several times that, so its start is rotated away. It
  // pauses every 500 lines, so that the worker reading it never falls a whole 2 MiB behind.
  const env = { BERTH_CONTAINER_LOG_MAX_SIZE: '1m', BERTH_CONTAINER_LOG_MAX_FILES: '2' };
  const flood = 30_000;
  const pad = 'x'.repeat(80);
  const first = spawnWorker(stack, 'rotor', env);
  const { body } = await submit(
    stack.alice,
    fixtureJob([
      'sh',
      '-c',
      `i=1; while [ $i -le ${flood} ]; do echo "flood $i ${pad}"; [ $((i % 500)) -eq 0 ] && sleep 0.05; i=$((i+1)); done; ` +
        'sleep 4; ' +
        'i=1; while [ $i -le 50 ]; do echo "tail $i"; i=$((i+1)); done',
    ]),
  );
  const last = `flood ${flood} ${pad}\n`;
  for (let i = 0; i < 600; i++) {
    if ((await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?tail=1`)).text()) === last) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // Killed in the pause: its successor finds the stored position, and an engine log that no longer starts at line 1.
  await kill(first);
  const second = spawnWorker(stack, 'rotor', env);
  const job = await waitForEnd(stack.alice, body.id, 60_000).finally(() => kill(second));
  expect(job).toMatchObject({ state: 'succeeded', attempt: 1 });
  const log = (await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?limit=100000`)).text()).split('\n');
  log.pop();
  expect(log.length).toBe(flood + 50);
  expect(log.slice(flood - 2)).toEqual([
    `flood ${flood - 1} ${pad}`,
    `flood ${flood} ${pad}`,
    ...Array.from({ length: 50 }, (_, i) => `tail ${i + 1}`),
  ]);
}, 120_000);
