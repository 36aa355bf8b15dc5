// The workers registry on real Redis: heartbeats are stamped and judged on Redis's clock, so what a worker's host
// clock says changes nothing that GET /v1/workers shows.
import { testPrefix, testRedisUrl } from '../../../test/support/env.js';
import { registerWorker } from '../../../test/support/registry.js';
import { keys } from './keys.js';
import { connectRedis, type Redis } from './redis.js';
import { WorkerRegistry } from './worker-registry.js';

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(testRedisUrl());
});
afterAll(() => redis.disconnect());

const hostNow = Date.now;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const redisNow = async () => {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
};

function setup() {
  const prefix = testPrefix('registry');
  const registry = new WorkerRegistry(redis, prefix);
  const register = (id: string) => registerWorker(registry, id);
  return { prefix, registry, register };
}

test('a worker whose host clock is a day behind shows live, with its last heartbeat on Redis time', async () => {
  const { registry, register } = setup();
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => hostNow() - 86_400_000);
  try {
    await register('w1');
    await registry.heartbeat('w1');
  } finally {
    spy.mockRestore();
  }
  const [shown] = await registry.list(60_000);
  expect(shown).toMatchObject({ id: 'w1', status: 'live' });
  expect(Math.abs(Date.parse(shown!.lastHeartbeat) - (await redisNow()))).toBeLessThan(5000);
});

test('markLost decides on Redis time under the sweep lease, once, and refuses a caller without the lease', async () => {
  const { prefix, registry, register } = setup();
  const lostAfterMs = 300;
  const mine = { token: 'mine', ttlMs: 5000 };
  await register('w1');
  expect(await registry.markLost('w1', mine, lostAfterMs)).toBe('live');
  // Taking the lease is part of the call: it now names this caller.
  expect(await redis.get(keys(prefix).sweepLease)).toBe('mine');
  await sleep(lostAfterMs + 50);
  expect((await registry.list(lostAfterMs))[0]).toMatchObject({ id: 'w1', status: 'lost' });
  expect(await registry.markLost('w1', { token: 'theirs', ttlMs: 5000 }, lostAfterMs)).toBe('busy');
  expect(await registry.markLost('w1', mine, lostAfterMs)).toBe('lost');
  expect(await registry.markLost('w1', mine, lostAfterMs)).toBe('was-lost');
  expect(await registry.heartbeat('w1')).toBe(true);
  expect(await registry.markLost('w1', mine, lostAfterMs)).toBe('live');
});
