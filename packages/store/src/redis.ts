// Redis connections and the one rule for telling "Redis is unreachable" from a real reply error.
import { Redis, type RedisOptions } from 'ioredis';
import { BerthError } from '@berth/contracts';
import { isTransientRedisError } from './redis-retry.js';

export type { Redis };

export interface ConnectOptions {
  /** Fail commands at once while disconnected instead of queueing them (API side). */
  failFast?: boolean;
  /** Name shown in `CLIENT LIST`. */
  name?: string;
}

export function connectRedis(url: string, opts: ConnectOptions = {}): Redis {
  const options = {
    connectionName: opts.name,
    lazyConnect: false,
    // Keep reconnecting forever, at most every 2 s: the API and worker recover by themselves.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(opts.failFast
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1500, connectTimeout: 1500 }
      : { maxRetriesPerRequest: null }),
  } satisfies RedisOptions;
  const redis = new Redis(url, options);
  // Connection errors are reported through status and command failures; an unhandled 'error' event would crash.
  redis.on('error', () => {});
  return redis;
}

/** Resolves true once the connection is ready, false if it is not within `ms`. */
export async function redisReady(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', ready);
      resolve(false);
    }, ms);
    const ready = () => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', ready);
  });
}

/**
 * The one rule for "Redis could not answer": a failure that says Redis is unreachable, timed out, or cannot take the
 * command now (OOM, LOADING, …) becomes REDIS_UNAVAILABLE, so callers answer 503 instead of leaking internals; any
 * other error (a real reply error, a bug) is not Redis being away, and this returns undefined for it.
 */
export function asRedisUnavailable(err: unknown): BerthError | undefined {
  if (err instanceof BerthError) return err.code === 'REDIS_UNAVAILABLE' ? err : undefined;
  return isTransientRedisError(err) ? redisUnavailable() : undefined;
}

/** The error a caller answers with when Redis is away. */
export function redisUnavailable(): BerthError {
  return new BerthError('REDIS_UNAVAILABLE', 'the job store (Redis) is unreachable; try again shortly');
}
