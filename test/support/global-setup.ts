// One real Redis for the whole run; each test file isolates itself with its own key prefix.
import { startRedis } from './redis-server.ts';

export default async function globalSetup(): Promise<void> {
  const redis = await startRedis(6391);
  process.env.BERTH_TEST_REDIS_URL = redis.url;
  (globalThis as { berthTestRedis?: unknown }).berthTestRedis = redis;
}
