// Redis connections and the rule for telling "Redis is unreachable" from a real reply error.
import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import { BerthError } from '@berth/contracts';

export type { Redis };

export interface ConnectOptions {
  /** Fail commands at once while disconnected instead of queueing them (API side). */
  failFast?: boolean;
  /** Name shown in `CLIENT LIST`. */
  name?: string;
}

export function connectRedis(url: string, opts: ConnectOptions = {}): Redis {
  const options: RedisOptions = {
    connectionName: opts.name,
    lazyConnect: false,
    // Keep reconnecting forever, at most every 2 s: the API and worker recover by themselves.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(opts.failFast
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1500, connectTimeout: 1500 }
      : { maxRetriesPerRequest: null }),
  };
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
 * Runs a Redis operation; anything but a reply from the server (connection lost, offline, timed out)
 * becomes REDIS_UNAVAILABLE so callers answer 503 instead of hanging or leaking internals.
 */
export function redisCall<T>(redis: Redis, op: () => Promise<T>, deadlineMs = 1800): Promise<T> {
  if (redis.status !== 'ready') return Promise.reject(unavailable());
  // One promise and one timer a call, settled by whichever comes first (the API's busiest path runs through here).
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(unavailable()), deadlineMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof BerthError || err instanceof ReplyError ? err : unavailable());
    };
    try {
      op().then((value) => {
        clearTimeout(timer);
        resolve(value);
      }, fail);
    } catch (err) {
      fail(err);
    }
  });
}

function unavailable(): BerthError {
  return new BerthError('REDIS_UNAVAILABLE', 'the job store (Redis) is unreachable; try again shortly');
}
