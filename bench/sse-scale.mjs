// SSE followers at scale: 500 clients following job logs on one API process (BENCH_JOBS jobs with
// BENCH_FOLLOWERS / BENCH_JOBS followers each) while every job prints BENCH_RATE lines/s for BENCH_SECONDS, and the
// API's event-loop lag as the API itself exposes it: prom-client's `nodejs_eventloop_lag_p99_seconds` (here
// berth_api_…) from /metrics, whose histogram restarts at every scrape. Once all followers are connected (the API's
// berth_sse_clients gauge says so), /metrics is scraped every 2 s while the lines flow and through the window in
// which the streams end, like a Prometheus would; the figure is the worst 2 s window's p99 (the connection burst
// before them is reported beside it, not judged).
// Every follower must receive every line of its job, in order, and the end event. Target: lag p99 ≤ 50 ms; the
// ratio is p99 / 50 ms. For scale, the same metric is read from the idle API first (its resolution is 10 ms).
//   BENCH_FOLLOWERS (default 500), BENCH_JOBS (default 10), BENCH_RATE (default 20), BENCH_SECONDS (default 15)
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, scrapeMetrics, startBerth, submitJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { fixtureImage, fmt, runBench } from './lib/report.mjs';
import { followSse } from './lib/sse.mjs';

const name = 'sse-scale';
const followers = Number(process.env.BENCH_FOLLOWERS ?? 500);
const jobCount = Number(process.env.BENCH_JOBS ?? 10);
const rate = Number(process.env.BENCH_RATE ?? 20);
const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const lines = rate * seconds;
const scrapeMs = 2000;
const targetMs = 50;
const lagP99 = 'berth_api_nodejs_eventloop_lag_p99_seconds';
// Waits 3 s so that every follower is connected before the first line, then prints on a fixed schedule.
const cmd = [
  'sh',
  '-c',
  `sleep 3; n=${lines}; step=${Math.round(1e6 / rate)}; s=\${EPOCHREALTIME/./}; i=1; ` +
    `while [ $i -le $n ]; do d=$((s + i*step - \${EPOCHREALTIME/./})); [ $d -gt 0 ] && usleep $d; ` +
    `echo "line $i"; i=$((i+1)); done`,
];

/** Follows one job's log to its end; resolves with what it got. */
async function follower(url, jobId) {
  const got = { count: 0, inOrder: true, ended: false };
  await followSse(`${url}/v1/jobs/${jobId}/logs?follow=true`, (event, data) => {
    if (event === 'log') {
      for (const text of JSON.parse(data).lines) if (text !== `line ${++got.count}`) got.inOrder = false;
    } else if (event === 'end') got.ended = true;
  });
  return got;
}

/**
 * Scrapes /metrics every scrapeMs until `done` settles; returns each window's lag p99 (ms) and gauges. Every window
 * is a whole scrapeMs, the one in which the streams end too (as a Prometheus scrapes on its interval): a window cut
 * short when the last follower got its end would hold fewer samples, and its p99 would be nearer its maximum.
 */
async function scrapeWhile(url, done) {
  const windows = [];
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => {});
  do {
    await sleep(scrapeMs);
    const m = await scrapeMetrics(url);
    windows.push({
      lagP99: m.get(lagP99) * 1000,
      clients: m.get('berth_sse_clients'),
      readers: m.get('berth_stream_readers'),
    });
  } while (!finished);
  return windows;
}

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  const berth = await startBerth(name, { workerEnv: { BERTH_WORKER_CONCURRENCY: String(jobCount) } });
  cleanups.push(berth.stop);

  await scrapeMetrics(berth.url);
  await sleep(scrapeMs);
  const idle = (await scrapeMetrics(berth.url)).get(lagP99) * 1000;

  const ids = [];
  for (let i = 0; i < jobCount; i++) ids.push(await submitJob(berth.url, fixtureImage, cmd));
  const follows = Array.from({ length: followers }, (_, i) => follower(berth.url, ids[i % jobCount]));
  const all = Promise.all(follows);
  all.catch(() => {});
  const t0 = globalThis.performance.now();
  // The connection burst: until every follower is open (each scrape restarts the histogram; the last one counts).
  let connect;
  for (;;) {
    await sleep(200);
    const m = await scrapeMetrics(berth.url);
    connect = { lagP99: m.get(lagP99) * 1000, clients: m.get('berth_sse_clients') };
    if (connect.clients >= followers) break;
    if (globalThis.performance.now() - t0 > 20_000) throw new Error(`only ${connect.clients} followers connected`);
  }
  const connectS = (globalThis.performance.now() - t0) / 1000;
  const windows = await scrapeWhile(berth.url, all);
  const got = await all;
  const wall = (globalThis.performance.now() - t0) / 1000;

  const states = await Promise.all(ids.map(async (id) => (await getJson(`${berth.url}/v1/jobs/${id}`)).state));
  const problems = [];
  const short = got.filter((g) => g.count !== lines || !g.inOrder || !g.ended);
  if (short.length > 0)
    problems.push(
      `${short.length} of ${followers} followers missed lines, order or the end (e.g. ${JSON.stringify(short[0])})`,
    );
  const failed = states.filter((s) => s !== 'succeeded');
  if (failed.length > 0) problems.push(`${failed.length} jobs did not succeed: ${failed.join(', ')}`);
  const maxClients = Math.max(...windows.map((w) => w.clients));
  if (maxClients < followers) problems.push(`at most ${maxClients} SSE clients were open at a scrape`);

  const lags = windows.map((w) => w.lagP99);
  const worst = Math.max(...lags);
  const ratio = worst / targetMs;
  console.log(
    `${followers} followers of ${jobCount} jobs × ${fmt(lines)} lines at ${rate} lines/s: ${fmt(wall, 1)} s; ` +
      `all connected after ${fmt(connectS, 1)} s (lag p99 of the last 200 ms of that ${fmt(connect.lagP99, 1)} ms); ` +
      `lag p99 by ${scrapeMs / 1000} s window (ms): ${lags.map((l) => fmt(l, 1)).join(' ')}; ` +
      `SSE clients at most ${maxClients}, shared readers at most ${Math.max(...windows.map((w) => w.readers))}`,
  );
  return {
    name,
    figure:
      `API event-loop lag p99 ${fmt(worst, 1)} ms (worst ${scrapeMs / 1000} s window; idle ${fmt(idle, 1)} ms) ` +
      `with ${followers} SSE followers receiving ${fmt(followers * rate)} events/s`,
    ratio,
    ratioOf: `lag p99 / ${targetMs} ms`,
    target: `≤ 1 (p99 ≤ ${targetMs} ms)`,
    pass: worst <= targetMs && problems.length === 0,
    rows: [
      {
        what: `API event-loop lag p99, ${followers} SSE followers (ms)`,
        berth: worst,
        baseline: idle,
        ratio,
        ratioNote: `p99 / ${targetMs} ms; baseline: idle`,
      },
      {
        what: `API event-loop lag p99 while ${followers} followers connect (ms)`,
        berth: connect.lagP99,
        baseline: idle,
      },
    ],
    notes: problems,
    idle,
    connect: { ...connect, seconds: connectS },
    windows,
  };
});
