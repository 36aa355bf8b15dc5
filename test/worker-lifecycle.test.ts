// How attempts end on the real engine: cancel (queued and running), maxRuntime, out of memory, queueTtl,
// retries by cause, and the submit-time check that some worker is large enough.
import type { JobRecord } from '@berth/contracts';
import { docker, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  // Two slots, four GPUs, stop grace 2 s (fastTimings).
  stack = await startTestStack('lifecycle-ends', { concurrency: 2, gpus: '4', mode: 'slots' });
});
afterAll(async () => stack.close());

async function post(path: string): Promise<{ status: number; body: JobRecord & { error?: { code: string } } }> {
  const res = await stack.alice.fetch(`${path}`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

async function waitForState(id: string, state: string): Promise<JobRecord> {
  for (let i = 0; i < 300; i++) {
    const job = (await (await stack.alice.fetch(`/v1/jobs/${id}`)).json()) as JobRecord;
    if (job.state === state) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} never reached ${state}`);
}

const forever = (trap: boolean) =>
  fixtureJob([
    'sh',
    '-c',
    `${trap ? 'trap "echo got TERM, saving a checkpoint; exit 143" TERM; ' : ''}echo up; while true; do sleep 0.1; done`,
  ]);

test('cancelling a running job stops its container within the grace period and records CANCELLED', async () => {
  // No TERM handler: PID 1 ignores SIGTERM, so this also proves the SIGKILL after the grace period.
  const { body } = await submit(stack.alice, forever(false));
  await waitForState(body.id, 'running');
  const asked = Date.now();
  const res = await post(`/v1/jobs/${body.id}/cancel`);
  expect(res.status).toBe(202);
  const job = await waitForEnd(stack.alice, body.id, 15_000);
  expect(Date.now() - asked).toBeLessThan(2000 + 4000);
  expect(job).toMatchObject({ state: 'cancelled', reason: 'CANCELLED' });
  expect(job.attempts).toHaveLength(1);
  expect(job.attempts[0]).toMatchObject({ state: 'cancelled', reason: 'CANCELLED' });
  // The end is recorded first (exit code, every line), then its BullMQ job is finished and the container removed:
  // gone within moments of the record, not left behind.
  const left = () => docker.listContainers({ all: true, filters: { name: [`berth-${body.id}-a1`] } });
  for (let i = 0; i < 40 && (await left()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await left()).toEqual([]);
  // A finished job can't be cancelled again.
  expect((await post(`/v1/jobs/${body.id}/cancel`)).body.error?.code).toBe('JOB_ALREADY_FINISHED');
});

test('cancelling a queued job ends it at once; it never gets a container', async () => {
  // Fill both slots so the third job waits.
  const busy = await Promise.all([submit(stack.alice, forever(true)), submit(stack.alice, forever(true))]);
  await Promise.all(busy.map((b) => waitForState(b.body.id, 'running')));
  const { body } = await submit(stack.alice, fixtureJob(['echo', 'never']));
  const queued = (await (await stack.alice.fetch(`/v1/jobs/${body.id}`)).json()) as JobRecord;
  expect(queued.queue).toMatchObject({ position: 1, placeable: true });

  const res = await post(`/v1/jobs/${body.id}/cancel`);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ state: 'cancelled', reason: 'CANCELLED', attempt: 0 });
  for (const b of busy) await post(`/v1/jobs/${b.body.id}/cancel`);
  const ended = await Promise.all(busy.map((b) => waitForEnd(stack.alice, b.body.id, 15_000)));
  // These had a TERM handler: they saved their work and exited on SIGTERM.
  for (const b of busy) {
    expect(await (await stack.alice.fetch(`/v1/jobs/${b.body.id}/logs`)).text()).toBe(
      'up\ngot TERM, saving a checkpoint\n',
    );
  }
  expect(ended.map((j) => j.state)).toEqual(['cancelled', 'cancelled']);
  expect(await docker.listContainers({ all: true, filters: { name: [`berth-${body.id}`] } })).toEqual([]);
});

test('maxRuntime stops the job with SIGTERM (it checkpoints) and ends it as TIMEOUT', async () => {
  const { body } = await submit(stack.alice, { ...forever(true), maxRuntime: 2 });
  const job = await waitForEnd(stack.alice, body.id, 20_000);
  expect(job).toMatchObject({ state: 'failed', reason: 'TIMEOUT', exitCode: 143 });
  const ran = Date.parse(job.finishedAt!) - Date.parse(job.startedAt!);
  expect(ran).toBeGreaterThanOrEqual(2000);
  expect(ran).toBeLessThan(2000 + 4000);
  expect(await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs`)).text()).toBe(
    'up\ngot TERM, saving a checkpoint\n',
  );
  const events = (await (await stack.alice.fetch(`/v1/jobs/${body.id}/events`)).json()) as {
    events: { type: string }[];
  };
  expect(events.events.map((e) => e.type)).toContain('timeout');
});

