// redisCall against a real Redis: a reply passes, a server's reply error passes as it is, and everything else —
// a stalled operation, a throw before any command, a closed connection — is REDIS_UNAVAILABLE.
import { BerthError } from '@berth/contracts';
import { ReplyError } from 'ioredis';
import { testRedisUrl } from '../../../test/support/env.js';
import { connectRedis, redisCall, redisReady, type Redis } from './redis.js';

let redis: Redis;
beforeAll(async () => {
  redis = connectRedis(testRedisUrl(), { failFast: true });
  expect(await redisReady(redis, 5000)).toBe(true);
});
afterAll(() => redis.disconnect());

const code = (err: unknown) => (err instanceof BerthError ? err.code : err);

describe('redisCall', () => {
  it('gives the reply', async () => {
    await expect(redisCall(redis, () => redis.echo('berth'))).resolves.toBe('berth');
  });

  it("passes the server's reply errors on as they are", async () => {
    const err = await redisCall(redis, () => redis.call('NO-SUCH-COMMAND')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplyError);
    expect((err as Error).message).toMatch(/unknown command/);
  });

  it('passes BerthErrors on as they are', async () => {
    const own = new BerthError('JOB_NOT_FOUND', 'no job job_x');
    await expect(redisCall(redis, () => Promise.reject(own))).rejects.toBe(own);
  });

  it('answers REDIS_UNAVAILABLE at the deadline, whatever the operation does later', async () => {
    let finish: (v: string) => void = () => {};
    const started = Date.now();
    const call = redisCall(redis, () => new Promise<string>((resolve) => (finish = resolve)), 100);
    await expect(call.catch(code)).resolves.toBe('REDIS_UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    finish('too late'); // settles nothing: the call already failed
    await expect(call.catch(code)).resolves.toBe('REDIS_UNAVAILABLE');
  });

  it('turns a throw before any command, and any other failure, into REDIS_UNAVAILABLE', async () => {
    await expect(
      redisCall(redis, () => {
        throw new TypeError('broken');
      }).catch(code),
    ).resolves.toBe('REDIS_UNAVAILABLE');
    await expect(redisCall(redis, () => Promise.reject(new Error('socket closed'))).catch(code)).resolves.toBe(
      'REDIS_UNAVAILABLE',
    );
  });

  it('refuses at once on a connection that is not ready', async () => {
    const closed = connectRedis(testRedisUrl(), { failFast: true });
    expect(await redisReady(closed, 5000)).toBe(true);
    const ended = new Promise((resolve) => closed.once('end', resolve));
    closed.disconnect();
    await ended;
    let ran = false;
    const err = await redisCall(closed, () => {
      ran = true;
      return closed.ping();
    }).catch(code);
    expect(err).toBe('REDIS_UNAVAILABLE');
    expect(ran).toBe(false);
  });
});
