// The API's shared services, owned here and closed together: Redis connections, the job store, the queue.
import { connectRedis, jobQueue, JobStore, LogStream, redisCall, type Redis } from '@berth/store';
import { Queue } from 'bullmq';
import type { ApiConfig } from './env.js';

export interface Services {
  redis: Redis;
  store: JobStore;
  logs: LogStream;
  queue: Queue;
  /** A connection for blocking reads (SSE follow); the caller closes it. */
  openBlockingConnection(): Redis;
  /** Runs a Redis operation with the fail-fast rule: 503 REDIS_UNAVAILABLE instead of a hang. */
  call<T>(op: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function buildServices(config: ApiConfig): Services {
  const redis = connectRedis(config.redisUrl, { failFast: true, name: 'berth-api' });
  const queue = new Queue(jobQueue.name, { connection: redis, prefix: jobQueue.prefix(config.prefix) });
  // The queue reports connection trouble through the shared client; requests see it as 503.
  queue.on('error', () => {});
  const blocking = new Set<Redis>();
  return {
    redis,
    store: new JobStore(redis, config.prefix),
    logs: new LogStream(redis, config.prefix),
    queue,
    openBlockingConnection() {
      const conn = connectRedis(config.redisUrl, { name: 'berth-api-follow' });
      blocking.add(conn);
      conn.once('end', () => blocking.delete(conn));
      return conn;
    },
    call: (op) => redisCall(redis, op),
    async close() {
      for (const conn of blocking) conn.disconnect();
      await queue.close().catch(() => {});
      redis.disconnect();
    },
  };
}
