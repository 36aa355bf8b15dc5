// End-to-end log throughput: a container prints N lines (`seq 1 N`) → worker → Redis → one SSE follower of
// /v1/jobs/:id/logs?follow=true, to the `end` event. Baseline, in the same run and alternating with it: the same
// image and command started directly on the engine and followed with `docker logs -f` (the engine's logs API).
// Both are timed from the container's start to the last line received; every line is checked, in order.
// Target: berth ≥ 0.5 × the baseline's lines/s (medians over the rounds, after one untimed 50,000-line round each).
//   BENCH_LINES (default 500000), BENCH_ROUNDS (default 3)
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { getJson, startBerth, storedLog, submitJob } from './lib/berth.mjs';
import { createContainer, followLogs, removeLabelled, requireImage, startContainer } from './lib/engine.mjs';
import { cpuSeconds, dockerdPid, epochMs, fixtureImage, fmt, median, runBench } from './lib/report.mjs';
import { followSse } from './lib/sse.mjs';

const name = 'log-throughput';
const lines = Number(process.env.BENCH_LINES ?? 500_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const warmLines = 50_000;
const cmd = (n) => ['seq', '1', String(n)];
const target = 0.5;

/** Checks lines as they arrive: count, order, and when the last one came. */
function checker(lines) {
  const c = { count: 0, inOrder: true, last: '', lastAt: NaN };
  c.take = (text) => {
    c.count++;
    if (c.inOrder && text !== String(c.count)) c.inOrder = false;
    c.last = text;
    c.lastAt = epochMs();
  };
  c.problem = () =>
    c.count !== lines || !c.inOrder || c.last !== String(lines)
      ? `got ${c.count} lines (${c.inOrder ? 'in order' : 'OUT OF ORDER'}), last "${c.last}"`
      : undefined;
  return c;
}

function cpuOf(pids) {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
}

async function baselineRound(label, n = lines) {
  const c = checker(n);
  const id = await createContainer({ image: fixtureImage, cmd: cmd(n), labels: { 'berth.bench': label } });
  const clientCpu = process.cpuUsage();
  await startContainer(id);
  const startedAt = epochMs();
  await followLogs(id, (text) => c.take(text));
  const cpu = process.cpuUsage(clientCpu);
  const seconds = (c.lastAt - startedAt) / 1000;
  return { seconds, rate: c.count / seconds, problem: c.problem(), clientCpu: (cpu.user + cpu.system) / 1e6 };
}

async function berthRound(berth, pids, n = lines) {
  const c = checker(n);
  let truncated = 0;
  let endState;
  const cpuBefore = cpuOf(pids);
  const clientCpu = process.cpuUsage();
  const submittedAt = epochMs();
  const id = await submitJob(berth.url, fixtureImage, cmd(n));
  await followSse(`${berth.url}/v1/jobs/${id}/logs?follow=true`, (event, data) => {
    if (event === 'log') for (const text of JSON.parse(data).lines) c.take(text);
    else if (event === 'truncated') truncated += JSON.parse(data).dropped;
    else if (event === 'end') endState = JSON.parse(data).state;
  });
  const endAt = epochMs();
  const cpu = process.cpuUsage(clientCpu);
  const cpuAfter = cpuOf(pids);
  const job = await getJson(`${berth.url}/v1/jobs/${id}`);
  const stored = await storedLog(berth, id);
  const running = job.history.find((h) => h.state === 'running');
  const startedAt = Date.parse(running.at);
  const seconds = (c.lastAt - startedAt) / 1000;
  const problems = [c.problem(), truncated ? `${truncated} lines dropped by the stream cap` : undefined];
  if (endState !== 'succeeded') problems.push(`end event ${endState}`);
  if (stored.counted !== n) problems.push(`the worker stored ${stored.counted} lines (job ${job.state})`);
  return {
    seconds,
    rate: c.count / seconds,
    submitToEnd: (endAt - submittedAt) / 1000,
    problem: problems.filter(Boolean).join('; ') || undefined,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    cpu: Object.fromEntries(Object.keys(pids).map((k) => [k, cpuAfter[k] - cpuBefore[k]])),
  };
}

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  const label = `${name}-${randomBytes(3).toString('hex')}`;
  cleanups.push(() => removeLabelled(`berth.bench=${label}`));
  const berth = await startBerth(name);
  cleanups.push(() => berth.stop());
  const pids = { ...berth.pids, dockerd: dockerdPid() };
  if (!pids.dockerd) delete pids.dockerd;

  // One short untimed round of each first (JIT, connections, page cache), checked like the others.
  const warm = [await baselineRound(label, warmLines), await berthRound(berth, pids, warmLines)];
  await removeLabelled(`berth.bench=${label}`);
  const warmProblems = warm.flatMap((w, i) => (w.problem ? [`warm-up ${i ? 'berth' : 'baseline'}: ${w.problem}`] : []));
  for (const p of warmProblems) console.log(p);
  const base = [];
  const ours = [];
  for (let r = 1; r <= rounds; r++) {
    const b = await baselineRound(label);
    await removeLabelled(`berth.bench=${label}`);
    console.log(
      `round ${r} docker logs -f: ${fmt(b.rate)} lines/s (${fmt(b.seconds, 2)} s; client CPU ${fmt(b.clientCpu, 1)} s)` +
        (b.problem ? ` — ${b.problem}` : ''),
    );
    base.push(b);
    const o = await berthRound(berth, pids);
    const cpu = Object.entries(o.cpu)
      .map(([k, v]) => `${k} ${fmt(v, 1)}`)
      .join(', ');
    console.log(
      `round ${r} berth SSE:      ${fmt(o.rate)} lines/s (${fmt(o.seconds, 2)} s from container start, ` +
        `${fmt(o.submitToEnd, 2)} s submit→end; CPU s: client ${fmt(o.clientCpu, 1)}, ${cpu})` +
        (o.problem ? ` — ${o.problem}` : ''),
    );
    ours.push(o);
  }
  // A round that lost lines would show a rate for work not done: medians are over the complete rounds.
  const complete = (xs) => (xs.some((x) => !x.problem) ? xs.filter((x) => !x.problem) : xs);
  const berthRate = median(complete(ours).map((o) => o.rate));
  const baseRate = median(complete(base).map((b) => b.rate));
  const ratio = berthRate / baseRate;
  const problems = [...warmProblems, ...[...base, ...ours].map((x) => x.problem).filter(Boolean)];
  return {
    name,
    figure: `berth ${fmt(berthRate)} lines/s, docker logs -f ${fmt(baseRate)} lines/s (${fmt(lines)} lines, median of ${complete(ours).length} / ${complete(base).length} complete rounds)`,
    ratio,
    ratioOf: 'berth / docker logs -f',
    target: `≥ ${target}`,
    pass: ratio >= target && problems.length === 0,
    rows: [{ what: `log throughput, ${fmt(lines)} lines (lines/s)`, berth: berthRate, baseline: baseRate, ratio }],
    notes: problems,
    rounds: { berth: ours, baseline: base },
  };
});
