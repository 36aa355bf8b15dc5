// The log pump's own bounds, against a real Redis: the attempt's log file past its cap keeps its newest half under
// a marker line that counts what went, a pump that takes over the file (a re-attached worker) resumes it right, and
// a Redis that stops, comes back and then refuses writes (full) loses no line and stores none twice.
import { LogStream, MetricStream } from '@berth/store';
import { connectRedis, type Redis } from '@berth/store';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix, testRedisUrl } from '../../../../test/support/env.js';
import { startRedis, type TestRedis } from '../../../../test/support/redis-server.js';
import { countLogFileLines, LogPump } from './log-pump.js';

let redis: Redis;
let dir: string;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
  dir = mkdtempSync(join(tmpdir(), 'berth-log-pump-'));
});
afterAll(() => {
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

const line = (i: number): string => `line ${String(i).padStart(6, '0')} ${'x'.repeat(90)}`;

async function pumpLines(pump: LogPump, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 100) {
    const chunk = Array.from({ length: Math.min(100, to - i) }, (_, j) => `${line(i + j)}\n`).join('');
    await pump.write('stdout', Buffer.from(chunk));
  }
}

test('past its cap the log file drops its oldest half behind a marker that counts the lines dropped', async () => {
  const path = join(dir, 'a', 'attempt-1.log');
  const cap = 256 * 1024;
  const logs = new LogStream(redis, testPrefix('log-pump'));
  const pump = new LogPump(logs, 'job', 1, { skip: 0, file: { path, skip: 0 }, fileMaxBytes: cap, flushMs: 1 });
  const total = 10_000; // 1 MB of lines: the file fills four times over
  await pumpLines(pump, 0, total);
  await pump.close();

  expect(statSync(path).size).toBeLessThanOrEqual(cap);
  const text = readFileSync(path, 'utf8');
  const [marker, ...kept] = text.split('\n');
  expect(kept.pop()).toBe('');
  const dropped = Number(/^\[berth\] (\d+) older lines/.exec(marker!)![1]);
  // The file holds whole lines, the newest ones, in order, and the marker counts every line before them.
  expect(kept[0]).toBe(line(dropped));
  expect(kept.at(-1)).toBe(line(total - 1));
  expect(dropped + kept.length).toBe(total);
  expect(kept.length * (line(0).length + 1)).toBeGreaterThan(cap / 2 - 2 * line(0).length);
  expect(await countLogFileLines(path)).toBe(total);

  // A worker that re-attaches re-reads the container's output from the start and skips what the file stands for;
  // its pump takes the file's cap from the log stream's caps, as the worker builds it.
  const capped = new LogStream(redis, testPrefix('log-pump'), {
    logLines: 200_000,
    metricPoints: 1000,
    logFileBytes: cap,
  });
  const again = new LogPump(capped, 'job', 1, {
    skip: total,
    file: { path, skip: await countLogFileLines(path) },
    flushMs: 1,
  });
  await pumpLines(again, 0, total + 500);
  await again.close();
  const after = readFileSync(path, 'utf8').split('\n');
  after.pop();
  const droppedAfter = Number(/^\[berth\] (\d+) older lines/.exec(after[0]!)![1]);
  expect(after[1]).toBe(line(droppedAfter));
  expect(after.at(-1)).toBe(line(total + 499));
  expect(droppedAfter + after.length - 1).toBe(total + 500);
});

test('a flood of long lines goes to Redis in appends of about a megabyte, not 500 lines at once', async () => {
  const prefix = testPrefix('log-pump-flush');
  const logs = new LogStream(redis, prefix);
  const sizes: number[] = [];
  const append = logs.append.bind(logs);
  logs.append = async (jobId, attempt, batches, points, from) => {
    sizes.push(batches.reduce((n, b) => n + b.lines.reduce((m, l) => m + l.length, 0), 0));
    return append(jobId, attempt, batches, points, from);
  };
  const pump = new LogPump(logs, 'job', 1, { skip: 0, flushMs: 1000 });
  const long = 'y'.repeat(64 * 1024 - 1);
  for (let i = 0; i < 200; i++) await pump.write('stdout', Buffer.from(`${long}\n`));
  await pump.close();
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(200 * long.length);
  expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024 + long.length);
});

