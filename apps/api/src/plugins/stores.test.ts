// The API's queues refuse at once while Redis is away, as every other command on its fail-fast connection does:
// BullMQ alone would wait for the connection however long Redis stays away.
import { redisReady } from '@berth/store';
import Fastify from 'fastify';
import { testPrefix, testRedisUrl } from '../../../../test/support/env.js';
import { testApiConfig } from '../../../../test/support/stack.js';
import { configPlugin } from './config.js';
import { storesPlugin } from './stores.js';

async function storesOn(redisUrl: string) {
  const app = Fastify();
  await app.register(configPlugin, { config: testApiConfig(testPrefix('stores'), { redisUrl }) });
  await app.register(storesPlugin);
  return app;
}

test('a queue used while Redis is away is refused with REDIS_UNAVAILABLE; with Redis there it is made', async () => {
  // Nothing listens on port 1.
  const away = await storesOn('redis://127.0.0.1:1');
  expect(() => away.queues.queue(0)).toThrow(expect.objectContaining({ code: 'REDIS_UNAVAILABLE' }));
  await away.close();

  const there = await storesOn(testRedisUrl());
  expect(await redisReady(there.redis, 5000)).toBe(true);
  expect(there.queues.queue(0).name).toBe('gpus-0');
  await there.close();
});
