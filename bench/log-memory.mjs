// Memory under a log flood: a container writes BENCH_FLOOD_BYTES (default 1 GiB) of numbered 1 KiB lines
// (`seq | awk`, ~1.5 s for 1 GiB) while one SSE follower reads /v1/jobs/:id/logs?follow=true to the end. The API
// and the worker run as the built child processes (apps/*/dist/main.js) with BERTH_LOG_STREAM_MAX_LINES=100000;
// their RSS (VmRSS) is sampled every 200 ms. Target: each grows by < 50 MB over its RSS at rest. There is no
// baseline process (`docker logs -f` keeps nothing): the ratio is the larger growth / 50 MB.
// The follower checks the numbering: lines missing without a `truncated` marker, or repeated, fail the bench.
//   BENCH_FLOOD_BYTES (default 1073741824)
//   BENCH_FLOOD_CHUNK_MS (default 0: full speed) — pause this long after every 1 MiB (a paced flood)
//   BENCH_MAX_SECONDS (default 150) — the job is cancelled after this and the bench reports what it saw
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, postJson, startBerth, storedLog, submitJob } from './lib/berth.mjs';
import { requireImage } from './lib/engine.mjs';
import { cpuSeconds, epochMs, fixtureImage, fmt, rssBytes, runBench } from './lib/report.mjs';
import { followSse } from './lib/sse.mjs';

const name = 'log-memory';
const bytes = Number(process.env.BENCH_FLOOD_BYTES ?? 2 ** 30);
const chunkMs = Number(process.env.BENCH_FLOOD_CHUNK_MS ?? 0);
const maxSeconds = Number(process.env.BENCH_MAX_SECONDS ?? 150);
const lineBytes = 1024;
const lines = Math.floor(bytes / lineBytes);
const cap = 100_000;
const targetMb = 50;
const MB = 1024 * 1024;
// "000000001 xxx…x": 9 digits, a space, 1013 x, a newline.
const pace = chunkMs > 0 ? `if (NR % 1024 == 0) system("usleep ${chunkMs * 1000}"); ` : '';
const cmd = [
  'sh',
  '-c',
  `p="$(head -c ${lineBytes - 11} /dev/zero | tr '\\0' x)"; ` +
    `seq 1 ${lines} | awk -v p="$p" '{ printf "%09d %s\\n", $1, p; ${pace}}'`,
];

/** Follows the numbering: what arrived, what was marked dropped, and what went missing or came twice. */
function numbering() {
  const n = { received: 0, bytes: 0, dropped: 0, missing: 0, repeated: 0, malformed: 0, next: 1 };
  n.line = (text) => {
    n.received++;
    n.bytes += text.length + 1;
    const i = Number(text.slice(0, 9));
    if (text.length !== lineBytes - 1 || !Number.isInteger(i)) n.malformed++;
    else if (i < n.next) n.repeated++;
    else {
      n.missing += i - n.next;
      n.next = i + 1;
    }
  };
  // The marker comes before the first line after the gap: that gap is accounted for.
  n.truncated = (dropped) => {
    n.dropped += dropped;
    n.missing -= dropped;
  };
  return n;
}