test('Redis stopped, then full: lines past the buffer wait in the file, and every one lands once, in order', async () => {
  // A Redis of its own, to stop and fill; port from the test's own so side-by-side runs do not meet.
  const own: TestRedis = await startRedis(Number(new URL(testRedisUrl()).port) + 20);
  const client = connectRedis(own.url);
  const path = join(dir, 'outage', 'attempt-1.log');
  const prefix = testPrefix('log-pump-outage');
  const logs = new LogStream(client, prefix);
  const retried: unknown[] = [];
  const pump = new LogPump(logs, 'job', 1, {
    skip: 0,
    file: { path, skip: 0 },
    flushMs: 1,
    bufferChars: 20_000,
    retryMaxMs: 100,
    onRetry: (err) => retried.push(err),
    // A point per hundredth line, to see that back-filled lines give their points with the time they were read.
    parse: (text, time) =>
      /^line \d{4}00 /.test(text)
        ? [{ name: 'n', value: Number(text.slice(5, 11)), step: null, kind: 'step', time }]
        : [],
  });
  const unsent = (): number => (pump as unknown as { unsentChars: number }).unsentChars;
  try {
    await pumpLines(pump, 0, 1000);
    await own.stop();
    // Redis is away: the reader is never held, the file takes every line, and memory holds at most the buffer.
    let most = 0;
    for (let i = 1000; i < 3000; i += 100) {
      await pumpLines(pump, i, i + 100);
      if (i === 2000) await pump.write('stderr', Buffer.from('to stderr\n'));
      most = Math.max(most, unsent());
    }
    const fileLines = readFileSync(path, 'utf8').split('\n').length - 1;
    expect(fileLines).toBe(3001);
    expect(most).toBeLessThanOrEqual(20_000);
    await own.start();
    // Full: Redis answers OOM to every write for a second, then has room again.
    await client.config('SET', 'maxmemory', '1');
    const full = pumpLines(pump, 3000, 4000);
    await new Promise((r) => setTimeout(r, 1000));
    await client.config('SET', 'maxmemory', '0');
    await full;
    await pump.close();

    const entries = (await logs.read('job', '0', 1_000_000)).flatMap((e) => (e.kind === 'lines' ? [e] : []));
    const texts = entries.flatMap((e) => e.lines);
    const expected = Array.from({ length: 4000 }, (_, i) => line(i));
    expected.splice(2100, 0, 'to stderr');
    expect(texts).toEqual(expected);
    expect(entries.filter((e) => e.stream === 'stderr').flatMap((e) => e.lines)).toEqual(['to stderr']);
    const times = entries.map((e) => e.time);
    expect(times).toEqual([...times].sort());
    expect(readFileSync(path, 'utf8')).toBe(texts.map((t) => `${t}\n`).join(''));
    expect(retried.some((e) => /OOM/.test(String(e)))).toBe(true);
    const points = await new MetricStream(client, prefix).read('job', '0', 1000);
    expect(points.map((p) => (p.entry === 'point' ? p.value : -1))).toEqual(
      Array.from({ length: 40 }, (_, i) => i * 100),
    );
  } finally {
    client.disconnect();
    await own.destroy();
  }
}, 60_000);

test('without a log file, a pump holds the reader back while Redis is away past the buffer', async () => {
  const own: TestRedis = await startRedis(Number(new URL(testRedisUrl()).port) + 21);
  const client = connectRedis(own.url);
  const logs = new LogStream(client, testPrefix('log-pump-hold'));
  const pump = new LogPump(logs, 'job', 1, { skip: 0, flushMs: 1, bufferChars: 20_000, retryMaxMs: 100 });
  try {
    await pumpLines(pump, 0, 100);
    await own.stop();
    let done = false;
    const writing = pumpLines(pump, 100, 1000).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 1000));
    expect(done).toBe(false);
    await own.start();
    await writing;
    await pump.close();
    const texts = (await logs.read('job', '0', 1_000_000)).flatMap((e) => (e.kind === 'lines' ? e.lines : []));
    expect(texts).toEqual(Array.from({ length: 1000 }, (_, i) => line(i)));
  } finally {
    client.disconnect();
    await own.destroy();
  }
}, 60_000);
