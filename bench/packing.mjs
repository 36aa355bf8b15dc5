// GPU packing: BENCH_JOBS mixed 1/2/4-GPU jobs (a fixed mix, 2–4.5 s each) on one worker with 8 stand-in GPUs
// (BERTH_GPUS=8, slots mode, 8 jobs at a time) — a smaller run of test/gpu-packing.test.ts. Needs an engine that
// accepts GPU requests: the NVIDIA Container Toolkit, or the stand-in hook (BERTH_GPU_STANDIN=1
// scripts/setup-system.sh). Each container prints the devices it was given; no two overlapping attempts may share one.
// Figures: the GPU-busy fraction of the makespan (GPU-seconds held, placement to release, over 8 × makespan) and
// the makespan against the ideal lower bound (the jobs' GPU-seconds / 8, at least the longest job).
// Target: busy ≥ 85 %; the ratio is ideal / makespan.
//   BENCH_JOBS (default 24)
import process from 'node:process';
import { getText, startBerth, submitJob, waitForJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { fixtureImage, fmt, runBench } from './lib/report.mjs';

const name = 'packing';
const count = Number(process.env.BENCH_JOBS ?? 24);
const gpus = 8;
const targetBusy = 0.85;
// The test's mix: sizes cycle 1, 2, 4, 1, 2; lengths 2–4.5 s.
const sizes = Array.from({ length: count }, (_, i) => [1, 2, 4, 1, 2][i % 5]);
const lengths = sizes.map((_, i) => 2 + ((i * 7) % 6) * 0.5);
const seconds = (iso) => Date.parse(iso) / 1000;

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  const berth = await startBerth(name, {
    workerEnv: { BERTH_GPUS: String(gpus), BERTH_GPU_MODE: 'slots', BERTH_WORKER_CONCURRENCY: String(gpus) },
  });
  cleanups.push(berth.stop);

  const ids = [];
  for (const [i, n] of sizes.entries()) {
    const cmd = ['sh', '-c', `echo "devices=$NVIDIA_VISIBLE_DEVICES"; sleep ${lengths[i]}`];
    ids.push(await submitJob(berth.url, fixtureImage, cmd, { gpus: n }));
  }
  const jobs = await Promise.all(ids.map((id) => waitForJob(berth.url, id, 110_000)));
  const problems = [];
  const failed = jobs.filter((j) => j.state !== 'succeeded');
  if (failed.length > 0) {
    const f = failed[0];
    throw new Error(`${failed.length} of ${count} jobs did not succeed, e.g. ${f.id} ${f.state}: ${f.message ?? ''}`);
  }
  for (const [i, job] of jobs.entries()) {
    const given = job.attempts[0].gpus;
    const log = await getText(`${berth.url}/v1/jobs/${job.id}/logs`);
    if (given.length !== sizes[i] || log !== `devices=${given.join(',')}\n`)
      problems.push(`${job.id} asked for ${sizes[i]} GPUs, was given ${given.join(',')}, saw ${log.trim()}`);
  }

  // Holding intervals: from placement (attempt start) to the recorded end, when the GPUs are released.
  const spans = jobs.map((j) => ({
    gpus: j.attempts[0].gpus,
    from: seconds(j.attempts[0].startedAt),
    to: seconds(j.attempts[0].finishedAt),
  }));
  for (const [i, a] of spans.entries()) {
    for (const b of spans.slice(i + 1)) {
      const shared = a.gpus.filter((g) => b.gpus.includes(g));
      if (a.from < b.to && b.from < a.to && shared.length > 0)
        problems.push(`GPU ${shared.join(',')} given to two running jobs at once`);
    }
  }
  const start = Math.min(...spans.map((s) => s.from));
  const makespan = Math.max(...spans.map((s) => s.to)) - start;
  const held = spans.reduce((sum, s) => sum + s.gpus.length * (s.to - s.from), 0);
  const work = sizes.reduce((sum, g, i) => sum + g * lengths[i], 0);
  const ideal = Math.max(work / gpus, ...lengths);
  const busy = held / (gpus * makespan);
  const ratio = ideal / makespan;
  console.log(
    `${count} jobs (${fmt(work)} GPU-s of sleep) on ${gpus} GPUs: makespan ${fmt(makespan, 1)} s, ideal ${fmt(ideal, 1)} s; ` +
      `GPUs held ${fmt(busy * 100, 1)} % of the makespan; useful work ${fmt((work / (gpus * makespan)) * 100, 1)} %`,
  );
  return {
    name,
    figure:
      `GPUs busy ${fmt(busy * 100, 1)} % of the makespan; makespan ${fmt(makespan, 1)} s vs ideal ${fmt(ideal, 1)} s ` +
      `(${count} mixed 1/2/4-GPU jobs, ${gpus} stand-in GPUs)`,
    ratio,
    ratioOf: 'ideal / makespan',
    target: `GPU-busy ≥ ${targetBusy * 100} %`,
    pass: busy >= targetBusy && problems.length === 0,
    rows: [
      { what: `packing ${count} jobs on ${gpus} GPUs: makespan (s)`, berth: makespan, baseline: ideal, ratio },
      { what: `packing: GPU-busy fraction of the makespan (%)`, berth: busy * 100 },
    ],
    notes: problems.slice(0, 5),
    makespan,
    ideal,
    busy,
    work,
  };
});
