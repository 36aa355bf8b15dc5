// asRedisUnavailable against a real Redis: what a fail-fast client says when Redis cannot answer (closed, offline,
// timed out, "not now") is REDIS_UNAVAILABLE, fast; a real reply error, a BerthError or a bug is left as it is.
import { BerthError } from '@berth/contracts';
import { ReplyError } from 'ioredis';
import { testRedisUrl } from '../../../test/support/env.js';
import { asRedisUnavailable, connectRedis, redisReady, type Redis } from './redis.js';

let redis: Redis;
beforeAll(async () => {
  redis = connectRedis(testRedisUrl(), { failFast: true });
  expect(await redisReady(redis, 5000)).toBe(true);
});
afterAll(() => redis.disconnect());

const failure = <T>(p: Promise<T>) =>
  p.then(
    () => {
      throw new Error('it answered');
    },
    (e: unknown) => e,
  );

describe('asRedisUnavailable', () => {
  it("leaves the server's answers alone: an unknown command is not Redis being away", async () => {
    const err = await failure(redis.call('NO-SUCH-COMMAND'));
    expect(err).toBeInstanceOf(ReplyError);
    expect(asRedisUnavailable(err)).toBeUndefined();
  });

  it('maps the replies that say "not now" (full, loading) to REDIS_UNAVAILABLE', () => {
    for (const message of ['OOM command not allowed when used memory > maxmemory', 'LOADING Redis is loading']) {
      expect(asRedisUnavailable(new ReplyError(message))?.code).toBe('REDIS_UNAVAILABLE');
    }
  });

  it('leaves other BerthErrors and bugs alone, and passes REDIS_UNAVAILABLE on as it is', () => {
    expect(asRedisUnavailable(new BerthError('JOB_NOT_FOUND', 'no job job_x'))).toBeUndefined();
    expect(asRedisUnavailable(new TypeError('broken'))).toBeUndefined();
    const own = new BerthError('REDIS_UNAVAILABLE', 'away');
    expect(asRedisUnavailable(own)).toBe(own);
  });

  it('maps a command on a closed connection, at once', async () => {
    const closed = connectRedis(testRedisUrl(), { failFast: true });
    expect(await redisReady(closed, 5000)).toBe(true);
    const ended = new Promise((resolve) => closed.once('end', resolve));
    closed.disconnect();
    await ended;
    const started = Date.now();
    expect(asRedisUnavailable(await failure(closed.ping()))?.code).toBe('REDIS_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('maps a command while the client cannot connect (no offline queue), at once', async () => {
    const offline = connectRedis('redis://127.0.0.1:1', { failFast: true });
    try {
      const started = Date.now();
      expect(asRedisUnavailable(await failure(offline.get('k')))?.code).toBe('REDIS_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(100);
    } finally {
      offline.disconnect();
    }
  });

  it('maps a command that outlives the fail-fast commandTimeout (1.5 s), when it times out', async () => {
    const started = Date.now();
    const err = await failure(redis.blpop(`berth-test-never-${Date.now()}`, 3));
    expect(asRedisUnavailable(err)?.code).toBe('REDIS_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
