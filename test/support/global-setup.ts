// One real Redis for the whole run; each test file isolates itself with its own key prefix. Runs side by side
// (a second checkout, a helper) pick another port with BERTH_TEST_REDIS_PORT.
import { startRedis } from './redis-server.ts';

export default async function globalSetup(): Promise<void> {
  const redis = await startRedis(Number(process.env.BERTH_TEST_REDIS_PORT ?? 6391));
  process.env.BERTH_TEST_REDIS_URL = redis.url;
  (globalThis as { berthTestRedis?: unknown }).berthTestRedis = redis;
}
