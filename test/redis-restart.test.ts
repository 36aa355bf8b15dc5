// Redis restarts (AOF on, as production runs it) while 20 jobs wait in BullMQ and 2 run: every job still runs, once,
// to success. The running ones keep their containers and their whole log; the waiting ones start after Redis is
// back, taken through BullMQ's workers (whose fetch loop is the part known to stall after reconnects).
import { bullJobId, queueName } from '@berth/store';
import { Queue } from 'bullmq';
import { startRedis, type TestRedis } from './support/redis-server.js';
import { createdContainers, fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

let redis: TestRedis;
let stack: TestStack;
beforeAll(async () => {
  redis = await startRedis(6393);
  // Two slots: two jobs run, the rest wait. Written off only after 30 s of silence, far longer than the outage.
  stack = await startTestStack('redis-restart', { redisUrl: redis.url, concurrency: 2, lostAfterMs: 30_000 });
});
afterAll(async () => {
  await stack?.close();
  await redis?.destroy();
});

// The two that run first print for 3 s, across the outage; the others for 1.5 s.
const linesOf = (n: number) => (n < 2 ? 60 : 30);
const job = (n: number) =>
  fixtureJob([
    'sh',
    '-c',
    `i=1; while [ $i -le ${linesOf(n)} ]; do echo job ${n} line $i; i=$((i+1)); sleep 0.05; done`,
  ]);

test('20 waiting and 2 running jobs all finish, each once, across a Redis restart', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const ids: string[] = [];
  for (let n = 0; n < 22; n++) {
    const { status, body } = await submit(stack.alice, job(n));
    expect(status).toBe(201);
    ids.push(body.id);
  }
  // Wait until two run and twenty wait.
  for (let i = 0; i < 200; i++) {
    const list = (await (await stack.alice.fetch('/v1/jobs?limit=100')).json()) as { jobs: { state: string }[] };
    if (list.jobs.filter((j) => j.state === 'running').length === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const queue = new Queue(queueName(0), { connection: { url: redis.url }, prefix: stack.prefix });
  // Its connection drops with Redis; the calls after the restart are what count.
  queue.on('error', () => {});
  try {
    const counts = await queue.getJobCounts('active', 'prioritized', 'waiting');
    expect(counts.active).toBe(2);
    expect((counts.prioritized ?? 0) + (counts.waiting ?? 0)).toBe(20);

    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();

    const ended = [];
    for (const id of ids) ended.push(await waitForEnd(stack.alice, id, 120_000));
    for (const [n, record] of ended.entries()) {
      expect([n, record.state, record.attempt, record.attempts.length]).toEqual([n, 'succeeded', 1, 1]);
      const text = await (await stack.alice.fetch(`/v1/jobs/${record.id}/logs`)).text();
      expect(text).toBe(Array.from({ length: linesOf(n) }, (_, i) => `job ${n} line ${i + 1}\n`).join(''));
    }
    // One container a job, and one BullMQ job a job, completed.
    expect((await createdContainers(since, `berth.prefix=${stack.prefix}`)).sort()).toEqual([...ids].sort());
    // Each record ends first and its BullMQ job is completed right after: give the last ones a moment.
    for (let i = 0; i < 100 && (await queue.getJobCounts('active')).active! > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const completed = (await queue.getJobs(['completed'], 0, -1)).map((j) => j.id);
    expect(completed.sort()).toEqual(ids.map((id) => bullJobId(id, 1)).sort());
    expect(await queue.getJobCounts('active', 'prioritized', 'waiting', 'delayed', 'failed')).toEqual({
      active: 0,
      prioritized: 0,
      waiting: 0,
      delayed: 0,
      failed: 0,
    });
  } finally {
    await queue.close();
  }
}, 180_000);
