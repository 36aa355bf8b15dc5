// The log and metric streams' caps against a real Redis: bytes held stay within the byte cap, the count of bytes
// agrees with what the stream holds, and the `truncated` marker counts exactly the lines dropped.
import type { LogEntry } from '@berth/contracts';
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { keys } from './keys.js';
import { LogStream } from './log-stream.js';
import { MetricStream } from './metric-stream.js';
import { connectRedis, type Redis } from './redis.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());

const time = '2026-01-01T00:00:00.000Z';

/** The bytes of log text a stream holds, summed from its entries. */
async function heldBytes(key: string): Promise<number> {
  const raw = (await redis.xrange(key, '-', '+')) as [string, string[]][];
  return raw.reduce((n, [, f]) => n + (f[0] === 'l' ? Buffer.byteLength(f[1]!) : 0), 0);
}

const linesIn = (entries: LogEntry[]): number =>
  entries.reduce((n, e) => n + (e.kind === 'lines' ? e.lines.length : 0), 0);

test('a log past its byte cap drops its oldest batches; the bytes count and the truncated marker stay exact', async () => {
  const prefix = testPrefix('log-caps');
  const k = keys(prefix);
  const cap = 1024 * 1024;
  const logs = new LogStream(redis, prefix, { logLines: 1_000_000, metricPoints: 1000, logBytes: cap });
  const long = 'x'.repeat(60_000);
  let written = 0;
  // Uneven batches: long lines, short ones, and several batches per append.
  for (let i = 0; i < 60; i++) {
    const batches = [
      { stream: 'stdout' as const, time, lines: [long] },
      { stream: 'stderr' as const, time, lines: Array.from({ length: i }, (_, j) => `short ${i}.${j}`) },
    ];
    written += 1 + i;
    await logs.append('job', 1, batches);
    const held = await heldBytes(k.logs('job'));
    expect(held).toBeLessThanOrEqual(cap);
  }
  // The count hash has every byte written; the first entry held, the bytes before it.
  const first = ((await redis.xrange(k.logs('job'), '-', '+', 'COUNT', 1)) as [string, string[]][])[0]![1];
  const total = Number(await redis.hget(k.logCount('job'), 'bytes'));
  expect(total - Number(first[5])).toBe(await heldBytes(k.logs('job')));
  const entries = await logs.read('job', '0', 100_000);
  expect(entries[0]).toEqual({ kind: 'truncated', dropped: expect.any(Number) });
  const dropped = (entries[0] as { dropped: number }).dropped;
  expect(dropped + linesIn(entries)).toBe(written);
  // Not much more than the cap needs goes: the cut is by the share of entries, a batch or two past the need.
  expect(await heldBytes(k.logs('job'))).toBeGreaterThan(cap - 140_000);
});

test('the line cap drops exactly whole batches and keeps the marker exact', async () => {
  const prefix = testPrefix('log-lines');
  const logs = new LogStream(redis, prefix, { logLines: 100, metricPoints: 1000 });
  for (let i = 0; i < 30; i++) {
    await logs.append('job', 1, [{ stream: 'stdout', time, lines: Array.from({ length: 7 }, (_, j) => `${i}.${j}`) }]);
  }
  const entries = await logs.read('job', '0', 1000);
  const held = linesIn(entries);
  expect(held).toBeLessThanOrEqual(100);
  expect(held).toBeGreaterThan(100 - 7);
  expect(entries[0]).toEqual({ kind: 'truncated', dropped: 210 - held });
});

test('metric points past the byte cap drop the oldest, whoever writes them', async () => {
  const prefix = testPrefix('metric-caps');
  const k = keys(prefix);
  const cap = 20_000;
  const logs = new LogStream(redis, prefix, { logLines: 1000, metricPoints: 100_000, metricBytes: cap });
  const metrics = new MetricStream(redis, prefix, cap);
  const point = (step: number) => ({ name: 'loss', value: step / 7, step, kind: 'step' as const, time });
  for (let step = 0; step < 2000; step += 10) {
    await logs.append('job', 1, [{ stream: 'stdout', time, lines: [`step ${step}`] }], [point(step)]);
    await metrics.add('job', 1, [point(step + 5)], 100_000);
  }
  const raw = (await redis.xrange(k.metrics('job'), '-', '+')) as [string, string[]][];
  const held = raw.reduce((n, [, f]) => n + f.reduce((m, v) => m + Buffer.byteLength(v), 0), 0);
  expect(held).toBeLessThanOrEqual(cap);
  expect(held).toBeGreaterThan(cap - 200);
  expect(Number(await redis.hget(k.logCount('job'), 'mbytes'))).toBe(held);
  // The newest points are the ones kept.
  expect(raw.at(-1)![1]).toContain('1995');
});

test('an append retried after a lost reply stores its lines and points once; a later one goes on after them', async () => {
  const prefix = testPrefix('log-retry');
  const logs = new LogStream(redis, prefix);
  const metrics = new MetricStream(redis, prefix);
  const batch = (text: string) => [{ stream: 'stdout' as const, time, lines: [text, `${text}+`] }];
  const point = { name: 'loss', value: 1, step: 1, kind: 'step' as const, time };
  expect(await logs.append('job', 1, batch('a'), [point], 0)).toEqual({ before: 0, applied: true });
  // The writer did not hear back, and sends the same call again: it finds its lines there and changes nothing.
  expect(await logs.append('job', 1, batch('a'), [point], 0)).toEqual({ before: 2, applied: false });
  expect(await logs.append('job', 1, batch('b'), [], 2)).toEqual({ before: 2, applied: true });
  const texts = (await logs.read('job', '0', 100)).flatMap((e) => (e.kind === 'lines' ? e.lines : []));
  expect(texts).toEqual(['a', 'a+', 'b', 'b+']);
  expect(await logs.storedLines('job', 1)).toBe(4);
  expect((await metrics.series('job')).series.map((s) => s.count)).toEqual([1]);
});
