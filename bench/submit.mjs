// Submit throughput: POST /v1/jobs at 32 concurrent connections (autocannon), against the built API with no worker
// running, so every job stays queued (nothing launches). Baseline, in the same run and on the same redis-server:
// BullMQ's Queue.add of the same spec, 32 adds in flight at all times — what a queue costs with nothing of berth
// around it. berth's submit does that same add and more: validation, the job record and its indexes, the wake-up
// of the workers, HTTP.
// Each side gets an untimed 2 s warm-up, then the two take turns: BENCH_ROUNDS rounds of BENCH_SECONDS each, raw
// first, so a change in the machine's speed during the run falls on both sides (this VM's speed moves by ±30 % over
// minutes). The figures are medians over the rounds; the ratio is berth's median rate over the raw median rate.
// Targets: berth ≥ 0.3 × the raw adds/s, and berth's median p99 ≤ 50 ms.
//   BENCH_ROUNDS (default 5), BENCH_SECONDS (default 3 a round), BENCH_CONNECTIONS (default 32)
import { Queue } from 'bullmq';
import process from 'node:process';
import { customSpec, scrapeMetrics, startBerth } from './lib/berth.mjs';
import { postJobs } from './lib/load.mjs';
import { fixtureImage, fmt, median, percentile, runBench } from './lib/report.mjs';

const name = 'submit';
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const warmSeconds = 2;
const targetRatio = 0.3;
const targetP99Ms = 50;
const spec = customSpec(fixtureImage, ['true']);

/** `connections` loops, each awaiting one Queue.add after another, for `duration` seconds. */
async function rawRound(queue, duration) {
  const latencies = [];
  const until = globalThis.performance.now() + duration * 1000;
  const loop = async () => {
    while (globalThis.performance.now() < until) {
      const t0 = globalThis.performance.now();
      await queue.add('job', spec);
      latencies.push(globalThis.performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / duration,
    count: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
  };
}

await runBench(name, async (cleanups) => {
  // No worker: with no live worker every valid job is accepted and waits, unplaced.
  const berth = await startBerth(name, { worker: false });
  cleanups.push(berth.stop);

  const queue = new Queue(`${berth.prefix}-raw`, { connection: { host: '127.0.0.1', port: berth.redisPort } });
  cleanups.push(() => queue.close());
  await rawRound(queue, warmSeconds);
  await postJobs(berth.url, spec, { connections, duration: warmSeconds });
  const raws = [];
  const ourRounds = [];
  for (let i = 0; i < rounds; i++) {
    const raw = await rawRound(queue, seconds);
    const one = await postJobs(berth.url, spec, { connections, duration: seconds });
    console.log(
      `round ${i + 1}: raw BullMQ Queue.add ${fmt(raw.rate)} adds/s (p99 ${fmt(raw.p99, 1)} ms); ` +
        `berth POST /v1/jobs ${fmt(one.rate)} jobs/s (p50 ${fmt(one.p50, 1)} / p99 ${fmt(one.p99, 1)} / ` +
        `max ${fmt(one.max, 1)} ms, ${fmt(one.other)} other answers or errors): ${fmt(one.rate / raw.rate, 2)}`,
    );
    raws.push(raw);
    ourRounds.push(one);
  }
  const med = (list, k) => median(list.map((r) => r[k]));
  const raw = { rate: med(raws, 'rate'), p50: med(raws, 'p50'), p99: med(raws, 'p99'), rounds: raws };
  const ours = {
    rate: med(ourRounds, 'rate'),
    p50: med(ourRounds, 'p50'),
    p99: med(ourRounds, 'p99'),
    worstP99: Math.max(...ourRounds.map((r) => r.p99)),
    count: ourRounds.reduce((n, r) => n + r.count, 0),
    other: ourRounds.reduce((n, r) => n + r.other, 0),
    rounds: ourRounds,
  };
  // Every 201 is a job that is now queued (nothing started: there is no worker).
  const queued = (await scrapeMetrics(berth.url)).get('berth_jobs{state="queued"}');
  const problems = [];
  if (ours.other > 0) problems.push(`${fmt(ours.other)} submissions were not answered 201`);
  if (queued < ours.count) problems.push(`only ${fmt(queued)} jobs queued after ${fmt(ours.count)} 201s`);

  const ratio = ours.rate / raw.rate;
  return {
    name,
    figure:
      `berth ${fmt(ours.rate)} jobs/s (p99 ${fmt(ours.p99, 1)} ms), raw BullMQ ${fmt(raw.rate)} adds/s ` +
      `(p99 ${fmt(raw.p99, 1)} ms) at concurrency ${connections}; medians of ${rounds} alternating ${seconds} s rounds`,
    ratio,
    ratioOf: 'berth / Queue.add',
    target: `≥ ${targetRatio} and p99 ≤ ${targetP99Ms} ms`,
    pass: ratio >= targetRatio && ours.p99 <= targetP99Ms && problems.length === 0,
    rows: [
      { what: `submit at concurrency ${connections} (jobs/s)`, berth: ours.rate, baseline: raw.rate, ratio },
      {
        what: `submit p99 at concurrency ${connections} (ms)`,
        berth: ours.p99,
        baseline: raw.p99,
        ratio: ours.p99 / targetP99Ms,
        ratioNote: `p99 / ${targetP99Ms} ms`,
      },
    ],
    notes: problems,
    berth: { ...ours, queued },
    baseline: raw,
  };
});
