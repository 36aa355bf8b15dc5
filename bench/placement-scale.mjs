// Placement at scale: BENCH_JOBS (10,000) waiting jobs of mixed sizes (1, 2, 4 and 8 GPUs) in BullMQ, over
// BENCH_WORKERS (50) workers of 8 GPUs each in slots mode, all in this process, with berth's real placement code
// (Placement, JobQueues, AttemptTaker: BullMQ workers fetching by hand) on one redis-server and with the API's
// housekeeper sweeping beside them, as in production.
// The workers first fill up. Then, BENCH_ROUNDS times, one running attempt chosen at random ends (its end recorded
// and its BullMQ job finished, as a worker does). Its worker places again at once, and the time is measured from
// the GPUs freeing to the next job placed. Only the freed worker places: in a full cluster the others find nothing
// that fits, so this is the latency of a wake-up that finds work. Redis CPU per placement comes from INFO's
// used_cpu_sys + used_cpu_user over the measured rounds.
// Baseline, on the same Redis: a GPU-blind BullMQ getNextJob from one queue of 10,000 jobs — what taking a job costs
// with no fitting. The ratio is berth's p99 over that p99.
// Target: berth's p99 ≤ 100 ms.
//   BENCH_JOBS (default 10000), BENCH_WORKERS (default 50), BENCH_ROUNDS (default 400)
import { join } from 'node:path';
import process from 'node:process';
import { repo, startBerth } from './lib/berth.mjs';
import { fmt, percentile, runBench } from './lib/report.mjs';

const name = 'placement-scale';
const jobCount = Number(process.env.BENCH_JOBS ?? 10_000);
const workerCount = Number(process.env.BENCH_WORKERS ?? 50);
const rounds = Number(process.env.BENCH_ROUNDS ?? 400);
const gpusPerWorker = 8;
const targetP99Ms = 100;
// The mix: mostly single-GPU fine-tunes, some 2- and 4-GPU runs, a few whole-host pretraining jobs.
const sizes = [1, 1, 1, 2, 1, 4, 1, 2, 8, 1];

const store = await import(join(repo, 'packages/store/dist/index.js'));
const { newJobRecord } = await import(join(repo, 'packages/contracts/dist/index.js'));

