// Dispatch: how long a no-op job takes from POST /v1/jobs to its container running, and to the job being recorded
// as finished, against `docker run --rm` of the same image and command started at the same moment in the flow.
// The container prints its own start time (busybox ash's $EPOCHREALTIME; container and host share the clock), so
// "running" means the same thing on both sides: the first instruction of the container's process ran.
// berth: submit → the printed time (read back from the job's log), and submit → the `succeeded` entry of the
// job's state history. Baseline: spawn of `docker run --rm` → the printed time, and → the CLI's exit.
// Rounds alternate (one untimed round of each first). Targets: median overhead to running ≤ 150 ms, and median
// end-to-end ≤ 1.5 × the baseline's.
//   BENCH_ROUNDS (default 10)
import { spawn } from 'node:child_process';
import process from 'node:process';
import { getText, startBerth, submitJob, waitForJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { checkClock, epochMs, fixtureImage, fmt, median, runBench } from './lib/report.mjs';

const name = 'dispatch';
const rounds = Number(process.env.BENCH_ROUNDS ?? 10);
const targetOverheadMs = 150;
const targetRatio = 1.5;
const cmd = ['sh', '-c', 'echo ${EPOCHREALTIME/./}'];

/** The container's printed start time, in ms since the epoch. */
function printedMs(text) {
  const us = Number(text.trim().split('\n')[0]);
  if (!Number.isFinite(us) || us <= 0) throw new Error(`the container printed ${JSON.stringify(text)}`);
  return us / 1000;
}

function dockerRound() {
  return new Promise((resolve, reject) => {
    const t0 = epochMs();
    const proc = spawn('docker', ['run', '--rm', fixtureImage, ...cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => (out += d));
    proc.once('error', reject);
    proc.once('close', (code) => {
      const done = epochMs();
      if (code !== 0) reject(new Error(`docker run exited ${code}`));
      else resolve({ running: printedMs(out) - t0, finished: done - t0 });
    });
  });
}

async function berthRound(url) {
  const t0 = epochMs();
  const id = await submitJob(url, fixtureImage, cmd);
  const job = await waitForJob(url, id, 60_000);
  if (job.state !== 'succeeded') throw new Error(`job ${id} ended ${job.state}: ${job.message ?? ''}`);
  const at = (state) => Date.parse(job.history.findLast((h) => h.state === state).at) - t0;
  return {
    running: printedMs(await getText(`${url}/v1/jobs/${id}/logs`)) - t0,
    recordedRunning: at('running'),
    finished: at('succeeded'),
  };
}

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  checkClock();
  const berth = await startBerth(name);
  cleanups.push(berth.stop);

  await dockerRound();
  await berthRound(berth.url);
  const base = [];
  const ours = [];
  for (let i = 0; i < rounds; i++) {
    base.push(await dockerRound());
    ours.push(await berthRound(berth.url));
    const [b, o] = [base[i], ours[i]];
    console.log(
      `round ${i + 1}: docker run → running ${fmt(b.running)} ms, exited ${fmt(b.finished)} ms; ` +
        `berth → running ${fmt(o.running)} ms (recorded ${fmt(o.recordedRunning)} ms), finished ${fmt(o.finished)} ms`,
    );
  }
  const med = (xs, k) => median(xs.map((x) => x[k]));
  const m = {
    baseRunning: med(base, 'running'),
    baseFinished: med(base, 'finished'),
    running: med(ours, 'running'),
    recordedRunning: med(ours, 'recordedRunning'),
    finished: med(ours, 'finished'),
  };
  const overhead = m.running - m.baseRunning;
  const ratio = m.finished / m.baseFinished;
  return {
    name,
    figure:
      `submit → running ${fmt(m.running)} ms (docker run ${fmt(m.baseRunning)} ms, overhead ${fmt(overhead)} ms); ` +
      `submit → finished ${fmt(m.finished)} ms (docker run --rm ${fmt(m.baseFinished)} ms); medians of ${rounds}`,
    ratio,
    ratioOf: 'berth / docker run --rm, end to end',
    target: `≤ ${targetRatio} and overhead to running ≤ ${targetOverheadMs} ms`,
    pass: ratio <= targetRatio && overhead <= targetOverheadMs,
    rows: [
      {
        what: 'submit → container running, median (ms)',
        berth: m.running,
        baseline: m.baseRunning,
        ratio: overhead / targetOverheadMs,
        ratioNote: `overhead / ${targetOverheadMs} ms`,
      },
      { what: 'submit → finished, median (ms)', berth: m.finished, baseline: m.baseFinished, ratio },
    ],
    notes: [],
    medians: m,
    berth: ours,
    baseline: base,
  };
});
