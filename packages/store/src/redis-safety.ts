// The start-up check the API and the worker make: Redis must keep every write and refuse writes when it is full.
import { ReplyError } from 'ioredis';
import { connectRedis, redisReady, type Redis } from './redis.js';

/** What a Redis must say for berth to trust it with its records and BullMQ's queues. */
export interface RedisSettings {
  /** `yes` when AOF is on; undefined when neither CONFIG GET nor INFO answered. */
  appendonly: string | undefined;
  maxmemoryPolicy: string | undefined;
}

export interface RedisSafetyOptions {
  /** BERTH_ALLOW_UNSAFE_REDIS: start anyway; the caller then warns with each problem returned. */
  allowUnsafe: boolean;
  /** Name of the short-lived connection in `CLIENT LIST`. */
  name?: string;
  /** Told once when Redis does not answer at once: the check waits for it rather than judging a Redis it cannot see. */
  waiting?: () => void;
}

/** A Redis that could lose or evict what berth writes; the message names each setting and how to fix it. */
export class UnsafeRedisError extends Error {
  override readonly name = 'UnsafeRedisError';

  constructor(readonly problems: string[]) {
    super(
      `Redis is not safe for berth: ${problems.join('; ')}. Set "appendonly yes" and "maxmemory-policy noeviction" ` +
        'in its configuration, or set BERTH_ALLOW_UNSAFE_REDIS=1 to start anyway',
    );
  }
}

/**
 * Connects, reads the settings and says what is wrong with them. Throws UnsafeRedisError when something is and
 * `allowUnsafe` is false; otherwise resolves with the problems (none on a safe Redis) for the caller to warn about.
 * An unreachable Redis is waited for, not refused: the connection retries until it answers.
 */
export async function checkRedisSafety(url: string, opts: RedisSafetyOptions): Promise<string[]> {
  const redis = connectRedis(url, { name: opts.name ?? 'berth-redis-check' });
  try {
    if (!(await redisReady(redis, 5000))) opts.waiting?.();
    const problems = redisProblems(await readRedisSettings(redis));
    if (problems.length > 0 && !opts.allowUnsafe) throw new UnsafeRedisError(problems);
    return problems;
  } finally {
    redis.disconnect();
  }
}

/**
 * CONFIG GET first; managed services that disable CONFIG (or an ACL that denies it) still report both settings in
 * INFO. A reply error means "not this way"; anything else (a lost connection) is passed on.
 */
export async function readRedisSettings(redis: Redis): Promise<RedisSettings> {
  const aofEnabled = async () => {
    const flag = await infoField(redis, 'persistence', 'aof_enabled');
    return flag === undefined ? undefined : flag === '1' ? 'yes' : 'no';
  };
  const aof = (await configGet(redis, 'appendonly')) ?? (await aofEnabled());
  const policy = (await configGet(redis, 'maxmemory-policy')) ?? (await infoField(redis, 'memory', 'maxmemory_policy'));
  return { appendonly: aof, maxmemoryPolicy: policy };
}

/** One sentence a problem, each saying what could be lost. */
export function redisProblems(settings: RedisSettings): string[] {
  const problems: string[] = [];
  if (settings.appendonly === undefined) {
    problems.push('appendonly could not be read (CONFIG GET and INFO persistence were both refused)');
  } else if (settings.appendonly !== 'yes') {
    problems.push(
      `appendonly is "${settings.appendonly}": a restart of Redis loses the jobs written since its last snapshot`,
    );
  }
  if (settings.maxmemoryPolicy === undefined) {
    problems.push('maxmemory-policy could not be read (CONFIG GET and INFO memory were both refused)');
  } else if (settings.maxmemoryPolicy !== 'noeviction') {
    problems.push(
      `maxmemory-policy is "${settings.maxmemoryPolicy}": a full Redis would evict job records, queue entries and ` +
        'locks instead of refusing writes',
    );
  }
  return problems;
}

async function configGet(redis: Redis, name: string): Promise<string | undefined> {
  const reply = await redis.call('CONFIG', 'GET', name).catch(refused);
  // [name, value]; an empty list when the server does not know the setting.
  return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
}

async function infoField(redis: Redis, section: string, field: string): Promise<string | undefined> {
  const text = await redis.info(section).catch(refused);
  if (typeof text !== 'string') return undefined;
  const line = text.split(/\r?\n/).find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

function refused(err: unknown): undefined {
  if (err instanceof ReplyError) return undefined;
  throw err;
}
