// Log latency at 1,000 lines/s: a container prints lines carrying their own print time (busybox ash's
// $EPOCHREALTIME, microseconds; container and host share the clock), paced at BENCH_RATE lines/s for
// BENCH_SECONDS; the SSE follower of /v1/jobs/:id/logs?follow=true takes arrival − print for every line.
// Baseline, in the same run: the same container followed with `docker logs -f` (the engine's logs API).
// Target: berth's p99 ≤ 100 ms; the ratio is p99 / 100 ms.
//   BENCH_RATE (default 1000), BENCH_SECONDS (default 10)
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { startBerth, getJson, submitJob } from './lib/berth.mjs';
import { createContainer, followLogs, removeLabelled, requireImage, startContainer } from './lib/engine.mjs';
import { checkClock, epochMs, fixtureImage, fmt, percentile, runBench } from './lib/report.mjs';
import { followSse } from './lib/sse.mjs';

const name = 'log-latency';
const rate = Number(process.env.BENCH_RATE ?? 1000);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const lines = rate * seconds;
const targetMs = 100;
const pad = 'x'.repeat(64);
// Line i is due at start + i/rate; the loop sleeps only while it is ahead of that schedule, so a slow moment
// is caught up rather than stretching the run. usleep is a fork in this busybox (~0.3 ms), well under 1 ms.
const script =
  `n=${lines}; step=${Math.round(1e6 / rate)}; s=\${EPOCHREALTIME/./}; i=1; ` +
  `while [ $i -le $n ]; do d=$((s + i*step - \${EPOCHREALTIME/./})); [ $d -gt 0 ] && usleep $d; ` +
  `echo "$i \${EPOCHREALTIME/./} ${pad}"; i=$((i+1)); done`;
const cmd = ['sh', '-c', script];

/** Takes "<i> <print time in µs> <pad>" lines as they arrive. */
function sampler() {
  const s = { latencies: [], count: 0, inOrder: true, firstPrint: NaN, lastPrint: NaN };
  // `stamped`: when the worker read the line (the `time` of a berth log event, ms), splitting the latency in two.
  s.stages = { toWorker: [], fromWorker: [] };
  s.take = (text, stamped) => {
    const now = epochMs();
    const [i, us] = text.split(' ');
    s.count++;
    if (Number(i) !== s.count) s.inOrder = false;
    const printed = Number(us) / 1000;
    if (s.count === 1) s.firstPrint = printed;
    s.lastPrint = printed;
    s.latencies.push(now - printed);
    if (stamped !== undefined) {
      s.stages.toWorker.push(stamped - printed);
      s.stages.fromWorker.push(now - stamped);
    }
  };
  s.summary = () => {
    const sorted = [...s.latencies].sort((a, b) => a - b);
    return {
      count: s.count,
      inOrder: s.inOrder,
      printRate: (s.count - 1) / ((s.lastPrint - s.firstPrint) / 1000),
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.at(-1),
      ...(s.stages.toWorker.length
        ? {
            toWorker: stage(s.stages.toWorker),
            fromWorker: stage(s.stages.fromWorker),
          }
        : {}),
      problem:
        s.count !== lines || !s.inOrder
          ? `got ${s.count} of ${lines} lines${s.inOrder ? '' : ', OUT OF ORDER'}`
          : undefined,
    };
  };
  return s;
}

function stage(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

const describe = (r) =>
  `p50 ${fmt(r.p50, 1)} ms, p90 ${fmt(r.p90, 1)} ms, p99 ${fmt(r.p99, 1)} ms, max ${fmt(r.max, 1)} ms ` +
  `(${fmt(r.count)} lines printed at ${fmt(r.printRate)} lines/s)` +
  (r.problem ? ` — ${r.problem}` : '');

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  checkClock();
  const label = `${name}-${randomBytes(3).toString('hex')}`;
  cleanups.push(() => removeLabelled(`berth.bench=${label}`));
  const berth = await startBerth(name);
  cleanups.push(() => berth.stop());

  const b = sampler();
  const id = await createContainer({ image: fixtureImage, cmd, labels: { 'berth.bench': label } });
  await startContainer(id);
  await followLogs(id, (text) => b.take(text));
  await removeLabelled(`berth.bench=${label}`);
  const base = b.summary();
  console.log(`docker logs -f: ${describe(base)}`);

  const o = sampler();
  let endState;
  const jobId = await submitJob(berth.url, fixtureImage, cmd);
  await followSse(`${berth.url}/v1/jobs/${jobId}/logs?follow=true`, (event, data) => {
    if (event === 'log') {
      const batch = JSON.parse(data);
      const read = Date.parse(batch.time);
      for (const text of batch.lines) o.take(text, read);
    } else if (event === 'end') endState = JSON.parse(data).state;
  });
  const ours = o.summary();
  const job = await getJson(`${berth.url}/v1/jobs/${jobId}`);
  if (endState !== 'succeeded') ours.problem = [ours.problem, `job ${job.state}`].filter(Boolean).join('; ');
  console.log(`berth SSE:      ${describe(ours)}`);
  console.log(
    `  split at the worker's read stamp (ms resolution): print → worker p50 ${fmt(ours.toWorker.p50, 1)} / ` +
      `p99 ${fmt(ours.toWorker.p99, 1)} ms; worker → SSE client p50 ${fmt(ours.fromWorker.p50, 1)} / ` +
      `p99 ${fmt(ours.fromWorker.p99, 1)} ms`,
  );

  const ratio = ours.p99 / targetMs;
  const problems = [base.problem, ours.problem].filter(Boolean);
  return {
    name,
    figure:
      `berth p50 ${fmt(ours.p50, 1)} / p99 ${fmt(ours.p99, 1)} / max ${fmt(ours.max, 1)} ms, ` +
      `docker logs -f p50 ${fmt(base.p50, 1)} / p99 ${fmt(base.p99, 1)} ms at ${fmt(rate)} lines/s`,
    ratio,
    ratioOf: `berth p99 / ${targetMs} ms`,
    target: `≤ 1 (p99 ≤ ${targetMs} ms)`,
    pass: ours.p99 <= targetMs && problems.length === 0,
    rows: [
      { what: `log latency p50 at ${fmt(rate)} lines/s (ms)`, berth: ours.p50, baseline: base.p50 },
      {
        what: `log latency p99 at ${fmt(rate)} lines/s (ms)`,
        berth: ours.p99,
        baseline: base.p99,
        ratio,
        ratioNote: `p99 / ${targetMs} ms`,
      },
      { what: `log latency max at ${fmt(rate)} lines/s (ms)`, berth: ours.max, baseline: base.max },
    ],
    notes: problems,
    berth: { ...ours },
    baseline: { ...base },
  };
});
