// Per-file isolation on the shared test Redis: a fresh prefix for keys and queues.
import { randomBytes } from 'node:crypto';

export function testRedisUrl(): string {
  const url = process.env.BERTH_TEST_REDIS_URL;
  if (!url) throw new Error('BERTH_TEST_REDIS_URL is unset: run tests through jest (its global setup starts Redis)');
  return url;
}

export function testPrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`;
}
