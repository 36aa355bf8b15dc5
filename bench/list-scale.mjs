// Listing at scale: 10,000 queued jobs (submitted through the API with autocannon, no worker running so they
// stay queued), then GET /v1/jobs?state=queued&limit=50 and every following cursor to the last page, one request
// after another, BENCH_WALKS times. Every walk must see each job exactly once. Target: p99 of the page requests
// (client-side, keep-alive, body read and parsed) ≤ 50 ms; the ratio is p99 / 50 ms.
//   BENCH_JOBS (default 10000), BENCH_WALKS (default 3)
import process from 'node:process';
import { customSpec, getJson, startBerth } from './lib/berth.mjs';
import { postJobs } from './lib/load.mjs';
import { fixtureImage, fmt, percentile, runBench } from './lib/report.mjs';

const name = 'list-scale';
const jobs = Number(process.env.BENCH_JOBS ?? 10_000);
const walks = Number(process.env.BENCH_WALKS ?? 3);
const limit = 50;
const targetMs = 50;

/** One walk over every page; returns each request's latency (ms) and whether it saw every job once. */
async function walk(url) {
  const latencies = [];
  const seen = new Set();
  let repeats = 0;
  let cursor;
  do {
    const t0 = globalThis.performance.now();
    const page = await getJson(`${url}/v1/jobs?state=queued&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    latencies.push(globalThis.performance.now() - t0);
    if (!Array.isArray(page?.jobs)) throw new Error(`a page without jobs: ${JSON.stringify(page).slice(0, 300)}`);
    for (const job of page.jobs) {
      if (seen.has(job.id)) repeats++;
      seen.add(job.id);
      if (job.state !== 'queued') throw new Error(`job ${job.id} is ${job.state} in the queued listing`);
    }
    cursor = page.next;
  } while (cursor);
  return { latencies, seen: seen.size, repeats };
}

await runBench(name, async (cleanups) => {
  const berth = await startBerth(name, { worker: false });
  cleanups.push(berth.stop);
  const filled = await postJobs(berth.url, customSpec(fixtureImage, ['true']), { connections: 32, amount: jobs });
  if (filled.count !== jobs) throw new Error(`${fmt(filled.count)} of ${fmt(jobs)} submissions were accepted`);
  console.log(`${fmt(jobs)} jobs queued at ${fmt(filled.rate)} jobs/s`);

  const all = [];
  const problems = [];
  for (let i = 0; i < walks; i++) {
    const w = await walk(berth.url);
    const sorted = [...w.latencies].sort((a, b) => a - b);
    console.log(
      `walk ${i + 1}: ${w.latencies.length} pages, ${fmt(w.seen)} jobs (${w.repeats} repeated); ` +
        `p50 ${fmt(percentile(sorted, 50), 1)} / p99 ${fmt(percentile(sorted, 99), 1)} / max ${fmt(sorted.at(-1), 1)} ms`,
    );
    if (w.seen !== jobs || w.repeats > 0) problems.push(`walk ${i + 1} saw ${w.seen} jobs, ${w.repeats} repeated`);
    all.push(...w.latencies);
  }
  all.sort((a, b) => a - b);
  const [p50, p99, max] = [percentile(all, 50), percentile(all, 99), all.at(-1)];
  const ratio = p99 / targetMs;
  return {
    name,
    figure:
      `${fmt(all.length)} pages of ${limit} over ${fmt(jobs)} queued jobs: ` +
      `p50 ${fmt(p50, 1)} / p99 ${fmt(p99, 1)} / max ${fmt(max, 1)} ms`,
    ratio,
    ratioOf: `p99 / ${targetMs} ms`,
    target: `≤ 1 (p99 ≤ ${targetMs} ms)`,
    pass: p99 <= targetMs && problems.length === 0,
    rows: [
      { what: `list ${fmt(jobs)} queued jobs, page p50 (ms)`, berth: p50 },
      {
        what: `list ${fmt(jobs)} queued jobs, page p99 (ms)`,
        berth: p99,
        ratio,
        ratioNote: `p99 / ${targetMs} ms`,
      },
    ],
    notes: problems,
    pages: all.length,
  };
});