await runBench(name, async (cleanups) => {
  await requireImage(fixtureImage);
  const berth = await startBerth(name, { workerEnv: { BERTH_LOG_STREAM_MAX_LINES: String(cap) } });
  cleanups.push(() => berth.stop());
  const watched = { api: berth.pids.api, worker: berth.pids.worker, redis: berth.pids.redis };
  const rss = () => Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, rssBytes(pid)]));

  // At rest: all three up and idle for 2 s.
  await sleep(2000);
  const atRest = rss();
  const peak = { ...atRest };
  const cpu0 = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const sampler = setInterval(() => {
    for (const [k, v] of Object.entries(rss())) peak[k] = Math.max(peak[k], v || 0);
  }, 200);
  cleanups.push(async () => clearInterval(sampler));

  const n = numbering();
  let endState;
  const started = epochMs();
  const id = await submitJob(berth.url, fixtureImage, cmd);
  const progress = setInterval(() => {
    const now = rss();
    const mb = (k) => fmt((now[k] - atRest[k]) / MB, 1);
    console.log(
      `${fmt((epochMs() - started) / 1000, 0)} s: ${fmt(n.received)} lines, ${fmt(n.dropped)} marked dropped; ` +
        `RSS growth api ${mb('api')} MB, worker ${mb('worker')} MB, redis ${mb('redis')} MB`,
    );
  }, 10_000);
  cleanups.push(async () => clearInterval(progress));
  let cutOff = false;
  const timer = new globalThis.AbortController();
  cleanups.push(async () => timer.abort());
  sleep(maxSeconds * 1000, undefined, { signal: timer.signal }).then(
    async () => {
      cutOff = true;
      await postJson(`${berth.url}/v1/jobs/${id}/cancel`, {}).catch(() => {});
    },
    () => {},
  );
  await Promise.race([
    followSse(`${berth.url}/v1/jobs/${id}/logs?follow=true`, (event, data) => {
      if (event === 'log') for (const text of JSON.parse(data).lines) n.line(text);
      else if (event === 'truncated') n.truncated(JSON.parse(data).dropped);
      else if (event === 'end') endState = JSON.parse(data).state;
    }),
    berth.crashed,
  ]);
  const elapsed = (epochMs() - started) / 1000;
  timer.abort();
  clearInterval(sampler);
  clearInterval(progress);
  const job = await getJson(`${berth.url}/v1/jobs/${id}`);
  const stored = await storedLog(berth, id);
  const cpu = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]]));
  await sleep(3000);
  const settled = rss();
  const growth = Object.fromEntries(Object.keys(watched).map((k) => [k, (peak[k] - atRest[k]) / MB]));
  const worst = Math.max(growth.api, growth.worker);
  console.log(
    `flood: ${fmt(lines)} lines printed; the worker stored ${fmt(stored.counted)}; the follower got ${fmt(n.received)} ` +
      `(${fmt(n.bytes / MB)} MiB), ${fmt(n.dropped)} marked dropped by the cap, ${fmt(n.missing)} missing unmarked, ` +
      `${fmt(n.repeated)} repeated; ${fmt(elapsed, 1)} s (${fmt(n.received / elapsed)} lines/s); job ${job.state}` +
      `${cutOff ? ' (cut off)' : ''}; CPU s: api ${fmt(cpu.api, 1)}, worker ${fmt(cpu.worker, 1)}, redis ${fmt(cpu.redis, 1)}`,
  );
  for (const k of Object.keys(watched)) {
    console.log(
      `${k.padEnd(6)} RSS at rest ${fmt(atRest[k] / MB, 1)} MB, peak ${fmt(peak[k] / MB, 1)} MB ` +
        `(growth ${fmt(growth[k], 1)} MB), 3 s after the end ${fmt(settled[k] / MB, 1)} MB`,
    );
  }
  const problems = [];
  if (cutOff) problems.push(`the flood was cut off after ${maxSeconds} s`);
  if (endState !== 'succeeded') problems.push(`job ended ${endState ?? job.state}`);
  if (stored.counted !== lines) problems.push(`the worker stored ${fmt(stored.counted)} of ${fmt(lines)} lines`);
  if (n.missing > 0) problems.push(`${fmt(n.missing)} lines missing without a truncated marker`);
  if (n.repeated > 0) problems.push(`${fmt(n.repeated)} lines repeated`);
  if (n.malformed > 0) problems.push(`${fmt(n.malformed)} malformed lines`);
  const carried = `${fmt(n.bytes / MB)} of ${fmt(bytes / MB)} MiB reached the follower`;
  return {
    name,
    figure: `RSS growth api ${fmt(growth.api, 1)} MB, worker ${fmt(growth.worker, 1)} MB (${carried})`,
    ratio: worst / targetMb,
    ratioOf: `worst growth / ${targetMb} MB, no baseline process`,
    target: `< 1 (each < ${targetMb} MB)`,
    pass: growth.api < targetMb && growth.worker < targetMb && problems.length === 0,
    rows: [
      {
        what: `API RSS growth, ${fmt(bytes / MB)} MiB flood (MB)`,
        berth: growth.api,
        ratio: growth.api / targetMb,
        ratioNote: `/ ${targetMb} MB`,
      },
      {
        what: `worker RSS growth, ${fmt(bytes / MB)} MiB flood (MB)`,
        berth: growth.worker,
        ratio: growth.worker / targetMb,
        ratioNote: `/ ${targetMb} MB`,
      },
    ],
    notes: problems,
    flood: { lines, stored: stored.counted, ...n, seconds: elapsed, state: job.state, cutOff, chunkMs },
    rss: { atRest, peak, settled },
    cpu,
  };
});
