import type { TestRedis } from './redis-server.ts';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { berthTestRedis?: TestRedis }).berthTestRedis?.destroy();
}
