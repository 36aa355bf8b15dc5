// GPU samples taken while Redis is away reach the job's metric stream once it is back, in order, none twice; past
// the cap the oldest go and are counted. Against a Redis of the test's own, stopped and started.
import { connectRedis, MetricStream } from '@berth/store';
import type { GpuQueryRow } from '@berth/telemetry';
import pino from 'pino';
import { testPrefix, testRedisUrl } from '../../../../test/support/env.js';
import { startRedis } from '../../../../test/support/redis-server.js';
import { GpuSampler } from './sampler.js';
import { GpuTelemetry } from './telemetry.js';

/** Readings of one GPU whose utilisation counts the samples, so their order can be read back. */
function counting(): GpuTelemetry {
  let n = 0;
  const row = (): GpuQueryRow => ({
    index: 0,
    uuid: 'GPU-test',
    name: 'NVIDIA H200',
    utilizationPercent: n++,
    memoryUsedMiB: 1,
    memoryTotalMiB: 2,
  });
  return new GpuTelemetry({ sample: async () => [row()] }, 1000);
}

test('samples taken while Redis is away or full are stored once it takes them, in order; the cap counts what went', async () => {
  const own = await startRedis(Number(new URL(testRedisUrl()).port) + 22);
  const client = connectRedis(own.url);
  const prefix = testPrefix('gpu-sampler');
  const metrics = new MetricStream(client, prefix);
  const telemetry = counting();
  // A fresh reading for each sample: the test moves the clock past the interval it keeps readings for.
  let now = 0;
  const points = telemetry.points.bind(telemetry);
  telemetry.points = (uuids) => points(uuids, (now += 1000));
  const sampler = new GpuSampler(
    telemetry,
    ['GPU-test'],
    (points) => metrics.add('job', 1, points, 10_000),
    pino({ level: 'silent' }),
    3 * 8,
  );
  const takes = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await sampler.take();
  };
  try {
    await takes(3);
    // Away: the write in flight waits for Redis (the worker's client queues it), later samples wait in the sampler.
    await own.stop();
    const waiting = sampler.take();
    await takes(4);
    await own.start();
    await waiting;
    // Full: each write is refused (OOM) and its samples go back in front of the next; 24 points are 8 samples.
    await client.config('SET', 'maxmemory', '1');
    await takes(5);
    await client.config('SET', 'maxmemory', '0');
    await takes(1);
    const utilisation = (await metrics.read('job', '0', 1000)).flatMap((p) =>
      p.entry === 'point' && p.name === 'gpu.0.utilization' ? [p.value] : [],
    );
    expect(utilisation).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(sampler.dropped).toBe(2 * 3);
  } finally {
    client.disconnect();
    await own.destroy();
  }
}, 60_000);
