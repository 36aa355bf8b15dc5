// The worker's settings for Redis safety, liveness and the log buffer: their defaults, and what is refused.
import { loadWorkerConfig } from './env.js';

const base = { BERTH_GPUS: '0' };

test('defaults: Redis must be safe, 2 s of lag or 2 min stuck is unhealthy, 64 MiB of log held per attempt', () => {
  expect(loadWorkerConfig(base)).toMatchObject({
    allowUnsafeRedis: false,
    health: { maxLagMs: 2000, stuckMs: 120_000 },
    bufferBytes: 64 * 1024 ** 2,
  });
});

test('each is read from its variable', () => {
  expect(
    loadWorkerConfig({
      ...base,
      BERTH_ALLOW_UNSAFE_REDIS: '1',
      BERTH_WORKER_MAX_LAG_MS: '500',
      BERTH_WORKER_STUCK_MS: '60000',
      BERTH_WORKER_BUFFER_BYTES: String(8 * 1024 ** 2),
    }),
  ).toMatchObject({ allowUnsafeRedis: true, health: { maxLagMs: 500, stuckMs: 60_000 }, bufferBytes: 8 * 1024 ** 2 });
  expect(loadWorkerConfig({ ...base, BERTH_ALLOW_UNSAFE_REDIS: '0' }).allowUnsafeRedis).toBe(false);
});

test.each([
  ['BERTH_ALLOW_UNSAFE_REDIS', 'maybe'],
  ['BERTH_WORKER_MAX_LAG_MS', '0'],
  ['BERTH_WORKER_STUCK_MS', '10'],
  ['BERTH_WORKER_BUFFER_BYTES', '1024'],
  ['BERTH_WORKER_BUFFER_BYTES', '2097152.5'],
])('%s=%s is refused', (name, value) => {
  expect(() => loadWorkerConfig({ ...base, [name]: value })).toThrow(name);
});
