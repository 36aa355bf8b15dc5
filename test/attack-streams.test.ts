// Attack: a job's output must not take Redis down for everyone. A job floods 64 KiB lines while another job logs
// quietly; Redis grows by no more than the per-job byte cap plus a fixed overhead, the quiet job's lines all arrive,
// a large page of the flooded log stays bounded in bytes, and an ended job's streams go after the retention time.
import { Housekeeper, JobQueues, JobStore, keys, type StreamCaps } from '@berth/store';
import { Redis } from 'ioredis';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRedisUrl } from './support/env.js';
import { fixtureJob, startTestStack, submit, waitForEnd, type TestStack } from './support/stack.js';

/**
 * 20 s of flood: enough to show the growth is unbounded (on main before the byte caps, Redis grew by 500.8 MiB in
 * this test, 40 times the cap) while keeping the test short on a shared two-core machine. A longer flood only adds
 * more of the same: past the cap, every new byte pushes an old one out.
 */
const floodSeconds = 20;
/**
 * 64 KiB lines a second (26 MB/s): above the ~15 MiB/s the issue measured, and a fixed amount in all (520 MB), so
 * the attempt's log file stays under the test API's 1 GiB artifact limit and the job ends as it should.
 */
const floodLinesPerSecond = 400;
/** Small enough to see, large enough that one 8 MiB page of the held log cannot take it all. */
const logBytes = 12 * 1024 ** 2;
/**
 * What Redis may grow by besides the held log: jemalloc rounds a 64 KiB entry's node up to its 80 KiB size class
 * (+25% of the cap), the append's script arguments sit in the client's query buffer until the script ran (a flush
 * is at most 1 Mi characters), and the AOF buffer holds one event loop's writes.
 */
const overhead = 12 * 1024 ** 2;
const pageBytes = 8 * 1024 ** 2;

const caps = { logLines: 200_000, metricPoints: 10_000, logBytes, metricBytes: 1024 ** 2 } as StreamCaps;