test('a process that allocates past its memory limit ends as OOM_KILLED', async () => {
  const { body } = await submit(
    stack.alice,
    fixtureJob(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1'], { resources: { memory: '32m' } }),
  );
  const job = await waitForEnd(stack.alice, body.id, 20_000);
  expect(job).toMatchObject({ state: 'failed', reason: 'OOM_KILLED', exitCode: 137 });
  expect(job.message).toContain('memory limit');
});

test('user failures are retried only when the spec asks; every attempt is listed with its reason', async () => {
  const once = await submit(stack.alice, fixtureJob(['sh', '-c', 'exit 4']));
  const twice = await submit(stack.alice, { ...fixtureJob(['sh', '-c', 'exit 4']), retries: { onFailure: 1 } });
  const [a, b] = await Promise.all([waitForEnd(stack.alice, once.body.id), waitForEnd(stack.alice, twice.body.id)]);
  expect(a.attempts.map((x) => x.reason)).toEqual(['EXIT_NONZERO']);
  expect(b).toMatchObject({ state: 'failed', reason: 'EXIT_NONZERO', attempt: 2 });
  expect(b.attempts.map((x) => [x.attempt, x.reason, x.exitCode])).toEqual([
    [1, 'EXIT_NONZERO', 4],
    [2, 'EXIT_NONZERO', 4],
  ]);
  expect(b.history.map((h) => h.state)).toContain('queued');
});

test('a job that waits longer than its queueTtl ends as EXPIRED', async () => {
  const busy = await Promise.all([submit(stack.alice, forever(true)), submit(stack.alice, forever(true))]);
  const { body } = await submit(stack.alice, { ...fixtureJob(['echo', 'late']), queueTtl: 1 });
  const job = await waitForEnd(stack.alice, body.id, 10_000);
  expect(job).toMatchObject({ state: 'failed', reason: 'EXPIRED', attempt: 0 });
  for (const b of busy) await post(`/v1/jobs/${b.body.id}/cancel`);
  await Promise.all(busy.map((b) => waitForEnd(stack.alice, b.body.id, 15_000)));
});

test('a job asking for more GPUs than any live worker has is refused at submit, with the reason', async () => {
  const res = await submit(stack.alice, fixtureJob(['true'], { resources: { gpus: 8 } }));
  expect(res.status).toBe(422);
  expect(res.body).toMatchObject({ error: { code: 'RESOURCES_UNSATISFIABLE' } });
  expect((res.body as unknown as { error: { message: string } }).error.message).toContain('largest live worker has 4');
});

test('GET /v1/workers shows the worker, its GPUs and versions; GET /v1/queue counts and orders', async () => {
  const workers = (await (await stack.alice.fetch(`/v1/workers`)).json()) as {
    workers: { id: string; mode: string; status: string; gpus: { uuid: string }[]; dockerVersion?: string }[];
  };
  expect(workers.workers).toHaveLength(1);
  expect(workers.workers[0]).toMatchObject({ id: stack.workerId, mode: 'slots', status: 'live', gpuSource: 'config' });
  expect(workers.workers[0]!.gpus.map((g) => g.uuid)).toEqual(['0', '1', '2', '3']);

  const queue = (await (await stack.alice.fetch(`/v1/queue`)).json()) as {
    counts: Record<string, number>;
    waiting: unknown[];
    workers: { id: string; gpus: number; free: number }[];
  };
  expect(queue.counts.cancelled).toBeGreaterThanOrEqual(3);
  expect(queue.workers).toEqual([expect.objectContaining({ id: stack.workerId, gpus: 4 })]);
});
