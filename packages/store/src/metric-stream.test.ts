// Metric reads in chunks against a real Redis: the series a read builds point by point are the ones downsampling
// every point at once gives, on both of its paths (few points held, many points bucketed in a second pass).
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { keys } from './keys.js';
import { Downsampler, downsample, metricFields, MetricStream } from './metric-stream.js';
import { connectRedis, type Redis } from './redis.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());

test('the one-point-at-a-time downsampler gives what downsample gives', () => {
  for (const [n, limit] of [
    [0, 5],
    [1, 2],
    [5, 5],
    [6, 5],
    [120, 50],
    [1000, 3],
    [1001, 2],
    [9999, 500],
  ] as const) {
    const xy = Array.from({ length: n }, (_, i): [number, number] => [i * 3, Math.sin(i)]);
    const d = new Downsampler(n, limit);
    for (const [x, y] of xy) d.push(x, y, 1e9 + x);
    expect(d.result()).toEqual(downsample(xy, limit));
    // Each kept point's time is the one logged with its x (a bucket's last point's).
    expect(d.times()).toEqual(d.result().map(([x]) => 1e9 + x));
  }
});

async function addPoints(prefix: string, jobId: string, n: number, attempt: number): Promise<void> {
  const k = keys(prefix);
  for (let from = 0; from < n; from += 5000) {
    const tx = redis.pipeline();
    for (let i = from; i < Math.min(n, from + 5000); i++) {
      const name = i % 3 === 0 ? 'lr' : 'loss';
      const fields = metricFields(attempt, {
        name,
        value: i / 10,
        step: name === 'lr' && i % 7 === 0 ? null : i,
        kind: 'step',
        time: new Date(1_700_000_000_000 + i).toISOString(),
      });
      tx.xadd(k.metrics(jobId), '*', ...fields);
    }
    await tx.exec();
  }
}

test.each([
  ['few points, one pass', 3000],
  ['many points, a counting pass and a bucketing one', 120_000],
])(
  'series from %s match downsampling every point at once',
  async (_what, n) => {
    const prefix = testPrefix('metric-series');
    await addPoints(prefix, 'job', 50, 1);
    await addPoints(prefix, 'job', n, 2);
    const got = await new MetricStream(redis, prefix).series('job', { points: 200 });
    expect(got.attempt).toBe(2);
    const loss = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0);
    const lr = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 0);
    expect(got.series.map((s) => [s.name, s.count, s.x])).toEqual([
      ['loss', loss.length, 'step'],
      ['lr', lr.length, 'time'],
    ]);
    expect(got.series[0]!.points).toEqual(
      downsample(
        loss.map((i) => [i, i / 10]),
        200,
      ),
    );
    // A step series says when each of its points was logged; a time series needs no second clock.
    expect(got.series[0]!.times).toEqual(got.series[0]!.points.map(([step]) => 1_700_000_000_000 + step));
    expect(got.series[1]!.times).toBeUndefined();
    expect(got.series[1]!.points).toEqual(
      downsample(
        lr.map((i) => [1_700_000_000_000 + i, i / 10]),
        200,
      ),
    );
  },
  60_000,
);