let stack: TestStack;
let redis: Redis;
beforeAll(async () => {
  stack = await startTestStack('attack-streams', { caps });
  redis = new Redis(testRedisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await stack.close();
  // Half a gigabyte of flood in the worker's log file and again in the API's artifacts.
  rmSync(stack.dataDir, { recursive: true, force: true });
  rmSync(join(tmpdir(), 'berth-test-api', stack.prefix), { recursive: true, force: true });
});

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

interface Page {
  lines: { text: string }[];
  next: string | null;
  ended: boolean;
  truncated?: number;
}

async function page(id: string, query: string, client = stack.alice): Promise<{ page: Page; bytes: number }> {
  const res = await client.fetch(`/v1/jobs/${id}/logs?${query}`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(200);
  const text = await res.text();
  return { page: JSON.parse(text) as Page, bytes: Buffer.byteLength(text) };
}

let floodId = '';
let quietId = '';

test(`a ${floodSeconds} s flood of 64 KiB lines grows Redis by at most the byte cap; another job's lines all arrive`, async () => {
  const before = await usedMemory();
  let peak = before;
  const sampler = setInterval(() => {
    void usedMemory()
      .then((m) => (peak = Math.max(peak, m)))
      .catch(() => {});
  }, 200);
  try {
    const flood = await submit(
      stack.alice,
      fixtureJob([
        'sh',
        '-c',
        `l=$(head -c 65000 /dev/zero | tr '\\0' x); i=0; while [ $i -lt ${floodSeconds} ]; do yes "$l" | head -n ${floodLinesPerSecond}; sleep 1; i=$((i+1)); done`,
      ]),
    );
    const quiet = await submit(
      stack.bob,
      fixtureJob(['sh', '-c', `i=1; while [ $i -le 150 ]; do echo "quiet $i"; i=$((i+1)); sleep 0.1; done`]),
    );
    expect([flood.status, quiet.status]).toEqual([201, 201]);
    floodId = flood.body.id;
    quietId = quiet.body.id;
    const quietEnd = await waitForEnd(stack.bob, quietId, (floodSeconds + 60) * 1000);
    const floodEnd = await waitForEnd(stack.alice, floodId, (floodSeconds + 120) * 1000);
    expect(quietEnd.state).toBe('succeeded');
    expect(floodEnd.state).toBe('succeeded');
    peak = Math.max(peak, await usedMemory());
  } finally {
    clearInterval(sampler);
  }
  const grown = peak - before;
  console.log(`Redis grew by ${(grown / 1024 ** 2).toFixed(1)} MiB at its peak (cap ${logBytes / 1024 ** 2} MiB)`);
  expect(grown).toBeLessThanOrEqual(logBytes + overhead);

  const quietLines = await page(quietId, 'limit=1000', stack.bob);
  const quietTexts = quietLines.page.lines.map((l) => (l as { text: string }).text);
  expect(quietTexts).toEqual(Array.from({ length: 150 }, (_, i) => `quiet ${i + 1}`));
}, 300_000);

test('the flooded log keeps an exact truncated count, and a page of limit=100000 stops at 8 MiB with a cursor', async () => {
  const k = keys(stack.prefix);
  const written = Number(await redis.hget(k.logCount(floodId), 'lines'));
  const first = await page(floodId, 'limit=100000');
  console.log(`the first page: ${first.page.lines.length} lines, ${(first.bytes / 1024 ** 2).toFixed(1)} MiB`);
  // A page stops once it holds 8 MiB of line text; the last line may take it past by one line and its JSON.
  expect(first.bytes).toBeLessThanOrEqual(pageBytes + 256 * 1024);
  expect(first.page.next).not.toBeNull();
  expect(first.page.truncated).toBeGreaterThan(0);

  // Every page to the end: the lines held and the lines the cap dropped add up to every line the job wrote.
  let held = first.page.lines.length;
  let heldBytes = first.page.lines.reduce((n, l) => n + Buffer.byteLength(l.text), 0);
  for (let next = first.page.next; next;) {
    const more = await page(floodId, `limit=100000&after=${next}`);
    expect(more.bytes).toBeLessThanOrEqual(pageBytes + 256 * 1024);
    expect(more.page.truncated).toBeUndefined();
    held += more.page.lines.length;
    heldBytes += more.page.lines.reduce((n, l) => n + Buffer.byteLength(l.text), 0);
    next = more.page.next;
  }
  expect(held + first.page.truncated!).toBe(written);
  expect(heldBytes).toBeLessThanOrEqual(logBytes);
  expect(heldBytes).toBeGreaterThan(logBytes - 256 * 1024);
}, 120_000);

test("an ended job's log, metrics and events go after the retention time; its record and a running job's stay", async () => {
  const k = keys(stack.prefix);
  const ended = await submit(stack.bob, fixtureJob(['sh', '-c', 'echo short job']));
  expect((await waitForEnd(stack.bob, ended.body.id)).state).toBe('succeeded');
  const endedId = ended.body.id;
  const running = await submit(stack.alice, fixtureJob(['sh', '-c', 'echo still here; sleep 60']));
  expect(running.status).toBe(201);
  for (;;) {
    const job = (await (await stack.alice.fetch(`/v1/jobs/${running.body.id}`)).json()) as { state: string };
    expect(job).not.toMatchObject({ state: 'failed' });
    if (job.state === 'running' && (await redis.exists(k.logs(running.body.id)))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const streams = (id: string) => [k.logs(id), k.logCount(id), k.metrics(id), k.events(id)];
  expect(await redis.exists(...streams(endedId))).toBeGreaterThanOrEqual(3);

  // The retention time is what changes between the sweeps: an hour first, then one millisecond, which the ended job
  // is well past.
  const housekeeper = (streamRetentionMs: number) =>
    new Housekeeper(redis, stack.prefix, new JobStore(redis, stack.prefix), new JobQueues(redis, stack.prefix), {
      lostAfterMs: 300_000,
      retry: { infraRetries: 0, backoffMs: 0 },
      streamRetentionMs,
    } as ConstructorParameters<typeof Housekeeper>[4]);
  const artifactsBefore = await redis.hlen(k.artifacts(endedId));
  await housekeeper(3_600_000).sweep();
  expect(await redis.exists(...streams(endedId))).toBeGreaterThanOrEqual(3);

  await new Promise((r) => setTimeout(r, 50));
  await housekeeper(1).sweep();
  const left = await redis.exists(...streams(endedId), ...streams(floodId), ...streams(quietId));
  console.log(`stream keys of the ended jobs left after the retention time: ${left}`);
  expect(left).toBe(0);
  expect(await redis.exists(k.job(endedId))).toBe(1);
  expect(artifactsBefore).toBeGreaterThan(0);
  expect(await redis.hlen(k.artifacts(endedId))).toBe(artifactsBefore);
  expect((await stack.bob.fetch(`/v1/jobs/${endedId}`)).status).toBe(200);
  const still = (await (await stack.alice.fetch(`/v1/jobs/${running.body.id}`)).json()) as {
    state: string;
    message?: string;
  };
  expect({ state: still.state, message: still.message, log: await redis.exists(k.logs(running.body.id)) }).toEqual({
    state: 'running',
    message: undefined,
    log: 1,
  });
  await stack.alice.fetch(`/v1/jobs/${running.body.id}/cancel`, { method: 'POST' });
}, 120_000);