async function redisCpu(redis) {
  const info = await redis.info('cpu');
  const field = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

await runBench(name, async (cleanups) => {
  const berth = await startBerth(name, { worker: false });
  cleanups.push(berth.stop);
  const redis = store.connectRedis(berth.redisUrl);
  cleanups.push(async () => redis.disconnect());
  const prefix = berth.prefix;
  const jobs = new store.JobStore(redis, prefix);
  const queues = new store.JobQueues(redis, prefix);
  cleanups.push(() => queues.close());
  const placement = new store.Placement(redis, prefix);
  const owner = (
    await new store.AuthStore(redis, prefix).createUser('bench', 'member', { queuedJobs: null, gpus: null })
  ).id;

  // The queue: 10,000 jobs, submitted as the API does (record, then the BullMQ add), 64 at a time.
  const t0 = globalThis.performance.now();
  for (let i = 0; i < jobCount; i += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, jobCount - i) }, async (_, k) => {
        const gpus = sizes[(i + k) % sizes.length];
        const spec = { manifest: 'custom', params: {}, resources: { gpus } };
        const record = newJobRecord(owner, spec);
        await jobs.create(record, { gpus });
        await queues.enqueue({ id: record.id, attempt: 1, gpus, priority: store.bullPriorityOf(undefined) });
      }),
    );
  }
  const submitS = (globalThis.performance.now() - t0) / 1000;

  const registry = new store.WorkerRegistry(redis, prefix);
  const workers = [];
  for (let w = 0; w < workerCount; w++) {
    const id = `${prefix}-w${w}`;
    const gpus = Array.from({ length: gpusPerWorker }, (_, g) => `GPU-${w}-${g}`);
    await registry.register({
      id,
      host: `host-${w}`,
      mode: 'slots',
      concurrency: gpusPerWorker,
      gpus: gpus.map((uuid, index) => ({ index, uuid, name: 'bench GPU' })),
      gpuSource: 'config',
      startedAt: new Date().toISOString(),
    });
    const taker = new store.AttemptTaker(berth.redisUrl, prefix, id, 300_000);
    cleanups.push(() => taker.close());
    workers.push({ spec: { id, mode: 'slots', concurrency: gpusPerWorker, gpus }, taker, running: [] });
  }
  const claim = (w) => placement.claim(w.spec, { maxBypass: 8 }, queues, w.taker);
  for (const w of workers) w.running.push(...(await claim(w)));
  const filled = workers.reduce((n, w) => n + w.running.reduce((g, c) => g + c.devices.length, 0), 0);

  const ender = { store: jobs, queues, token: '0' };
  const latencies = [];
  let empty = 0;
  let seed = 7;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const cpuBefore = await redisCpu(redis);
  for (let r = 0; r < rounds; r++) {
    const busy = workers.filter((w) => w.running.length > 0);
    const w = busy[random(busy.length)];
    const [done] = w.running.splice(random(w.running.length), 1);
    const record = await jobs.get(done.jobId);
    const ownerToken = `${w.spec.id}|${done.attempt}`;
    await store.endAttempt(ender, record, ownerToken, { state: 'succeeded' }, { infraRetries: 0, backoffMs: 0 });
    const freed = globalThis.performance.now();
    const placed = await claim(w);
    const took = globalThis.performance.now() - freed;
    if (placed.length === 0) empty++;
    else latencies.push(took);
    w.running.push(...placed);
  }
  const cpuS = (await redisCpu(redis)) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);

  // The baseline: plain BullMQ, one queue of the same size, a worker taking its head with no fitting.
  const { Queue, Worker } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: berth.redisPort };
  const raw = new Queue(`${prefix}-raw`, { connection });
  cleanups.push(() => raw.close());
  for (let i = 0; i < jobCount; i += 500) {
    await raw.addBulk(Array.from({ length: Math.min(500, jobCount - i) }, () => ({ name: 'job', data: {} })));
  }
  const rawWorker = new Worker(`${prefix}-raw`, null, { connection, autorun: false, skipStalledCheck: true });
  cleanups.push(() => rawWorker.close(true));
  const rawTimes = [];
  for (let r = 0; r < rounds; r++) {
    const t = globalThis.performance.now();
    await rawWorker.getNextJob('bench', { block: false });
    rawTimes.push(globalThis.performance.now() - t);
  }
  rawTimes.sort((a, b) => a - b);
  const rawP99 = percentile(rawTimes, 99);

  const placements = latencies.length;
  return {
    name,
    figure: `freed GPUs to the next job placed p50 ${fmt(p50, 1)} ms, p99 ${fmt(p99, 1)} ms over ${placements} placements`,
    ratio: p99 / rawP99,
    ratioOf: "berth's p99 / a GPU-blind BullMQ getNextJob's p99",
    target: `p99 ≤ ${targetP99Ms} ms`,
    pass: placements > 0 && p99 <= targetP99Ms,
    rows: [
      {
        what: 'placement after a finish, p50 / p99 (ms)',
        berth: `${fmt(p50, 1)} / ${fmt(p99, 1)}`,
        baseline: `${fmt(percentile(rawTimes, 50), 1)} / ${fmt(rawP99, 1)}`,
        ratio: p99 / rawP99,
      },
      {
        what: 'Redis CPU per placement (ms)',
        berth: fmt((cpuS * 1000) / Math.max(1, placements), 2),
        baseline: '',
        ratio: null,
      },
    ],
    notes: [
      `${jobCount} jobs submitted in ${fmt(submitS, 1)} s; ${workerCount} workers × ${gpusPerWorker} GPUs, ${filled} GPUs filled at start`,
      `${rounds} finishes: ${placements} placed a job, ${empty} found nothing that fit the freed GPUs`,
      `Redis CPU ${fmt(cpuS * 1000, 0)} ms over the rounds (${fmt((cpuS * 1000) / Math.max(1, placements), 2)} ms a placement)`,
    ],
  };
});
